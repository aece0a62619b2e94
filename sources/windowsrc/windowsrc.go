// Package windowsrc reads a window — exact offset ranges of a Kafka topic —
// and emits its messages merged across partitions by capture time.
package windowsrc

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sources"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a Source.
type Options struct {
	// OnlyRecording keeps only messages whose recording ID (record header)
	// equals it; the others are counted as filtered.
	OnlyRecording string
	// AllowPartial reads what is left when retention deleted the start of a
	// range, instead of failing.
	AllowPartial bool
	// Lookahead is how many messages a partition may buffer while the merge
	// waits for another partition (default 1000); beyond it the partition's
	// fetching pauses.
	Lookahead int
	// Reorder is how much capture time the source holds messages back to
	// release them in capture-time order across the partitions' arrival
	// orders (default DefaultReorder; negative: off, the partitions' heads
	// merged by capture time, each partition's order kept). ReorderMax and
	// ReorderMaxBytes (raw HTTP bytes) bound what is held (defaults
	// DefaultReorderMax, DefaultReorderMaxBytes). A request captured longer
	// before than they allow comes out late: counted as out-of-order (see
	// Stats) and warned of in the log.
	Reorder         time.Duration
	ReorderMax      int
	ReorderMaxBytes int64
	// FetchMaxBytes bounds the bytes one fetch asks for, all partitions
	// together (default 1 MiB); FetchMaxPartitionBytes bounds them per
	// partition (default 256 KiB). They are sizes on the wire: compressed
	// batches grow when decoded (zstd HTTP often 10–30x), and a fetch always
	// returns at least one whole batch. Smaller values bound the memory of a
	// replay whatever the window's size (with franz-go's defaults, 50 MiB and
	// 1 MiB, decoded fetches held hundreds of MiB); larger ones mean fewer
	// round trips to a distant broker. See kafkaio.RangeOptions.
	FetchMaxBytes, FetchMaxPartitionBytes int32
	// Logger receives bad records and partial-window notes (slog.Default when nil).
	Logger *slog.Logger
	// Select, when set, keeps only the records it selects, by partition and
	// key (a shard's part of a window split by connection key): the record
	// key, or when a record has none its connection ID, else its message
	// ID. The others are counted as other-shard.
	Select func(partition int32, key []byte) bool
}

// Default fetch sizes (see Options).
const (
	DefaultFetchMaxBytes          = kafkaio.DefaultRangeFetchMaxBytes
	DefaultFetchMaxPartitionBytes = kafkaio.DefaultRangeFetchMaxPartitionBytes
)

// Reorder defaults (see Options.Reorder): a second of capture time covers
// producers' batching and hosts' clock offsets; 50 000 messages are a
// second at 50 000 messages/s, and 64 MiB bounds them when their bodies
// are large.
const (
	DefaultReorder         = time.Second
	DefaultReorderMax      = 50_000
	DefaultReorderMaxBytes = 64 << 20
)

// maxLoggedBad is how many bad records are logged one by one.
const maxLoggedBad = 5

// Source reads one window.
type Source struct {
	clientOpts []kgo.Opt
	w          catalog.Window
	opts       Options

	mu    sync.Mutex
	stats map[string]int64
	notes []string
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Ordered = (*Source)(nil)
)

// Order names the order Run emits messages in (see sources.Ordered): it
// changes with the reorder settings.
func (s *Source) Order() string {
	if s.opts.Reorder < 0 {
		return "window v2: partition heads by capture time"
	}
	return fmt.Sprintf("window v2: capture time, reorder %v, %d messages, %d bytes", s.opts.Reorder, s.opts.ReorderMax, s.opts.ReorderMaxBytes)
}

// New returns a source reading w with a client built from clientOpts
// (kafkaio.Config.Opts). It does no I/O.
func New(clientOpts []kgo.Opt, w catalog.Window, opts Options) *Source {
	if opts.Lookahead <= 0 {
		opts.Lookahead = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Reorder == 0 {
		opts.Reorder = DefaultReorder
	}
	if opts.ReorderMax <= 0 {
		opts.ReorderMax = DefaultReorderMax
	}
	if opts.ReorderMaxBytes <= 0 {
		opts.ReorderMaxBytes = DefaultReorderMaxBytes
	}
	if opts.FetchMaxBytes <= 0 {
		opts.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if opts.FetchMaxPartitionBytes <= 0 {
		opts.FetchMaxPartitionBytes = DefaultFetchMaxPartitionBytes
	}
	return &Source{clientOpts: clientOpts, w: w, opts: opts,
		stats: map[string]int64{"messages": 0, "bad-records": 0, "filtered": 0, "bad-headers": 0, "reordered": 0, "out-of-order": 0}}
}

// Stats returns messages, bad-records, filtered, bad-headers,
// read-partition-N (records read from partition N), reordered (requests
// read after a request captured later), out-of-order (those of them still
// released after a request captured later: see Options.Reorder) with
// out-of-order-max-ms (the largest such inversion) and, with Select,
// other-shard (records left to other shards).
func (s *Source) Stats() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.stats))
	for k, v := range s.stats {
		out[k] = v
	}
	return out
}

// Notes returns what AllowPartial skipped (one line per clamped partition).
func (s *Source) Notes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.notes...)
}

func (s *Source) add(name string, n int64) {
	s.mu.Lock()
	s.stats[name] += n
	s.mu.Unlock()
}

// Run checks the window against the log, then reads exactly [start, end) of
// each partition, merges the partitions' heads by capture time and emits
// the messages in capture-time order through the reorder buffer (see
// Options.Reorder; ties in the order read). An empty window returns nil at once.
func (s *Source) Run(ctx context.Context, emit func(*message.Message) error) error {
	if s.w.Empty() {
		return nil
	}
	ranges, err := s.check(ctx)
	if err != nil {
		return err
	}
	rr, err := kafkaio.NewRangeReaderWith(s.clientOpts, s.w.Topic, ranges, s.rangeOpts())
	if err != nil {
		return fmt.Errorf("window %q: %w", s.w.Name, err)
	}
	defer rr.Close()

	parts := rr.Partitions()
	bufs := make(map[int32][]*message.Message, len(parts))
	ro := newReorder(max(int64(s.opts.Reorder), 0), s.opts.ReorderMax, s.opts.ReorderMaxBytes)
	now := time.Now()
	ro.untimed = func(t int64) bool { return message.BogusTime(time.Unix(0, t), now) }
	defer s.noteOrder(ro)
	release := func(all bool) error {
		for (all && ro.held() > 0) || ro.ready() {
			s.add("messages", 1)
			if err := emit(ro.pop()); err != nil {
				return fmt.Errorf("window %q: %w", s.w.Name, err)
			}
		}
		return nil
	}
	for {
		// Emit while every unfinished partition has a head.
		for {
			var best *message.Message
			var bestP int32
			ready := true
			for _, p := range parts {
				b := bufs[p]
				if len(b) == 0 {
					if !rr.PartitionDone(p) {
						ready = false
						break
					}
					continue
				}
				if best == nil || b[0].Time < best.Time {
					best, bestP = b[0], p
				}
			}
			if !ready {
				break
			}
			if best == nil {
				return release(true) // every partition finished and drained
			}
			b := bufs[bestP]
			b[0] = nil
			bufs[bestP] = b[1:]
			if len(bufs[bestP]) <= s.opts.Lookahead/2 {
				rr.Resume(bestP)
			}
			ro.push(best)
			if err := release(false); err != nil {
				return err
			}
		}
		recs, err := rr.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("window %q: %w", s.w.Name, err)
		}
		for _, r := range recs {
			s.add("read-partition-"+strconv.Itoa(int(r.Partition)), 1)
			if s.opts.Select != nil && len(r.Key) > 0 && !s.opts.Select(r.Partition, r.Key) {
				s.add("other-shard", 1)
				continue
			}
			m, badHdr, err := decodeRecord(r)
			if badHdr > 0 {
				s.add("bad-headers", int64(badHdr))
			}
			if err != nil {
				s.badRecord(r, err)
				continue
			}
			if s.opts.Select != nil && len(r.Key) == 0 && !s.opts.Select(r.Partition, []byte(cmp.Or(m.ConnID, m.ID))) {
				s.add("other-shard", 1)
				continue
			}
			if s.opts.OnlyRecording != "" && m.RecordingID != s.opts.OnlyRecording {
				s.add("filtered", 1)
				continue
			}
			bufs[r.Partition] = append(bufs[r.Partition], m)
			if len(bufs[r.Partition]) >= s.opts.Lookahead {
				rr.Pause(r.Partition)
			}
		}
	}
}

// noteOrder counts what the reorder buffer did (see Stats) and warns of
// the requests it could not put back in order.
func (s *Source) noteOrder(ro *reorder) {
	s.add("reordered", ro.reordered)
	if ro.late == 0 {
		return
	}
	worst := time.Duration(ro.worstLate)
	s.add("out-of-order", ro.late)
	s.add("out-of-order-max-ms", worst.Milliseconds())
	held := "reordering off"
	if ro.hold > 0 {
		held = fmt.Sprintf("the window holds %v, %d messages or %d MiB to reorder", time.Duration(ro.hold), ro.max, ro.maxBytes>>20)
	}
	s.opts.Logger.Warn("requests out of capture-time order: a paced replay sends them late",
		"window", s.w.Name, "out-of-order", ro.late, "by-up-to", worst, "reorder", held,
		"hint", "another host's late delivery or a spool drained after an outage; a larger reorder on the window holds more")
}

// readStall is how long a window's read waits for a record before it fails:
// its records exist, so brokers that send none that long do not answer (a
// replay used to wait for them for ever, its progress frozen, saying nothing).
const readStall = 30 * time.Second

// rangeOpts returns the fetch options of the range reader.
func (s *Source) rangeOpts() kafkaio.RangeOptions {
	return kafkaio.RangeOptions{FetchMaxBytes: s.opts.FetchMaxBytes, FetchMaxPartitionBytes: s.opts.FetchMaxPartitionBytes, StallTimeout: readStall}
}

func (s *Source) badRecord(r *kgo.Record, err error) {
	s.mu.Lock()
	s.stats["bad-records"]++
	n := s.stats["bad-records"]
	s.mu.Unlock()
	if n <= maxLoggedBad {
		s.opts.Logger.Warn("skipping Kafka record that is not a GoReplay message",
			"window", s.w.Name, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
	}
}

// check validates the window's ranges against the log start and end offsets.
func (s *Source) check(ctx context.Context) (map[int32]catalog.Range, error) {
	cl, err := kgo.NewClient(s.clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("window %q: kafka client: %w", s.w.Name, err)
	}
	defer cl.Close()
	ranges, notes, err := catalog.Check(ctx, kadm.NewClient(cl), s.w.Topic, s.w.Partitions, s.opts.AllowPartial)
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", s.w.Name, err)
	}
	for _, n := range notes {
		s.opts.Logger.Warn("window partly deleted by retention", "window", s.w.Name, "note", n)
	}
	s.mu.Lock()
	s.notes = notes
	s.mu.Unlock()
	return ranges, nil
}
