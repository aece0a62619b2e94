// Package runbus carries the shards of a run over a Kafka topic (default
// replayctl.runs): their "armed" records, the barrier that gives them one
// start instant, aborts, and their results. It implements
// shard.Coordinator. Every record of a run has the run ID as its key, so a
// run's records share one partition and every shard reads them in the same
// order; the value is a shard.Record in JSON.
//
// The topic is created when missing (1 partition, retention 7 days, records
// up to 16 MiB: a result carries its histograms). A run ID is used once.
package runbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/shard"
)

// DefaultTopic is the run topic's name.
const DefaultTopic = "replayctl.runs"

// MaxRecordBytes bounds one record (a result with its histograms).
const MaxRecordBytes = 16 << 20

// Bus is a connection to the run topic.
type Bus struct {
	opts  []kgo.Opt
	topic string
	cl    *kgo.Client
	adm   *kadm.Client
	log   *slog.Logger
}

var _ shard.Coordinator = (*Bus)(nil)

// Open connects with the connection options opts (kafkaio.Config.Opts) and
// creates the topic when it is missing. log may be nil.
func Open(ctx context.Context, opts []kgo.Opt, topic string, log *slog.Logger) (*Bus, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	if log == nil {
		log = slog.Default()
	}
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("run topic %s: kafka client: %w", topic, err)
	}
	adm := kadm.NewClient(cl)
	if _, err := kafkaio.EnsureTopic(ctx, adm, topic, 1, -1, map[string]string{
		"retention.ms":      fmt.Sprint((7 * 24 * time.Hour).Milliseconds()),
		"max.message.bytes": fmt.Sprint(MaxRecordBytes),
	}); err != nil {
		cl.Close()
		return nil, fmt.Errorf("run topic: %w", err)
	}
	return &Bus{opts: opts, topic: topic, cl: cl, adm: adm, log: log}, nil
}

// Topic returns the run topic's name.
func (b *Bus) Topic() string { return b.topic }

// Close closes the connection.
func (b *Bus) Close() { b.cl.Close() }

// NewNonce returns a random nonce for a shard's records.
func NewNonce() string { return shard.NewNonce() }

func (b *Bus) produce(ctx context.Context, r shard.Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("run topic: encode %s record: %w", r.Kind, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafkaio.ProduceBounded(pctx, b.cl, &kgo.Record{Topic: b.topic, Key: []byte(r.RunID), Value: v}); err != nil {
		return fmt.Errorf("run topic %s: publish %s of shard %d: %w", b.topic, r.Kind, r.Shard, err)
	}
	return nil
}

// Publish publishes r (a result).
func (b *Bus) Publish(ctx context.Context, r shard.Record) error { return b.produce(ctx, r) }

// Abort publishes an abort record for self's shard.
func (b *Bus) Abort(ctx context.Context, self shard.Record) error {
	self.Kind, self.At = shard.KindAbort, time.Now()
	return b.produce(ctx, self)
}

// abortGrace bounds the wait for a shard's own abort record to come back.
const abortGrace = 15 * time.Second

// Arm implements shard.Coordinator: it publishes self, then reads the run's
// records from the topic (those written since timeout + 10 min ago) into a
// shard.Barrier until it decides. After timeout it publishes an abort naming
// the missing shards and reads on until that abort comes back (the log order
// decides, as for every other shard).
func (b *Bus) Arm(ctx context.Context, self shard.Record, timeout time.Duration) (shard.Start, error) {
	self.Kind = shard.KindArmed
	from, err := b.readFrom(ctx, time.Now().Add(-timeout-10*time.Minute))
	if err != nil {
		return shard.Start{}, err
	}
	cons, err := kgo.NewClient(append(slices.Clip(b.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{b.topic: from}),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(MaxRecordBytes*2),
		kgo.FetchMaxPartitionBytes(MaxRecordBytes),
	)...)
	if err != nil {
		return shard.Start{}, fmt.Errorf("run topic %s: consumer: %w", b.topic, err)
	}
	defer cons.Close()
	if err := b.produce(ctx, self); err != nil {
		return shard.Start{}, err
	}
	bar := shard.NewBarrier(self)
	deadline := time.Now().Add(timeout)
	aborted := false
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		fs := cons.PollFetches(pctx)
		cancel()
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("run topic %s partition %d: %w", b.topic, p, err)
			}
		})
		if ferr != nil {
			return shard.Start{}, ferr
		}
		ownAbort := false
		fs.EachRecord(func(r *kgo.Record) {
			if bar.Done() || !bytes.Equal(r.Key, []byte(self.RunID)) {
				return
			}
			var rec shard.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				b.log.Warn("run topic: skipping a record that is not a run record", "topic", b.topic, "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			bar.Observe(rec)
			if rec.Kind == shard.KindAbort && rec.Nonce == self.Nonce {
				ownAbort = true
			}
		})
		if bar.Done() {
			return bar.Result()
		}
		if ownAbort {
			return shard.Start{}, fmt.Errorf("%w: run %q", shard.ErrAborted, self.RunID)
		}
		if err := ctx.Err(); err != nil {
			if !aborted {
				a := self
				a.Reason = fmt.Sprintf("shard %d was interrupted while waiting for %s", self.Shard, shard.MissingText(bar.Missing()))
				actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = b.Abort(actx, a)
				acancel()
			}
			return shard.Start{}, err
		}
		if time.Now().Before(deadline) {
			continue
		}
		if aborted {
			return shard.Start{}, fmt.Errorf("%w: run %q: %s not armed after %s, and this shard's abort did not come back from the run topic within %s",
				shard.ErrAborted, self.RunID, shard.MissingText(bar.Missing()), timeout, abortGrace)
		}
		a := self
		a.Reason = fmt.Sprintf("%s not armed after %s (--arm-timeout)", shard.MissingText(bar.Missing()), timeout)
		if err := b.Abort(ctx, a); err != nil {
			return shard.Start{}, fmt.Errorf("%w: run %q: %s; and publishing the abort failed: %w", shard.ErrAborted, self.RunID, a.Reason, err)
		}
		aborted = true
		deadline = time.Now().Add(abortGrace)
	}
}

// readFrom returns, per partition, an offset at or before every record
// written since `since` and every record written from now on: the first
// offset at or after since, or, where the partition has none (kadm then
// answers its end offset at a later instant, after which another shard's
// record may already sit), the end offset listed before.
func (b *Bus) readFrom(ctx context.Context, since time.Time) (map[int32]kgo.Offset, error) {
	var ends, after kadm.ListedOffsets
	var err error
	// Another shard may have just created the topic: its leader can take a
	// moment to be known.
	for try := 0; ; try++ {
		ends, err = b.adm.ListEndOffsets(ctx, b.topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			after, err = b.adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), b.topic)
			if err == nil {
				err = after.Error()
			}
		}
		if err == nil || try == 20 || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("run topic %s: offsets: %w", b.topic, err)
	}
	from := map[int32]kgo.Offset{}
	for p, e := range ends[b.topic] {
		o := e.Offset
		if a, ok := after[b.topic][p]; ok && a.Offset >= 0 {
			o = min(o, a.Offset)
		}
		from[p] = kgo.NewOffset().At(o)
	}
	if len(from) == 0 {
		return nil, fmt.Errorf("run topic %s: no partition", b.topic)
	}
	return from, nil
}

// Records returns every record of run on the topic, in log order: a
// bounded read from the log start to the current end. bad counts records
// with the run's key that are not run records (skipped).
func (b *Bus) Records(ctx context.Context, runID string) (recs []shard.Record, bad int, err error) {
	starts, err := b.adm.ListStartOffsets(ctx, b.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("run topic %s: start offsets: %w", b.topic, err)
	}
	ends, err := b.adm.ListEndOffsets(ctx, b.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("run topic %s: end offsets: %w", b.topic, err)
	}
	ranges := map[int32]kafkaio.OffsetRange{}
	for p, o := range ends[b.topic] {
		ranges[p] = kafkaio.OffsetRange{Start: starts[b.topic][p].Offset, End: o.Offset}
	}
	rr, err := kafkaio.NewRangeReaderWith(b.opts, b.topic, ranges, kafkaio.RangeOptions{FetchMaxBytes: MaxRecordBytes * 2, FetchMaxPartitionBytes: MaxRecordBytes})
	if err != nil {
		return nil, 0, fmt.Errorf("run topic %s: %w", b.topic, err)
	}
	defer rr.Close()
	key := []byte(runID)
	for !rr.Done() {
		rs, err := rr.Poll(ctx)
		if err != nil {
			return nil, bad, fmt.Errorf("run topic %s: %w", b.topic, err)
		}
		for _, r := range rs {
			if !bytes.Equal(r.Key, key) {
				continue
			}
			var rec shard.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil || rec.RunID != runID {
				bad++
				continue
			}
			recs = append(recs, rec)
		}
	}
	return recs, bad, nil
}
