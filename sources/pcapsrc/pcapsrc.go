// Package pcapsrc reads HTTP messages from a pcap or pcapng file.
package pcapsrc

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sources"
)

// Source reads a capture file to its end.
//
// Messages come out sorted by capture time (the time of their first packet)
// within cfg.OrderWindow (default 1 s of capture time): a message completed
// more than that after it started (a slow upload, a long download) may come
// after messages that started later.
type Source struct {
	path string
	root string // when set, path is opened through an os.Root on it
	cfg  capture.Config
	asm  atomic.Pointer[capture.Assembler]
}

var _ sources.Source = (*Source)(nil)

// New returns a source reading path with cfg. It opens nothing yet.
func New(path string, cfg capture.Config) *Source {
	return &Source{path: path, cfg: cfg}
}

// NewWithin returns a source reading path (absolute, under root) through an
// os.Root on root, the directory a restricted scenario reads under: a
// symbolic link that leads outside root, made before or after the scenario
// was checked, is not followed.
func NewWithin(root, path string, cfg capture.Config) *Source {
	return &Source{path: path, root: root, cfg: cfg}
}

// Run reads the file to its end, calling emit for each message.
func (s *Source) Run(ctx context.Context, emit func(*message.Message) error) error {
	a := capture.NewAssembler(s.cfg, emit)
	s.asm.Store(a)
	if err := s.read(ctx, a); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pcap source: %w", err)
	}
	return nil
}

func (s *Source) read(ctx context.Context, a *capture.Assembler) error {
	if s.root == "" {
		return a.ReadFile(ctx, s.path)
	}
	f, err := sources.OpenIn(s.root, s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := a.ReadFrom(ctx, f); err != nil {
		return fmt.Errorf("reading %s: %w", s.path, err)
	}
	return nil
}

// Stats returns the capture counters (see capture.Stats).
func (s *Source) Stats() map[string]int64 {
	if a := s.asm.Load(); a != nil {
		return a.Stats()
	}
	return map[string]int64{}
}
