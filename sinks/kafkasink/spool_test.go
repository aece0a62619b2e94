package kafkasink_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/spool"
)

// restartable is an embedded broker on a fixed port and data directory
// that a test can stop and start again.
type restartable struct {
	t       *testing.T
	addr    string
	dataDir string
	e       *kafkaio.Embedded
}

func newRestartable(t *testing.T) *restartable {
	b := &restartable{t: t, addr: closedPort(t), dataDir: filepath.Join(t.TempDir(), "data")}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *restartable) start() {
	b.t.Helper()
	var err error
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b.e, err = kafkaio.StartEmbedded(ctxT(b.t), kafkaio.EmbeddedOptions{Listen: b.addr, DataDir: b.dataDir})
		if err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *restartable) stop() {
	if b.e != nil {
		_ = b.e.Close()
		b.e = nil
	}
}

// spooledSink builds a producer with health hooks and a spooled sink.
func spooledSink(t *testing.T, addr, topic string, maxSpool int64, maxBuffered int) (*kafkasink.Sink, *kafkasink.Health, *kgo.Client) {
	t.Helper()
	popts, err := kafkasink.ProducerOpts("none", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := kafkasink.NewHealth()
	cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(addr), kgo.WithHooks(h))...)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), spool.Options{MaxBytes: maxSpool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	s := kafkasink.New(cl, topic, kafkasink.Options{DeliveryTimeout: 20 * time.Second, MaxBuffered: maxBuffered, Logger: quiet, Spool: sp, Health: h})
	return s, h, cl
}

// readAll reads every record of topic from the start.
func readAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// TestSpoolRidesOutAnOutage stops the broker while records keep coming:
// Write never blocks, what the producer cannot take goes to the spool, and
// after the broker is back on the same data directory every record is in
// the topic, in order per connection, none lost.
func TestSpoolRidesOutAnOutage(t *testing.T) {
	b := newRestartable(t)
	topic := kafkatest.CreateTopic(t, kafkatest.Target{Name: "embedded", Addrs: []string{b.addr}}, 2)
	s, _, cl := spooledSink(t, b.addr, topic, 64<<20, 50)
	defer cl.Close()
	const before, during = 200, 3000
	for i := range before {
		if err := s.Write(ctxT(t), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	for end := time.Now().Add(10 * time.Second); s.Stats()["written"] < before && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	b.stop()
	start := time.Now()
	for i := range during {
		if err := s.Write(ctxT(t), msg(before+i)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("%d writes took %v with the broker down: Write blocked", during, took)
	}
	st := s.Stats()
	if st["spooled"] == 0 || st["spool-records"] == 0 {
		t.Fatalf("nothing spooled while the broker was down: %v", st)
	}
	t.Logf("broker down: %v", st)
	time.Sleep(time.Second)
	b.start()
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatalf("Close: %v (stats %v)", err, s.Stats())
	}
	st = s.Stats()
	if st["written"] != before+during || st["failed"] != 0 || st["spool-records"] != 0 || st["spool-full"] != 0 {
		t.Fatalf("after Close: %v", st)
	}
	recs := readAll(t, b.addr, topic, before+during)
	if len(recs) != before+during {
		t.Fatalf("topic holds %d records, want %d", len(recs), before+during)
	}
	last := map[string]int{}
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(string(r.Value[:]), "1 id%d ", &i); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		if prev, ok := last[string(r.Key)]; ok && i <= prev {
			t.Fatalf("connection %s: record %d after %d", r.Key, i, prev)
		}
		last[string(r.Key)] = i
	}
}

// TestSpoolKeepsAnOutageOnDisk writes during an outage with the default
// room in flight (100 000 records): what comes while the brokers are
// unreachable stays in the spool, the drainer keeping only a few records
// in flight to learn when they are back. (It used to move the spool back
// into memory as fast as the room allowed, the broker still down.)
func TestSpoolKeepsAnOutageOnDisk(t *testing.T) {
	b := newRestartable(t)
	topic := kafkatest.CreateTopic(t, kafkatest.Target{Name: "embedded", Addrs: []string{b.addr}}, 2)
	s, h, cl := spooledSink(t, b.addr, topic, 64<<20, 0)
	defer cl.Close()
	if err := s.Write(ctxT(t), msg(0)); err != nil {
		t.Fatal(err)
	}
	b.stop()
	first := 1 // records written before the outage was noticed
	for ; ; first++ {
		if _, down := h.Unreachable(); down {
			break
		}
		if first > 2000 {
			t.Fatal("the sink never found the broker unreachable")
		}
		if err := s.Write(ctxT(t), msg(first)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	const during = 5000
	for i := range during {
		if err := s.Write(ctxT(t), msg(first+i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // the drainer's chance to move the spool into memory
	st := s.Stats()
	t.Logf("broker down: %v", st)
	if st["in-flight"] > 1000+int64(first) || st["spool-records"] < during-1000 {
		t.Fatalf("the outage waits in memory, not on disk: %d records in flight, %d spooled", st["in-flight"], st["spool-records"])
	}
	b.start()
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatalf("Close: %v (stats %v)", err, s.Stats())
	}
	st = s.Stats()
	if want := int64(first + during); st["written"] != want || st["failed"] != 0 || st["spool-records"] != 0 {
		t.Fatalf("after Close: %v, want %d written", st, want)
	}
}

// TestSpoolFull loses, and counts, the records a full spool refuses; the
// others arrive.
func TestSpoolFull(t *testing.T) {
	b := newRestartable(t)
	topic := kafkatest.CreateTopic(t, kafkatest.Target{Name: "embedded", Addrs: []string{b.addr}}, 1)
	s, _, cl := spooledSink(t, b.addr, topic, 16<<10, 10)
	defer cl.Close()
	b.stop()
	const n = 500
	for i := range n {
		if err := s.Write(ctxT(t), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st["spool-full"] == 0 || st["spool-bytes"] > 16<<10 {
		t.Fatalf("stats with a 16 KiB spool: %v", st)
	}
	b.start()
	err := s.Close(ctxT(t))
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	st = s.Stats()
	if st["written"]+st["spool-full"] != n || st["failed"] != 0 {
		t.Fatalf("after Close: %v", st)
	}
	if recs := readAll(t, b.addr, topic, int(st["written"])); int64(len(recs)) != st["written"] {
		t.Fatalf("topic holds %d records, stats %v", len(recs), st)
	}
}

// TestSpoolUndeliverable closes while the broker is still down: Close
// returns within the delivery timeout and counts every record as failed.
func TestSpoolUndeliverable(t *testing.T) {
	b := newRestartable(t)
	topic := kafkatest.CreateTopic(t, kafkatest.Target{Name: "embedded", Addrs: []string{b.addr}}, 1)
	popts, _ := kafkasink.ProducerOpts("none", time.Second)
	h := kafkasink.NewHealth()
	cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(b.addr), kgo.WithHooks(h))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), spool.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	s := kafkasink.New(cl, topic, kafkasink.Options{DeliveryTimeout: time.Second, MaxBuffered: 10, Logger: quiet, Spool: sp, Health: h})
	b.stop()
	const n = 100
	for i := range n {
		if err := s.Write(ctxT(t), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err = s.Close(ctxT(t))
	if !errors.Is(err, kafkasink.ErrNotDelivered) {
		t.Fatalf("Close = %v", err)
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("Close took %v with a 1 s delivery timeout", took)
	}
	if st := s.Stats(); st["failed"] != n || st["written"] != 0 || st["spool-records"] != 0 || st["in-flight"] != 0 {
		t.Fatalf("after Close: %v", st)
	}
}

// TestSpoolDiskFull records through an outage into a spool whose disk (a
// 128 KiB tmpfs) fills long before its byte bound: Write never fails, the
// records the disk could not take are lost and counted as spool-full, and
// every other one arrives once the broker is back, none of them lost with
// the spool (the disk error used to stop the sink and count the whole
// spool undeliverable).
func TestSpoolDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("a full disk is a tmpfs mounted for the test: it needs root (CAP_SYS_ADMIN)")
	}
	disk := t.TempDir()
	if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=128k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(disk, unix.MNT_DETACH) })
	b := newRestartable(t)
	topic := kafkatest.CreateTopic(t, kafkatest.Target{Name: "embedded", Addrs: []string{b.addr}}, 1)
	popts, err := kafkasink.ProducerOpts("none", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := kafkasink.NewHealth()
	cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(b.addr), kgo.WithHooks(h))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sp, err := spool.Open(filepath.Join(disk, "spool"), spool.Options{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	s := kafkasink.New(cl, topic, kafkasink.Options{DeliveryTimeout: 20 * time.Second, MaxBuffered: 10, Logger: quiet, Spool: sp, Health: h})
	b.stop()
	const n = 3000
	for i := range n {
		if err := s.Write(ctxT(t), msg(i)); err != nil {
			t.Fatalf("Write %d: %v (stats %v)", i, err, s.Stats())
		}
	}
	st := s.Stats()
	if st["spool-full"] == 0 {
		t.Fatalf("the disk never filled: %v", st)
	}
	t.Logf("broker down: %v", st)
	b.start()
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatalf("Close: %v (stats %v)", err, s.Stats())
	}
	st = s.Stats()
	if st["written"]+st["spool-full"] != n || st["failed"] != 0 || st["spool-records"] != 0 {
		t.Fatalf("after Close: %v, want written + spool-full = %d", st, n)
	}
	if st["written"] < 100 {
		t.Fatalf("only %d written: what the disk held was lost too (%v)", st["written"], st)
	}
	recs := readAll(t, b.addr, topic, int(st["written"]))
	if int64(len(recs)) != st["written"] {
		t.Fatalf("topic holds %d records, stats %v", len(recs), st)
	}
	prev := -1
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "1 id%d ", &i); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		if i <= prev {
			t.Fatalf("record %d after %d", i, prev)
		}
		prev = i
	}
}
