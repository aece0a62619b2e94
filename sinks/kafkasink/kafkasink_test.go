package kafkasink_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/spool"
	"github.com/twmb/franz-go/pkg/kgo"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func msg(i int) *message.Message {
	return &message.Message{
		Kind: message.Request, ID: fmt.Sprintf("id%d", i), ConnID: fmt.Sprintf("conn-%d", i%3),
		Time: time.Date(2026, 2, 1, 0, 0, i, 1234567, time.UTC).UnixNano(),
		Src:  netip.MustParseAddrPort("10.1.2.3:40000"), Dst: netip.MustParseAddrPort("10.9.9.9:8080"),
		Raw: fmt.Appendf(nil, "GET /item/%d HTTP/1.1\r\nHost: shop\r\n\r\n", i),
	}
}

func newClient(t testing.TB, target kafkatest.Target, compression string, timeout time.Duration) *kgo.Client {
	t.Helper()
	popts, err := kafkasink.ProducerOpts(compression, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return target.Client(t, popts...)
}

// TestSinkWritesRecords writes with the codecs whose compressor is not
// franz-go's own (lz4: frames without the content checksum) and one that is
// (zstd), and reads back with franz-go, the broker (the real one validates
// every batch by decompressing it) and kcat (librdkafka).
func TestSinkWritesRecords(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		for _, compression := range []struct {
			name  string
			codec uint8 // kgo.RecordAttrs.CompressionType
		}{{"zstd", 4}, {"lz4", 3}} {
			t.Run(target.Name+"/"+compression.name, func(t *testing.T) { testSinkWritesRecords(t, target, compression.name, compression.codec) })
		}
	}
}

func testSinkWritesRecords(t *testing.T, target kafkatest.Target, compression string, codec uint8) {
	topic := kafkatest.CreateTopic(t, target, 1)
	cl := newClient(t, target, compression, 10*time.Second)
	s := kafkasink.New(cl, topic, kafkasink.Options{RecordingID: "rec-7", Host: "web-1", MaxBuffered: 4, Logger: quiet})
	for i := range 10 {
		m := msg(i)
		if i%3 == 2 {
			m.Kind = message.Response
		}
		if err := s.Write(ctxT(t), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st["written"] != 10 || st["written-requests"] != 7 || st["written-responses"] != 3 ||
		st["failed"] != 0 || st["bytes"] == 0 || st["partition-0"] != 10 || st["in-flight"] != 0 {
		t.Fatalf("stats = %v", st)
	}

	rr, err := kafkaio.NewRangeReader(target.Opts(), topic, map[int32]kafkaio.OffsetRange{0: {Start: 0, End: 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	var recs []*kgo.Record
	for !rr.Done() {
		got, err := rr.Poll(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, got...)
	}
	r := recs[4]
	if got := r.Attrs.CompressionType(); got != codec {
		t.Errorf("batch compression type = %d, want %d (%s)", got, codec, compression)
	}
	m := msg(4)
	if string(r.Key) != m.ConnID || string(r.Value) != string(m.Payload()) || r.Timestamp.UnixMilli() != m.Time/1e6 {
		t.Fatalf("record = key %q ts %v value %q", r.Key, r.Timestamp, r.Value)
	}
	h := map[string]string{}
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	want := map[string]string{
		kafkasink.HeaderRecording: "rec-7", kafkasink.HeaderKind: "request", kafkasink.HeaderHost: "web-1",
		kafkasink.HeaderSrc: "10.1.2.3:40000", kafkasink.HeaderDst: "10.9.9.9:8080", kafkasink.HeaderConn: "conn-1",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	checkKcat(t, target, topic, m)
}

// checkKcat reads the topic with kcat and finds m's key, timestamp, headers and value.
func checkKcat(t *testing.T, target kafkatest.Target, topic string, m *message.Message) {
	kcat := kafkatest.RequireTool(t, "kcat")
	if kcat == "" {
		return
	}
	out, err := exec.CommandContext(ctxT(t), kcat, "-C", "-b", target.Addrs[0], "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%k|%T|%h|%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	want := fmt.Sprintf("%s|%d|replayctl-recording=rec-7,replayctl-kind=request,replayctl-host=web-1,replayctl-src=10.1.2.3:40000,replayctl-dst=10.9.9.9:8080,replayctl-conn=%s|%s",
		m.ConnID, m.Time/1e6, m.ConnID, m.Payload())
	if !strings.Contains(string(out), want) {
		t.Fatalf("kcat output lacks\n%q\n---\n%s", want, out)
	}
}

func TestSinkDeadBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	popts, err := kafkasink.ProducerOpts("none", 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := kafkasink.New(cl, "nowhere", kafkasink.Options{MaxBuffered: 100, DeliveryTimeout: 500 * time.Millisecond, Logger: quiet})
	start := time.Now()
	for i := range 5 {
		if err := s.Write(ctxT(t), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	err = s.Close(ctxT(t))
	if !errors.Is(err, kafkasink.ErrNotDelivered) || !strings.Contains(err.Error(), "5 of 5 records") {
		t.Fatalf("Close = %v", err)
	}
	if st := s.Stats(); st["failed"] != 5 || st["written"] != 0 {
		t.Fatalf("stats = %v", st)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("dead broker held Close for %v", d)
	}
	t.Logf("dead broker: %v after %v", err, time.Since(start).Round(time.Millisecond))
}

func TestWriteCancelledWhileFull(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	popts, _ := kafkasink.ProducerOpts("", 300*time.Millisecond)
	cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := kafkasink.New(cl, "nowhere", kafkasink.Options{MaxBuffered: 1, DeliveryTimeout: 300 * time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Write(ctx, msg(0)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The buffer is full (1 in flight), so this Write waits and sees the cancel.
	if err := s.Write(ctx, msg(1)); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v", err)
	}
	_ = s.Close(ctxT(t))
}

func TestProducerOpts(t *testing.T) {
	for _, c := range []string{"", "none", "gzip", "snappy", "lz4", "ZSTD"} {
		if _, err := kafkasink.ProducerOpts(c, 0); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
	if _, err := kafkasink.ProducerOpts("brotli", 0); err == nil {
		t.Error("unknown compression accepted")
	}
	if _, err := kafkasink.ProducerOpts("", -time.Second); err == nil {
		t.Error("negative timeout accepted")
	}
}

// httpMsg is a realistic captured GET request (about 480 bytes).
func httpMsg() *message.Message {
	m := msg(1)
	m.Raw = []byte("GET /api/v1/products/1234?sort=price&page=3 HTTP/1.1\r\n" +
		"Host: shop.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
		"Accept: application/json, text/plain, */*\r\n" +
		"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\n" +
		"Referer: https://shop.example.com/catalog?category=running\r\n" +
		"X-Request-Id: 7f3c2a9e0b1d4e5f8a6b\r\n" +
		"Cookie: session=REDACTED; theme=dark\r\n" +
		"Connection: keep-alive\r\n\r\n")
	return m
}

// batchStats records the size of the batches a producer writes.
type batchStats struct {
	n, records, uncompressed, compressed atomic.Int64
}

func (h *batchStats) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.n.Add(1)
	h.records.Add(int64(m.NumRecords))
	h.uncompressed.Add(int64(m.UncompressedBytes))
	h.compressed.Add(int64(m.CompressedBytes))
}

// benchSink writes b.N copies of m (over 8 connection IDs) to a fresh topic of
// 4 partitions and reports msgs/s and the mean batch size.
func benchSink(b *testing.B, target kafkatest.Target, compression string, m *message.Message, extra ...kgo.Opt) {
	topic := kafkatest.CreateTopic(b, target, 4)
	popts, err := kafkasink.ProducerOpts(compression, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	var bs batchStats
	cl := target.Client(b, append(append(popts, kgo.WithHooks(&bs)), extra...)...)
	s := kafkasink.New(cl, topic, kafkasink.Options{Logger: quiet})
	conns := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
	ctx := context.Background()
	b.SetBytes(int64(len(m.Payload())))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.ConnID = conns[i%len(conns)]
		if err := s.Write(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(ctxT(b)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if n := bs.n.Load(); n > 0 {
		b.ReportMetric(float64(bs.uncompressed.Load())/float64(n)/1024, "KiB/batch")
		b.ReportMetric(float64(bs.compressed.Load())/float64(n)/1024, "wire-KiB/batch")
	}
}

// BenchmarkSink measures the sink with ProducerOpts as they are: small
// messages with lz4, and realistic HTTP requests with zstd.
func BenchmarkSink(b *testing.B) {
	for _, target := range kafkatest.Brokers(b) {
		b.Run(target.Name, func(b *testing.B) {
			b.Run("small-lz4", func(b *testing.B) { benchSink(b, target, "lz4", msg(1)) })
			b.Run("http-zstd", func(b *testing.B) { benchSink(b, target, "zstd", httpMsg()) })
		})
	}
}

// BenchmarkSinkBatchMax compares producer batch size limits (the option
// after ProducerOpts overrides its own) with realistic HTTP requests.
func BenchmarkSinkBatchMax(b *testing.B) {
	for _, target := range kafkatest.Brokers(b) {
		for _, size := range []int32{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1000012} {
			b.Run(fmt.Sprintf("%s/%dKiB", target.Name, size>>10), func(b *testing.B) {
				benchSink(b, target, "zstd", httpMsg(), kgo.ProducerBatchMaxBytes(size))
			})
		}
	}
}

// BenchmarkSpoolDrain writes realistic HTTP requests through a spooled sink
// whose health says the broker is down, so that they go through the spool
// (the first MaxBuffered excepted): the rate is the drainer's.
func BenchmarkSpoolDrain(b *testing.B) {
	for _, target := range kafkatest.Brokers(b) {
		b.Run(target.Name, func(b *testing.B) {
			topic := kafkatest.CreateTopic(b, target, 4)
			popts, err := kafkasink.ProducerOpts("zstd", 30*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			h := kafkasink.NewHealth()
			cl := target.Client(b, append(popts, kgo.WithHooks(h))...)
			sp, err := spool.Open(filepath.Join(b.TempDir(), "spool"), spool.Options{MaxBytes: 4 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			// Health is held down while writing: every record goes through
			// the spool, while the drainer empties it.
			stopHold := holdDown(h)
			s := kafkasink.New(cl, topic, kafkasink.Options{Logger: quiet, Spool: sp, Health: h})
			m := httpMsg()
			conns := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.ConnID = conns[i%len(conns)]
				if err := s.Write(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			stopHold()
			if err := s.Close(ctxT(b)); err != nil {
				b.Fatal(err)
			}
			st := s.Stats()
			if st["written"] != int64(b.N) {
				b.Fatalf("written %d of %d", st["written"], b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(st["spooled"]), "spooled")
		})
	}
}

// holdDown marks h unreachable every millisecond until the returned
// function is called.
func holdDown(h *kafkasink.Health) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	down := errors.New("bench: broker held down")
	go func() {
		defer close(done)
		for {
			h.OnBrokerConnect(kgo.BrokerMetadata{}, 0, nil, down)
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() { close(stop); <-done }
}
