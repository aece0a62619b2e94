package serve_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/serve"
	"github.com/replayctl/replayctl/stats"
)

// TestLossyWindowIsPartial: a window whose recording lost messages (saved
// partial in the catalog by `replayctl run`, no fleet job) is partial in
// GET /v1/windows and GET /v1/windows/{name}, with what it lost by cause
// in its unit; a complete one is not.
func TestLossyWindowIsPartial(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := catalog.Open(ctx, target.Client(t), kadm.NewClient(target.Client(t)), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	lossy, whole := "lossy-"+l.suffix, "whole-"+l.suffix
	for _, w := range []catalog.Window{
		{Name: lossy, Topic: "t-" + l.suffix, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}, Requests: 5, Responses: 5,
			Partial: true, Lost: map[string]int64{"kernel-drops": 3, "spool-full": 2, catalog.LostTotal: 5}},
		{Name: whole, Topic: "t-" + l.suffix, Partitions: map[int32]catalog.Range{0: {Start: 10, End: 20}}, Requests: 5, Responses: 5},
	} {
		if err := cat.Save(ctx, w, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cat.Remove(context.Background(), w.Name) })
	}
	const reason = "the recording lost kernel-drops 3 packets, spool-full 2 messages"
	var w serve.WindowView
	if code := call(t, "GET", l.base+"/v1/windows/"+lossy, l.read, nil, &w); code != 200 {
		t.Fatalf("GET /v1/windows/%s: %d", lossy, code)
	}
	if !w.Partial || len(w.PartialReasons) != 1 || w.PartialReasons[0] != reason {
		t.Errorf("GET /v1/windows/%s: partial %v %q, want true [%q]", lossy, w.Partial, w.PartialReasons, reason)
	}
	var ws []serve.WindowView
	if code := call(t, "GET", l.base+"/v1/windows", l.read, nil, &ws); code != 200 {
		t.Fatalf("GET /v1/windows: %d", code)
	}
	seen := 0
	for _, v := range ws {
		switch v.Name {
		case lossy:
			seen++
			if !v.Partial || !strings.Contains(strings.Join(v.PartialReasons, ";"), reason) {
				t.Errorf("GET /v1/windows: %s partial %v %q", lossy, v.Partial, v.PartialReasons)
			}
		case whole:
			seen++
			if v.Partial || len(v.PartialReasons) > 0 {
				t.Errorf("GET /v1/windows: complete window %s partial %v %q", whole, v.Partial, v.PartialReasons)
			}
		}
	}
	if seen != 2 {
		t.Errorf("GET /v1/windows lists %d of the 2 windows", seen)
	}
}

// TestJobReportsTellLosses: a finished fleet job's report (report.html,
// which the web UI shows, and report.json) says what a replay's window
// lacks and what it did not send, and what a recording lost, by host: its
// result's source-gaps, not-sent and lost were only in the raw result. The
// job, its parts and its events carry what they lost as text (lost_text).
func TestJobReportsTellLosses(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC()
	const gap = "saved partial: its recording lost spool-full 3 messages"
	const notSent = "1 request(s) not sent: their bodies were cut when recorded"
	rep, rec, part := "gaps-"+l.suffix, "lossy-rec-"+l.suffix, "partial-"+l.suffix
	const partial = "shard 0: the results of 58 request(s) answered by its lost run (attempt 0 on load-1) are not in these totals"
	merged, err := fleet.MergeShards("replay", []fleet.Status{{Result: &fleet.Result{State: stateOf(t, 3), Counters: map[string]int64{}}}})
	if err != nil {
		t.Fatal(err)
	}
	merged.Partial = []string{partial}
	lost := map[string]int64{"file-cut-short": 1, catalog.LostTotal: 1}
	for key, st := range map[string]fleet.Status{
		"job/" + rep: {JobID: rep, Kind: fleet.KindReplay, State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Sent: 2, OK: 2, SourceGaps: []string{gap}, NotSent: []string{notSent}}},
		"job/" + part: {JobID: part, Kind: fleet.KindReplay, State: fleet.Succeeded, At: now, Result: merged},
		"job/" + rec: {JobID: rec, Kind: fleet.KindRecord, State: fleet.Succeeded, Agents: []string{"web-1", "web-2"}, At: now,
			Result: &fleet.Result{Requests: 6, Responses: 6, Written: 12, Window: "lossy", Lost: lost}},
		"job/" + rec + "/agent/web-1": {JobID: rec, Kind: fleet.KindRecord, Agent: "web-1", State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Requests: 3, Responses: 3, Written: 6}},
		"job/" + rec + "/agent/web-2": {JobID: rec, Kind: fleet.KindRecord, Agent: "web-2", State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Requests: 3, Responses: 3, Written: 6, Lost: lost}},
	} {
		if err := l.bus.PublishStatus(ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}
	html := getText(t, l.base+"/v1/jobs/"+rep+"/report.html", l.read)
	for _, want := range []string{"Partial window", "<li>" + gap + "</li>", "<li>" + notSent + "</li>"} {
		if !strings.Contains(html, want) {
			t.Errorf("replay report.html lacks %q", want)
		}
	}
	var m serve.MergedReport
	if code := call(t, "GET", l.base+"/v1/jobs/"+rep+"/report.json", l.read, nil, &m); code != 200 || len(m.SourceGaps) != 1 || m.SourceGaps[0] != gap || len(m.NotSent) != 1 {
		t.Errorf("replay report.json: %d source_gaps %q not_sent %q", code, m.SourceGaps, m.NotSent)
	}
	// A replay whose totals miss a lost run's results (accepted with
	// on-loss: warn) is incomplete, and its latency note says so.
	html = getText(t, l.base+"/v1/jobs/"+part+"/report.html", l.read)
	for _, want := range []string{partial, "Incomplete"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html of a partial job lacks %q", want)
		}
	}
	m = serve.MergedReport{}
	if code := call(t, "GET", l.base+"/v1/jobs/"+part+"/report.json", l.read, nil, &m); code != 200 || len(m.Problems) != 1 || !strings.Contains(m.LatencyNote, "without the results of the lost runs") {
		t.Errorf("report.json of a partial job: %d problems %q latency_note %q", code, m.Problems, m.LatencyNote)
	}
	// A recording's report counts messages: 12 captured, 12 written (it
	// said ok 12 of sent 6, the requests alone).
	m = serve.MergedReport{}
	if code := call(t, "GET", l.base+"/v1/jobs/"+rec+"/report.json", l.read, nil, &m); code != 200 || m.Requests.Sent != 12 || m.Requests.OK != 12 || m.Requests.Errors != 0 {
		t.Errorf("record report.json: %d requests %+v, want sent 12, ok 12", code, m.Requests)
	}
	// The job and the part that lost say what, in units (lost_text: the
	// web UI shows it as it is), in GET /v1/jobs/{id} and in its events.
	const lostText = "file-cut-short 1 packet"
	var jv serve.JobView
	if code := call(t, "GET", l.base+"/v1/jobs/"+rec, l.read, nil, &jv); code != 200 {
		t.Fatalf("GET /v1/jobs/%s: %d", rec, code)
	}
	if jv.LostText != lostText {
		t.Errorf("job %s lost_text %q, want %q", rec, jv.LostText, lostText)
	}
	for _, p := range jv.Parts {
		if want := map[string]string{"agent/web-2": lostText}[p.Part]; p.LostText != want {
			t.Errorf("part %s lost_text %q, want %q", p.Part, p.LostText, want)
		}
	}
	for _, e := range readEvents(t, l.base+"/v1/jobs/"+rec+"/events", l.read, 20*time.Second) {
		if want := map[string]string{"job": lostText, "agent/web-2": lostText}[e.Data.Part]; e.Data.LostText != want {
			t.Errorf("event of %s: lost_text %q, want %q", e.Data.Part, e.Data.LostText, want)
		}
	}
	html = getText(t, l.base+"/v1/jobs/"+rec+"/report.html", l.read)
	for _, want := range []string{"<th>lost</th><td>file-cut-short 1 packet</td>", "<th>window</th><td>lossy (saved partial)</td>", "<td>web-2</td><td>SUCCEEDED</td><td>3</td><td>file-cut-short 1 packet</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("record report.html lacks %q:\n%s", want, html)
		}
	}
}

// stateOf is the lossless stats of a run that sent n requests, answered
// in 1 ms each.
func stateOf(t *testing.T, n int) *stats.State {
	t.Helper()
	origin := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rec := stats.New(stats.Config{Origin: origin})
	for i := range n {
		at := origin.Add(time.Duration(i) * time.Millisecond)
		rec.Record(stats.Result{Scheduled: at, Start: at, Status: 200, Latency: time.Millisecond})
	}
	st := rec.State()
	return &st
}
