package kafkasink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/spool"
)

// Health follows whether the brokers can be reached, from the producer
// client's hooks: a failed connection marks them unreachable, a batch
// written marks them reachable again. Pass it to kgo.WithHooks when the
// client is built and to Options.Health.
type Health struct {
	since atomic.Int64 // Unix ns of the first failed connection since the last success; 0: reachable
	last  atomic.Value // string: the last connection error
}

// NewHealth returns a Health that starts reachable.
func NewHealth() *Health { return &Health{} }

var (
	_ kgo.HookBrokerConnect       = (*Health)(nil)
	_ kgo.HookProduceBatchWritten = (*Health)(nil)
)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h *Health) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		return
	}
	h.last.Store(err.Error())
	h.since.CompareAndSwap(0, time.Now().UnixNano())
}

// OnProduceBatchWritten implements kgo.HookProduceBatchWritten.
func (h *Health) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	if h.since.Load() != 0 {
		h.since.Store(0)
	}
}

// Unreachable reports since when the brokers cannot be reached (false when
// they can, as far as the client knows).
func (h *Health) Unreachable() (time.Time, bool) {
	if h == nil {
		return time.Time{}, false
	}
	ns := h.since.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// maxLoggedSpoolFull is how many records refused by a full spool are logged.
const maxLoggedSpoolFull = 3

// writeSpooled is Write with a spool: a record goes to the producer when it
// has room and nothing is spooled, else to the spool, never blocking. Once a
// record is spooled, later ones queue behind it until the drainer has
// handed the spool over to the producer, so order is kept.
func (s *Sink) writeSpooled(ctx context.Context, r *kgo.Record, size int64) error {
	weight := min(size, s.opts.MaxBufferedBytes)
	s.smu.Lock()
	if !s.spooling {
		if _, down := s.opts.Health.Unreachable(); !down && s.tryAcquire(weight) {
			s.smu.Unlock()
			s.produce(ctx, r, size)
			return nil
		}
		s.spooling = true
	}
	s.enc = appendRecord(s.enc[:0], r)
	err := s.opts.Spool.Append(s.enc)
	s.smu.Unlock()
	var lost *spool.LostError
	switch {
	case errors.As(err, &lost):
		// The disk is full: this record and those spooled but not on disk
		// yet are lost, as to a full spool.
		s.spooled.Add(1 - lost.Records)
		n := s.spoolFull.Add(lost.Records)
		s.opts.Logger.Warn("kafka sink: spool's disk full; messages lost", "topic", s.topic, "spool", s.opts.Spool.Dir(), "lost", lost.Records, "lost-so-far", n, "err", lost.Err)
		return nil
	case errors.Is(err, spool.ErrFull):
		n := s.spoolFull.Add(1)
		if n <= maxLoggedSpoolFull {
			s.opts.Logger.Warn("kafka sink: spool full; message lost", "topic", s.topic, "spool", s.opts.Spool.Dir(), "lost", n)
		}
		return nil
	case err != nil:
		return fmt.Errorf("kafka sink: %w", err)
	}
	s.spooled.Add(1)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// tryAcquire takes room for one record in flight without waiting.
func (s *Sink) tryAcquire(weight int64) bool {
	select {
	case s.sem <- struct{}{}:
	default:
		return false
	}
	if !s.bsem.tryAcquire(weight) {
		<-s.sem
		return false
	}
	return true
}

// drain hands spooled records over to the producer, in order, waiting for
// room in flight; it ends when stopDrain is closed and the spool is empty,
// or at once when drainCtx ends.
func (s *Sink) drain() {
	defer close(s.drainDone)
	for {
		s.waitOutage()
		b, err := s.opts.Spool.Next()
		if errors.Is(err, io.EOF) {
			s.smu.Lock()
			if s.opts.Spool.Len() == 0 {
				s.spooling = false
			}
			again := s.spooling
			s.smu.Unlock()
			if again {
				continue
			}
			select {
			case <-s.kick:
				continue
			case <-s.stopDrain:
				return
			}
		}
		var lost *spool.LostError
		if errors.As(err, &lost) {
			// Records spooled but not on disk yet could not be written
			// there: lost, as to a full spool.
			s.spooled.Add(-lost.Records)
			n := s.spoolFull.Add(lost.Records)
			s.opts.Logger.Warn("kafka sink: spool's disk full; messages lost", "topic", s.topic, "spool", s.opts.Spool.Dir(), "lost", lost.Records, "lost-so-far", n, "err", lost.Err)
			continue
		}
		if err != nil {
			// A damaged spool: what it holds is counted by Close.
			s.mu.Lock()
			s.drainErr = err
			s.mu.Unlock()
			s.opts.Logger.Error("kafka sink: spool unreadable", "spool", s.opts.Spool.Dir(), "err", err)
			return
		}
		r, err := decodeRecord(b)
		if err != nil {
			s.fail(fmt.Errorf("spooled record: %w", err))
			continue
		}
		r.Topic = s.topic
		size := recordSize(r)
		weight := min(size, s.opts.MaxBufferedBytes)
		if err := s.acquire(s.drainCtx, weight); err != nil {
			s.fail(fmt.Errorf("spooled record not sent before the delivery timeout %v (broker unreachable?): %w", s.opts.DeliveryTimeout, err))
			continue
		}
		s.produce(s.liveCtx, r, size)
	}
}

// outageInFlight is how many records the drainer keeps in flight while the
// brokers are unreachable: enough for the producer to keep trying them (a
// batch written is how the sink learns the brokers are back), few enough
// that an outage waits on disk, not in memory.
const outageInFlight = 1000

// waitOutage waits while the brokers are unreachable and outageInFlight
// records are in flight, or until the drain is cancelled. Without it the
// drainer would move the spool back into memory as fast as the in-flight
// room allows, the broker still down.
func (s *Sink) waitOutage() {
	var tick *time.Ticker
	for {
		if _, down := s.opts.Health.Unreachable(); !down || len(s.sem) < outageInFlight {
			break
		}
		if tick == nil {
			tick = time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-tick.C:
		case <-s.drainCtx.Done():
			return
		}
	}
}

// acquire takes room for one record in flight, waiting until ctx ends.
func (s *Sink) acquire(ctx context.Context, weight int64) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, err := s.bsem.acquire(ctx, weight); err != nil {
		<-s.sem
		return err
	}
	return nil
}

// fail counts one record as not delivered outside the producer.
func (s *Sink) fail(err error) {
	s.mu.Lock()
	n := s.countFailedLocked(err)
	s.mu.Unlock()
	s.logFailed(err, n)
}

// countFailedLocked counts one record as not delivered, keeping the first
// error, and returns the count so far. s.mu is held.
func (s *Sink) countFailedLocked(err error) int64 {
	n := s.failed.Add(1)
	if s.firstErr == nil {
		s.firstErr = err
	}
	return n
}

// logFailed logs the n-th record not delivered, up to maxLoggedErrors.
func (s *Sink) logFailed(err error, n int64) {
	if n <= maxLoggedErrors {
		s.opts.Logger.Warn("kafka record not delivered", "topic", s.topic, "err", err, "failed", n)
	}
}

// closeSpool waits, until ctx ends, for the drainer to hand every spooled
// record to the producer; then it stops the drainer and counts what is still
// spooled as not delivered.
func (s *Sink) closeSpool(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.opts.Spool.Len() > 0 && ctx.Err() == nil {
		s.mu.Lock()
		broken := s.drainErr != nil
		s.mu.Unlock()
		if broken {
			break
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	close(s.stopDrain)
	if ctx.Err() != nil {
		s.drainCancel()
	}
	<-s.drainDone
	s.drainCancel()
	if n := s.opts.Spool.Len(); n > 0 {
		s.mu.Lock()
		s.failed.Add(n)
		if s.firstErr == nil && s.drainErr != nil {
			s.firstErr = fmt.Errorf("%d spooled records not sent: the spool could not be read back from the first of them: %w", n, s.drainErr)
		} else if s.firstErr == nil {
			s.firstErr = fmt.Errorf("%d spooled records not sent before the delivery timeout %v (broker unreachable?)", n, s.opts.DeliveryTimeout)
		}
		s.mu.Unlock()
		s.opts.Logger.Warn("kafka sink: spooled records not sent", "topic", s.topic, "records", n)
		for {
			if _, err := s.opts.Spool.Next(); err != nil {
				break
			}
		}
	}
}

// appendRecord encodes what the spool keeps of r: timestamp, key, value and
// headers (the topic is the sink's).
func appendRecord(b []byte, r *kgo.Record) []byte {
	b = binary.AppendVarint(b, r.Timestamp.UnixNano())
	b = appendBytes(b, r.Key, r.Key == nil)
	b = appendBytes(b, r.Value, r.Value == nil)
	b = binary.AppendUvarint(b, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		b = appendBytes(b, []byte(h.Key), false)
		b = appendBytes(b, h.Value, h.Value == nil)
	}
	return b
}

// appendBytes writes len+1 then the bytes, or 0 for nil.
func appendBytes(b, v []byte, isNil bool) []byte {
	if isNil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

var errSpoolRecord = errors.New("malformed spooled record")

// decodeRecord is the inverse of appendRecord; the record owns its bytes.
// It copies b once: key, value and header values are slices of that copy,
// and the sink's own header keys are not allocated again; the record and
// up to 8 headers are one allocation.
func decodeRecord(b []byte) (*kgo.Record, error) {
	ts, n := binary.Varint(b)
	if n <= 0 {
		return nil, errSpoolRecord
	}
	b = append([]byte(nil), b[n:]...)
	next := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n)+1 {
			return nil, false
		}
		b = b[n:]
		if l == 0 {
			return nil, true
		}
		v := b[: l-1 : l-1]
		b = b[l-1:]
		return v, true
	}
	box := &recordBox{}
	r := &box.r
	r.Timestamp = time.Unix(0, ts)
	var ok bool
	if r.Key, ok = next(); !ok {
		return nil, errSpoolRecord
	}
	if r.Value, ok = next(); !ok {
		return nil, errSpoolRecord
	}
	nh, n := binary.Uvarint(b)
	if n <= 0 || nh > uint64(len(b)) {
		return nil, errSpoolRecord
	}
	b = b[n:]
	switch {
	case nh > uint64(len(box.h)):
		r.Headers = make([]kgo.RecordHeader, 0, nh)
	case nh > 0:
		r.Headers = box.h[:0:nh] // the sink's own records: no other allocation
	}
	for range nh {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 || k == nil {
			return nil, errSpoolRecord
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headerKey(k), Value: v})
	}
	if len(b) != 0 {
		return nil, errSpoolRecord
	}
	return r, nil
}

// knownHeaders are the header keys the sink writes.
var knownHeaders = []string{HeaderRecording, HeaderKind, HeaderHost, HeaderSrc, HeaderDst, HeaderConn, kafkaio.HeaderTruncated}

// headerKey returns k as a string, without allocating for a known key.
func headerKey(k []byte) string {
	for _, h := range knownHeaders {
		if string(k) == h {
			return h
		}
	}
	return string(k)
}
