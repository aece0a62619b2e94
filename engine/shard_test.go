package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/shard"
)

// memBus is a shard.Coordinator in memory: what a control plane other than
// the run topic (the fleet's) plugs into engine.ShardOptions.
type memBus struct {
	mu   sync.Mutex
	recs []shard.Record
}

func (b *memBus) add(r shard.Record) {
	b.mu.Lock()
	b.recs = append(b.recs, r)
	b.mu.Unlock()
}

func (b *memBus) Arm(ctx context.Context, self shard.Record, timeout time.Duration) (shard.Start, error) {
	b.add(self)
	deadline := time.Now().Add(timeout)
	for {
		bar := shard.NewBarrier(self)
		b.mu.Lock()
		for _, r := range b.recs {
			bar.Observe(r)
		}
		b.mu.Unlock()
		if bar.Done() {
			return bar.Result()
		}
		if time.Now().After(deadline) {
			return shard.Start{}, fmt.Errorf("%w: %s not armed", shard.ErrAborted, shard.MissingText(bar.Missing()))
		}
		select {
		case <-ctx.Done():
			return shard.Start{}, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (b *memBus) Abort(_ context.Context, self shard.Record) error {
	self.Kind = shard.KindAbort
	b.add(self)
	return nil
}

func (b *memBus) Publish(_ context.Context, r shard.Record) error {
	b.add(r)
	return nil
}

// produceShardWindow writes n GETs of /r/0.. every `every` of capture time
// on conns connections (conn c on partition c%2) to a new 2-partition
// topic named after prefix, and returns the topic.
func produceShardWindow(t *testing.T, ctx context.Context, br kafkatest.Target, prefix string, n, conns int, every time.Duration) string {
	t.Helper()
	topic := unique(t, prefix)
	cl := br.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(cl), topic, 2, -1, nil); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixNano()
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		conn := i % conns
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%024x", i+1), Time: base + int64(i)*int64(every),
			Raw: []byte(fmt.Sprintf("GET /r/%d HTTP/1.1\r\nHost: x\r\n\r\n", i))}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(conn % 2), Key: fmt.Appendf(nil, "c%03d", conn), Value: m.Payload()})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return topic
}

// runShards runs count shards of run runID of the scenario in this
// process, coordinated by bus, and returns each one's output; a shard
// that fails fails the test.
func runShards(t *testing.T, ctx context.Context, brokers []string, dir, yaml string, bus *memBus, runID string, count int, margin time.Duration) []string {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, count)
	outs := make([]string, count)
	for i := range count {
		wg.Go(func() {
			so := &engine.ShardOptions{Spec: shard.Spec{Index: i, Count: count, RunID: runID}, Coordinator: bus, Margin: margin}
			res := runCtx(t, ctx, dir, yaml, engine.Options{Brokers: brokers, Shard: so})
			errs[i], outs[i] = res.err, res.out
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, outs[i])
		}
	}
	return outs
}

// TestShardsInProcess: three shards of a run in one process, coordinated by
// an in-memory Coordinator, replay a 2-partition window on one timeline:
// every request once, one start, and the shard holding the window's first
// request sends it at the start.
func TestShardsInProcess(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 300
	topic := produceShardWindow(t, ctx, br, "shards", n, 30, time.Millisecond)
	tg := newTarget(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`version: 1
name: shards
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {"0": [0, %d], "1": [0, %d]}}
targets:
  t: {url: %q}
jobs:
  replay:
    source: {window: w}
    speed: 1
    sink: {http: {target: t, workers: 4}}
`, topic, n/2, n/2, tg.URL())
	bus := &memBus{}
	runShards(t, ctx, br.Addrs, dir, yaml, bus, "r1", 3, 100*time.Millisecond)
	if got := tg.count(); got != n {
		t.Fatalf("target received %d requests, want %d", got, n)
	}
	seen := map[string]bool{}
	for _, r := range tg.requests() {
		line := r.Method + " " + r.Path
		if seen[line] {
			t.Fatalf("%s sent twice", line)
		}
		seen[line] = true
	}
	var inputs []*report.Input
	for _, r := range bus.recs {
		if r.Kind == shard.KindResult {
			in, err := report.ParseInput(fmt.Sprint("shard ", r.Shard), r.Report)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, in)
		}
	}
	m, err := report.Merge(inputs, "r1")
	if err != nil || !m.Complete() || m.Summary.Sent != n {
		t.Fatalf("merge: %v complete %v sent %d", err, m != nil && m.Complete(), m.Summary.Sent)
	}
	start := inputs[0].Shard.Start
	atStart := 0
	for _, in := range inputs {
		if !in.Shard.Start.Equal(start) {
			t.Fatalf("shards started at %v and %v", start, in.Shard.Start)
		}
		if in.Shard.FirstPlanned.Equal(start) {
			atStart++
		}
		if in.Shard.FirstPlanned.Before(start) || in.Shard.FirstPlanned.After(start.Add(200*time.Millisecond)) {
			t.Fatalf("shard %d's first request due at start+%v", in.Shard.Index, in.Shard.FirstPlanned.Sub(start))
		}
	}
	if atStart != 1 {
		t.Fatalf("%d shards have their first request due at the start, want the one holding the window's first", atStart)
	}
}

// TestEmptyShardArms: a window of one connection split between two shards
// leaves one shard nothing to send: it arms anyway, and the run completes.
func TestEmptyShardArms(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := unique(t, "empty")
	cl := br.Client(t)
	if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(cl), topic, 1, -1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%024x", i+1), Time: time.Now().UnixNano(), Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("one-connection"), Value: m.Payload()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tg := newTarget(t)
	yaml := fmt.Sprintf(`version: 1
name: empty
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {"0": [0, 5]}}
targets:
  t: {url: %q}
jobs:
  replay:
    source: {window: w}
    speed: max
    sink: {http: {target: t, session: true}}
`, topic, tg.URL())
	bus := &memBus{}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			so := &engine.ShardOptions{Spec: shard.Spec{Index: i, Count: 2, RunID: "r2"}, Coordinator: bus, Margin: 50 * time.Millisecond, ArmTimeout: 20 * time.Second}
			errs[i] = runCtx(t, ctx, t.TempDir(), yaml, engine.Options{Brokers: br.Addrs, Shard: so}).err
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("shards: %v, %v", errs[0], errs[1])
	}
	if tg.count() != 5 {
		t.Fatalf("target received %d of 5", tg.count())
	}
}

// TestShardAbortBeforeResult: a shard interrupted before it armed tells
// the other shards first (an abort), then publishes its result: a shard
// still waiting at the barrier reads why the run was given up, not that
// the run "already ran" (a result read before the start means that).
func TestShardAbortBeforeResult(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := unique(t, "preabort")
	cl := br.Client(t)
	if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(cl), topic, 1, -1, nil); err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%024x", 1), Time: time.Now().UnixNano(), Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("c"), Value: m.Payload()}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t)
	yaml := fmt.Sprintf(`version: 1
name: preabort
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {"0": [0, 1]}}
targets:
  t: {url: %q}
jobs:
  replay:
    source: {window: w}
    filter: 'req.path == "/never"'
    loop: {for: 1m}
    sink: {http: {target: t}}
`, topic, tg.URL())
	bus := &memBus{}
	// Interrupted while it reads its window again and again, holding no
	// request yet: it never arms.
	cctx, ccancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer ccancel()
	so := &engine.ShardOptions{Spec: shard.Spec{Index: 0, Count: 2, RunID: "r3"}, Coordinator: bus, Margin: 50 * time.Millisecond, ArmTimeout: 5 * time.Second}
	res := runCtx(t, cctx, t.TempDir(), yaml, engine.Options{Brokers: br.Addrs, Shard: so})
	if res.err == nil {
		t.Fatalf("an interrupted shard succeeded\n%s", res.out)
	}
	var kinds []string
	for _, r := range bus.recs {
		kinds = append(kinds, r.Kind)
	}
	t.Logf("records: %v (err %v)", kinds, res.err)
	bar := shard.NewBarrier(shard.Record{Kind: shard.KindArmed, RunID: "r3", Shard: 1, Count: 2, Nonce: "other"})
	for _, r := range bus.recs {
		bar.Observe(r)
	}
	if _, err := bar.Result(); !errors.Is(err, shard.ErrAborted) {
		t.Fatalf("the other shard reads %v from %v; want the abort (ErrAborted)", err, kinds)
	}
}

// TestShardsStartAtPassed: two shards whose start-at had passed when the
// last of them armed (a shard queued on a busy agent, say) start together
// at the last armed instant plus the margin, each saying so, instead of
// sending at once every request that fell due meanwhile: their lateness
// stays small.
func TestShardsStartAtPassed(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// 200 requests 10 ms apart: 2 s of timeline.
	const n = 200
	topic := produceShardWindow(t, ctx, br, "late-start", n, 10, 10*time.Millisecond)
	tg := newTarget(t)
	dir := t.TempDir()
	startAt := time.Now().Add(-3 * time.Second).UTC()
	yaml := fmt.Sprintf(`version: 1
name: late
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {"0": [0, %d], "1": [0, %d]}}
targets:
  t: {url: %q}
jobs:
  replay:
    source: {window: w}
    speed: 1
    start-at: %s
    sink: {http: {target: t}}
`, topic, n/2, n/2, tg.URL(), startAt.Format(time.RFC3339Nano))
	bus := &memBus{}
	outs := runShards(t, ctx, br.Addrs, dir, yaml, bus, "late", 2, 200*time.Millisecond)
	for i := range outs {
		if !strings.Contains(outs[i], "postponed") || !strings.Contains(outs[i], "had passed when the last shard armed") {
			t.Errorf("shard %d's summary does not say its start was postponed:\n%s", i, outs[i])
		}
	}
	if got := tg.count(); got != n {
		t.Fatalf("target received %d requests, want %d", got, n)
	}
	var start time.Time
	var inputs []*report.Input
	for _, r := range bus.recs {
		if r.Kind != shard.KindResult {
			continue
		}
		in, err := report.ParseInput(fmt.Sprint("shard ", r.Shard), r.Report)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, in)
		sh := in.Shard
		if !sh.PlannedStart.Equal(startAt) || !sh.Start.After(startAt) {
			t.Errorf("shard %d: start %v, planned %v; want later than the start-at %v, which it keeps", sh.Index, sh.Start, sh.PlannedStart, startAt)
		}
		if start.IsZero() {
			start = sh.Start
		} else if !sh.Start.Equal(start) {
			t.Errorf("shards started at %v and %v", start, sh.Start)
		}
		// Sent from the start-at, the first requests would be 3 s late.
		if p99 := in.Lateness.P99; p99 > 500 {
			t.Errorf("shard %d: lateness p99 %.1f ms: it sent what fell due before it started", sh.Index, p99)
		}
	}
	// The merged report says it once.
	m, err := report.Merge(inputs, "late")
	if err != nil || !m.Complete() {
		t.Fatalf("merge: %v", err)
	}
	if notes := strings.Join(m.Notes, "\n"); strings.Count(notes, "had passed when the last shard armed") != 1 {
		t.Errorf("merged notes do not say once that the start was postponed:\n%s", notes)
	}
}
