package serve_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
)

// TestBrowserWalk walks every page as a new user would, in Chromium, over
// a fleet with long values: an agent with long labels, a job ID and a
// version; a window with a long name and every loss cause; a job with a
// long reason, a host that lost by every cause and a reason with no space
// to break at. No page scrolls sideways, and short values are not broken
// to make room. A page with nothing to list says so (no agent yet, a job no
// agent has taken, a job with no spec); a finished job shows its event
// log; New replay says what a partial recording lacks once it is picked.
// No console error.
func TestBrowserWalk(t *testing.T) {
	e := setup(t, "")
	base := e.server(t)
	b := newBrowser(t)
	b.run("log in", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-form"), chromedp.SendKeys("#token", e.tok["admin"]),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#windows"))
	// No agent has sent a heartbeat yet.
	b.run("no agents", chromedp.Click(`#nav a[data-page="agents"]`), chromedp.WaitVisible("#no-agents"), b.shot("walk-01-no-agents"))

	bus := e.bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC()
	for _, h := range []fleet.Heartbeat{
		{Name: "busy-" + e.suffix, Labels: fleet.Labels{"role": "load", "zone": "eu-west-1a-" + strings.Repeat("long", 12), "team": "checkout-platform-reliability"},
			Allow: []string{fleet.KindReplay, fleet.KindRecord}, At: now, Job: "job-" + strings.Repeat("0123456789abcdef", 6), Running: 2, Queued: 3, MaxConcurrent: 2, MaxSpecTTL: fleet.Duration(time.Hour), Version: "v1.2.3-45-gdeadbeef-dirty"},
		{Name: "idle-" + e.suffix, Allow: []string{fleet.KindReplay}, At: now, MaxConcurrent: 4, MaxSpecTTL: fleet.Duration(fleet.DefaultMaxSpecTTL)},
		{Name: "older-" + e.suffix, Allow: []string{fleet.KindRecord}, At: now},
	} {
		if _, err := bus.Publish(ctx, fleet.AgentsTopic, h.Name, h); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Open(ctx, bus.Plain(), bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	every := map[string]int64{"kernel-drops": 123456, "queue-overflow": 7, "file-cut-short": 1, "capture-gaps": 3, "streams-dropped": 12, "h2-hpack-errors": 2,
		"spool-full": 99999, "too-large": 4, "undeliverable": 5, "unredactable": 6, "header-too-long": 8, "bad-payloads": 9, "h2-unrenderable": 10, catalog.LostTotal: 223524}
	lossy := "lossy_" + e.suffix + "_" + strings.Repeat("0123456789", 6)
	if err := cat.Save(ctx, catalog.Window{Name: lossy, Topic: "traffic_" + e.suffix + "_" + strings.Repeat("abcdefghij", 5),
		Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}, Requests: 5, Responses: 5, Partial: true, Lost: every,
		Hosts: []string{"web-1.example.internal", "web-2.example.internal"}, StartedAt: now.Add(-time.Minute), EndedAt: now}, false); err != nil {
		t.Fatal(err)
	}
	rec, pend, armed := "walk-rec-"+e.suffix, "walk-pending-"+e.suffix, "walk-armed-"+e.suffix
	noSpace := strings.Repeat("averyverylongtokenwithoutspaces", 6)
	zero, one := 0, 1
	for key, st := range map[string]fleet.Status{
		// A replay whose shards armed and wait for their start instant:
		// its own record still says ASSIGNED.
		"job/" + armed:              {JobID: armed, Kind: fleet.KindReplay, State: fleet.Assigned, Agents: []string{"load-1", "load-2"}, At: now},
		"job/" + armed + "/shard/0": {JobID: armed, Kind: fleet.KindReplay, Agent: "load-1", Shard: &zero, State: fleet.Armed, At: now},
		"job/" + armed + "/shard/1": {JobID: armed, Kind: fleet.KindReplay, Agent: "load-2", Shard: &one, State: fleet.Armed, At: now},
		"job/" + rec: {JobID: rec, Kind: fleet.KindRecord, State: fleet.Failed, Reason: "web-3: " + strings.Repeat("a long error message ", 10),
			Agents: []string{"web-1", "web-3"}, At: now, Result: &fleet.Result{Requests: 3, Lost: every}},
		"job/" + rec + "/agent/web-1": {JobID: rec, Kind: fleet.KindRecord, Agent: "web-1", State: fleet.Succeeded, At: now, Result: &fleet.Result{Requests: 3, Lost: every}},
		"job/" + rec + "/agent/web-3": {JobID: rec, Kind: fleet.KindRecord, Agent: "web-3", State: fleet.Failed, Reason: noSpace, At: now},
		"job/" + pend:                 {JobID: pend, Kind: fleet.KindReplay, State: fleet.Pending, At: now},
	} {
		if err := bus.PublishStatus(ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}

	// Two specs on the jobs topic: one issued when published, one that
	// claims 2099 (anyone who may write to Kafka may publish one).
	published := map[string]time.Time{}
	honest, claims := "walk-honest-"+e.suffix, "walk-claims-"+e.suffix
	for id, issued := range map[string]time.Time{honest: now, claims: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)} {
		env, err := fleet.Seal("spec", fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Selector: fleet.Selector{"role": "nobody"},
			IssuedAt: issued, ExpiresAt: issued.Add(time.Minute), Submitter: "someone"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		// The embedded broker stamps the jobs topic (LogAppendTime): the
		// record's timestamp is the one read back, not the producer's.
		if jrs := bus.Jobs(r.Offset); len(jrs) == 0 || jrs[0].Offset != r.Offset || !jrs[0].LogAppendTime {
			t.Fatalf("spec %s not read back stamped by the broker: %+v", id, jrs)
		} else {
			published[id] = jrs[0].Timestamp
		}
		if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Succeeded, At: now}); err != nil {
			t.Fatal(err)
		}
	}

	sideways := func(page string) {
		t.Helper()
		if w := b.get("page width", chromedp.Evaluate[string](`document.documentElement.scrollWidth + '/' + document.documentElement.clientWidth`)); func() bool {
			var sw, cw int
			_, _ = fmt.Sscanf(w, "%d/%d", &sw, &cw)
			return sw > cw
		}() {
			t.Errorf("the %s page scrolls sideways (scroll/client width %s)", page, w)
		}
	}
	b.run("agents", chromedp.WaitVisible(fmt.Sprintf(`//td/strong[text()="busy-%s"]`, e.suffix)), b.shot("walk-02-agents"))
	sideways("Agents")
	if got := b.get("busy's runs", chromedp.Text(fmt.Sprintf(`//tr[td/strong[text()="busy-%s"]]/td[7]`, e.suffix))); got != "2/2 running, 3 queued" {
		t.Errorf("busy agent's runs %q", got)
	}
	if got := b.get("older's runs", chromedp.Text(fmt.Sprintf(`//tr[td/strong[text()="older-%s"]]/td[7]`, e.suffix))); got != "-" {
		t.Errorf("an agent older than the counts shows runs %q, want -", got)
	}
	// Each agent's --max-spec-ttl, from its heartbeat; "-" from an agent
	// older than the field.
	if got := b.get("Max spec TTL header", chromedp.Text(`#agents tr:first-child th:nth-child(8)`)); got != "Max spec TTL" {
		t.Errorf("the Agents table's 8th column is %q, want Max spec TTL", got)
	}
	for name, want := range map[string]string{"busy": "1h0m0s", "idle": "24h0m0s", "older": "-"} {
		if got := b.get(name+"'s max spec TTL", chromedp.Text(fmt.Sprintf(`//tr[td/strong[text()="%s-%s"]]/td[8]`, name, e.suffix))); got != want {
			t.Errorf("agent %s's Max spec TTL %q, want %q", name, got, want)
		}
	}
	b.run("recordings", chromedp.Click(`#nav a[data-page="recordings"]`), chromedp.WaitVisible(fmt.Sprintf(`//td/strong[text()=%q]`, lossy)), b.shot("walk-03-recordings"))
	sideways("Recordings")
	b.run("history", b.history(rec), b.shot("walk-04-history"))
	sideways("History")
	// A job's time is when its spec was published (its Kafka record's
	// timestamp); what the spec claims shows only where it is off.
	for _, c := range []struct{ id, claimed string }{{honest, ""}, {claims, "2099-01-01T00:00:00Z"}} {
		got := b.get("time of "+c.id, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
			const r = document.querySelector('#jobs tr[data-job=%q]'), tm = r && r.querySelector('.spec-time time'), cl = r && r.querySelector('.spec-time .claim');
			const want = %q ? 'claims issued ' + new Date(%[2]q).toLocaleString() : '';
			return tm ? [tm.getAttribute('datetime'), cl ? cl.textContent : '', want, tm.title].join('|') : '' })()`, c.id, c.claimed)))
		parts := strings.SplitN(got, "|", 4)
		if len(parts) != 4 {
			t.Errorf("History shows no time for %s: %q", c.id, got)
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil || !at.Equal(published[c.id]) || parts[1] != parts[2] || !strings.Contains(parts[3], "the broker's clock when it appended the spec") {
			t.Errorf("History shows %s at %q (claim %q, title %q): want its record's %s, claim %q", c.id, parts[0], parts[1], parts[3], published[c.id].Format(time.RFC3339Nano), parts[2])
		}
	}
	b.run("history times", chromedp.ScrollIntoView(fmt.Sprintf(`#jobs tr[data-job=%q]`, claims)), b.shot("walk-04d-history-times"))

	// The state filter offers every state the fleet reports, in order.
	offered, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#f-state option')].map(o => o.value)`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{""}
	for _, st := range fleet.States() {
		want = append(want, string(st))
	}
	if !slices.Equal(offered, want) {
		t.Errorf("the History state filter offers %q, want %q", offered, want)
	}
	// ARMED lists the job whose shards armed, and it alone; its page says
	// ARMED, then RUNNING once a shard runs, without a reload.
	jobRow := func(id string) string { return fmt.Sprintf(`//table[@id="jobs"]//tr[.//a[text()=%q]]`, id) }
	b.run("history armed", b.set("#f-state", "ARMED"), chromedp.WaitNotPresent(jobRow(rec)), chromedp.WaitVisible(jobRow(armed)+`//span[@class="badge ARMED"]`), b.shot("walk-04b-history-armed"))
	if ids, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.job)`)); err != nil || !slices.Equal(ids, []string{armed}) {
		t.Errorf("ARMED jobs listed: %v (%v), want [%s]", ids, err, armed)
	}
	b.run("armed job", chromedp.Click(fmt.Sprintf(`//a[text()=%q]`, armed)), chromedp.WaitVisible(`//span[@id="job-state"]/span[text()="ARMED"]`), b.shot("walk-04c-armed-job"))
	if err := bus.PublishStatus(ctx, "job/"+armed+"/shard/0", fleet.Status{JobID: armed, Kind: fleet.KindReplay, Agent: "load-1", Shard: &zero, State: fleet.Running, At: now}); err != nil {
		t.Fatal(err)
	}
	b.run("armed job runs", chromedp.WaitVisible(`//span[@id="job-state"]/span[text()="RUNNING"]`))
	b.run("back to history", b.history(rec))

	// A failed recording with long reasons and every loss.
	b.run("record job", chromedp.Click(fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, rec)), chromedp.WaitVisible(`#parts tr[data-part="agent/web-3"]`),
		chromedp.WaitVisible("#report-frame"), chromedp.WaitVisible(`//ol[@id="events"]/li[contains(., "job → FAILED")]`), b.shot("walk-05-record-job"))
	sideways("Job")
	if wide := b.get("report width", chromedp.Evaluate[string](`(() => { const d = document.querySelector('#report-frame').contentDocument.documentElement;
		return String(d.scrollWidth > d.clientWidth) })()`)); wide != "false" {
		t.Error("the record job's report scrolls sideways in its frame")
	}
	if got := b.get("web-1's part", chromedp.Text(`#parts tr[data-part="agent/web-1"] td:nth-child(1)`)); got != "agent/web-1" {
		t.Errorf("the Part cell reads %q: a short value is broken", got)
	}

	// A job no agent has taken.
	b.run("pending job", chromedp.Navigate(base+"/#/job/"+pend), chromedp.WaitVisible("#no-parts"), b.shot("walk-06-pending-job"))
	if got := b.get("no parts", chromedp.Text("#no-parts")); got != "No part yet: no agent has taken this job." {
		t.Errorf("a job with no part says %q", got)
	}
	if got := b.get("job fields", chromedp.Evaluate[string](`[...document.querySelectorAll('.card .grid > div')].slice(1, 3).map(d => d.lastChild.textContent).join('|')`)); got != "-|-" {
		t.Errorf("Scenario and Agents of a job with no spec read %q, want -|-", got)
	}

	// New replay: the partial recording picked says what it lacks; the
	// complete one says nothing.
	b.run("new replay", chromedp.Navigate(base+"/#/new-replay/"+lossy), chromedp.WaitVisible("#rp-form"), b.shot("walk-07-new-replay-partial"))
	sideways("New replay")
	note := b.get("partial note", chromedp.Evaluate[string](`(document.querySelector('#rp-window-note') || {}).textContent || ''`))
	for _, want := range []string{"Partial: the recording lost ", "kernel-drops 123456 packets", "spool-full 99999 messages"} {
		if !strings.Contains(note, want) {
			t.Errorf("New replay of a partial recording says %q, want %q in it", note, want)
		}
	}
	b.run("complete window", b.set("#rp-window", e.window))
	if note := b.get("note gone", chromedp.Evaluate[string](`(document.querySelector('#rp-window-note') || {}).textContent || ''`)); note != "" {
		t.Errorf("New replay of a complete recording says %q", note)
	}
	b.run("new recording", chromedp.Click(`#nav a[data-page="new-recording"]`), chromedp.WaitVisible("#rec-form"), b.shot("walk-08-new-recording"))
	sideways("New recording")
	b.clean()
}
