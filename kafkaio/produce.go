package kafkaio

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceBounded writes r with cl and waits for its outcome or for ctx to
// end, whichever comes first: kgo's ProduceSync, bounded.
//
// franz-go checks ctx only until r is buffered. A buffered record that may
// have been sent (the client is idempotent: the broker may have written it)
// waits for the broker's answer however long that takes: for ever when the
// broker died after reading the request. ProduceBounded returns when ctx
// ends all the same, saying so; the record stays with the client, which
// still delivers it if the broker comes back, or fails it when the client
// closes. Other records of a shared client are left alone.
func ProduceBounded(ctx context.Context, cl *kgo.Client, r *kgo.Record) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	start := time.Now()
	done := make(chan error, 1) // the promise never blocks, whenever it runs
	cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done: // settled as ctx ended
		return err
	default:
	}
	return fmt.Errorf("not acknowledged by Kafka within %s (the client still delivers it if the broker comes back): %w",
		time.Since(start).Round(time.Millisecond), context.Cause(ctx))
}
