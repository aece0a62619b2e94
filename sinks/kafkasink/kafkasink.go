// Package kafkasink writes messages to a Kafka topic: key = connection ID,
// value = GoReplay payload, timestamp = capture time, headers = recording ID,
// kind, capturing host, addresses and connection.
package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
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
)

// Options configures a Sink.
type Options struct {
	// RecordingID and Host are written as headers when the message has none.
	RecordingID, Host string
	// MaxBuffered bounds the records in flight; Write blocks beyond it
	// (default 10000).
	MaxBuffered int
	// DeliveryTimeout bounds how long a record may take to be acknowledged,
	// retries and metadata waits included (default 2 minutes). It is applied
	// per record through a context: kgo's RecordDeliveryTimeout measures from
	// the record timestamp, which here is the (past) capture time.
	DeliveryTimeout time.Duration
	// Logger receives the first delivery errors (slog.Default when nil).
	Logger *slog.Logger
}

// deadlineBucket is how long records share one deadline context.
const deadlineBucket = 100 * time.Millisecond

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
	wg    sync.WaitGroup

	written, failed, bytes atomic.Int64
	mu                     sync.Mutex
	firstErr               error
	perPartition           map[int32]int64

	// Deadline contexts shared by the records of one bucket (Write goroutine only).
	bucketCtx    context.Context
	bucketStart  time.Time
	bucketCancel []bucket
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
		opts.MaxBuffered = 10000
	}
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Sink{cl: cl, topic: topic, opts: opts, sem: make(chan struct{}, opts.MaxBuffered), perPartition: map[int32]int64{}}
}

// ProducerOpts returns producer options: idempotent writes, acks=all, a 5 ms
// linger, franz-go's batch limit (about 1 MB before compression, so a batch
// never decodes larger; smaller limits cost write throughput on a real
// broker, see BenchmarkSinkBatchMax), the given batch compression (none, gzip, snappy, lz4, zstd; ""
// is none) and request/retry timeouts derived from deliveryTimeout (default
// 2 minutes when 0; pass the same value as Options.DeliveryTimeout).
func ProducerOpts(compression string, deliveryTimeout time.Duration) ([]kgo.Opt, error) {
	var codec kgo.CompressionCodec
	switch strings.ToLower(compression) {
	case "", "none":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("kafka sink: unknown compression %q (want none, gzip, snappy, lz4 or zstd)", compression)
	}
	if deliveryTimeout < 0 {
		return nil, fmt.Errorf("kafka sink: negative delivery timeout %v", deliveryTimeout)
	}
	if deliveryTimeout == 0 {
		deliveryTimeout = 2 * time.Minute
	}
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchCompression(codec),
		kgo.ProduceRequestTimeout(max(min(deliveryTimeout, 30*time.Second), time.Second)),
		kgo.RetryTimeout(deliveryTimeout),
	}, nil
}

// Record builds the Kafka record for m (exported for tools and tests).
func Record(topic string, m *message.Message, recordingID, host string) *kgo.Record {
	if m.RecordingID != "" {
		recordingID = m.RecordingID
	}
	if m.Host != "" {
		host = m.Host
	}
	r := &kgo.Record{
		Topic:     topic,
		Value:     m.Payload(),
		Timestamp: time.Unix(0, m.Time),
	}
	if m.ConnID != "" {
		r.Key = []byte(m.ConnID)
	}
	add := func(k, v string) {
		if v != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	add(HeaderRecording, recordingID)
	add(HeaderKind, m.Kind.String())
	add(HeaderHost, host)
	if m.Src.IsValid() {
		add(HeaderSrc, m.Src.String())
	}
	if m.Dst.IsValid() {
		add(HeaderDst, m.Dst.String())
	}
	add(HeaderConn, m.ConnID)
	return r
}

// Write hands m to the producer. It blocks while MaxBuffered records are in
// flight. Delivery errors are counted and reported by Close.
func (s *Sink) Write(ctx context.Context, m *message.Message) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("kafka sink: %w", ctx.Err())
	}
	r := Record(s.topic, m, s.opts.RecordingID, s.opts.Host)
	size := int64(len(r.Key) + len(r.Value))
	r.Context = s.deadlineCtx(ctx)
	s.wg.Add(1)
	s.cl.Produce(r.Context, r, func(r *kgo.Record, err error) {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no acknowledgement within the delivery timeout %v (broker unreachable or topic missing?): %w", s.opts.DeliveryTimeout, err)
			}
			n := s.failed.Add(1)
			s.mu.Lock()
			if s.firstErr == nil {
				s.firstErr = err
			}
			s.mu.Unlock()
			if n <= maxLoggedErrors {
				s.opts.Logger.Warn("kafka record not delivered", "topic", s.topic, "err", err, "failed", n)
			}
			return
		}
		s.written.Add(1)
		s.bytes.Add(size)
		s.mu.Lock()
		s.perPartition[r.Partition]++
		s.mu.Unlock()
	})
	return nil
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
	s.bucketCtx, s.bucketStart = c, now
	s.bucketCancel = append(kept, bucket{deadline, cancel})
	return c
}

// Close flushes the producer and waits for every delivery result, then
// returns an error summarising failed records. It does not close the client.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka sink: flushing %s: %d records still in flight: %w", s.topic, len(s.sem), err)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("kafka sink: waiting for delivery results: %w", ctx.Err())
	}
	for _, b := range s.bucketCancel {
		b.cancel()
	}
	s.bucketCancel, s.bucketCtx = nil, nil
	if n := s.failed.Load(); n > 0 {
		s.mu.Lock()
		first := s.firstErr
		s.mu.Unlock()
		return fmt.Errorf("kafka sink: %d of %d records to %s: %w (first error: %w)", n, n+s.written.Load(), s.topic, ErrNotDelivered, first)
	}
	return nil
}

// Stats returns written, failed, bytes, in-flight and partition-N counts.
func (s *Sink) Stats() map[string]int64 {
	st := map[string]int64{
		"written":   s.written.Load(),
		"failed":    s.failed.Load(),
		"bytes":     s.bytes.Load(),
		"in-flight": int64(len(s.sem)),
	}
	s.mu.Lock()
	for p, n := range s.perPartition {
		st["partition-"+strconv.Itoa(int(p))] = n
	}
	s.mu.Unlock()
	return st
}
