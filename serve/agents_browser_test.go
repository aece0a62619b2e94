package serve_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/serve"
)

// TestBrowserAgentRuns: an agent with several jobs (its heartbeat says 2
// running, 1 queued) shows all of them on the Agents page, each linked to
// its job's page and the queued one marked QUEUED, not one of them.
func TestBrowserAgentRuns(t *testing.T) {
	e := setup(t, "")
	name, sel := "load-1-"+e.suffix, map[string]string{"role": "load-" + e.suffix}
	e.agent(t, name, "role=load-"+e.suffix, "--max-concurrent", "2")
	tg := newTarget(t)
	base := e.server(t)
	waitAgents(t, base, e.tok["read"], e.suffix, 1)

	// Three slow replays on the one agent (200 requests at 2/s each): the
	// third waits for one of its two runs.
	ids := []string{"runs-a-" + e.suffix, "runs-b-" + e.suffix, "runs-c-" + e.suffix}
	for _, id := range ids {
		body := map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "id": id,
			"vars": map[string]string{"target": tg.url}, "set": []string{"jobs.replay.rate=2/s"}}
		if code := call(t, "POST", base+"/v1/jobs", e.tok["replay"], body, nil); code != 201 {
			t.Fatalf("submit %s: %d", id, code)
		}
		t.Cleanup(func() { call(t, "POST", base+"/v1/jobs/"+id+"/cancel", e.tok["replay"], nil, nil) })
	}
	for i, id := range ids {
		want := map[bool]fleet.State{false: fleet.Running, true: fleet.Queued}[i == 2]
		waitJob(t, base, e.tok["read"], id, 30*time.Second, func(v serve.JobView) bool { return v.State == want })
	}

	b := newBrowser(t)
	cell := fmt.Sprintf(`//tr[td/strong[text()=%q]]/td[6]`, name)
	b.run("log in", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-form"), chromedp.SendKeys("#token", e.tok["read"]),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#windows"))
	b.run("agents", chromedp.Click(`#nav a[data-page="agents"]`), chromedp.WaitVisible("#agents"),
		chromedp.WaitVisible(fmt.Sprintf(`//tr[td/strong[text()=%q]]/td[text()="2/2 running, 1 queued"]`, name)),
		chromedp.WaitVisible(cell+fmt.Sprintf(`//a[text()=%q]`, ids[2])), b.shot("agent-runs-01-agents"))
	links, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(() => { const td = document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
		return [...td.querySelectorAll('a')].map(a => a.textContent + ' ' + a.getAttribute('href') + ' ' + a.parentElement.textContent) })()`, cell)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ // the running by job, then the queued
		fmt.Sprintf("%s #/job/%[1]s %[1]s shard 0", ids[0]),
		fmt.Sprintf("%s #/job/%[1]s %[1]s shard 0", ids[1]),
		fmt.Sprintf("%s #/job/%[1]s %[1]s shard 0 QUEUED", ids[2]),
	}
	if !slices.Equal(links, want) {
		t.Errorf("the agent's current jobs: %q, want %q", links, want)
	}
	// Each leads to its job.
	for i, id := range ids {
		state := map[bool]string{false: "RUNNING", true: "QUEUED"}[i == 2]
		b.run("open "+id, chromedp.Navigate(base+"/#/agents"), chromedp.WaitVisible(cell+fmt.Sprintf(`//a[text()=%q]`, id)),
			chromedp.Click(cell+fmt.Sprintf(`//a[text()=%q]`, id)), chromedp.WaitVisible(fmt.Sprintf(`//h1/code[text()=%q]`, id)),
			chromedp.WaitVisible(fmt.Sprintf(`//span[@id="job-state"]/span[text()=%q]`, state)))
	}
	b.run("job page", b.shot("agent-runs-02-queued-job"))
	b.clean()
}
