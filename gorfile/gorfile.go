// Package gorfile reads and writes GoReplay's .gor files: GoReplay payloads
// ("<type> <id> <unix-ns> <latency-ns>\n" + raw HTTP) separated by
// "\n🐵🙈🙉\n", optionally gzip-compressed (.gor.gz).
package gorfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/replayctl/replayctl/message"
)

// Separator ends every payload in a .gor file.
const Separator = "\n🐵🙈🙉\n"

// MaxPayload is the largest payload a Reader accepts before it reports an error.
const MaxPayload = 64 << 20

var errTooLarge = fmt.Errorf("payload larger than %d bytes without a separator", MaxPayload)

// Reader yields the payloads of one .gor stream.
type Reader struct {
	br  *bufio.Reader
	buf []byte
	off int64 // bytes consumed so far, for error positions
}

// NewReader reads payloads from r. A gzip stream is detected by its magic
// bytes and decompressed.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gorfile: gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	return &Reader{br: br}, nil
}

// Next returns the next raw payload (valid until the following call), its
// byte offset in the (decompressed) stream, or io.EOF at the end. A final
// payload without a trailing separator (or without the separator's final
// newline) is returned as well.
func (r *Reader) Next() ([]byte, int64, error) {
	r.buf = r.buf[:0]
	start := r.off
	sep := []byte(Separator)
	for {
		line, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, line...)
		r.off += int64(len(line))
		if bytes.HasSuffix(r.buf, sep) {
			return r.buf[:len(r.buf)-len(sep)], start, nil
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			if len(r.buf) > MaxPayload {
				return nil, start, fmt.Errorf("gorfile: at byte %d: %w", start, errTooLarge)
			}
			continue
		case errors.Is(err, io.EOF):
			// A stream cut right before the separator's final newline
			// (a copy of a file being written) still ends its payload
			// there: the separator's bytes are not part of the message.
			p := bytes.TrimSuffix(r.buf, sep[:len(sep)-1])
			if len(bytes.TrimSpace(p)) == 0 {
				return nil, start, io.EOF
			}
			return p, start, nil
		default:
			return nil, start, fmt.Errorf("gorfile: read: %w", err)
		}
	}
}

// Writer writes payloads to a .gor stream.
type Writer struct {
	w   *bufio.Writer
	gz  *gzip.Writer
	buf []byte
}

// NewWriter writes payloads to w, gzip-compressed when compress is set.
func NewWriter(w io.Writer, compress bool) *Writer {
	gw := &Writer{}
	if compress {
		gw.gz = gzip.NewWriter(w)
		w = gw.gz
	}
	gw.w = bufio.NewWriterSize(w, 256<<10)
	return gw
}

// Write writes m's payload followed by the separator.
func (w *Writer) Write(m *message.Message) error {
	_, err := w.WriteN(m)
	return err
}

// WriteN is Write that also returns the bytes of m's payload and separator
// (all of them, whether or not an error kept some out of the stream).
func (w *Writer) WriteN(m *message.Message) (int, error) {
	w.buf = message.AppendPayload(w.buf[:0], m)
	w.buf = append(w.buf, Separator...)
	if _, err := w.w.Write(w.buf); err != nil {
		return len(w.buf), fmt.Errorf("gorfile: write: %w", err)
	}
	return len(w.buf), nil
}

// Close flushes buffered payloads (and ends the gzip stream). It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("gorfile: flush: %w", err)
	}
	if w.gz != nil {
		if err := w.gz.Close(); err != nil {
			return fmt.Errorf("gorfile: gzip: %w", err)
		}
	}
	return nil
}

var rotationIndex = regexp.MustCompile(`_(\d+)\.gor(\.gz)?$`)

// Expand resolves a path that may be a glob (requests_*.gor) into the files it
// names, in GoReplay's order: by rotation index (requests_2 before
// requests_10), then by name. A plain path that does not exist is an error.
func Expand(pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		if _, err := os.Stat(pattern); err != nil {
			return nil, fmt.Errorf("gorfile: %w", err)
		}
		return []string{pattern}, nil
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("gorfile: pattern %q: %w", pattern, err)
	}
	return rotationOrder(pattern, files)
}

// ExpandFS is Expand in fsys: pattern and the names returned are
// slash-separated paths in fsys (fs.Glob's). In an os.Root's FS, a glob
// does not look through a symbolic link that leads outside the root.
func ExpandFS(fsys fs.FS, pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		if _, err := fs.Stat(fsys, pattern); err != nil {
			return nil, fmt.Errorf("gorfile: %w", err)
		}
		return []string{pattern}, nil
	}
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, fmt.Errorf("gorfile: pattern %q: %w", pattern, err)
	}
	return rotationOrder(pattern, files)
}

// rotationOrder sorts the files a pattern matched in GoReplay's order;
// none is an error.
func rotationOrder(pattern string, files []string) ([]string, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("gorfile: no file matches %q", pattern)
	}
	index := func(name string) int64 {
		m := rotationIndex.FindStringSubmatch(name)
		if m == nil {
			return -1
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	sort.SliceStable(files, func(i, j int) bool {
		a, b := index(files[i]), index(files[j])
		if a != b {
			return a < b
		}
		return files[i] < files[j]
	})
	return files, nil
}
