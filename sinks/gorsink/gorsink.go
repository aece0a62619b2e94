// Package gorsink writes messages to a GoReplay .gor file (gzip when the path
// ends in .gz).
package gorsink

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
)

// Sink writes a .gor file. A message counts as written once its bytes are
// in the file (the writer buffers them): a plain file's messages as the
// buffer reaches the file, a .gz file's when it is closed whole (before,
// the gzip stream cannot be read to them). Those a write error keeps out
// of the file count as failed, but the one whose Write returned the error:
// the caller knows it was not taken.
type Sink struct {
	f  *os.File
	cw *countingWriter
	w  *gorfile.Writer
	gz bool

	mu      sync.Mutex
	total   int64   // bytes of the payloads handed to w
	ends    []int64 // plain file: end offsets of the messages not whole in it yet
	pending int64   // .gz file: messages handed to w, not written till Close

	written, failed atomic.Int64
}

var _ sinks.Sink = (*Sink)(nil)

// countingWriter counts the bytes its file took.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newSink(f *os.File, gz bool) *Sink {
	cw := &countingWriter{w: f}
	return &Sink{f: f, cw: cw, w: gorfile.NewWriter(cw, gz), gz: gz}
}

// Create creates (or truncates) the file at path, making its directory.
func Create(path string) (*Sink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("gor sink: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("gor sink: %w", err)
	}
	return newSink(f, strings.HasSuffix(path, ".gz")), nil
}

// Opener creates the file to write (scenario.Path is one: it creates
// contained paths through an os.Root).
type Opener interface {
	Create() (*os.File, error)
	String() string
}

// Open creates the file p names, as Create does for a path.
func Open(p Opener) (*Sink, error) {
	f, err := p.Create()
	if err != nil {
		return nil, fmt.Errorf("gor sink: %w", err)
	}
	return newSink(f, strings.HasSuffix(p.String(), ".gz")), nil
}

// Write appends m.
func (s *Sink) Write(_ context.Context, m *message.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.WriteN(m)
	s.total += int64(n)
	if s.gz {
		s.pending++
	} else {
		s.ends = append(s.ends, s.total)
	}
	if err != nil {
		// m itself is not written: the error returned says so, and a
		// caller does not count it as handed over.
		if s.gz {
			s.pending--
		} else {
			s.ends = s.ends[:len(s.ends)-1]
		}
		s.settle(true)
		return fmt.Errorf("gor sink %s: %w", s.f.Name(), err)
	}
	s.settle(false)
	return nil
}

// settle counts the messages now whole in the file as written and, after an
// error (broken), all the others as failed. s.mu is held.
func (s *Sink) settle(broken bool) {
	if !s.gz {
		onFile := s.cw.n.Load()
		k := 0
		for k < len(s.ends) && s.ends[k] <= onFile {
			k++
		}
		s.written.Add(int64(k))
		s.ends = append(s.ends[:0], s.ends[k:]...)
		if broken {
			s.failed.Add(int64(len(s.ends)))
			s.ends = s.ends[:0]
		}
		return
	}
	if broken {
		s.failed.Add(s.pending)
		s.pending = 0
	}
}

// Close flushes and closes the file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Close()
	if err == nil && s.gz {
		s.written.Add(s.pending)
		s.pending = 0
	}
	s.settle(err != nil)
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("gor sink: %w", cerr)
	}
	return err
}

// Stats reports written (messages whole in the file) and failed (messages
// a write error kept out of it).
func (s *Sink) Stats() map[string]int64 {
	return map[string]int64{"written": s.written.Load(), "failed": s.failed.Load()}
}
