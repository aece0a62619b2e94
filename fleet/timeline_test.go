package fleet

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/message"
)

// TestShardsShareTimeline: the shards of a replay job place their requests
// on one timeline, the window's: its start (first real capture time) is
// sent at the job's start instant, and a request captured 2 s later 2 s
// after it, whichever shard has it. Each shard scheduled its own first
// timed request at the start instant: shard 1, whose first request was
// captured 2 s into the window, sent it at once; and its first request
// having a bogus capture time (a .gor file's zero) did not change that.
func TestShardsShareTimeline(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	f.replayAgent(t, "load-2", nil)
	var mu sync.Mutex
	got := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got[r.URL.Path] = time.Now()
	}))
	t.Cleanup(srv.Close)
	const topic = "timeline-http"
	if _, err := f.bus.Admin().CreateTopic(f.ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	for _, r := range []struct {
		part int32
		path string
		at   int64
	}{
		{0, "/p0", base.UnixNano()},
		{1, "/p1-bogus", 0},
		{1, "/p1", base.Add(2 * time.Second).UnixNano()},
	} {
		// The bus's client partitions by the record's Partition.
		m := &message.Message{Kind: message.Request, ID: r.path, Time: r.at, Raw: fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", r.path)}
		if err := f.bus.cl.ProduceSync(f.ctx, &kgo.Record{Topic: topic, Partition: r.part, Value: m.Payload()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	w := catalog.Window{Name: "tl", Topic: topic, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 1}, 1: {Start: 0, End: 2}},
		StartedAt: base, EndedAt: base.Add(2 * time.Second), Requests: 3, Messages: 3, BogusTimes: 1}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(f.ctx, w, false); err != nil {
		t.Fatal(err)
	}
	shards, err := PlanShards(w, 2)
	if err != nil {
		t.Fatal(err)
	}
	text := "version: 1\nname: tl\ntargets:\n  t: {url: \"" + srv.URL + "\"}\njobs:\n  replay:\n    source: {window: tl}\n    speed: 1\n    sink: {http: {target: t}}\n"
	spec := replaySpec("j-tl", "load-1", text)
	spec.Agents, spec.Shards = []string{"load-1", "load-2"}, 2
	if shards[0].Ranges[1].Len() > 0 {
		spec.Agents = []string{"load-2", "load-1"}
	}
	start := time.Now().Add(3 * time.Second).UTC()
	spec.Replay = &ReplayPlan{Window: w.Name, Topic: topic, Shards: shards, StartAt: start, T0: planT0(w, time.Now())}
	f.publishSpec(t, spec)
	js := f.finalJob(t, "j-tl", 40*time.Second)
	if js.State != Succeeded || js.Result == nil || js.Result.Sent != 3 {
		t.Fatalf("job %s %q, result %+v; want SUCCEEDED, 3 sent", js.State, js.Reason, js.Result)
	}
	mu.Lock()
	defer mu.Unlock()
	// A request is never sent before its instant: these bounds hold
	// however slow the machine.
	for path, due := range map[string]time.Time{"/p0": start, "/p1-bogus": start, "/p1": start.Add(2 * time.Second)} {
		if at := got[path]; at.Before(due) {
			t.Errorf("%s sent at start+%s, due at start+%s (the window's timeline)", path, at.Sub(start).Round(time.Millisecond), due.Sub(start))
		}
	}
}

// TestNoTimelineSaid: a replay job whose window has no capture time that
// is not bogus has no timeline its shards share (each sends its own first
// timed request at the start instant). Only jobs submit warned of it: the
// shards' results and the job's say it (Result.Timeline), a shard's log
// too, and jobs show, while the job runs (from its plan) and once it
// ended.
func TestNoTimelineSaid(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	f.replayAgent(t, "load-2", nil)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	const topic = "notimeline-http"
	if _, err := f.bus.Admin().CreateTopic(f.ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for i, part := range []int32{0, 1, 1} {
		// Bogus capture times only (a .gor file's zeros).
		path := fmt.Sprintf("/r%d", i)
		m := &message.Message{Kind: message.Request, ID: path, Time: 0, Raw: fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)}
		if err := f.bus.cl.ProduceSync(f.ctx, &kgo.Record{Topic: topic, Partition: part, Value: m.Payload()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	w := catalog.Window{Name: "notl", Topic: topic, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 1}, 1: {Start: 0, End: 2}},
		Requests: 3, Messages: 3, BogusTimes: 3}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(f.ctx, w, false); err != nil {
		t.Fatal(err)
	}
	shards, err := PlanShards(w, 2)
	if err != nil {
		t.Fatal(err)
	}
	text := "version: 1\nname: notl\ntargets:\n  t: {url: \"" + srv.URL + "\"}\njobs:\n  replay:\n    source: {window: notl}\n    sink: {http: {target: t}}\n"
	spec := replaySpec("j-notl", "load-1", text)
	spec.Agents, spec.Shards = []string{"load-1", "load-2"}, 2
	spec.Replay = &ReplayPlan{Window: w.Name, Topic: topic, Shards: shards, StartAt: time.Now().Add(time.Second).UTC(), T0: planT0(w, time.Now())}
	if !spec.Replay.T0.IsZero() {
		t.Fatalf("the plan has a T0 (%s): the test proves nothing", spec.Replay.T0)
	}
	f.publishSpec(t, spec)
	const note = `window "notl" has no capture time that is not bogus (` + message.BogusTimeRule + `): the shards share no timeline, each sends its own first timed request at the start instant`
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var running strings.Builder
	if err := (&Client{bus: f.bus, Out: &running}).Show("j-notl"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(running.String(), "  warning: "+note+"\n") {
		t.Errorf("jobs show of the job just submitted does not warn %q:\n%s", note, running.String())
	}
	js := f.finalJob(t, "j-notl", 40*time.Second)
	if js.State != Succeeded || js.Result == nil || js.Result.Sent != 3 {
		t.Fatalf("job %s %q, result %+v; want SUCCEEDED, 3 sent", js.State, js.Reason, js.Result)
	}
	if js.Result.Timeline != note {
		t.Errorf("the job's result's timeline: %q, want %q", js.Result.Timeline, note)
	}
	for i := range 2 {
		s, _ := f.bus.Status(shardKey("j-notl", i))
		if s.Result == nil || s.Result.Timeline != note {
			t.Errorf("shard %d's result does not say it shares no timeline: %+v", i, s.Result)
		}
		if !strings.Contains(s.Log, "warning: "+note) {
			t.Errorf("shard %d's log does not say it shares no timeline:\n%s", i, s.Log)
		}
	}
	var show strings.Builder
	if err := (&Client{bus: f.bus, Out: &show}).Show("j-notl"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(show.String(), "  warning: "+note+"\n") {
		t.Errorf("jobs show does not warn %q:\n%s", note, show.String())
	}
	// A job whose shards share one says nothing of it.
	spec.Replay.T0 = time.Now().Add(-time.Hour)
	if got := NoTimeline(spec); got != "" {
		t.Errorf("a plan with a T0 says %q", got)
	}
}
