// Package kafkasink writes messages to a Kafka topic: key = connection ID,
// value = GoReplay payload, timestamp = capture time, headers = recording ID,
// kind, capturing host, addresses and connection.
package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
	"github.com/replayctl/replayctl/spool"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record header names (defined in kafkaio).
const (
	HeaderRecording = kafkaio.HeaderRecording
	HeaderKind      = kafkaio.HeaderKind
	HeaderHost      = kafkaio.HeaderHost
	HeaderSrc       = kafkaio.HeaderSrc
	HeaderDst       = kafkaio.HeaderDst
	HeaderConn      = kafkaio.HeaderConn
	HeaderProto     = kafkaio.HeaderProto
)

// Options configures a Sink.
type Options struct {
	// RecordingID and Host are written as headers when the message has none.
	RecordingID, Host string
	// MaxBuffered bounds the records in flight; Write blocks beyond it
	// (default DefaultMaxBuffered, which ProducerOpts gives the producer
	// too: a larger value needs kgo.MaxBufferedRecords as large).
	MaxBuffered int
	// MaxBufferedBytes bounds the bytes in flight (record value, key and
	// headers); Write blocks beyond it (default 64 MiB). A record larger
	// than the bound is still written, alone.
	MaxBufferedBytes int64
	// DeliveryTimeout bounds how long a record may take to be acknowledged,
	// retries and metadata waits included (default 2 minutes). It is applied
	// per record through a context: kgo's RecordDeliveryTimeout measures from
	// the record timestamp, which here is the (past) capture time.
	DeliveryTimeout time.Duration
	// Logger receives the first delivery errors (slog.Default when nil).
	Logger *slog.Logger
	// Spool, when set, takes the records the producer has no room for (or
	// all of them while Health says the brokers are unreachable) instead of
	// blocking Write; a drainer hands them over in order when there is
	// room. A record that does not fit in the spool is lost and counted
	// (spool-full). With a spool, a record waits for the broker as long as
	// the sink is open: DeliveryTimeout bounds how long Close waits for the
	// spool to drain and every record to be acknowledged. The sink does not
	// close the spool.
	Spool *spool.Spool
	// Health, with a spool, says when the brokers are unreachable (nil:
	// only the producer's room decides).
	Health *Health
}

// DefaultMaxBuffered is the default of Options.MaxBuffered. With a spool,
// records beyond it wait on disk: an outage longer than a moment is spooled
// rather than held in memory. It is large enough for a healthy broker's
// slow first second (a topic just created, its leader elected) at a capture
// of 60 000 messages/s: with 10 000, a quarter of such a run went through
// the spool for nothing. DefaultMaxBufferedBytes bounds the memory.
const DefaultMaxBuffered = 100_000

// DefaultMaxBufferedBytes is the default of Options.MaxBufferedBytes.
const DefaultMaxBufferedBytes = 64 << 20

// deadlineBucket is how long records share one deadline context.
const deadlineBucket = 100 * time.Millisecond

// Close gives up in steps once the flush did not finish: kgo fails a record
// whose context ended only at its next retry, so the flush waits closeGrace
// past the last record's deadline; a safe abort then waits abortGrace for
// requests still in flight; the promises of what an unsafe abort failed
// have promiseGrace to run.
const (
	closeGrace   = 500 * time.Millisecond
	abortGrace   = time.Second
	promiseGrace = time.Second
)

// ErrNotDelivered is wrapped by Close when records could not be delivered.
var ErrNotDelivered = errors.New("not delivered")

// maxLoggedErrors is how many delivery errors are logged one by one.
const maxLoggedErrors = 5

// Sink produces messages to one topic. It does not close the client.
type Sink struct {
	cl    *kgo.Client
	topic string
	opts  Options
	sem   chan struct{}
	bsem  byteSem
	wg    sync.WaitGroup

	accepted, blocked atomic.Int64 // Writes that returned nil; that waited
	// timestampsOfWrite counts the records whose Kafka timestamp is the
	// time of writing, not their capture time (bogus, or too far ahead).
	timestampsOfWrite               atomic.Int64
	inFlightBytes, maxInFlightBytes atomic.Int64

	// The delivery results; written and failed change under mu, so Close
	// can settle the records still unresolved at once (final). tooLarge
	// counts the failed records the broker or client refused for their
	// size.
	written, failed, bytes, tooLarge atomic.Int64
	// writtenRequests and writtenResponses count the written records by
	// their kind header (a window tells what it holds, not what was
	// captured).
	writtenRequests, writtenResponses atomic.Int64
	mu                                sync.Mutex
	final                             bool
	firstErr                          error
	perPartition                      map[int32]int64
	endOffset                         map[int32]int64          // per partition, after the last record acknowledged
	promiseFn                         func(*kgo.Record, error) // s.promise

	// Deadline contexts shared by the records of one bucket (Write goroutine only).
	bucketCtx    context.Context
	bucketStart  time.Time
	bucketCancel []bucket
	lastDeadline time.Time

	// With a spool: spooling is true from the first record spooled until
	// the drainer finds the spool empty (smu guards it and the appends).
	smu           sync.Mutex
	spooling      bool
	enc           []byte
	spooled       atomic.Int64 // records ever spooled
	spoolFull     atomic.Int64 // records lost to a full spool
	kick          chan struct{}
	stopDrain     chan struct{}
	drainDone     chan struct{}
	drainErr      error // under mu
	drainCtx      context.Context
	drainCancel   context.CancelFunc
	liveCtx       context.Context // the records' context: ends at the close deadline
	liveCancel    context.CancelFunc
	closeDeadline atomic.Int64 // Unix ns; 0 until Close starts
	closing       atomic.Bool
}

type bucket struct {
	deadline time.Time
	cancel   context.CancelFunc
}

var _ sinks.Sink = (*Sink)(nil)

// New returns a sink writing to topic through cl. Build cl with the
// connection options plus ProducerOpts.
func New(cl *kgo.Client, topic string, opts Options) *Sink {
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = DefaultMaxBuffered
	}
	if opts.MaxBufferedBytes <= 0 {
		opts.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sink{
		cl: cl, topic: topic, opts: opts,
		sem:          make(chan struct{}, opts.MaxBuffered),
		bsem:         byteSem{max: opts.MaxBufferedBytes},
		perPartition: map[int32]int64{},
		endOffset:    map[int32]int64{},
	}
	s.promiseFn = s.promise
	openMu.Lock()
	open[s] = struct{}{}
	openMu.Unlock()
	if opts.Spool != nil {
		s.kick = make(chan struct{}, 1)
		s.stopDrain = make(chan struct{})
		s.drainDone = make(chan struct{})
		s.drainCtx, s.drainCancel = context.WithCancel(context.Background())
		s.liveCtx, s.liveCancel = context.WithCancel(context.Background())
		go s.drain()
	}
	return s
}

// ProducerLinger is how long the producer waits to fill a batch. A
// recording has no use for low latency: longer batches cost the client and
// the broker less per record (fewer requests, better compression).
const ProducerLinger = 50 * time.Millisecond

// ProducerOpts returns producer options: idempotent writes, acks=all, a
// ProducerLinger linger, room for DefaultMaxBuffered records, franz-go's
// batch limit (about 1 MB before compression, so a batch never decodes
// larger; smaller limits cost write throughput on a real broker, see
// BenchmarkSinkBatchMax), the batch compressor Compressor returns for
// compression, and request/retry timeouts derived from deliveryTimeout
// (default 2 minutes when 0; pass the same value as
// Options.DeliveryTimeout).
func ProducerOpts(compression string, deliveryTimeout time.Duration) ([]kgo.Opt, error) {
	comp, err := Compressor(compression)
	if err != nil {
		return nil, err
	}
	// Without a compressor franz-go would pick its default codec (snappy):
	// "none" is said explicitly.
	compress := kgo.ProducerBatchCompression(kgo.NoCompression())
	if comp != nil {
		compress = kgo.WithCompressor(comp)
	}
	if deliveryTimeout < 0 {
		return nil, fmt.Errorf("kafka sink: negative delivery timeout %v", deliveryTimeout)
	}
	if deliveryTimeout == 0 {
		deliveryTimeout = 2 * time.Minute
	}
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(ProducerLinger),
		kgo.MaxBufferedRecords(DefaultMaxBuffered),
		compress,
		kgo.ProduceRequestTimeout(max(min(deliveryTimeout, 30*time.Second), time.Second)),
		kgo.RetryTimeout(deliveryTimeout),
		kgo.MetadataMinAge(MetadataMinAge),
	}, nil
}

// MetadataMinAge is the shortest time between two metadata requests of the
// producer. A failed produce asks for metadata before it tries again, and
// franz-go's default (5 s) made a recording whose broker came back wait up
// to 5 s more, its records in the spool or in memory, before the next try
// found the broker.
const MetadataMinAge = 500 * time.Millisecond

// Compressor returns the batch compressor the sink's producer uses for a
// compression name (none, gzip, snappy, lz4, zstd, any case; "" is none),
// nil for none: franz-go's, except lz4 (see lz4Compressor).
func Compressor(compression string) (kgo.Compressor, error) {
	var codec kgo.CompressionCodec
	switch strings.ToLower(compression) {
	case "", "none":
		return nil, nil
	case "lz4":
		return newLZ4Compressor(), nil
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("kafka sink: unknown compression %q (want none, gzip, snappy, lz4 or zstd)", compression)
	}
	c, err := kgo.DefaultCompressor(codec)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %s compressor: %w", compression, err)
	}
	return c, nil
}

// Record builds the Kafka record for m (exported for tools and tests).
//
// It allocates three times whatever the message: the record with room for
// every header the sink writes, and one buffer holding the value (the
// GoReplay payload), the key and the header values, each a full slice of
// its own part (appending to one reallocates it rather than overwriting the
// next).
func Record(topic string, m *message.Message, recordingID, host string) *kgo.Record {
	if m.RecordingID != "" {
		recordingID = m.RecordingID
	}
	if m.Host != "" {
		host = m.Host
	}
	box := &recordBox{}
	r := &box.r
	r.Topic = topic
	r.Timestamp = time.Unix(0, m.Time)
	if now := time.Now(); message.BogusTime(r.Timestamp, now) || r.Timestamp.After(now.Add(MaxTimestampAhead)) {
		// A capture time that cannot be real (a .gor file's zero or
		// garbage), or too far ahead of this clock, stays in the payload,
		// which replay reads; the record gets the time of writing, as Kafka
		// refuses timestamps ahead of its clock (and the batch with them)
		// and deletes records its retention finds old.
		r.Timestamp = now
	}
	kind := m.Kind.String()
	// The payload's header line takes at most 4 integers of 20 digits and
	// separators, an address with its port at most 63 bytes with a zone
	// shorter than 16 (longer ones grow the buffer once).
	size := len(m.Raw) + len(m.ID) + 64 + 2*len(m.ConnID) + len(recordingID) + len(kind) + len(host) + 2*64 + 1 + len(h2text.Proto)
	b := make([]byte, 0, size)
	b = message.AppendPayload(b, m)
	r.Value = b[:len(b):len(b)]
	if m.ConnID != "" {
		n := len(b)
		b = append(b, m.ConnID...)
		r.Key = b[n:len(b):len(b)]
	}
	headers := box.h[:0]
	add := func(k string, v []byte) {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: v})
	}
	addString := func(k, v string) {
		if v != "" {
			n := len(b)
			b = append(b, v...)
			add(k, b[n:len(b):len(b)])
		}
	}
	addString(HeaderRecording, recordingID)
	addString(HeaderKind, kind)
	addString(HeaderHost, host)
	for _, x := range [...]struct {
		k string
		a netip.AddrPort
	}{{HeaderSrc, m.Src}, {HeaderDst, m.Dst}} {
		if x.a.IsValid() {
			n := len(b)
			b = x.a.AppendTo(b)
			add(x.k, b[n:len(b):len(b)])
		}
	}
	addString(HeaderConn, m.ConnID)
	if m.Truncated {
		addString(kafkaio.HeaderTruncated, "1")
	}
	if h2text.IsH2(m.Raw) {
		addString(HeaderProto, h2text.Proto)
	}
	if len(headers) > 0 {
		r.Headers = headers[:len(headers):len(headers)]
	}
	return r
}

// MaxTimestampAhead is how far ahead of this host's clock a capture time
// may be and still be a record's Kafka timestamp. Apache Kafka 4 refuses a
// timestamp more than log.message.timestamp.after.max.ms (1 h by default)
// ahead of the broker's clock, and the whole batch with it; a capturing
// host's clock may be ahead.
const MaxTimestampAhead = 10 * time.Minute

// recordKind returns the kind r's kind header names, 0 without one.
func recordKind(r *kgo.Record) message.Kind {
	for _, h := range r.Headers {
		if h.Key == HeaderKind {
			switch string(h.Value) {
			case "request":
				return message.Request
			case "response":
				return message.Response
			}
			return 0
		}
	}
	return 0
}

// recordBox is a record with room for the headers Record writes: one
// allocation for both.
type recordBox struct {
	r kgo.Record
	h [8]kgo.RecordHeader
}

// Write hands m to the producer. It blocks while MaxBuffered records or
// MaxBufferedBytes bytes are in flight, and returns ctx's error if ctx ends
// first (m is then not written and not counted). Delivery errors are counted
// and reported by Close.
//
// With a spool, Write does not block: see Options.Spool.
func (s *Sink) Write(ctx context.Context, m *message.Message) error {
	r := Record(s.topic, m, s.opts.RecordingID, s.opts.Host)
	if r.Timestamp.UnixNano() != m.Time {
		s.timestampsOfWrite.Add(1)
	}
	size := recordSize(r)
	if s.opts.Spool != nil {
		return s.writeSpooled(ctx, r, size)
	}
	waited := false
	select {
	case s.sem <- struct{}{}:
	default:
		waited = true
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.blocked.Add(1)
			return fmt.Errorf("kafka sink: %d records in flight: %w", len(s.sem), ctx.Err())
		}
	}
	weight := min(size, s.opts.MaxBufferedBytes)
	bw, err := s.bsem.acquire(ctx, weight)
	if waited || bw {
		s.blocked.Add(1)
	}
	if err != nil {
		<-s.sem
		return fmt.Errorf("kafka sink: %d bytes in flight: %w", s.inFlightBytes.Load(), err)
	}
	s.produce(s.deadlineCtx(ctx), r, size)
	return nil
}

// produce hands r, its room in flight taken, to the producer.
func (s *Sink) produce(ctx context.Context, r *kgo.Record, size int64) {
	held := s.inFlightBytes.Add(size)
	for {
		peak := s.maxInFlightBytes.Load()
		if held <= peak || s.maxInFlightBytes.CompareAndSwap(peak, held) {
			break
		}
	}
	if s.opts.Spool != nil {
		ctx = s.liveCtx
	}
	r.Context = ctx
	s.accepted.Add(1)
	s.wg.Add(1)
	s.cl.Produce(r.Context, r, s.promiseFn)
}

// promise is every record's delivery callback (one func value for all:
// a closure per record cost an allocation). The record's size and weight
// are computed again from its bytes, which the producer does not change.
func (s *Sink) promise(r *kgo.Record, err error) {
	defer s.wg.Done()
	size := recordSize(r)
	defer func() {
		s.inFlightBytes.Add(-size)
		s.bsem.release(min(size, s.opts.MaxBufferedBytes))
		<-s.sem
	}()
	s.settle(r, size, err)
}

// settle counts one delivery result, unless Close already counted the
// record as failed.
func (s *Sink) settle(r *kgo.Record, size int64, err error) {
	s.mu.Lock()
	if s.final {
		s.mu.Unlock()
		return
	}
	if err == nil {
		s.written.Add(1)
		switch recordKind(r) {
		case message.Request:
			s.writtenRequests.Add(1)
		case message.Response:
			s.writtenResponses.Add(1)
		}
		s.bytes.Add(size)
		s.perPartition[r.Partition]++
		if r.Offset+1 > s.endOffset[r.Partition] {
			s.endOffset[r.Partition] = r.Offset + 1
		}
		s.mu.Unlock()
		return
	}
	switch {
	case errors.Is(err, kerr.MessageTooLarge):
		s.tooLarge.Add(1)
		err = fmt.Errorf("record of %d bytes refused for its size (topic max.message.bytes): %w", size, err)
	case s.opts.Spool != nil && errors.Is(err, context.Canceled):
		err = fmt.Errorf("no acknowledgement within the delivery timeout %v after the sink closed (broker unreachable?): %w", s.opts.DeliveryTimeout, err)
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("no acknowledgement within the delivery timeout %v (broker unreachable or topic missing?): %w", s.opts.DeliveryTimeout, err)
	case errors.Is(err, kgo.ErrAborting):
		err = fmt.Errorf("no acknowledgement by the time the sink closed (delivery timeout %v or close deadline reached; broker unreachable?): %w", s.opts.DeliveryTimeout, err)
	}
	n := s.countFailedLocked(err)
	s.mu.Unlock()
	s.logFailed(err, n)
}

// recordSize is what a record holds in memory: value, key and headers.
func recordSize(r *kgo.Record) int64 {
	n := len(r.Value) + len(r.Key)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// deadlineCtx returns a context that ends DeliveryTimeout after now (within
// deadlineBucket). It does not end with ctx: a cancelled pipeline still
// flushes in Close.
func (s *Sink) deadlineCtx(ctx context.Context) context.Context {
	now := time.Now()
	if s.bucketCtx != nil && now.Sub(s.bucketStart) < deadlineBucket {
		return s.bucketCtx
	}
	// Release the buckets whose deadline passed: their records are done.
	kept := s.bucketCancel[:0]
	for _, b := range s.bucketCancel {
		if now.After(b.deadline) {
			b.cancel()
		} else {
			kept = append(kept, b)
		}
	}
	deadline := now.Add(s.opts.DeliveryTimeout)
	c, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	s.bucketCtx, s.bucketStart, s.lastDeadline = c, now, deadline
	s.bucketCancel = append(kept, bucket{deadline, cancel})
	return c
}

// Close flushes the producer and returns only when every record that Write
// accepted (returned nil for) is settled: acknowledged (written) or counted
// as failed. After Close, Stats()["written"] + Stats()["failed"] equals the
// number of accepted Writes, and no delivery result comes later.
//
// The flush waits until ctx ends or until the last record's delivery
// deadline (DeliveryTimeout after its Write) has passed, whichever is first;
// then what is still buffered is aborted and counted as failed (a failed
// record may still have reached the broker if its acknowledgement was lost).
// Aborting takes at most abortGrace+promiseGrace (2 s) beyond that, so
// Close returns within DeliveryTimeout + 2.5 s of the last Write even when
// the broker is gone or stalled, and at most 2 s after ctx ends. Close
// returns an error wrapping ErrNotDelivered when records failed. It does not
// close the client; after an abort, close it rather than produce to the
// same topic again.
//
// With a spool, the delivery timeout counts from the call to Close: Close
// first waits for the spool to drain, then for the acknowledgements, both
// within DeliveryTimeout; what is still spooled or unacknowledged then is
// counted as failed.
func (s *Sink) Close(ctx context.Context) error {
	defer s.cancelBuckets()
	defer func() {
		openMu.Lock()
		delete(open, s)
		openMu.Unlock()
	}()
	if s.opts.Spool != nil {
		deadline := time.Now().Add(s.opts.DeliveryTimeout)
		s.closeDeadline.Store(deadline.UnixNano())
		dctx, cancel := context.WithDeadline(ctx, deadline)
		s.closeSpool(dctx)
		cancel()
		s.lastDeadline = deadline
		stop := time.AfterFunc(time.Until(deadline), s.liveCancel)
		defer stop.Stop()
		defer s.liveCancel()
	}
	if s.accepted.Load() > 0 {
		fctx, cancel := context.WithDeadline(ctx, s.lastDeadline.Add(closeGrace))
		flushErr := s.cl.Flush(fctx)
		cancel()
		if flushErr != nil {
			s.abort(ctx, flushErr)
		}
	}
	if !s.waitPromises(promiseGrace) {
		s.settleRest()
	}
	if n := s.failed.Load(); n > 0 {
		s.mu.Lock()
		first := s.firstErr
		s.mu.Unlock()
		total := n + s.written.Load()
		return fmt.Errorf("kafka sink: %d of %d records to %s: %w (first error: %w)", n, total, s.topic, ErrNotDelivered, first)
	}
	return nil
}

// abort fails the records still buffered after the flush ended with
// flushErr: safely (after the requests in flight are answered) when that
// takes less than abortGrace, else at once.
func (s *Sink) abort(ctx context.Context, flushErr error) {
	pending := s.pending()
	s.opts.Logger.Warn("kafka sink: flush did not finish; aborting the records still buffered",
		"topic", s.topic, "pending", pending, "err", flushErr)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortGrace)
	defer cancel()
	if err := s.cl.AbortBufferedRecords(actx); err != nil {
		s.cl.UnsafeAbortBufferedRecords()
	}
}

// waitPromises waits up to d for every delivery callback to have run.
func (s *Sink) waitPromises(d time.Duration) bool {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// settleRest counts the records whose delivery callback has not run as
// failed; their callbacks, if they ever run, count nothing.
func (s *Sink) settleRest() {
	s.mu.Lock()
	s.final = true
	n := s.accepted.Load() - s.written.Load() - s.failed.Load()
	if n > 0 {
		s.failed.Add(n)
		if s.firstErr == nil {
			s.firstErr = fmt.Errorf("the Kafka client reported no delivery result for %d records %v after aborting them", n, promiseGrace)
		}
	}
	s.mu.Unlock()
	if n > 0 {
		s.opts.Logger.Warn("kafka records without a delivery result counted as failed", "topic", s.topic, "records", n)
	}
}

// The sinks not closed yet, for Unacknowledged.
var (
	openMu sync.Mutex
	open   = map[*Sink]struct{}{}
)

// Unacked is what one open sink has handed to the producer without a
// delivery result yet.
type Unacked struct {
	Topic          string
	Records, Bytes int64
}

// Unacknowledged lists, for each sink of this process not closed yet and
// with records in flight, how many records (and bytes) the producer holds
// without an acknowledgement: what a process quitting at once leaves
// unsure (they may be in the topic or lost). Records in a sink's spool are
// not among them: the spool tells its own (spool.Opened).
func Unacknowledged() []Unacked {
	openMu.Lock()
	defer openMu.Unlock()
	var out []Unacked
	for s := range open {
		if n := s.pending(); n > 0 {
			out = append(out, Unacked{Topic: s.topic, Records: n, Bytes: s.inFlightBytes.Load()})
		}
	}
	slices.SortFunc(out, func(a, b Unacked) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}

// pending is the number of accepted records not settled yet.
func (s *Sink) pending() int64 {
	return max(s.accepted.Load()-s.written.Load()-s.failed.Load(), 0)
}

func (s *Sink) cancelBuckets() {
	for _, b := range s.bucketCancel {
		b.cancel()
	}
	s.bucketCancel, s.bucketCtx = nil, nil
}

// AckedEnd returns, per partition, the offset after the last record the
// brokers acknowledged: with the offsets at the start, where a recording
// lies when the brokers cannot be asked any more.
func (s *Sink) AckedEnd() map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.endOffset)
}

// Stats returns written (and of those written-requests and
// written-responses), failed (too-large included), too-large, bytes
// (written), in-flight (records not settled), in-flight-bytes,
// max-in-flight-bytes, blocked (Writes that waited for room),
// timestamps-of-write (records whose Kafka timestamp is the time of
// writing, their capture time bogus or too far ahead; only when some) and
// partition-N counts; with a spool also spooled (records ever spooled),
// spool-full (records lost to a full spool), spool-records and spool-bytes
// (in the spool now) and spool-peak-bytes (the most its files took on disk).
func (s *Sink) Stats() map[string]int64 {
	st := map[string]int64{
		"written":             s.written.Load(),
		"written-requests":    s.writtenRequests.Load(),
		"written-responses":   s.writtenResponses.Load(),
		"failed":              s.failed.Load(),
		"too-large":           s.tooLarge.Load(),
		"bytes":               s.bytes.Load(),
		"in-flight":           s.pending(),
		"in-flight-bytes":     s.inFlightBytes.Load(),
		"max-in-flight-bytes": s.maxInFlightBytes.Load(),
		"blocked":             s.blocked.Load(),
	}
	if n := s.timestampsOfWrite.Load(); n > 0 {
		st["timestamps-of-write"] = n
	}
	if sp := s.opts.Spool; sp != nil {
		ss := sp.Stats()
		st["spooled"] = s.spooled.Load()
		st["spool-full"] = s.spoolFull.Load()
		st["spool-records"] = ss["records"]
		st["spool-bytes"] = ss["bytes"]
		st["spool-peak-bytes"] = ss["peak-disk-bytes"]
	}
	s.mu.Lock()
	for p, n := range s.perPartition {
		st["partition-"+strconv.Itoa(int(p))] = n
	}
	s.mu.Unlock()
	return st
}

// CloseDeadline returns when Close gives up waiting (zero before Close).
func (s *Sink) CloseDeadline() time.Time {
	if ns := s.closeDeadline.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
