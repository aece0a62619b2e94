package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/testutil"
)

const chromium = "/usr/bin/chromium"

// artifacts is where the browser test keeps its screenshots:
// $REPLAYCTL_ARTIFACTS, else serve/testdata/artifacts (gitignored).
func artifacts(t *testing.T) string {
	dir := os.Getenv("REPLAYCTL_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// problems collects console errors, exceptions and failed requests.
type problems struct {
	mu  sync.Mutex
	all []string
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, fmt.Sprintf(format, args...))
}

func (p *problems) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.all...)
}

// step is one browser action.
type step = chromedp.Action[chromedp.Void]

// browser is a headless Chromium a test drives, with every console error,
// exception, failed request and HTTP error answer it saw (probs).
type browser struct {
	t     *testing.T
	ctx   context.Context
	probs *problems
	dir   string // screenshots
}

// newBrowser starts the installed Chromium (1280×1000), for 4 minutes at
// most; it closes when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the browser test needs %s (Debian package chromium): %v", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-gpu", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, tcancel := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(tcancel)

	probs := &problems{}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				probs.add("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			desc := ""
			if ev.ExceptionDetails.Exception != nil {
				desc = ev.ExceptionDetails.Exception.Description
			}
			probs.add("exception: %s %s", ev.ExceptionDetails.Text, desc)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				probs.add("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventLoadingFailed:
			// A stream the page closes itself (leaving a job page) is
			// cancelled, not failed.
			if !ev.Canceled {
				probs.add("request failed: %s %s", ev.ErrorText, ev.BlockedReason)
			}
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				probs.add("HTTP %d: %s", ev.Response.Status, ev.Response.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return &browser{t: t, ctx: ctx, probs: probs, dir: artifacts(t)}
}

// shot keeps the page as a screenshot, name.png in the artifacts.
func (b *browser) shot(name string) step {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.dir, name+".png"), buf, 0o644)
	})
}

// set types value into the field sel, as input and change events tell.
func (b *browser) set(sel, value string) step {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return true })()`, sel, value)))
		return err
	})
}

// run does actions within 45 s, or fails the test.
func (b *browser) run(what string, actions ...step) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (problems so far: %v)", what, err, b.probs.list())
	}
}

// get runs an action that answers a string, or fails the test.
func (b *browser) get(what string, a chromedp.Action[string]) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// clean fails the test on any console error or failed request seen.
func (b *browser) clean() {
	b.t.Helper()
	if ps := b.probs.list(); len(ps) > 0 {
		b.t.Errorf("console errors or failed requests:\n%s", strings.Join(ps, "\n"))
	}
}

// TestBrowser drives the web UI in the installed Chromium (headless):
// log in with a token, start a sharded replay from the New replay form
// against a loopback target with two agents, watch the progress bars move
// without a reload, cancel a second job, open a finished job's report.
// Every page is kept as a screenshot; any console error or failed request
// fails the test.
func TestBrowser(t *testing.T) {
	e := setup(t, "")
	e.agent(t, "load-1-"+e.suffix, "role=load-"+e.suffix)
	e.agent(t, "load-2-"+e.suffix, "role=load-"+e.suffix)
	e.write(t, "timed.yaml", strings.Replace(recordYAML, "    save-window:", "    stop: {after: 60s}\n    save-window:", 1))
	tg := newTarget(t)
	// The real command, as a user runs it.
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	bin.Start(t, e.dir, "serve", "--brokers", e.brokers, "--scenarios", e.scenarios, "--tokens", e.tokens, "--key", e.key, "--listen", addr)
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer /healthz")
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitAgents(t, base, e.tok["read"], e.suffix, 2)

	b := newBrowser(t)
	ctx, run, get, set, shot := b.ctx, b.run, b.get, b.set, b.shot

	// Log in.
	run("login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-form"), shot("01-login"))
	run("log in", chromedp.SendKeys("#token", e.tok["replay"]), chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#windows"),
		chromedp.WaitVisible(fmt.Sprintf(`//td/strong[text()=%q]`, e.window)), shot("02-recordings"))
	stored := get("token kept in sessionStorage", chromedp.Evaluate[string](`sessionStorage.getItem('replayctl.token')`))
	if stored != e.tok["replay"] {
		t.Fatalf("sessionStorage token %q", stored)
	}
	run("agents", chromedp.Navigate(base+"/#/agents"), chromedp.WaitVisible("#agents"),
		chromedp.WaitVisible(fmt.Sprintf(`//td/strong[text()=%q]`, "load-2-"+e.suffix)),
		// Its runs, from its heartbeat: idle, of its --max-concurrent 4;
		// and its --max-spec-ttl, the default.
		chromedp.WaitVisible(fmt.Sprintf(`//tr[td/strong[text()=%q]]/td[text()="0/4 running, 0 queued"]`, "load-2-"+e.suffix)),
		chromedp.WaitVisible(fmt.Sprintf(`//tr[td/strong[text()=%q]]/td[8][text()="24h0m0s"]`, "load-2-"+e.suffix)), shot("03-agents"))
	run("new recording", chromedp.Navigate(base+"/#/new-recording"), chromedp.WaitVisible("#rec-form"), set("#rec-selector", "role=web"),
		set("#rec-window", "peak-"+e.suffix), shot("04-new-recording"))
	recCmd := get("record command", chromedp.Text("#rec-command"))
	if !strings.Contains(recCmd, "replayctl jobs submit record.yaml --job record --on role=web --for 30s --set jobs.record.save-window=peak-"+e.suffix) {
		t.Errorf("record command %q", recCmd)
	}
	// A scenario whose record job says when it stops keeps its stop: the
	// form gave every recording --for 30s, overriding stop.after.
	run("new recording of a timed scenario", set("#rec-scenario", "timed.yaml"), shot("04b-new-recording-timed"))
	if c := get("timed record command", chromedp.Text("#rec-command")); strings.Contains(c, "--for") || !strings.Contains(c, "replayctl jobs submit timed.yaml --job record") {
		t.Errorf("timed record command %q: want the scenario's own stop, no --for", c)
	}
	if p := get("duration placeholder", chromedp.Evaluate[string](`document.querySelector('#rec-for').placeholder`)); p != "the scenario's: after 60s" {
		t.Errorf("duration placeholder %q", p)
	}

	// New replay: two shards on the two agents, at 20/s (about 5 s each).
	sel := "role=load-" + e.suffix
	run("new replay", chromedp.Navigate(base+"/#/new-replay/"+e.window), chromedp.WaitVisible("#rp-form"), set("#rp-scenario", "replay.yaml"),
		set(`input[data-set="vars.target"]`, tg.url), set("#rp-selector", sel), set("#rp-shards", "2"), set("#rp-rate", "20/s"), shot("05-new-replay"))
	cmd := get("command", chromedp.Text("#rp-command"))
	want := fmt.Sprintf("replayctl jobs submit replay.yaml --job replay --on %s --shards 2 --set vars.target=%s --set jobs.replay.rate=20/s --set jobs.replay.source.window=%s", sel, tg.url, e.window)
	if cmd != want {
		t.Errorf("command line shown:\n%s\nwant\n%s", cmd, want)
	}
	// Every state the job's page shows, in turn.
	get("watch the job state", chromedp.Evaluate[string](`window.__jobStates = []; new MutationObserver(() => {
		const b = document.querySelector('#job-state .badge'), seen = window.__jobStates;
		if (b && seen[seen.length - 1] !== b.textContent) seen.push(b.textContent);
	}).observe(document.body, { childList: true, subtree: true }); 'ok'`))
	run("start", chromedp.Click("#rp-start"), chromedp.WaitVisible("#parts-table"), chromedp.WaitVisible(`//tr[@data-part="shard/1"]`))
	get("mark the page", chromedp.Evaluate[string](`window.__noReload = "yes"`))
	jobURL := get("job url", chromedp.Location())
	// The bars move without a reload.
	seen := map[string]bool{}
	mid, armedShot := false, false
	// Each shard's figures ("12 / ≈66") are those of its progress line
	// ("12/66"): the shard's own total, not scaled again.
	totals, wrong := 0, map[string]bool{}
	figures := regexp.MustCompile(`^(\d+) / ≈(\d+)$`)
	inLine := regexp.MustCompile(`\s(\d+)/(\d+)\s`)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		vals, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[role=progressbar]')].map(b => b.getAttribute('aria-valuenow'))`))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('#parts tr[data-part^="shard/"]')].map(r =>
			[r.dataset.part, r.cells[3].querySelector('.muted').textContent, r.cells[5].textContent])`))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			f, l := figures.FindStringSubmatch(r[1]), inLine.FindStringSubmatch(r[2])
			if f == nil || l == nil {
				continue
			}
			totals++
			if (f[1] != l[1] || f[2] != l[2]) && !wrong[r[0]] {
				wrong[r[0]] = true
				t.Errorf("%s shows %q beside its progress line %q", r[0], r[1], r[2])
			}
		}
		state := get("state", chromedp.Text("#job-state"))
		if strings.HasPrefix(state, "ARMED") && !armedShot {
			armedShot = true
			run("armed screenshot", shot("06a-job-armed"))
		}
		for _, v := range vals {
			seen[v] = true
			if v != "0" && v != "100" && !mid {
				mid = true
				run("mid screenshot", shot("06-job-progress"))
			}
		}
		if strings.HasPrefix(state, "SUCCEEDED") {
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	if !mid || len(seen) < 3 {
		t.Errorf("progress values seen %v: want bars between 0 and 100 on the way", seen)
	}
	// Its shards armed, waited for their one start instant, then ran.
	states, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__jobStates`))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(states, "ARMED"); i < 0 || !slices.Contains(states[i:], "RUNNING") || states[len(states)-1] != "SUCCEEDED" {
		t.Errorf("the job's page showed states %v: want ARMED, then RUNNING, then SUCCEEDED", states)
	}
	if totals == 0 {
		t.Error("no shard showed its progress figures beside a progress line")
	}
	run("report inline", chromedp.WaitVisible("#report-frame"))
	if still := get("no reload", chromedp.Evaluate[string](`String(window.__noReload)`)); still != "yes" {
		t.Error("the job page reloaded")
	}
	// The report is rendered in the page, not only loaded.
	var shown string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		shown = get("report content", chromedp.Evaluate[string](`(() => { const d = document.querySelector('#report-frame').contentDocument; return d && d.body ? d.body.innerText : '' })()`))
		if strings.Contains(shown, "200") {
			break
		}
	}
	if !strings.Contains(shown, "200") {
		t.Errorf("report shown: %.300q", shown)
	}
	run("report screenshot", shot("07-job-report"))
	// The report's JSON, asked for twice, is shown once (each click added
	// another copy).
	run("report JSON", chromedp.Click(`//h2[starts-with(text(), "Report")]/a[text()="(JSON)"]`), chromedp.WaitVisible("#report-json"),
		chromedp.Click(`//h2[starts-with(text(), "Report")]/a[text()="(JSON)"]`), chromedp.Sleep(500*time.Millisecond))
	if n := get("report JSON copies", chromedp.Evaluate[string](`String(document.querySelectorAll('#report-json').length)`)); n != "1" {
		t.Errorf("the report's JSON is shown %s times after two clicks", n)
	}
	if n := tg.total.Load(); n != 200 {
		t.Errorf("target got %d requests, want 200", n)
	}

	// A second, slow replay, cancelled from its page.
	run("slow replay", chromedp.Navigate(base+"/#/new-replay/"+e.window), chromedp.WaitVisible("#rp-form"), set("#rp-scenario", "replay.yaml"),
		set(`input[data-set="vars.target"]`, tg.url), set("#rp-selector", sel), set("#rp-rate", "2/s"),
		chromedp.Click("#rp-start"), chromedp.WaitVisible("#parts-table"),
		chromedp.WaitVisible(`//tr[@data-part="shard/0"]//span[contains(@class,"RUNNING")]`),
		// The job's own record says ASSIGNED until it ends: the page says
		// how far its shard got.
		chromedp.WaitVisible(`//span[@id="job-state"]/span[text()="RUNNING"]`))
	slowURL := get("slow job url", chromedp.Location())
	slow := slowURL[strings.LastIndex(slowURL, "/")+1:]
	row := func(id string) string { return fmt.Sprintf(`//table[@id="jobs"]//tr[.//a[text()=%q]]`, id) }
	run("running jobs", chromedp.Navigate(base+"/#/history?state=RUNNING"), chromedp.WaitVisible(row(slow)+`//span[@class="badge RUNNING"]`), shot("08-history-running"))
	if ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.job)`)); err != nil || !slices.Equal(ids, []string{slow}) {
		t.Errorf("RUNNING jobs listed: %v (%v), want [%s]", ids, err, slow)
	}
	run("cancel", chromedp.Click(fmt.Sprintf(`//a[text()=%q]`, slow)), chromedp.WaitVisible(`//span[@id="job-state"]/span[text()="RUNNING"]`),
		chromedp.Click("#cancel"), chromedp.WaitVisible(`//span[@id="job-state"]/span[text()="CANCELLED"]`), shot("08-job-cancelled"))

	// A spec anyone with write access to Kafka published, naming a
	// submitter: History and its Job page mark it unverified and never
	// show that name as the submitter.
	forged := "forged-" + e.suffix
	now := time.Now().UTC()
	fs := fleet.Spec{JobID: forged, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Selector: fleet.Selector{"role": "nobody"},
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Submitter: "token:admin-" + e.suffix + " (replayctl serve)"}
	env, err := fleet.Seal("spec", fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus := e.bus(t)
	if _, err := bus.Publish(context.Background(), fleet.JobsTopic, "spec/"+forged, env); err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishStatus(context.Background(), "job/"+forged, fleet.Status{JobID: forged, Kind: fleet.KindReplay, State: fleet.Running, At: now}); err != nil {
		t.Fatal(err)
	}

	// History, filtered; then a finished job's report from there.
	run("history", chromedp.Navigate(base+"/#/history"), chromedp.WaitVisible("#jobs"), chromedp.WaitVisible(row(forged)), shot("09-history"))
	id := jobURL[strings.LastIndex(jobURL, "/")+1:]
	for _, c := range []struct{ id, badge, shown, hidden string }{
		{id, "verified", "token:replay-" + e.suffix + " (replayctl serve)", ""},
		{forged, "unverified", `claims "token:admin-` + e.suffix, "token:admin-" + e.suffix + " (replayctl serve) verified"},
	} {
		got := get("submitter of "+c.id, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const r = document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
			const s = r && r.querySelector('.submitter'); return s ? s.querySelector('.badge').className + '|' + s.textContent : '' })()`, row(c.id))))
		cls, text, _ := strings.Cut(got, "|")
		if cls != "badge "+c.badge || !strings.Contains(text, c.shown) || (c.hidden != "" && strings.Contains(text, c.hidden)) {
			t.Errorf("History shows job %s submitted by %q (badge %q): want badge %q with %q", c.id, text, cls, c.badge, c.shown)
		}
	}
	run("unverified job", chromedp.Click(fmt.Sprintf(`//a[text()=%q]`, forged)), chromedp.WaitVisible("#parts-table"),
		chromedp.WaitVisible(`//span[@class="submitter"]/span[@class="badge unverified"]`), shot("09b-unverified-job"))
	if by := get("job submitter", chromedp.Text(".submitter")); !strings.Contains(by, "unverified") || !strings.Contains(by, "unsigned spec") {
		t.Errorf("the Job page of an unsigned spec says submitted by %q", by)
	}
	runAgain := `String([...document.querySelectorAll("button")].some(b => b.textContent === "Run again" && !b.hidden))`
	if get("run again shown", chromedp.Evaluate[string](runAgain)) == "true" {
		t.Error("the Job page of an unsigned spec offers Run again (serve signs again only what it signed)")
	}

	// History in pages of two: More appends the next page (the oldest
	// job), once, then goes.
	listed := func() []string {
		t.Helper()
		ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.job)`))
		if err != nil {
			t.Fatalf("listed jobs: %v", err)
		}
		return ids
	}
	run("history in pages", chromedp.Navigate(base+"/#/history?limit=2"), chromedp.WaitVisible("#jobs-more"), shot("10-history-page-1"))
	first := listed()
	if len(first) != 2 || first[0] != forged {
		t.Errorf("the first page of 2 lists %v, want %s first", first, forged)
	}
	run("more", chromedp.Click("#jobs-more"), chromedp.WaitVisible(`//table[@id="jobs"]/tbody/tr[3]`), chromedp.WaitNotVisible("#jobs-more"), shot("10-history-page-2"))
	all := listed()
	if len(all) != 3 || all[2] != id || !slices.Equal(all[:2], first) {
		t.Errorf("after More: %v, want %v then %s", all, first, id)
	}
	if n := get("count", chromedp.Text("#jobs-count")); n != "3 jobs" {
		t.Errorf("count %q, want 3 jobs", n)
	}
	run("back to history", chromedp.Navigate(base+"/#/history"), chromedp.WaitVisible("#jobs"))
	run("filter", set("#f-state", "SUCCEEDED"), chromedp.WaitNotPresent(`//table[@id="jobs"]//span[text()="CANCELLED"]`), shot("10-history-succeeded"))
	if ids := listed(); len(ids) != 1 || ids[0] != id {
		t.Errorf("SUCCEEDED jobs listed: %v, want [%s]", ids, id)
	}
	run("open report", chromedp.Click(fmt.Sprintf(`//a[text()=%q]`, id)), chromedp.WaitVisible("#report-frame"), shot("11-finished-job"))
	if get("run again shown", chromedp.Evaluate[string](runAgain)) != "true" {
		t.Error("the Job page of a job serve submitted does not offer Run again")
	}

	// Log out, log in with a record token, delete the recording.
	run("log out", chromedp.Click("#logout"), chromedp.WaitVisible("#login-form"))
	if left := get("token gone", chromedp.Evaluate[string](`String(sessionStorage.getItem('replayctl.token'))`)); left != "null" {
		t.Errorf("token left in sessionStorage after logout: %q", left)
	}
	del := fmt.Sprintf(`button[data-window=%q]`, e.window)
	run("delete recording", chromedp.SendKeys("#token", e.tok["record"]), chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(del), chromedp.Click(del), chromedp.WaitVisible(del+`.danger`), shot("12-recording-delete-confirm"),
		chromedp.Click(del), chromedp.WaitNotPresent(del), shot("13-recording-deleted"))
	var w struct{}
	if code := call(t, "GET", base+"/v1/windows/"+e.window, e.tok["read"], nil, &w); code != 404 {
		t.Errorf("deleted window: %d", code)
	}

	b.clean()
}

// history opens History by its link in the nav and shows the rows of the
// jobs named, clicking More while one is not listed yet, as a user finds
// an older job. History lists the newest 50 first, and the tests of other
// packages submit jobs to the shared broker's topics at the same time: a
// job this test published seconds ago may be on the second page already.
func (b *browser) history(ids ...string) step {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if err := chromedp.Do(ctx, chromedp.Click(`#nav a[data-page="history"]`), chromedp.WaitVisible("#jobs")); err != nil {
			return err
		}
		for _, id := range ids {
			for {
				listed, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector('#jobs tr[data-job=%q]')`, id)))
				if err != nil {
					return err
				}
				if listed {
					break
				}
				more, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const m = document.querySelector('#jobs-more'); return !!m && !m.hidden })()`))
				if err != nil {
					return err
				}
				if !more {
					return fmt.Errorf("History does not list job %s, and has no more pages", id)
				}
				if err := chromedp.Do(ctx, chromedp.Click("#jobs-more")); err != nil {
					return fmt.Errorf("History's More, looking for job %s: %w", id, err)
				}
				if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.querySelector('#jobs-more').disabled`)); err != nil {
					return fmt.Errorf("History's More, looking for job %s: %w", id, err)
				}
			}
		}
		return nil
	})
}
