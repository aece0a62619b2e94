// Package gorsrc reads messages from GoReplay .gor files (plain or gzip,
// one file or a rotation glob such as requests_*.gor).
package gorsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sources"
)

// Source reads .gor files to their end.
type Source struct {
	pattern string
	root    string // when set, files are found and opened through an os.Root on it
	log     *slog.Logger

	messages, bad, files atomic.Int64
}

var _ sources.Source = (*Source)(nil)

// New returns a source over the file or glob pattern.
func New(pattern string, log *slog.Logger) *Source {
	if log == nil {
		log = slog.Default()
	}
	return &Source{pattern: pattern, log: log}
}

// NewWithin returns a source over the file or glob pattern (absolute) that
// finds and opens its files through an os.Root on root, the directory a
// restricted scenario reads under: a symbolic link that leads outside root,
// made before or after the scenario was checked, is not followed.
func NewWithin(root, pattern string, log *slog.Logger) *Source {
	s := New(pattern, log)
	s.root = root
	return s
}

// Run emits every payload of every file in order. A payload that does not
// decode is counted as bad-payloads and logged; it does not stop the run.
func (s *Source) Run(ctx context.Context, emit func(*message.Message) error) error {
	if s.root != "" {
		return s.runWithin(ctx, emit)
	}
	files, err := s.expand()
	if err != nil {
		return err
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("gor source: %w", err)
		}
		if err := s.readFile(ctx, f, name, emit); err != nil {
			return err
		}
		s.files.Add(1)
	}
	return nil
}

// Check finds the source's files without reading them: it returns the
// error Run would return first for a pattern that matches no file, a file
// that is not there, or one a restricted scenario may not read.
func (s *Source) Check() error {
	if s.root == "" {
		_, err := s.expand()
		return err
	}
	r, _, err := s.within()
	if err == nil {
		r.Close()
	}
	return err
}

// expand returns the files of the pattern, in rotation order.
func (s *Source) expand() ([]string, error) {
	files, err := gorfile.Expand(s.pattern)
	if err != nil {
		return nil, fmt.Errorf("gor source: %w", err)
	}
	return files, nil
}

// within opens an os.Root on s.root and finds the pattern's files through
// it (slash-separated, relative to s.root). The caller closes the root.
func (s *Source) within() (*os.Root, []string, error) {
	rel, err := sources.Within(s.root, s.pattern)
	if err != nil {
		return nil, nil, fmt.Errorf("gor source: %w", err)
	}
	r, err := os.OpenRoot(s.root)
	if err != nil {
		return nil, nil, fmt.Errorf("gor source: %w", err)
	}
	files, err := gorfile.ExpandFS(r.FS(), filepath.ToSlash(rel))
	if err != nil {
		r.Close()
		if errors.Is(err, fs.ErrNotExist) {
			// A file named without a glob that is not there: missing,
			// not outside.
			return nil, nil, fmt.Errorf("gor source: %w", sources.NotRead(filepath.Join(s.root, rel), s.root, err))
		}
		return nil, nil, fmt.Errorf("gor source: %s not read: a restricted scenario reads only under %s, through no link that leads outside: %w", s.pattern, s.root, err)
	}
	return r, files, nil
}

// runWithin is Run through an os.Root on s.root.
func (s *Source) runWithin(ctx context.Context, emit func(*message.Message) error) error {
	r, files, err := s.within()
	if err != nil {
		return err
	}
	defer r.Close()
	for _, name := range files {
		name = filepath.FromSlash(name)
		f, err := r.Open(name)
		if err != nil {
			return fmt.Errorf("gor source: %w", sources.NotRead(filepath.Join(s.root, name), s.root, err))
		}
		if err := s.readFile(ctx, f, filepath.Join(s.root, name), emit); err != nil {
			return err
		}
		s.files.Add(1)
	}
	return nil
}

// readFile reads f (named name), and closes it.
func (s *Source) readFile(ctx context.Context, f *os.File, name string, emit func(*message.Message) error) error {
	defer f.Close()
	r, err := gorfile.NewReader(f)
	if err != nil {
		return fmt.Errorf("gor source %s: %w", name, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, off, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gor source %s: %w", name, err)
		}
		m, err := message.DecodePayload(p)
		if err != nil {
			if s.bad.Add(1) <= 10 {
				s.log.Warn("skipping bad payload", "file", name, "offset", off, "err", err)
			}
			continue
		}
		// The payload buffer is reused by the reader: keep a copy.
		m.Raw = append([]byte(nil), m.Raw...)
		s.messages.Add(1)
		if err := emit(m); err != nil {
			return err
		}
	}
}

// Stats reports messages, bad-payloads and files.
func (s *Source) Stats() map[string]int64 {
	return map[string]int64{"messages": s.messages.Load(), "bad-payloads": s.bad.Load(), "files": s.files.Load()}
}
