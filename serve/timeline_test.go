package serve_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
)

// noTimelineJob publishes a replay job in 2 shards of a window with no
// capture time that is not bogus (its plan has no T0), as jobs submit
// would, its shards RUNNING; final ends it SUCCEEDED, its results saying
// the shards shared no timeline, as the agents write them.
func noTimelineJob(t *testing.T, l *loopback, id string) (note string, final func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	now := time.Now().UTC()
	text := "version: 1\nname: notl\ntargets:\n  t: {url: \"http://127.0.0.1:9\"}\njobs:\n  replay:\n    source: {window: notl}\n    sink: {http: {target: t}}\n"
	sp := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "notl.yaml", Scenario: text, SHA256: fleet.ScenarioHash(text),
		Selector: fleet.Selector{"role": "load"}, Agents: []string{"load-1", "load-2"}, Shards: 2,
		IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "token:ci (replayctl serve)",
		Replay: &fleet.ReplayPlan{Window: "notl-" + l.suffix, Topic: "notl-http", StartAt: now.Add(time.Second),
			Shards: []fleet.ShardPlan{{Records: 1}, {Records: 2}}}}
	note = fleet.NoTimeline(sp)
	if want := fmt.Sprintf("window %q has no capture time that is not bogus (%s)", sp.Replay.Window, message.BogusTimeRule); len(note) < len(want) || note[:len(want)] != want {
		t.Fatalf("NoTimeline: %q", note)
	}
	rec, err := l.bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, seal(t, sp, l.key))
	if err != nil {
		t.Fatal(err)
	}
	shards := []int{0, 1}
	publish := func(state fleet.State, result func(sent int64) *fleet.Result) {
		t.Helper()
		for i, agent := range sp.Agents {
			st := fleet.Status{JobID: id, Kind: fleet.KindReplay, Agent: agent, Shard: &shards[i], State: state, SpecOffset: rec.Offset, Result: result(int64(i + 1))}
			if state == fleet.Running {
				st.Progress = &fleet.Progress{Line: "0 sent"}
			}
			if err := l.bus.PublishStatus(ctx, fmt.Sprintf("job/%s/shard/%d", id, i), st); err != nil {
				t.Fatal(err)
			}
		}
		js := fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Assigned, Agents: sp.Agents, SpecOffset: rec.Offset}
		if state.Final() {
			js.State, js.Result = state, result(3)
		}
		if err := l.bus.PublishStatus(ctx, "job/"+id, js); err != nil {
			t.Fatal(err)
		}
	}
	publish(fleet.Running, func(int64) *fleet.Result { return nil })
	return note, func() {
		publish(fleet.Succeeded, func(sent int64) *fleet.Result {
			return &fleet.Result{Sent: sent, OK: sent, Timeline: note, Counters: map[string]int64{"untimed-requests": sent}}
		})
	}
}

// TestJobSaysNoTimeline: GET /v1/jobs/{id} of a replay job whose shards
// share no timeline (its window has no capture time that is not bogus)
// says so (timeline), from its plan while it runs and once it ended, as
// jobs show warns; only jobs submit said it. A job whose shards share one
// says nothing.
func TestJobSaysNoTimeline(t *testing.T) {
	l := startLoopback(t, kafkatest.Brokers(t)[0])
	id := "notl-" + l.suffix
	note, final := noTimelineJob(t, l, id)
	var v struct {
		State    fleet.State `json:"state"`
		Timeline string      `json:"timeline"`
		Result   *struct {
			Timeline string `json:"timeline"`
		} `json:"result"`
	}
	get := func() {
		t.Helper()
		v.Timeline, v.Result = "", nil
		if code := call(t, "GET", l.base+"/v1/jobs/"+id, l.read, nil, &v); code != 200 {
			t.Fatalf("GET /v1/jobs/%s: %d", id, code)
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, v)
			}
			get()
		}
	}
	waitFor("the running job", func() bool { return v.State == fleet.Running })
	if v.Timeline != note {
		t.Errorf("the running job's timeline: %q, want %q", v.Timeline, note)
	}
	final()
	waitFor("the job SUCCEEDED", func() bool { return v.State == fleet.Succeeded })
	if v.Timeline != note || v.Result == nil || v.Result.Timeline != note {
		t.Errorf("the job that ended: timeline %q, result %+v; want %q in both", v.Timeline, v.Result, note)
	}
	if body := getText(t, l.base+"/v1/jobs", l.read); !strings.Contains(body, `"timeline":`) {
		t.Errorf("GET /v1/jobs does not say it: %s", body)
	}
}

// TestBrowserShowsNoTimeline: the Job page of a replay whose shards share
// no timeline warns of it under its title, while it runs, in the loss
// notes' colour, without scrolling sideways. Real clicks, in Chromium,
// with no console error.
func TestBrowserShowsNoTimeline(t *testing.T) {
	l := startLoopback(t, kafkatest.Brokers(t)[0])
	id := "notl-" + l.suffix
	note, _ := noTimelineJob(t, l, id)
	b := newBrowser(t)
	b.run("log in", chromedp.Navigate(l.base+"/"), chromedp.WaitVisible("#login-form"), chromedp.SendKeys("#token", l.read),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible("#main h1"))
	job := fmt.Sprintf(`//table[@id="jobs"]//a[text()=%q]`, id)
	b.run("history", b.history(id))
	b.run("job", chromedp.Click(job), chromedp.WaitVisible(`#parts tr[data-part="shard/1"]`), chromedp.WaitVisible("#job-timeline"), b.shot("notimeline-01-job"))
	if got, want := b.get("the warning", chromedp.Text("#job-timeline")), "warning: "+note; got != want {
		t.Errorf("the Job page's warning reads %q, want %q", got, want)
	}
	if color := b.get("warning's colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#job-timeline .loss')).color`)); color != "rgb(181, 71, 8)" {
		t.Errorf("the warning is %s, not the loss notes' colour (--warn)", color)
	}
	if wide := b.get("page width", chromedp.Evaluate[string](`String(document.documentElement.scrollWidth > document.documentElement.clientWidth)`)); wide != "false" {
		t.Error("the Job page scrolls sideways with the warning")
	}
	b.clean()
}
