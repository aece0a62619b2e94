// Package stdoutsink prints messages: as GoReplay payloads (the default,
// separated like a .gor file) or as one summary line each.
package stdoutsink

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
)

// Sink prints to a writer.
type Sink struct {
	w       *bufio.Writer
	summary bool
	buf     []byte
	written atomic.Int64
}

var _ sinks.Sink = (*Sink)(nil)

// New prints to w in format "payload" (or "") or "summary".
func New(w io.Writer, format string) (*Sink, error) {
	switch format {
	case "", "payload", "summary":
	default:
		return nil, fmt.Errorf("stdout sink: unknown format %q (want payload or summary)", format)
	}
	return &Sink{w: bufio.NewWriter(w), summary: format == "summary"}, nil
}

// Write prints m.
func (s *Sink) Write(_ context.Context, m *message.Message) error {
	if s.summary {
		line := m.Raw
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimRight(line, "\r")
		_, err := fmt.Fprintf(s.w, "%s %s %s %s %d %q\n", time.Unix(0, m.Time).UTC().Format(time.RFC3339Nano), m.Kind, m.ID, m.ConnID, len(m.Raw), line)
		if err != nil {
			return fmt.Errorf("stdout sink: %w", err)
		}
	} else {
		s.buf = message.AppendPayload(s.buf[:0], m)
		s.buf = append(s.buf, gorfile.Separator...)
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("stdout sink: %w", err)
		}
	}
	s.written.Add(1)
	return nil
}

// Close flushes.
func (s *Sink) Close(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("stdout sink: %w", err)
	}
	return nil
}

// Stats reports written.
func (s *Sink) Stats() map[string]int64 { return map[string]int64{"written": s.written.Load()} }
