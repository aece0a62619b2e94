package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// OffsetRange is the half-open offset range [Start, End) of one partition.
type OffsetRange struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Len returns the number of offsets in the range (0 when empty).
func (r OffsetRange) Len() int64 {
	if r.End <= r.Start {
		return 0
	}
	return r.End - r.Start
}

// RangeReader reads exactly [Start, End) of some partitions of one topic and
// stops. It stops each partition by offset, never by count, so partitions with
// gaps (compaction, transaction markers, aborted records) and empty ranges
// terminate. It reads committed records only; control records are not returned.
// A RangeReader is used from one goroutine.
type RangeReader struct {
	cl     *kgo.Client
	topic  string
	ranges map[int32]OffsetRange
	done   map[int32]bool
	paused map[int32]bool
	left   int
	stall  time.Duration
	conn   *connErrors
}

// connErrors keeps the last failed connection to a broker (a kgo hook).
type connErrors struct {
	mu   sync.Mutex
	last error
}

var _ kgo.HookBrokerConnect = (*connErrors)(nil)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (c *connErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	c.mu.Lock()
	c.last = err // nil again once a connection succeeds
	c.mu.Unlock()
}

func (c *connErrors) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// RangeOptions tunes how a RangeReader fetches; zero fields take the defaults.
type RangeOptions struct {
	// FetchMaxBytes bounds the bytes one fetch asks for, all partitions
	// together (default DefaultRangeFetchMaxBytes); FetchMaxPartitionBytes
	// bounds them per partition (default DefaultRangeFetchMaxPartitionBytes).
	// They are sizes on the wire: compressed batches grow when decoded (zstd
	// HTTP often 10–30x) and a fetch always returns at least one whole batch,
	// so small values bound a reader's memory (franz-go's own defaults, 50 MiB
	// and 1 MiB, held hundreds of MiB once decoded); larger ones mean fewer
	// round trips to a distant broker.
	FetchMaxBytes, FetchMaxPartitionBytes int32
	// FetchMaxWait bounds how long the broker holds a fetch that finds no
	// data (default DefaultRangeFetchMaxWait, at least 10 ms). A range reader asks only for
	// offsets that exist, except in one race it cannot avoid with kgo's
	// consumer: kgo sends the next fetch as soon as the previous one is
	// polled, before the reader has seen that a partition's range ended at
	// the high watermark, so that fetch asks for the partition's end. With
	// the 5 s Kafka default the broker then held it, and every other
	// partition on that broker with it (one fetch in flight per broker).
	FetchMaxWait time.Duration
	// StallTimeout, when positive, is how long Poll waits for a record
	// before it returns an error saying the brokers sent nothing (with the
	// last connection error, if any): a range holds records that exist, so
	// a fetch that brings nothing that long means brokers that do not
	// answer. Zero waits as long as Poll's context.
	StallTimeout time.Duration
}

// Default RangeOptions.
const (
	DefaultRangeFetchMaxBytes          = 1 << 20
	DefaultRangeFetchMaxPartitionBytes = 256 << 10
	DefaultRangeFetchMaxWait           = 10 * time.Millisecond
)

func (o RangeOptions) withDefaults() RangeOptions {
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = DefaultRangeFetchMaxBytes
	}
	if o.FetchMaxPartitionBytes <= 0 {
		o.FetchMaxPartitionBytes = DefaultRangeFetchMaxPartitionBytes
	}
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = DefaultRangeFetchMaxWait
	}
	o.FetchMaxWait = max(o.FetchMaxWait, 10*time.Millisecond) // kgo's minimum
	return o
}

// NewRangeReader creates a consumer for ranges of topic with the default
// RangeOptions. opts are the connection options (Config.Opts); consumer
// options are added here. Empty ranges are done from the start.
func NewRangeReader(opts []kgo.Opt, topic string, ranges map[int32]OffsetRange) (*RangeReader, error) {
	return NewRangeReaderWith(opts, topic, ranges, RangeOptions{})
}

// NewRangeReaderWith is NewRangeReader with fetch options; they override any
// fetch options in opts.
func NewRangeReaderWith(opts []kgo.Opt, topic string, ranges map[int32]OffsetRange, ro RangeOptions) (*RangeReader, error) {
	ro = ro.withDefaults()
	r := &RangeReader{topic: topic, ranges: ranges, done: map[int32]bool{}, paused: map[int32]bool{}, stall: ro.StallTimeout, conn: &connErrors{}}
	offsets := map[int32]kgo.Offset{}
	for p, rg := range ranges {
		if rg.Start < 0 {
			return nil, fmt.Errorf("range reader: %s partition %d: negative start offset %d", topic, p, rg.Start)
		}
		if rg.Len() == 0 {
			r.done[p] = true
			continue
		}
		offsets[p] = kgo.NewOffset().At(rg.Start)
		r.left++
	}
	if r.left == 0 {
		return r, nil
	}
	all := append(slices.Clip(opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(ro.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(ro.FetchMaxPartitionBytes),
		kgo.FetchMaxWait(ro.FetchMaxWait),
		kgo.WithHooks(r.conn),
	)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("range reader: kafka client: %w", err)
	}
	r.cl = cl
	return r, nil
}

// Done reports whether every partition reached the end of its range.
func (r *RangeReader) Done() bool { return r.left == 0 }

// PartitionDone reports whether partition p reached the end of its range.
func (r *RangeReader) PartitionDone(p int32) bool { return r.done[p] }

// Partitions returns the partitions of the ranges, sorted.
func (r *RangeReader) Partitions() []int32 {
	ps := make([]int32, 0, len(r.ranges))
	for p := range r.ranges {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// Pause stops fetching partition p (records already polled are kept by the
// caller); Resume starts it again. Both are no-ops on finished partitions.
func (r *RangeReader) Pause(p int32) {
	if r.cl == nil || r.done[p] || r.paused[p] {
		return
	}
	r.paused[p] = true
	r.cl.PauseFetchPartitions(map[string][]int32{r.topic: {p}})
}

// Resume undoes Pause.
func (r *RangeReader) Resume(p int32) {
	if r.cl == nil || !r.paused[p] {
		return
	}
	delete(r.paused, p)
	r.cl.ResumeFetchPartitions(map[string][]int32{r.topic: {p}})
}

// Poll waits for the next records inside the ranges and returns them in
// offset order per partition. It may return no records when a partition
// just finished (check PartitionDone); it returns (nil, nil) once Done. Fetch errors
// (for example offsets deleted by retention) are returned.
func (r *RangeReader) Poll(ctx context.Context) ([]*kgo.Record, error) {
	pctx := ctx
	if r.stall > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, r.stall)
		defer cancel()
	}
	for !r.Done() {
		fs := r.cl.PollFetches(pctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if pctx.Err() != nil {
			why := ""
			if err := r.conn.lastErr(); err != nil {
				why = ": " + err.Error()
			}
			return nil, fmt.Errorf("range reader: reading %s: no records from the brokers for %v (unreachable?)%s", r.topic, r.stall, why)
		}
		if fs.IsClientClosed() {
			return nil, errors.New("range reader: client closed")
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if errors.Is(err, kerr.OffsetOutOfRange) {
				err = fmt.Errorf("%w (records deleted by retention, or the window is wrong)", err)
			}
			ferr = fmt.Errorf("reading %s partition %d: %w", t, p, err)
		})
		if ferr != nil {
			return nil, ferr
		}
		var out []*kgo.Record
		left := r.left
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.Topic != r.topic {
				return
			}
			rg, ok := r.ranges[fp.Partition]
			if !ok || r.done[fp.Partition] {
				return
			}
			for _, rec := range fp.Records {
				if rec.Offset >= rg.End {
					r.finish(fp.Partition)
					return
				}
				if rec.Offset >= rg.Start && !rec.Attrs.IsControl() {
					out = append(out, rec)
				}
				if rec.Offset+1 >= rg.End {
					r.finish(fp.Partition)
					return
				}
			}
		})
		if len(out) > 0 || r.left != left {
			// Records, or a partition finished (the caller may be waiting on it).
			return out, nil
		}
	}
	return nil, nil
}

func (r *RangeReader) finish(p int32) {
	if r.done[p] {
		return
	}
	r.done[p] = true
	r.left--
	delete(r.paused, p)
	r.cl.PauseFetchPartitions(map[string][]int32{r.topic: {p}})
}

// Close releases the consumer.
func (r *RangeReader) Close() {
	if r.cl != nil {
		r.cl.Close()
	}
}
