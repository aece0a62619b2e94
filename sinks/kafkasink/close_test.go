package kafkasink_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stalledBroker accepts connections on loopback and never answers. stop
// closes the listener and every connection.
func stalledBroker(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			<-done
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func producer(t *testing.T, addr string, timeout time.Duration) *kgo.Client {
	t.Helper()
	popts, err := kafkasink.ProducerOpts("none", timeout)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// waitGoroutines waits (up to 5 s) for the goroutine count to come back to
// about before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	const slack = 3
	n := runtime.NumGoroutine()
	for end := time.Now().Add(5 * time.Second); n > before+slack && time.Now().Before(end); n = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	if n > before+slack {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// checkSettled asserts the Close invariant: every accepted record is
// written or failed, nothing is in flight.
func checkSettled(t *testing.T, s *kafkasink.Sink, accepted int64) map[string]int64 {
	t.Helper()
	st := s.Stats()
	if st["written"]+st["failed"] != accepted || st["in-flight"] != 0 || st["in-flight-bytes"] != 0 {
		t.Fatalf("after Close, %d records accepted: stats = %v", accepted, st)
	}
	return st
}

// TestCloseSettlesEveryRecord loses the broker in several ways and checks
// that Close returns, soon after the delivery timeout, with every record
// written or counted as failed, and leaves no goroutine behind.
func TestCloseSettlesEveryRecord(t *testing.T) {
	const timeout = time.Second
	tests := []struct {
		name string
		// start returns the broker address and a function that takes the
		// broker away (nil: it is never there).
		start      func(t *testing.T) (string, func())
		wantLanded bool // the first half reaches the broker
	}{
		{"broker closed mid-stream", func(t *testing.T) (string, func()) {
			e, err := kafkaio.StartEmbedded(ctxT(t), kafkaio.EmbeddedOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			return e.Addrs()[0], func() { _ = e.Close() }
		}, true},
		{"broker stalls", func(t *testing.T) (string, func()) {
			addr, stop := stalledBroker(t)
			return addr, stop
		}, false},
		{"nothing listens", func(t *testing.T) (string, func()) { return closedPort(t), nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			addr, takeAway := tt.start(t)
			topic := "settle"
			if tt.wantLanded {
				topic = kafkatest.CreateTopic(t, kafkatest.Target{Name: "embedded", Addrs: []string{addr}}, 2)
			}
			cl := producer(t, addr, timeout)
			s := kafkasink.New(cl, topic, kafkasink.Options{DeliveryTimeout: timeout, Logger: quiet})
			const half = 20
			for i := range half {
				if err := s.Write(ctxT(t), msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.wantLanded {
				for end := time.Now().Add(10 * time.Second); s.Stats()["written"] < half && time.Now().Before(end); {
					time.Sleep(5 * time.Millisecond)
				}
				if st := s.Stats(); st["written"] != half {
					t.Fatalf("first half not acknowledged: %v", st)
				}
			}
			if takeAway != nil {
				takeAway()
			}
			for i := range half {
				if err := s.Write(ctxT(t), msg(half+i)); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			err := s.Close(ctxT(t))
			took := time.Since(start)
			if !errors.Is(err, kafkasink.ErrNotDelivered) {
				t.Fatalf("Close = %v, want ErrNotDelivered", err)
			}
			st := checkSettled(t, s, 2*half)
			if tt.wantLanded && st["written"] < half {
				t.Fatalf("stats = %v", st)
			}
			if !strings.Contains(err.Error(), " of 40 records") {
				t.Fatalf("Close = %v", err)
			}
			// A bound, not a speed claim: Close must not outlive the
			// delivery timeout by more than its fixed grace steps.
			if limit := timeout + 5*time.Second; took > limit {
				t.Fatalf("Close took %v, more than %v", took, limit)
			}
			t.Logf("Close after %v: %v (stats %v)", took.Round(time.Millisecond), err, st)
			cl.Close()
			if takeAway != nil {
				takeAway()
			}
			waitGoroutines(t, before)
		})
	}
}

// sized returns a request whose record is the same size for every i.
func sized(i, body int) *message.Message {
	m := msg(i % 10)
	m.Raw = append([]byte("POST /upload HTTP/1.1\r\nHost: shop\r\n\r\n"), strings.Repeat("x", body)...)
	return m
}

func recordBytes(m *message.Message) int64 {
	r := kafkasink.Record("t", m, "", "")
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// TestWriteBlocksOnBytes stalls the broker and checks that Write stops
// taking records once MaxBufferedBytes is held, then gives up with its
// context's error.
func TestWriteBlocksOnBytes(t *testing.T) {
	size := recordBytes(sized(0, 1000))
	tests := []struct {
		name     string
		bound    int64
		accepted int64 // before Write blocks
	}{
		{"fills up to the bound", 4*size + size/2, 4},
		{"exactly the bound", 3 * size, 3},
		{"a record above the bound goes alone", size / 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := stalledBroker(t)
			cl := producer(t, addr, 10*time.Second)
			defer cl.Close()
			s := kafkasink.New(cl, "stalled", kafkasink.Options{MaxBufferedBytes: tt.bound, DeliveryTimeout: 10 * time.Second, Logger: quiet})
			for i := range tt.accepted {
				if err := s.Write(ctxT(t), sized(int(i), 1000)); err != nil {
					t.Fatalf("Write %d: %v", i, err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			stop := time.AfterFunc(100*time.Millisecond, cancel)
			defer stop.Stop()
			err := s.Write(ctx, sized(99, 1000))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Write past the bound = %v, want context.Canceled", err)
			}
			st := s.Stats()
			if st["blocked"] != 1 || st["in-flight"] != tt.accepted || st["in-flight-bytes"] != tt.accepted*size {
				t.Fatalf("stats = %v", st)
			}
			if st["max-in-flight-bytes"] > tt.bound+size {
				t.Fatalf("held %d bytes, bound %d + one record %d", st["max-in-flight-bytes"], tt.bound, size)
			}
			// A cancelled Close still settles every record, at once.
			cctx, ccancel := context.WithCancel(context.Background())
			ccancel()
			if err := s.Close(cctx); !errors.Is(err, kafkasink.ErrNotDelivered) {
				t.Fatalf("Close = %v", err)
			}
			if st := checkSettled(t, s, tt.accepted); st["failed"] != tt.accepted {
				t.Fatalf("stats = %v", st)
			}
		})
	}
}

// TestSinkByteBound writes through a small byte bound to each broker:
// everything arrives and the bound holds.
func TestSinkByteBound(t *testing.T) {
	size := recordBytes(sized(0, 1000))
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			cl := newClient(t, target, "lz4", 10*time.Second)
			bound := 3 * size
			s := kafkasink.New(cl, topic, kafkasink.Options{MaxBufferedBytes: bound, Logger: quiet})
			const n = 200
			for i := range n {
				if err := s.Write(ctxT(t), sized(i, 1000)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			st := checkSettled(t, s, n)
			if st["written"] != n || st["max-in-flight-bytes"] > bound || st["bytes"] != n*size {
				t.Fatalf("stats = %v (bound %d)", st, bound)
			}
			t.Logf("stats %v", st)
		})
	}
}
