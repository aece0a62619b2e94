// Package capturesrc captures HTTP messages live from a network interface
// (AF_PACKET, Linux).
package capturesrc

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sources"
)

// Source captures on one interface until its context is done.
//
// A message is emitted once complete; messages are held up to
// cfg.OrderWindow (default 1 s) to come out sorted by capture time, so they
// arrive about that late. When ctx is done, messages in progress are counted
// as incomplete and held messages are emitted before Run returns ctx.Err().
type Source struct {
	iface string
	cfg   capture.LiveConfig
	asm   atomic.Pointer[capture.Assembler]
	lc    capture.LiveCounters
}

var _ sources.Source = (*Source)(nil)

// New returns a source capturing on iface ("any" for all) with cfg.
func New(iface string, cfg capture.LiveConfig) *Source {
	return &Source{iface: iface, cfg: cfg}
}

// Run captures until ctx is done or emit fails.
func (s *Source) Run(ctx context.Context, emit func(*message.Message) error) error {
	a := capture.NewAssembler(s.cfg.Config, emit)
	s.asm.Store(a)
	if err := a.LiveCounted(ctx, s.iface, s.cfg, &s.lc); err != nil {
		return fmt.Errorf("capture source: %w", err)
	}
	return ctx.Err()
}

// Stats returns the capture counters (see capture.Stats), kernel-drops
// and queue-overflow (see capture.LiveCounters) included.
func (s *Source) Stats() map[string]int64 {
	st := capture.Stats{}
	if a := s.asm.Load(); a != nil {
		st = a.Stats()
	}
	s.lc.AddTo(st)
	return st
}
