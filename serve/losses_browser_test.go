package serve_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestBrowserShowsLosses: the Job page's parts table says what each host of
// a recording lost, by cause in its unit ("lost: kernel-drops 3 packets"),
// in the host's Result cell, and the job's header says what the job lost
// in all, SUCCEEDED under on-loss: warn included; a replay shard whose
// window was saved partial says so, and what it did not send. History says
// it of each job beside its state. A running part whose agent stopped is
// marked AGENT STOPPED beside its state, as jobs show marks it, and its
// job in History. The jobs are
// signed specs and the statuses agents publish; the pages are reached by
// clicks from History, in Chromium, with no console error.
func TestBrowserShowsLosses(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC()
	rec, rep, gone := "lossy-rec-"+l.suffix, "gappy-rep-"+l.suffix, "gone-rep-"+l.suffix
	goneAgent := "load-gone-" + l.suffix
	const gap = "saved partial: its recording lost kernel-drops 3 packets, spool-full 12 messages"
	const notSent = "1 request(s) not sent: their bodies were cut when recorded (max-body, or bytes the capture lost); sent as recorded, their heads would promise bytes that never come"
	web2 := map[string]int64{"kernel-drops": 3, "spool-full": 12, catalog.LostTotal: 15}
	for _, sp := range []fleet.Spec{
		{JobID: rec, Kind: fleet.KindRecord, Job: "record", File: "record.yaml", Selector: fleet.Selector{"role": "web"},
			Recording: &fleet.RecordingPlan{ID: "r-" + l.suffix, Window: "peak-" + l.suffix}},
		{JobID: rep, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Selector: fleet.Selector{"role": "load"}, Shards: 2},
		{JobID: gone, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Agents: []string{goneAgent}},
	} {
		sp.IssuedAt, sp.ExpiresAt, sp.Submitter = now, now.Add(time.Minute), "token:ci (replayctl serve)"
		l.publish(t, sp.JobID, sp.Kind, seal(t, sp, l.key))
	}
	one, two := 0, 1
	for key, st := range map[string]fleet.Status{
		"job/" + rec: {JobID: rec, Kind: fleet.KindRecord, State: fleet.Succeeded, Agents: []string{"web-1", "web-2"}, At: now,
			Result: &fleet.Result{Requests: 6, Responses: 6, Written: 12, Window: "peak-" + l.suffix, Lost: web2}},
		"job/" + rec + "/agent/web-1": {JobID: rec, Kind: fleet.KindRecord, Agent: "web-1", State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Requests: 3, Responses: 3, Written: 6}},
		"job/" + rec + "/agent/web-2": {JobID: rec, Kind: fleet.KindRecord, Agent: "web-2", State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Requests: 3, Responses: 3, Written: 6, Lost: web2}},
		"job/" + rep: {JobID: rep, Kind: fleet.KindReplay, State: fleet.Succeeded, Agents: []string{"load-1", "load-2"}, At: now,
			Result: &fleet.Result{Sent: 5, OK: 5, SourceGaps: []string{gap}, NotSent: []string{notSent}}},
		"job/" + rep + "/shard/0": {JobID: rep, Kind: fleet.KindReplay, Agent: "load-1", Shard: &one, State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Sent: 2, OK: 2, SourceGaps: []string{gap}, NotSent: []string{notSent}}},
		"job/" + rep + "/shard/1": {JobID: rep, Kind: fleet.KindReplay, Agent: "load-2", Shard: &two, State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Sent: 3, OK: 3}},
		"job/" + gone: {JobID: gone, Kind: fleet.KindReplay, State: fleet.Assigned, Agents: []string{goneAgent}, At: now},
		"job/" + gone + "/shard/0": {JobID: gone, Kind: fleet.KindReplay, Agent: goneAgent, Shard: &one, State: fleet.Running, At: now,
			Progress: &fleet.Progress{Line: "sent 7"}},
	} {
		if err := l.bus.PublishStatus(ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}
	// The agent of the running job's shard stopped (its last heartbeat
	// says so) and left it RUNNING.
	if _, err := l.bus.Publish(ctx, fleet.AgentsTopic, goneAgent, fleet.Heartbeat{Name: goneAgent, Labels: fleet.Labels{"role": "load"}, At: now, Stopped: true}); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	cell := func(part string) string {
		t.Helper()
		return b.get("result of "+part, chromedp.Text(fmt.Sprintf(`#parts tr[data-part=%q] td:nth-child(5)`, part)))
	}
	b.run("log in", chromedp.Navigate(l.base+"/"), chromedp.WaitVisible("#login-form"), chromedp.SendKeys("#token", l.read),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#main h1"))
	b.run("history", b.history(rec, rep))

	// History says what each job lost or lacks beside its state: a
	// SUCCEEDED recording lost data too.
	histRow := func(id string) string {
		t.Helper()
		return b.get("history row of "+id, chromedp.Text(fmt.Sprintf(`#jobs tr[data-job=%q] td:nth-child(3)`, id)))
	}
	b.run("history screenshot", b.shot("losses-00-history"))
	if got, want := histRow(rec), "SUCCEEDED\nlost: kernel-drops 3 packets, spool-full 12 messages"; got != want {
		t.Errorf("History shows the lossy recording as %q, want %q", got, want)
	}
	if got, want := histRow(rep), "SUCCEEDED\npartial window"; got != want {
		t.Errorf("History shows the replay of a partial window as %q, want %q", got, want)
	}

	// A recording: one host lost packets and messages, the other nothing.
	b.run("record job", chromedp.Click(fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, rec)), chromedp.WaitVisible(`#parts tr[data-part="agent/web-2"]`),
		chromedp.WaitVisible("#report-frame"), b.shot("losses-01-record-job"))
	if got, want := cell("agent/web-2"), "requests 3\nlost: kernel-drops 3 packets, spool-full 12 messages"; got != want {
		t.Errorf("web-2's Result cell reads %q, want %q", got, want)
	}
	if got := cell("agent/web-1"); got != "requests 3" {
		t.Errorf("web-1 (lost nothing) reads %q, want %q", got, "requests 3")
	}
	if got, want := b.get("job state", chromedp.Text("#job-state")), "SUCCEEDED lost: kernel-drops 3 packets, spool-full 12 messages"; got != want {
		t.Errorf("the job's state reads %q, want %q", got, want)
	}

	// A replay of a partial window: the shard that read it says so.
	b.run("back to history", b.history(rep),
		chromedp.Click(fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, rep)), chromedp.WaitVisible(`#parts tr[data-part="shard/1"]`),
		chromedp.WaitVisible("#report-frame"), b.shot("losses-02-replay-job"))
	if got, want := cell("shard/0"), "sent 2, errors 0\npartial window: "+gap+"\n"+notSent; got != want {
		t.Errorf("shard 0's Result cell reads %q, want %q", got, want)
	}
	if got := cell("shard/1"); got != "sent 3, errors 0" {
		t.Errorf("shard 1 (a complete read) reads %q", got)
	}
	// The long lines wrap in their cell: the page does not scroll sideways.
	if wide := b.get("page width", chromedp.Evaluate[string](`String(document.documentElement.scrollWidth > document.documentElement.clientWidth)`)); wide != "false" {
		t.Error("the Job page scrolls sideways with a shard's partial-window lines")
	}
	if strings.Contains(cell("shard/1"), "partial") {
		t.Error("a shard that read all its window says partial")
	}

	// A running shard whose agent stopped: History marks its job, the
	// Job page the shard, beside its state.
	b.run("history of the job whose agent stopped", b.history(gone))
	if got, want := histRow(gone), "RUNNING\nAGENT STOPPED"; got != want {
		t.Errorf("History shows the job whose agent stopped as %q, want %q", got, want)
	}
	b.run("job whose agent stopped", chromedp.Click(fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, gone)), chromedp.WaitVisible(`#parts tr[data-part="shard/0"] .agent-gone`),
		b.shot("losses-03-agent-stopped"))
	state := b.get("state of shard/0", chromedp.Text(`#parts tr[data-part="shard/0"] td:nth-child(3)`))
	if !regexp.MustCompile(`^RUNNING\nAGENT STOPPED at .+ \(\d+ s ago\); a live agent that trusts the job ends this part 45s after that$`).MatchString(state) {
		t.Errorf("the state of the shard whose agent stopped reads %q", state)
	}
	if color := b.get("the mark's colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#parts .agent-gone')).color`)); color != "rgb(180, 35, 24)" {
		t.Errorf("the AGENT STOPPED mark is %s, not red (--bad)", color)
	}
	b.clean()
}

// TestBrowserShowsPartialResults: a replay job whose merged totals miss
// the results a lost run had answered (its result's partial: the shard
// was resumed elsewhere and did not send those requests again) says so in
// the web UI whatever its state: History notes "partial results" beside
// the state, the lines in its title, and the Job page shows the note in
// its header and the lines themselves, as its report lists them. The job
// that matters is SUCCEEDED (on-loss: warn accepts partial totals): only
// the report said it. The pages are reached by clicks from History, in
// Chromium, with no console error.
func TestBrowserShowsPartialResults(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC()
	warned, failed := "warned-"+l.suffix, "refused-"+l.suffix
	const line = "shard 0: the results of 58 request(s) answered by its lost run (attempt 0 on load-1) are not in these totals: they were lost with it, and the re-run did not send those requests again (resume-skipped)"
	for _, id := range []string{warned, failed} {
		sp := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Selector: fleet.Selector{"role": "load"}, Shards: 2,
			IssuedAt: now, ExpiresAt: now.Add(time.Minute), Submitter: "token:ci (replayctl serve)"}
		l.publish(t, sp.JobID, sp.Kind, seal(t, sp, l.key))
	}
	// The shards as their last runs published them: shard 0 re-run on
	// load-2 after load-1 was lost, skipping what that run had answered.
	zero, one := 0, 1
	shards := []fleet.Status{
		{Kind: fleet.KindReplay, Agent: "load-2", Shard: &zero, Attempt: 1, State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Sent: 42, OK: 42, State: stateOf(t, 42), Counters: map[string]int64{"resume-skipped": 58}}},
		{Kind: fleet.KindReplay, Agent: "load-3", Shard: &one, State: fleet.Succeeded, At: now,
			Result: &fleet.Result{Sent: 100, OK: 100, State: stateOf(t, 100), Counters: map[string]int64{}}},
	}
	merged, err := fleet.MergeShards("replay", shards)
	if err != nil {
		t.Fatal(err)
	}
	merged.Partial, merged.OnLoss = []string{line}, "warn"
	refused := *merged
	refused.OnLoss = ""
	statuses := map[string]fleet.Status{
		"job/" + warned: {JobID: warned, Kind: fleet.KindReplay, State: fleet.Succeeded, Agents: []string{"load-1", "load-2", "load-3"}, At: now, Result: merged},
		"job/" + failed: {JobID: failed, Kind: fleet.KindReplay, State: fleet.Failed, Agents: []string{"load-1", "load-2", "load-3"}, At: now,
			Reason: "the merged results are partial: " + line + "; on-loss: warn accepts partial totals", Result: &refused},
	}
	for _, s := range shards {
		s.JobID = warned
		statuses[fmt.Sprintf("job/%s/shard/%d", warned, *s.Shard)] = s
	}
	for key, st := range statuses {
		if err := l.bus.PublishStatus(ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t)
	b.run("log in", chromedp.Navigate(l.base+"/"), chromedp.WaitVisible("#login-form"), chromedp.SendKeys("#token", l.read),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#main h1"))
	b.run("history", b.history(warned, failed), b.shot("partial-00-history"))

	// History: the note beside the state, SUCCEEDED or FAILED, the lines
	// in its title (a tooltip).
	for _, id := range []string{warned, failed} {
		state := map[string]string{warned: "SUCCEEDED", failed: "FAILED"}[id]
		if got, want := b.get("history row of "+id, chromedp.Text(fmt.Sprintf(`#jobs tr[data-job=%q] td:nth-child(3)`, id))), state+"\npartial results"; got != want {
			t.Errorf("History shows the job with partial totals %s as %q, want %q", id, got, want)
		}
		title := b.get("title of "+id+"'s note", chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector('#jobs tr[data-job=%q] .job-loss') || {}).title || ''`, id)))
		if title != line {
			t.Errorf("the partial-results note of %s has title %q, want %q", id, title, line)
		}
	}

	// The Job page of the SUCCEEDED one: the note in its header, the
	// lines in full, the report's Incomplete alike.
	b.run("job", chromedp.Click(fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, warned)), chromedp.WaitVisible(`#parts tr[data-part="shard/1"]`),
		chromedp.WaitVisible("#report-frame"), chromedp.WaitVisible("#job-partial"), b.shot("partial-01-job"))
	if got, want := b.get("job state", chromedp.Text("#job-state")), "SUCCEEDED partial results"; got != want {
		t.Errorf("the job's state reads %q, want %q", got, want)
	}
	if got, want := b.get("partial lines", chromedp.Text("#job-partial")), "partial results: "+line; got != want {
		t.Errorf("the Job page's partial lines read %q, want %q", got, want)
	}
	if color := b.get("partial lines' colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#job-partial div')).color`)); color != "rgb(181, 71, 8)" {
		t.Errorf("the partial lines are %s, not the loss notes' colour (--warn)", color)
	}
	if wide := b.get("page width", chromedp.Evaluate[string](`String(document.documentElement.scrollWidth > document.documentElement.clientWidth)`)); wide != "false" {
		t.Error("the Job page scrolls sideways with the partial lines")
	}
	report := b.get("report text", chromedp.Evaluate[string](`new Promise(ok => { const f = document.getElementById('report-frame'); const read = () => { const t = f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : ''; if (t.includes('Incomplete')) ok(t); else setTimeout(read, 100); }; read(); })`, chromedp.EvalAwaitPromise))
	if !strings.Contains(report, line) {
		t.Errorf("the report on the Job page lacks the partial line:\n%s", report)
	}

	// The FAILED one: its reason says it, and the note and lines too.
	b.run("failed job", b.history(failed),
		chromedp.Click(fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, failed)), chromedp.WaitVisible("#job-partial"), b.shot("partial-02-failed-job"))
	if got, want := b.get("partial lines", chromedp.Text("#job-partial")), "partial results: "+line; got != want {
		t.Errorf("the FAILED job's partial lines read %q, want %q", got, want)
	}
	b.clean()
}
