package fleet

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
