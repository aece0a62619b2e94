// Package sources defines where messages come from. Each kind of source lives
// in its own sub-package (capturesrc, pcapsrc, gorsrc, windowsrc) and
// implements Source.
package sources

import (
	"context"

	"github.com/replayctl/replayctl/message"
)

// Source produces messages in order.
//
// Lifecycle: construct (no side effects, no I/O), then Run once. Run calls
// emit for each message in order and returns nil at the natural end of its
// input (end of file, end of window), or ctx.Err() when ctx is done. An error
// returned by emit stops Run and is returned (wrapped). emit may block: that
// is the backpressure. Run releases everything it opened before it returns.
type Source interface {
	Run(ctx context.Context, emit func(*message.Message) error) error
	// Stats returns the source's counters (messages, drops, parse errors, …),
	// safe to call concurrently with Run. Names are kebab-case.
	Stats() map[string]int64
}

// Ordered is a Source whose order of messages depends on its settings (or
// on how the version of replayctl that reads it sorts them). Order names
// that order: a position counted in one order (a resume point) means the
// same message only in a source with the same Order.
type Ordered interface {
	Order() string
}
