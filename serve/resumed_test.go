package serve_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/serve"
	"github.com/replayctl/replayctl/stats"
)

// resumable is a replay job whose only shard an agent was running when it
// was killed, as that agent left it on the bus: the spec signed by serve's
// key, the job ASSIGNED, the shard RUNNING on agent with its first request
// answered (its resume point: request 2 of 2). resume starts that agent
// again, a real fleet agent in this process, which re-runs the shard from
// its resume point: it sends the second request only, and its result
// counts the first as resume-skipped.
type resumable struct {
	id, agent string
	hits      *atomic.Int64 // requests the target got
	resume    func()
}

func resumableJob(t *testing.T, l *loopback) resumable {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	r := resumable{id: "resumed-" + l.suffix, agent: "load-" + l.suffix, hits: new(atomic.Int64)}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { r.hits.Add(1) }))
	t.Cleanup(srv.Close)
	work := filepath.Join(t.TempDir(), "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	gor := fmt.Sprintf("1 a1 %d 0\nGET / HTTP/1.1\r\nHost: x\r\n\r\n%s1 a2 %d 0\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n%s",
		now.UnixNano(), gorfile.Separator, now.Add(100*time.Millisecond).UnixNano(), gorfile.Separator)
	if err := os.WriteFile(filepath.Join(work, "in.gor"), []byte(gor), 0o600); err != nil {
		t.Fatal(err)
	}
	// on-loss: warn: the job SUCCEEDS on totals that miss what the lost
	// run had answered (its result's partial says so).
	text := `version: 1
name: resumed
targets:
  t: {url: "` + srv.URL + `"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Join(work, "in.gor") + `}}
    on-loss: warn
    sink: {http: {target: t}}
`
	sp := fleet.Spec{JobID: r.id, Kind: fleet.KindReplay, Job: "replay", File: "resumed.yaml", Scenario: text, SHA256: fleet.ScenarioHash(text),
		Selector: fleet.Selector{"role": "load"}, Agents: []string{r.agent}, Shards: 1,
		IssuedAt: now.UTC(), ExpiresAt: now.UTC().Add(5 * time.Minute), Submitter: "token:ci (replayctl serve)"}
	rec, err := l.bus.Publish(ctx, fleet.JobsTopic, "spec/"+r.id, seal(t, sp, l.key))
	if err != nil {
		t.Fatal(err)
	}
	shard := 0
	for key, st := range map[string]fleet.Status{
		"job/" + r.id: {JobID: r.id, Kind: fleet.KindReplay, State: fleet.Assigned, Agents: sp.Agents, SpecOffset: rec.Offset},
		"job/" + r.id + "/shard/0": {JobID: r.id, Kind: fleet.KindReplay, Agent: r.agent, Shard: &shard, State: fleet.Running, SpecOffset: rec.Offset,
			Progress: &fleet.Progress{Line: "1 sent", Resume: &fleet.Resume{At: 1}}},
	} {
		if err := l.bus.PublishStatus(ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}
	r.resume = func() {
		t.Helper()
		log := &testutil.SyncBuffer{}
		a, err := fleet.NewAgent(fleet.AgentConfig{
			Name: r.agent, Labels: fleet.Labels{"role": "load"}, Allow: []string{fleet.KindReplay},
			Trust: []ed25519.PublicKey{l.key.Public().(ed25519.PublicKey)}, WorkDir: work, AllowTargets: []string{"127.0.0.1:*"},
			Kafka: l.kafka, Logger: slog.New(slog.NewTextHandler(log, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		t.Cleanup(func() {
			stop()
			<-done
			if t.Failed() {
				t.Logf("agent %s log:\n%s", r.agent, log.String())
			}
		})
	}
	return r
}

// TestResumedShardSaysSkipped: a replay shard re-run after its agent was
// lost (here: the agent restarted and resumed it) skips the requests its
// lost run had answered; GET /v1/jobs/{id} and the job's events say how
// many on the shard's part (resume_skipped), not only in its raw result's
// counters. The lost run's part and a shard not resumed have none.
func TestResumedShardSaysSkipped(t *testing.T) {
	l := startLoopback(t, kafkatest.Brokers(t)[0])
	r := resumableJob(t, l)
	r.resume()
	v := waitJob(t, l.base, l.read, r.id, 45*time.Second, func(v serve.JobView) bool { return v.State.Final() })
	if v.State != fleet.Succeeded || r.hits.Load() != 1 {
		t.Fatalf("job %s %q, the target got %d request(s): want SUCCEEDED, the shard resumed at its second request", v.State, v.Reason, r.hits.Load())
	}
	// Read as JSON by name (resume_skipped: the web UI reads that name).
	type part struct {
		Part          string      `json:"part"`
		State         fleet.State `json:"state"`
		ResumeSkipped int64       `json:"resume_skipped"`
	}
	var jv struct {
		Parts []part `json:"parts"`
	}
	if code := call(t, "GET", l.base+"/v1/jobs/"+r.id, l.read, nil, &jv); code != 200 {
		t.Fatalf("GET /v1/jobs/%s: %d", r.id, code)
	}
	got := map[string]int64{}
	for _, p := range jv.Parts {
		got[p.Part] = p.ResumeSkipped
	}
	if want := map[string]int64{"shard/0": 1, "shard/0/lost/0": 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GET /v1/jobs/%s: parts' resume_skipped %v, want %v", r.id, got, want)
	}
	// The events say it of the shard as its re-run ends (the web UI
	// updates the row from them), and of nothing else.
	var last *part
	for _, e := range readEvents(t, l.base+"/v1/jobs/"+r.id+"/events", l.read, 20*time.Second) {
		var p part
		if err := json.Unmarshal(e.Raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Part == "shard/0" {
			last = &p
		} else if p.ResumeSkipped != 0 {
			t.Errorf("event of %s (%s): resume_skipped %d, want none", p.Part, p.State, p.ResumeSkipped)
		}
	}
	if last == nil || last.State != fleet.Succeeded || last.ResumeSkipped != 1 {
		t.Errorf("the last event of shard/0: %+v, want SUCCEEDED with resume_skipped 1", last)
	}
	// A shard that was not resumed says nothing of it.
	shard := 0
	plain := "plain-" + l.suffix
	for key, st := range map[string]fleet.Status{
		"job/" + plain: {JobID: plain, Kind: fleet.KindReplay, State: fleet.Succeeded, At: time.Now().UTC(), Result: &fleet.Result{Sent: 2, OK: 2}},
		"job/" + plain + "/shard/0": {JobID: plain, Kind: fleet.KindReplay, Agent: "load-1", Shard: &shard, State: fleet.Succeeded, At: time.Now().UTC(),
			Result: &fleet.Result{Sent: 2, OK: 2, Counters: map[string]int64{"possible-duplicates": 0}}},
	} {
		if err := l.bus.PublishStatus(context.Background(), key, st); err != nil {
			t.Fatal(err)
		}
	}
	if body := getText(t, l.base+"/v1/jobs/"+plain, l.read); strings.Contains(body, "resume_skipped") {
		t.Errorf("GET /v1/jobs/%s (not resumed) says resume_skipped: %s", plain, body)
	}
}

// publishDuplicated writes the statuses of a replay job, id, whose only
// shard was re-run on a spare after its agent was lost and sent requests
// its lost run may have sent too: possible-duplicates 2, resume-skipped 1.
func publishDuplicated(t *testing.T, l *loopback, id string) {
	t.Helper()
	shard := 0
	res := &fleet.Result{Sent: 3, OK: 3, Counters: map[string]int64{"resume-skipped": 1, "possible-duplicates": 2}}
	for _, kv := range []struct {
		key string
		st  fleet.Status
	}{
		{"job/" + id + "/shard/0", fleet.Status{JobID: id, Kind: fleet.KindReplay, Agent: "load-2", Shard: &shard, State: fleet.Succeeded, Attempt: 1, At: time.Now().UTC(), Result: res}},
		{"job/" + id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Succeeded, At: time.Now().UTC(), Result: res}},
	} {
		if err := l.bus.PublishStatus(context.Background(), kv.key, kv.st); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumedShardSaysPossibleDuplicates: a shard re-run after its agent
// was lost says, on its part in GET /v1/jobs/{id} and in the job's events,
// how many requests it sent that its lost run may have sent too
// (possible_duplicates; the target may have had them twice): it was only
// in its raw result's counters, and jobs show said it.
func TestResumedShardSaysPossibleDuplicates(t *testing.T) {
	l := startLoopback(t, kafkatest.Brokers(t)[0])
	id := "dups-" + l.suffix
	publishDuplicated(t, l, id)
	type part struct {
		Part               string `json:"part"`
		PossibleDuplicates int64  `json:"possible_duplicates"`
	}
	var jv struct {
		Parts []part `json:"parts"`
	}
	if code := call(t, "GET", l.base+"/v1/jobs/"+id, l.read, nil, &jv); code != 200 {
		t.Fatalf("GET /v1/jobs/%s: %d", id, code)
	}
	if len(jv.Parts) != 1 || jv.Parts[0].PossibleDuplicates != 2 {
		t.Errorf("GET /v1/jobs/%s: parts %+v, want shard/0 with possible_duplicates 2", id, jv.Parts)
	}
	n := 0
	for _, e := range readEvents(t, l.base+"/v1/jobs/"+id+"/events", l.read, 20*time.Second) {
		var p part
		if err := json.Unmarshal(e.Raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Part == "shard/0" {
			n++
			if p.PossibleDuplicates != 2 {
				t.Errorf("event of shard/0: possible_duplicates %d, want 2", p.PossibleDuplicates)
			}
		}
	}
	if n == 0 {
		t.Error("no event of shard/0")
	}
}

// TestJobReportShowsBreakdowns: a fleet job's report (report.html) has
// the merged results by protocol and by gRPC method, as a run's HTML
// report has them: it had none.
func TestJobReportShowsBreakdowns(t *testing.T) {
	l := startLoopback(t, kafkatest.Brokers(t)[0])
	id := "breakdowns-" + l.suffix
	b := func(sent int64) report.Breakdown {
		return report.Breakdown{Requests: stats.ReportRequests{Sent: sent, OK: sent}, Latency: stats.ReportLatency{P50: 1, P99: 2}}
	}
	fail := b(2)
	fail.GRPCStatus = map[int]int64{14: 2}
	res := &fleet.Result{Sent: 5, OK: 5, Protocols: map[string]report.Breakdown{"HTTP/1.x": b(3), "HTTP/2.0": b(2)}, GRPC: map[string]report.Breakdown{"/p.S/Fail": fail}}
	if err := l.bus.PublishStatus(context.Background(), "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Succeeded, At: time.Now().UTC(), Result: res}); err != nil {
		t.Fatal(err)
	}
	html := getText(t, l.base+"/v1/jobs/"+id+"/report.html", l.read)
	for _, want := range []string{"By protocol and gRPC method", "HTTP/2.0", "/p.S/Fail", "14: 2"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestBrowserShowsResumedShard: the Job page, open while a shard's agent
// is lost and then resumes it, shows the shard's row going from the lost
// run's RUNNING to the re-run's SUCCEEDED without a reload, and its Result
// cell says how many requests the re-run skipped, answered by the lost
// run; so does the page opened again from History. A job whose re-run
// shard may have sent requests twice says how many. Real clicks, in
// Chromium, with no console error.
func TestBrowserShowsResumedShard(t *testing.T) {
	l := startLoopback(t, kafkatest.Brokers(t)[0])
	r := resumableJob(t, l)
	b := newBrowser(t)
	row := fmt.Sprintf(`#parts tr[data-part=%q]`, "shard/0")
	cell := func() string {
		t.Helper()
		return b.get("result of shard/0", chromedp.Text(row+` td:nth-child(5)`))
	}
	b.run("log in", chromedp.Navigate(l.base+"/"), chromedp.WaitVisible("#login-form"), chromedp.SendKeys("#token", l.read),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#main h1"))
	job := fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, r.id)
	b.run("history", b.history(r.id))
	// The agent was killed mid-shard: its row says RUNNING, 1 sent.
	b.run("job while its agent is gone", chromedp.Click(job), chromedp.WaitVisible(row), b.shot("resumed-00-agent-gone"))
	if got := b.get("shard/0 state", chromedp.Text(row+` td:nth-child(3)`)); got != "RUNNING" {
		t.Errorf("shard/0 reads %q before the resume, want RUNNING", got)
	}
	// The page keeps the shard's Result cell as it first shows SUCCEEDED:
	// drawn from the shard's event (the status topic has one partition,
	// so the shard's last record comes before the job's), before the
	// job's end makes the page read GET /v1/jobs/{id} again.
	b.get("watch the shard's row", chromedp.Evaluate[string](`(() => { window.firstDone = null;
		new MutationObserver(() => { const row = document.querySelector('#parts tr[data-part="shard/0"]');
			if (window.firstDone === null && row && row.cells[2].innerText.trim() === 'SUCCEEDED') window.firstDone = row.cells[4].innerText; })
		.observe(document.getElementById('parts'), { childList: true, subtree: true }); return 'ok' })()`))
	// The agent comes back and resumes the shard; the page follows.
	r.resume()
	b.run("the re-run ends", chromedp.WaitVisible(row+` .resumed`), chromedp.WaitVisible(`#parts tr[data-part="shard/0/lost/0"]`),
		chromedp.WaitVisible("#report-frame"), b.shot("resumed-01-live"))
	// The re-run may also have sent its one request before the lost run
	// was last seen alive (possible_duplicates, by the API).
	var jv struct {
		Parts []struct {
			Part               string `json:"part"`
			PossibleDuplicates int64  `json:"possible_duplicates"`
		} `json:"parts"`
	}
	if code := call(t, "GET", l.base+"/v1/jobs/"+r.id, l.read, nil, &jv); code != 200 {
		t.Fatalf("GET /v1/jobs/%s: %d", r.id, code)
	}
	want := "sent 1, errors 0\nresumed: 1 request skipped (answered by the lost run)"
	for _, p := range jv.Parts {
		if p.Part == "shard/0" && p.PossibleDuplicates == 1 {
			want += "\npossible duplicates: 1 request (the lost run may have sent it too)"
		}
	}
	if got := cell(); got != want {
		t.Errorf("shard/0's Result cell reads %q, want %q", got, want)
	}
	if got := b.get("the cell from the shard's event", chromedp.Evaluate[string](`String(window.firstDone)`)); got != want {
		t.Errorf("shard/0's Result cell, drawn from its event, read %q, want %q", got, want)
	}
	if got := b.get("shard/0 state", chromedp.Text(row+` td:nth-child(3)`)); got != "SUCCEEDED" {
		t.Errorf("shard/0 reads %q after the resume, want SUCCEEDED", got)
	}
	if got := b.get("lost run's result", chromedp.Text(`#parts tr[data-part="shard/0/lost/0"] td:nth-child(5)`)); got != "" {
		t.Errorf("the lost run's row has a Result cell %q, want none", got)
	}
	if color := b.get("note's colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#parts tr[data-part="shard/0"] .resumed')).color`)); color != "rgb(181, 71, 8)" {
		t.Errorf("the resumed note is %s, not the loss notes' colour (--warn)", color)
	}
	// Opened again from History: the same, from GET /v1/jobs/{id}.
	b.run("history again", b.history(r.id),
		chromedp.Click(job), chromedp.WaitVisible(row+` .resumed`), chromedp.WaitVisible("#report-frame"), b.shot("resumed-02-job"))
	if got := cell(); got != want {
		t.Errorf("shard/0's Result cell, the page opened again, reads %q, want %q", got, want)
	}
	if wide := b.get("page width", chromedp.Evaluate[string](`String(document.documentElement.scrollWidth > document.documentElement.clientWidth)`)); wide != "false" {
		t.Error("the Job page scrolls sideways with the resumed note")
	}
	// A shard re-run on a spare that may have sent requests its lost run
	// sent too says how many.
	dups := "dups-" + l.suffix
	publishDuplicated(t, l, dups)
	dupJob := fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, dups)
	b.run("a job with possible duplicates", b.history(dups),
		chromedp.Click(dupJob), chromedp.WaitVisible(row+` .duplicates`), b.shot("resumed-03-duplicates"))
	const wantDups = "sent 3, errors 0\nresumed: 1 request skipped (answered by the lost run)\npossible duplicates: 2 requests (the lost run may have sent them too)"
	if got := cell(); got != wantDups {
		t.Errorf("shard/0's Result cell reads %q, want %q", got, wantDups)
	}
	b.clean()
}
