package fleet

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/message"
)

// breakdownTarget is a loopback target speaking HTTP/1.1 and HTTP/2
// (h2c): a gRPC call of /p.S/Fail answers grpc-status 14, any other gRPC
// call 0, anything else 200.
func breakdownTarget(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			w.WriteHeader(200)
			return
		}
		if r.URL.Path == "/p.S/Fail" {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "14")
			w.Header().Set("Grpc-Message", "unavailable")
			w.WriteHeader(200)
			return
		}
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		_, _ = w.Write(body)
		w.Header().Set("Grpc-Status", "0")
	}), &http2.Server{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// breakdownWindow saves window name on a new topic of two partitions, one
// a shard: partition 0 holds GET /a (HTTP/1.1) and a gRPC Check call,
// partition 1 GET /b, a Check call and a /p.S/Fail call, each request with
// its recorded response (200).
func breakdownWindow(t *testing.T, f *idFleet, name string) catalog.Window {
	t.Helper()
	topic := name + "-http"
	if _, err := f.bus.Admin().CreateTopic(f.ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	grpcCall := func(path string) string {
		return "POST " + path + " HTTP/2.0\r\nHost: a\r\ncontent-type: application/grpc\r\nte: trailers\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00"
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	reqs := []struct {
		part int32
		raw  string
	}{
		{0, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"},
		{0, grpcCall("/grpc.health.v1.Health/Check")},
		{1, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"},
		{1, grpcCall("/grpc.health.v1.Health/Check")},
		{1, grpcCall("/p.S/Fail")},
	}
	ends := map[int32]int64{}
	for i, r := range reqs {
		at := base.Add(time.Duration(i) * time.Millisecond).UnixNano()
		id := fmt.Sprintf("r%d", i)
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		if strings.Contains(r.raw, "HTTP/2.0") {
			resp = "HTTP/2.0 200 OK\r\ncontent-type: application/grpc\r\nContent-Length: 0\r\n\r\n"
		}
		for _, m := range []*message.Message{
			{Kind: message.Request, ID: id, Time: at, Raw: []byte(r.raw)},
			{Kind: message.Response, ID: id, Time: at + int64(time.Millisecond), Latency: int64(time.Millisecond), Raw: []byte(resp)},
		} {
			if err := f.bus.cl.ProduceSync(f.ctx, &kgo.Record{Topic: topic, Partition: r.part, Value: m.Payload()}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			ends[r.part]++
		}
	}
	w := catalog.Window{Name: name, Topic: topic, Partitions: map[int32]catalog.Range{0: {Start: 0, End: ends[0]}, 1: {Start: 0, End: ends[1]}},
		StartedAt: base, EndedAt: base.Add(5 * time.Millisecond), Requests: int64(len(reqs)), Responses: int64(len(reqs)), Messages: 2 * int64(len(reqs))}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(f.ctx, w, false); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestShardedAssertionsReadEverything: a replay job run as two shards
// whose assertions read every member of the summary a single run's
// assertions read (requests, errors, status, latency, rate, lateness,
// diff, duration, protocols[…] and grpc[…]) is held to the shards' results
// merged: the assertions that hold only on the merged totals pass, and
// those that do not fail, naming the value they read. protocols[…] and
// grpc[…] read zero on a merged summary: assertions on them failed when
// they held on the merged totals (protocols["HTTP/2.0"].requests.sent == 3)
// and passed when they did not (grpc["/p.S/Fail"].grpc_status[14] == 0).
func TestShardedAssertionsReadEverything(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	f.replayAgent(t, "load-2", nil)
	target := breakdownTarget(t)
	w := breakdownWindow(t, f, "bd")
	shards, err := PlanShards(w, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Every member of exprenv.Summary, at values only the merged totals
	// have (each shard replays one partition).
	hold := []string{
		`requests.sent == 5 && requests.ok == 5 && requests.errors == 0`,
		`errors.count == 0 && errors.rate == 0`,
		`status[200] == 5`,
		`latency.p50 > duration("0s") && latency.p90 >= latency.p50 && latency.p99 >= latency.p90 && latency.p999 >= latency.p99 && latency.max >= latency.p999 && latency.mean > duration("0s")`,
		`rate.achieved > 0 && rate.scheduled >= 0`,
		`lateness.max >= lateness.p99 && lateness.p99 >= lateness.p50`,
		// The recorded gRPC answers have no grpc-status: the 3 calls differ.
		`diff.compared == 5 && diff.mismatches == 3 && diff.rate == 0.6`,
		`duration > duration("0s")`,
		`protocols["HTTP/1.x"].requests.sent == 2 && protocols["HTTP/2.0"].requests.sent == 3 && protocols["HTTP/2.0"].status[200] == 3`,
		`protocols["HTTP/2.0"].latency.max > duration("0s") && protocols["HTTP/1.x"].errors.count == 0`,
		`grpc["/grpc.health.v1.Health/Check"].requests.ok == 2 && grpc["/grpc.health.v1.Health/Check"].grpc_status[0] == 2`,
		`grpc["/p.S/Fail"].grpc_status[14] == 1 && grpc["/p.S/Fail"].latency.p50 > duration("0s")`,
	}
	for _, tc := range []struct {
		name    string
		asserts []string
		want    State
		failed  []string // in the job's reason
	}{
		{"held", hold, Succeeded, nil},
		{"failed", []string{
			`requests.sent == 5`,
			`protocols["HTTP/2.0"].requests.sent == 2`,
			`grpc["/p.S/Fail"].grpc_status[14] == 0`,
			`protocols["HTTP/1.x"].requests.sent == 2`,
		}, AssertFailed, []string{
			`protocols["HTTP/2.0"].requests.sent == 2  (protocols["HTTP/2.0"].requests.sent = 3, want == 2)`,
			`grpc["/p.S/Fail"].grpc_status[14] == 0  (grpc["/p.S/Fail"].grpc_status[14] = 1, want == 0)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var as strings.Builder
			for _, a := range tc.asserts {
				fmt.Fprintf(&as, "      - '%s'\n", a)
			}
			text := "version: 1\nname: bd\ntargets:\n  t: {url: \"" + target + "\"}\njobs:\n  replay:\n    source: {window: bd}\n    speed: max\n" +
				"    sink: {http: {target: t, protocol: auto}}\n    compare: {status: true}\n    assert:\n" + as.String()
			id := "j-bd-" + tc.name
			spec := replaySpec(id, "load-1", text)
			spec.Agents, spec.Shards = []string{"load-1", "load-2"}, 2
			spec.Replay = &ReplayPlan{Window: w.Name, Topic: w.Topic, Shards: shards, StartAt: time.Now().Add(2 * time.Second).UTC(), T0: planT0(w, time.Now())}
			f.publishSpec(t, spec)
			js := f.finalJob(t, id, 40*time.Second)
			if js.Result == nil || js.Result.Sent != 5 {
				t.Fatalf("job %s %q, result %+v; want 5 sent", js.State, js.Reason, js.Result)
			}
			for i := range 2 {
				if s, _ := f.bus.Status(shardKey(id, i)); s.Result == nil || s.Result.Sent == 5 || s.Result.Sent == 0 {
					t.Fatalf("shard %d: %+v; want part of the requests", i, s.Result)
				}
			}
			if js.State != tc.want {
				t.Fatalf("job %s %q, want %s", js.State, js.Reason, tc.want)
			}
			for _, f := range tc.failed {
				if !strings.Contains(js.Reason, f) {
					t.Errorf("the job's reason does not say %q:\n%s", f, js.Reason)
				}
			}
			if tc.want == AssertFailed && len(js.Result.Failed) != len(tc.failed) {
				t.Errorf("failed assertions %q, want %d", js.Result.Failed, len(tc.failed))
			}
			if p := js.Result.Protocols["HTTP/2.0"]; p.Requests.Sent != 3 || p.State == nil {
				t.Errorf("merged result's HTTP/2.0 breakdown %+v, want 3 sent with its state", p)
			}
			if g := js.Result.GRPC["/p.S/Fail"]; g.GRPCStatus[14] != 1 {
				t.Errorf("merged result's /p.S/Fail breakdown %+v, want grpc-status 14 once", g)
			}
			// jobs show says them, as report merge does.
			var show strings.Builder
			if err := (&Client{bus: f.bus, Out: &show}).Show(id); err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`\n  protocol  HTTP/2.0: sent 3  errors \d+  p99 \S+\n`).MatchString(show.String()) ||
				!regexp.MustCompile(`\n  grpc      /p.S/Fail: sent 1  errors \d+  p99 \S+  grpc-status 14: 1\n`).MatchString(show.String()) {
				t.Errorf("jobs show does not say the breakdowns:\n%s", show.String())
			}
		})
	}
}
