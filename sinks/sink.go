// Package sinks defines where messages go. Each kind of sink lives in its own
// sub-package (kafkasink, httpsink, gorsink, stdoutsink) and implements Sink.
package sinks

import (
	"context"

	"github.com/replayctl/replayctl/message"
)

// Sink consumes messages.
//
// Lifecycle: construct, then Write any number of times from one goroutine,
// then Close exactly once. Write may block for backpressure; it must not keep
// m after it returns unless it copied it. Close flushes everything buffered
// and reports what could not be delivered; after Close, Stats is final.
type Sink interface {
	Write(ctx context.Context, m *message.Message) error
	Close(ctx context.Context) error
	// Stats returns the sink's counters (written, failed, retried, …), safe to
	// call concurrently with Write. Names are kebab-case.
	Stats() map[string]int64
}
