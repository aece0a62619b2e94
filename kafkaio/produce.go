package kafkaio

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// abortGrace is how long ProduceBounded still waits for Kafka's answer once its
// context ended, before it aborts the buffered records.
const abortGrace = time.Second

// ProduceBounded writes r with cl and waits for its outcome or for ctx to
// end, whichever comes first: kgo's ProduceSync, bounded.
//
// franz-go checks ctx only until r is buffered. A buffered record that may
// have been sent (the client is idempotent: the broker may have written
// it) waits for the broker's answer however long that takes: for ever when
// the broker died after reading the request. So once ctx ended and Kafka
// did not answer within abortGrace either, the client's buffered records
// are aborted at once (UnsafeAbortBufferedRecords: without transactions
// the client then starts a new producer epoch, and goes on). Every record
// the client had buffered fails then (ErrAborting), not only r: a caller
// that gives up is one that Kafka does not answer, and the others wait on
// the same broker.
func ProduceBounded(ctx context.Context, cl *kgo.Client, r *kgo.Record) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	start := time.Now()
	done := make(chan error, 1)
	cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	waited := time.Since(start).Round(time.Millisecond)
	grace := time.NewTimer(abortGrace)
	defer grace.Stop()
	select {
	case err := <-done: // answered after all, or failed by the client
		return err
	case <-grace.C:
	}
	cl.UnsafeAbortBufferedRecords()
	grace.Reset(abortGrace)
	select {
	case err := <-done:
		if err == nil {
			return nil // acknowledged as it was aborted
		}
		return fmt.Errorf("not acknowledged by Kafka within %s (aborted): %w", waited, context.Cause(ctx))
	case <-grace.C:
		return fmt.Errorf("not acknowledged by Kafka within %s (and not failed %s after the abort): %w", waited, abortGrace, context.Cause(ctx))
	}
}
