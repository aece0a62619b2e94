// Package gorsrc reads messages from GoReplay .gor files (plain or gzip,
// one file or a rotation glob such as requests_*.gor).
package gorsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sources"
)

// Source reads .gor files to their end.
type Source struct {
	pattern string
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

// Run emits every payload of every file in order. A payload that does not
// decode is counted as bad-payloads and logged; it does not stop the run.
func (s *Source) Run(ctx context.Context, emit func(*message.Message) error) error {
	files, err := gorfile.Expand(s.pattern)
	if err != nil {
		return err
	}
	for _, name := range files {
		if err := s.readFile(ctx, name, emit); err != nil {
			return err
		}
		s.files.Add(1)
	}
	return nil
}

func (s *Source) readFile(ctx context.Context, name string, emit func(*message.Message) error) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("gor source: %w", err)
	}
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
