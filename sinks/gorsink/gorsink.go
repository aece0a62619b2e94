// Package gorsink writes messages to a GoReplay .gor file (gzip when the path
// ends in .gz).
package gorsink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
)

// Sink writes a .gor file.
type Sink struct {
	f       *os.File
	w       *gorfile.Writer
	written atomic.Int64
}

var _ sinks.Sink = (*Sink)(nil)

// Create creates (or truncates) the file at path, making its directory.
func Create(path string) (*Sink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("gor sink: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("gor sink: %w", err)
	}
	return &Sink{f: f, w: gorfile.NewWriter(f, strings.HasSuffix(path, ".gz"))}, nil
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
	return &Sink{f: f, w: gorfile.NewWriter(f, strings.HasSuffix(p.String(), ".gz"))}, nil
}

// Write appends m.
func (s *Sink) Write(_ context.Context, m *message.Message) error {
	if err := s.w.Write(m); err != nil {
		return fmt.Errorf("gor sink %s: %w", s.f.Name(), err)
	}
	s.written.Add(1)
	return nil
}

// Close flushes and closes the file.
func (s *Sink) Close(context.Context) error {
	err := s.w.Close()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("gor sink: %w", cerr)
	}
	return err
}

// Stats reports written.
func (s *Sink) Stats() map[string]int64 { return map[string]int64{"written": s.written.Load()} }
