package windowsrc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/sources/windowsrc"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var base = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// put writes messages to the given partition, message i at base+ms[i] milliseconds.
func put(t testing.TB, cl *kgo.Client, topic string, p int32, rec string, ms ...int) {
	t.Helper()
	for _, d := range ms {
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("p%d-%d", p, d), ConnID: fmt.Sprintf("c%d", p),
			Time: base.Add(time.Duration(d) * time.Millisecond).UnixNano(),
			Src:  netip.MustParseAddrPort("10.0.0.1:5000"), Dst: netip.MustParseAddrPort("10.0.0.2:80"),
			Raw: fmt.Appendf(nil, "GET /%d HTTP/1.1\r\n\r\n", d)}
		r := kafkasink.Record(topic, m, rec, "host-a")
		r.Partition = p
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func manual(t testing.TB, target kafkatest.Target) *kgo.Client {
	return target.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

func read(t testing.TB, target kafkatest.Target, w catalog.Window, o windowsrc.Options) ([]string, *windowsrc.Source, error) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	src := windowsrc.New(target.Opts(), w, o)
	var ids []string
	err := src.Run(ctxT(t), func(m *message.Message) error {
		ids = append(ids, m.ID)
		return nil
	})
	return ids, src, err
}

func TestWindowExactMerged(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 4)
			cl := manual(t, target)
			put(t, cl, topic, 0, "r1", 0, 10, 20, 30, 40, 50)
			put(t, cl, topic, 1, "r1", 5, 15, 25, 35)
			put(t, cl, topic, 2, "r1", 1, 2, 3)
			// Partition 3 stays empty. Partition 2 has an out-of-order record:
			// per-partition order is kept.
			put(t, cl, topic, 2, "r1", 0)
			w := catalog.Window{Name: "w", Topic: topic, Partitions: map[int32]catalog.Range{
				0: {Start: 1, End: 5}, // 10..40
				1: {Start: 0, End: 3}, // 5..25
				2: {Start: 1, End: 4}, // 2, 3, 0
				3: {Start: 0, End: 0},
			}}
			for _, c := range []struct {
				name            string
				opts            windowsrc.Options
				want            string
				reordered, late int64
				lateMS          int64
			}{
				// The default reorder puts p2-0 (captured 3 ms before p2-3 but
				// written after it) back in place.
				{"default", windowsrc.Options{Lookahead: 2}, "p2-0,p2-2,p2-3,p1-5,p0-10,p1-15,p0-20,p1-25,p0-30,p0-40", 1, 0, 0},
				// Off: the partitions' heads are merged, each partition's
				// order kept, and the inversion counted.
				{"off", windowsrc.Options{Lookahead: 2, Reorder: -1}, "p2-2,p2-3,p2-0,p1-5,p0-10,p1-15,p0-20,p1-25,p0-30,p0-40", 0, 1, 3},
				// One message held: p2-2 is gone before p2-0 is read.
				{"max 1", windowsrc.Options{Lookahead: 2, ReorderMax: 1}, "p2-2,p2-0,p2-3,p1-5,p0-10,p1-15,p0-20,p1-25,p0-30,p0-40", 1, 1, 2},
			} {
				for i := range 2 { // reading twice gives the same sequence
					ids, src, err := read(t, target, w, c.opts)
					if err != nil {
						t.Fatal(err)
					}
					if got := strings.Join(ids, ","); got != c.want {
						t.Fatalf("%s, read %d: %s\nwant    %s", c.name, i, got, c.want)
					}
					st := src.Stats()
					if st["messages"] != 10 || st["read-partition-0"] != 4 || st["read-partition-1"] != 3 || st["read-partition-2"] != 3 || st["bad-records"] != 0 ||
						st["reordered"] != c.reordered || st["out-of-order"] != c.late || st["out-of-order-max-ms"] != c.lateMS {
						t.Fatalf("%s: stats = %v", c.name, st)
					}
				}
			}

			// Headers and key are decoded.
			var got *message.Message
			src := windowsrc.New(target.Opts(), catalog.Window{Name: "one", Topic: topic, Partitions: map[int32]catalog.Range{1: {Start: 0, End: 1}}}, windowsrc.Options{Logger: quiet})
			if err := src.Run(ctxT(t), func(m *message.Message) error { got = m; return nil }); err != nil {
				t.Fatal(err)
			}
			if got == nil || got.ConnID != "c1" || got.RecordingID != "r1" || got.Host != "host-a" || got.Src.String() != "10.0.0.1:5000" || got.Dst.String() != "10.0.0.2:80" || string(got.Raw) != "GET /5 HTTP/1.1\r\n\r\n" {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

func TestWindowEmptyAndFiltered(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			cl := manual(t, target)
			put(t, cl, topic, 0, "keep", 0, 1)
			put(t, cl, topic, 0, "other", 2)
			put(t, cl, topic, 0, "keep", 3)
			if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Partition: 0, Value: []byte("not a payload")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			put(t, cl, topic, 0, "keep", 5)

			// No partitions at all, and only empty ranges: nil at once, no broker needed.
			for _, w := range []catalog.Window{
				{Name: "none", Topic: "does-not-exist"},
				{Name: "empty", Topic: "does-not-exist", Partitions: map[int32]catalog.Range{0: {Start: 4, End: 4}}},
			} {
				src := windowsrc.New([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, w, windowsrc.Options{})
				if err := src.Run(ctxT(t), func(*message.Message) error { return errors.New("emitted") }); err != nil {
					t.Fatalf("%s: %v", w.Name, err)
				}
			}

			w := catalog.Window{Name: "w", Topic: topic, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 6}, 1: {Start: 0, End: 0}}}
			ids, src, err := read(t, target, w, windowsrc.Options{OnlyRecording: "keep"})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ids, ",") != "p0-0,p0-1,p0-3,p0-5" {
				t.Fatalf("read %v", ids)
			}
			if st := src.Stats(); st["filtered"] != 1 || st["bad-records"] != 1 || st["messages"] != 4 {
				t.Fatalf("stats = %v", st)
			}

			// An emit error stops Run.
			stop := errors.New("stop here")
			src = windowsrc.New(target.Opts(), w, windowsrc.Options{Logger: quiet})
			if err := src.Run(ctxT(t), func(*message.Message) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("Run with failing emit = %v", err)
			}
		})
	}
}

func TestWindowTransactionGapsAndRetention(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			txn := target.Client(t, kgo.TransactionalID("w-"+topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for b := range 2 {
				if err := txn.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				put(t, txn, topic, 0, "r", b*10, b*10+1)
				put(t, txn, topic, 1, "r", b*10+5)
				if err := txn.EndTransaction(ctxT(t), kgo.TryCommit); err != nil {
					t.Fatal(err)
				}
			}
			// Markers: p0 = [d d M d d M] (end 6), p1 = [d M d M] (end 4).
			adm := kadm.NewClient(txn)
			var ends map[int32]int64
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				var err error
				if ends, err = catalog.EndOffsets(ctxT(t), adm, topic); err != nil {
					t.Fatal(err)
				}
				if ends[0] == 6 && ends[1] == 4 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("end offsets = %v, want 0:6 1:4", ends)
				}
			}
			w := catalog.Window{Name: "txn", Topic: topic, Partitions: catalog.Between(nil, ends)}
			ids, _, err := read(t, target, w, windowsrc.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ids, ",") != "p0-0,p0-1,p1-5,p0-10,p0-11,p1-15" {
				t.Fatalf("read %v", ids)
			}

			// Retention deleted the first 3 offsets of partition 0.
			o := kadm.Offsets{}
			o.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3})
			if _, err := adm.DeleteRecords(ctxT(t), o); err != nil {
				t.Fatal(err)
			}
			if _, _, err := read(t, target, w, windowsrc.Options{}); err == nil || !strings.Contains(err.Error(), "partition 0: 3 of 6 records are gone") {
				t.Fatalf("read after deletion = %v", err)
			}
			ids, src, err := read(t, target, w, windowsrc.Options{AllowPartial: true})
			if err != nil || strings.Join(ids, ",") != "p1-5,p0-10,p0-11,p1-15" || len(src.Notes()) != 1 {
				t.Fatalf("allow-partial read = %v, %v, notes %v", ids, err, src.Notes())
			}
		})
	}
}

func TestWindowFromTimeRange(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			cl := manual(t, target)
			put(t, cl, topic, 0, "r", 0, 100, 200, 300)
			put(t, cl, topic, 1, "r", 50, 150, 250)
			ranges, err := catalog.ResolveTimeRange(ctxT(t), kadm.NewClient(cl), topic, base.Add(100*time.Millisecond), base.Add(250*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			ids, _, err := read(t, target, catalog.Window{Name: "t", Topic: topic, Partitions: ranges}, windowsrc.Options{})
			if err != nil || strings.Join(ids, ",") != "p0-100,p1-150,p0-200" {
				t.Fatalf("read %v, %v (ranges %v)", ids, err, ranges)
			}
		})
	}
}

func TestKcatProducedPayloads(t *testing.T) {
	kcat := kafkatest.RequireTool(t, "kcat")
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 1)
			// Payloads as gor --output-kafka writes them, keyed by kcat -K.
			var in bytes.Buffer
			for i := range 3 {
				fmt.Fprintf(&in, "conn%d|1 id%d %d 0\nGET /k%d HTTP/1.1\r\nHost: x\r\n\r\n@@", i, i, base.Add(time.Duration(i)*time.Second).UnixNano(), i)
			}
			cmd := exec.CommandContext(ctxT(t), kcat, "-P", "-b", target.Addrs[0], "-t", topic, "-K|", "-D@@")
			cmd.Stdin = &in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			ends, err := catalog.EndOffsets(ctxT(t), kadm.NewClient(target.Client(t)), topic)
			if err != nil || ends[0] != 3 {
				t.Fatalf("end offsets %v, %v", ends, err)
			}
			var got []*message.Message
			src := windowsrc.New(target.Opts(), catalog.Window{Name: "k", Topic: topic, Partitions: catalog.Between(nil, ends)}, windowsrc.Options{Logger: quiet})
			if err := src.Run(ctxT(t), func(m *message.Message) error { got = append(got, m); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[2].ID != "id2" || got[2].ConnID != "conn2" || string(got[2].Raw) != "GET /k2 HTTP/1.1\r\nHost: x\r\n\r\n" {
				t.Fatalf("read %d messages, last %+v", len(got), got[len(got)-1])
			}
		})
	}
}

func BenchmarkWindowRead(b *testing.B) {
	const n = 20000
	for _, target := range kafkatest.Brokers(b) {
		b.Run(target.Name, func(b *testing.B) {
			topic := kafkatest.CreateTopic(b, target, 4)
			popts, _ := kafkasink.ProducerOpts("lz4", 0)
			cl := target.Client(b, popts...)
			s := kafkasink.New(cl, topic, kafkasink.Options{Logger: quiet})
			for i := range n {
				m := &message.Message{Kind: message.Request, ID: "x", ConnID: fmt.Sprintf("c%d", i%64),
					Time: base.Add(time.Duration(i) * time.Millisecond).UnixNano(), Raw: []byte("GET /bench HTTP/1.1\r\nHost: b\r\n\r\n")}
				if err := s.Write(ctxT(b), m); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(ctxT(b)); err != nil {
				b.Fatal(err)
			}
			ends, err := catalog.EndOffsets(ctxT(b), kadm.NewClient(cl), topic)
			if err != nil {
				b.Fatal(err)
			}
			w := catalog.Window{Name: "bench", Topic: topic, Partitions: catalog.Between(nil, ends)}
			b.ResetTimer()
			var total int
			for range b.N {
				src := windowsrc.New(target.Opts(), w, windowsrc.Options{Logger: quiet})
				if err := src.Run(context.Background(), func(*message.Message) error { total++; return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestWindowSelect: a Select keeps a shard's key bucket; records without a
// key are selected by their connection header; the rest are other-shard.
func TestWindowSelect(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.UniqueTopic(t)
			if _, err := target.Admin(t).CreateTopic(ctxT(t), 1, -1, nil, topic); err != nil {
				t.Fatal(err)
			}
			cl := manual(t, target)
			var recs []*kgo.Record
			for i := range 40 {
				m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("id-%d", i), ConnID: fmt.Sprintf("conn-%d", i%8),
					Time: base.Add(time.Duration(i) * time.Millisecond).UnixNano(), Raw: fmt.Appendf(nil, "GET /%d HTTP/1.1\r\n\r\n", i)}
				r := kafkasink.Record(topic, m, "rec", "host-a")
				if i%2 == 1 {
					r.Key = nil // as some writers do: the connection is in the headers only
				}
				recs = append(recs, r)
			}
			if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			w := catalog.Window{Name: "w", Topic: topic, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 40}}}
			seen := map[string]int{}
			for bucket := range 2 {
				sel := func(_ int32, key []byte) bool {
					return int(key[len(key)-1]-'0')%2 == bucket // conn-N: N's parity
				}
				got, src, err := read(t, target, w, windowsrc.Options{Select: sel})
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range got {
					seen[g]++
				}
				if st := src.Stats(); st["other-shard"] != 20 || st["messages"] != 20 {
					t.Fatalf("bucket %d: stats %v", bucket, st)
				}
			}
			if len(seen) != 40 {
				t.Fatalf("the two buckets read %d distinct messages, want 40", len(seen))
			}
			for m, n := range seen {
				if n != 1 {
					t.Fatalf("%s read by %d buckets", m, n)
				}
			}
		})
	}
}
