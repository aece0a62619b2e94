package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/shard"
)

// TestShardsBogusFirstTimes: two shards (one partition each) whose first
// requests have bogus capture times (a .gor file's zeros) and the rest
// real ones. A shard armed without a t0 then, and, no shard having one,
// each placed its timed requests from its own first one at the start, off
// the timeline they share, saying nothing. From a saved window (which
// keeps its first real capture time) both arm with that t0; from offsets
// (no start time) each shard says it has no t0, in its summary, its JSON
// report (shard.t0_note) and report merge's notes.
func TestShardsBogusFirstTimes(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := unique(t, "bogus-first")
	cl := br.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := kafkaio.EnsureTopic(ctx, adm, topic, 2, -1, nil); err != nil {
		t.Fatal(err)
	}
	// Per partition: 3 requests captured at 0, then 5 captured 20 ms
	// apart; partition 1's timed ones start 100 ms after partition 0's.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for p := range 2 {
		for i := range 8 {
			at := int64(0)
			if i >= 3 {
				at = base.Add(time.Duration(p)*100*time.Millisecond + time.Duration(i-3)*20*time.Millisecond).UnixNano()
			}
			m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%023x%d", i+1, p), Time: at,
				Raw: fmt.Appendf(nil, "GET /p%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", p, i)}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Key: fmt.Appendf(nil, "c%d", p), Value: m.Payload()})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, cl, adm, catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[int32]catalog.Range{0: {Start: 0, End: 8}, 1: {Start: 0, End: 8}}
	if err := cat.Save(ctx, catalog.Window{Name: "saved", Topic: topic, Partitions: ranges, StartedAt: base, EndedAt: base.Add(180 * time.Millisecond), BogusTimes: 6}, false); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t)
	run := func(t *testing.T, runID, source, windows string) ([]string, []*report.Input, *report.Merged) {
		yaml := fmt.Sprintf(`version: 1
name: bogus-first
topics:
  traffic: {name: %s}
%s
targets:
  t: {url: %q}
jobs:
  replay:
    source: %s
    speed: 1
    sink: {http: {target: t}}
`, topic, windows, tg.URL(), source)
		bus := &memBus{}
		outs := runShards(t, ctx, br.Addrs, t.TempDir(), yaml, bus, runID, 2, 200*time.Millisecond)
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
		m, err := report.Merge(inputs, runID)
		if err != nil || !m.Complete() || m.Summary.Sent != 16 {
			t.Fatalf("merge: %v, sent %v", err, m)
		}
		return outs, inputs, m
	}
	t.Run("saved window", func(t *testing.T) {
		outs, inputs, m := run(t, "bogus-saved", "{window: saved}", "")
		for _, in := range inputs {
			if sh := in.Shard; sh.T0 != base.UnixNano() || sh.T0Note != "" {
				t.Errorf("shard %d: t0 %s, note %q; want the window's start %s and no note", sh.Index, time.Unix(0, sh.T0).UTC(), sh.T0Note, base.UTC())
			}
		}
		for i, out := range outs {
			if strings.Contains(out, "t0") {
				t.Errorf("shard %d's summary speaks of a t0:\n%s", i, out)
			}
		}
		if notes := strings.Join(m.Notes, "\n"); strings.Contains(notes, "t0") {
			t.Errorf("merged notes speak of a t0:\n%s", notes)
		}
	})
	t.Run("offsets", func(t *testing.T) {
		windows := `windows:
  w: {topic: traffic, offsets: {"0": [0, 8], "1": [0, 8]}}`
		outs, inputs, m := run(t, "bogus-offsets", "{window: w}", windows)
		const want = "no t0: its first request's capture time is bogus"
		for _, in := range inputs {
			if sh := in.Shard; sh.T0 != 0 || !strings.HasPrefix(sh.T0Note, want) {
				t.Errorf("shard %d: t0 %d, note %q; want none, and %q", sh.Index, sh.T0, sh.T0Note, want)
			}
		}
		for i, out := range outs {
			if !strings.Contains(out, "timeline") || !strings.Contains(out, want) {
				t.Errorf("shard %d's summary does not say it has no t0:\n%s", i, out)
			}
		}
		if notes := strings.Join(m.Notes, "\n"); strings.Count(notes, want) != 2 {
			t.Errorf("merged notes do not say, for each shard, that it had no t0:\n%s", notes)
		}
	})
}
