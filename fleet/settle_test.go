package fleet

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
)

// TestStaleJobSettled: a job whose parts all ended while the job did not
// (the agent that failed its last shard was stopped between that status
// and the job's: a lost shard failed without a spare, a refused resume) is
// settled by any agent once settleGrace has passed since its last part
// ended: the job ends FAILED with its part's reason. It stayed ASSIGNED.
func TestStaleJobSettled(t *testing.T) {
	// Restored after the fleet's agents stopped (cleanups run last first).
	grace := settleGrace
	t.Cleanup(func() { settleGrace = grace })
	settleGrace = 2 * time.Second
	f := newIDFleet(t)
	id := "j-unsettled"
	spec := replaySpec(id, "load-1", onceReplay(t.TempDir(), "http://127.0.0.1:9"))
	off := f.publishSpec(t, spec)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(id, 0), Status{JobID: id, Kind: KindReplay, Agent: "load-1", Shard: &shard, State: Failed,
		SpecOffset: off, Reason: "agent load-1 missed 3 heartbeats and no spare agent matches role=load"}); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	f.replayAgentWith(t, "load-2", func(*AgentConfig) {})
	js := f.finalJob(t, id, 20*time.Second)
	if js.State != Failed || js.Reason == "" {
		t.Fatalf("job %s %q, want FAILED with its shard's reason", js.State, js.Reason)
	}
	if d := js.At.Sub(ended); d < settleGrace {
		t.Errorf("settled %s after its last part ended, before settleGrace (%s): a run's own settlement could still be on its way", d, settleGrace)
	}
}

// TestLostPartsSettled: a part whose agent died (kill -9: no clean stop,
// no final status) while no one else would end it is ended FAILED by any
// agent that trusts the job, settleGrace after the agent's last
// heartbeat, and the job with it. A record job's host has no spare: the
// job stayed RUNNING for good, its window never saved; the others' part
// kept, the recording counts the host that failed (hosts-failed: its
// window is partial). A replay whose only matching agent died had no live
// agent to fail or re-run its shard: an agent that does not match ends it.
func TestLostPartsSettled(t *testing.T) {
	grace := settleGrace
	t.Cleanup(func() { settleGrace = grace })
	settleGrace = 2 * time.Second
	f := newIDFleet(t)
	now := time.Now().UTC()

	rec := Spec{JobID: "j-rec-lost", Kind: KindRecord, Job: "record", Scenario: "version: 1\n", SHA256: ScenarioHash("version: 1\n"),
		Selector: Selector{"role": "web"}, Agents: []string{"web-1", "web-2"}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test"}
	recOff := f.publishSpec(t, rec)
	if err := f.bus.PublishStatus(f.ctx, agentKey(rec.JobID, "web-1"), Status{JobID: rec.JobID, Kind: KindRecord, Agent: "web-1", State: Succeeded,
		SpecOffset: recOff, Result: &Result{Requests: 3, Responses: 3, Written: 6}}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.PublishStatus(f.ctx, agentKey(rec.JobID, "web-2"), Status{JobID: rec.JobID, Kind: KindRecord, Agent: "web-2", State: Running, SpecOffset: recOff}); err != nil {
		t.Fatal(err)
	}
	f.skewedBeat(t, "web-2", Labels{"role": "web"}, 0) // then it dies

	rep := f.replayOfDeadAgent(t, "j-rep-lost")
	died := time.Now()

	// A live agent that matches neither job.
	f.replayAgentWith(t, "other-1", func(c *AgentConfig) { c.Labels = Labels{"role": "other"} })

	js := f.finalJob(t, rec.JobID, 30*time.Second)
	part, _ := f.bus.Status(agentKey(rec.JobID, "web-2"))
	if js.State != Failed || part.State != Failed || !strings.Contains(part.Reason, "agent web-2 lost: no heartbeat since ") ||
		!strings.Contains(part.Reason, "what it captured until then is not counted in the window's figures") {
		t.Fatalf("record job %s %q; web-2's part %s %q", js.State, js.Reason, part.State, part.Reason)
	}
	if r := js.Result; r == nil || r.Requests != 3 || r.Lost[catalog.HostsFailed] != 1 || r.Lost[catalog.LostTotal] != 1 {
		t.Errorf("record job's result %+v, want web-1's 3 requests and hosts-failed 1", js.Result)
	}
	if d := part.At.Sub(died); d < settleGrace {
		t.Errorf("web-2's part ended %s after its last heartbeat, before settleGrace (%s)", d, settleGrace)
	}

	js = f.finalJob(t, rep.JobID, 30*time.Second)
	sh, _ := f.bus.Status(shardKey(rep.JobID, 0))
	if js.State != Failed || sh.State != Failed || !strings.Contains(sh.Reason, "agent load-1 lost: ") || !strings.Contains(sh.Reason, "no live agent matches role=load to re-run its shard") {
		t.Fatalf("replay job %s %q; its shard %s %q", js.State, js.Reason, sh.State, sh.Reason)
	}
}

// TestWaitPrintsChanges: jobs submit --wait prints a job's progress as it
// changes; a part stuck as it is printed once, not every second with a
// new time (130 lines of one state in a walk).
func TestWaitPrintsChanges(t *testing.T) {
	f := newIDFleet(t)
	spec := replaySpec("j-wait", "load-1", "version: 1\n")
	off := f.publishSpec(t, spec)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(spec.JobID, 0), Status{JobID: spec.JobID, Kind: KindReplay, Agent: "load-1", Shard: &shard, State: Running, SpecOffset: off,
		Progress: &Progress{Line: "8 requests"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(f.ctx, 3500*time.Millisecond)
	defer cancel()
	_, _ = (&Client{bus: f.bus, Out: &out}).Wait(ctx, spec.JobID)
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.HasSuffix(lines[0], "] shard0@load-1=RUNNING (8 requests)") {
		t.Errorf("--wait printed:\n%s\nwant one line", out.String())
	}
}

// TestLostPartsSpareLiveAgents: an agent never ends the part of one that
// is alive: web-2 heartbeats with its clock 5 min behind on an agents
// topic created CreateTime, so its heartbeats read when other-1 opens
// the topics say "5 min ago" (a review found other-1 failing web-2's
// recording at once). And a live agent that matches a replay's labels
// but does not allow replay does not hold off the settlement of its
// lost shard (it would never re-run it: the job stayed RUNNING).
func TestLostPartsSpareLiveAgents(t *testing.T) {
	grace := settleGrace
	t.Cleanup(func() { settleGrace = grace })
	settleGrace = 2 * time.Second
	t.Run("skewed live agent", func(t *testing.T) {
		f := newProducerTimeFleet(t)
		now := time.Now().UTC()
		rec := Spec{JobID: "j-rec-alive", Kind: KindRecord, Job: "record", Scenario: "version: 1\n", SHA256: ScenarioHash("version: 1\n"),
			Selector: Selector{"role": "web"}, Agents: []string{"web-2"}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test"}
		off := f.publishSpec(t, rec)
		if err := f.bus.PublishStatus(f.ctx, agentKey(rec.JobID, "web-2"), Status{JobID: rec.JobID, Kind: KindRecord, Agent: "web-2", State: Running, SpecOffset: off}); err != nil {
			t.Fatal(err)
		}
		f.skewedAgent(t, "web-2", Labels{"role": "web"}, -5*time.Minute)
		f.replayAgentWith(t, "other-1", func(c *AgentConfig) { c.Labels = Labels{"role": "other"} })
		time.Sleep(3 * settleGrace)
		if err := f.bus.Sync(f.ctx); err != nil {
			t.Fatal(err)
		}
		if part, _ := f.bus.Status(agentKey(rec.JobID, "web-2")); part.State != Running {
			t.Errorf("the part of a live agent is %s: %q", part.State, part.Reason)
		}
	})
	t.Run("matching agent that does not replay", func(t *testing.T) {
		f := newIDFleet(t)
		rep := f.replayOfDeadAgent(t, "j-rep-stuck")
		f.replayAgentWith(t, "rec-1", func(c *AgentConfig) { c.Allow = []string{KindRecord} })
		if js := f.finalJob(t, rep.JobID, 30*time.Second); js.State != Failed {
			t.Errorf("job %s %q", js.State, js.Reason)
		}
	})
}

// replayOfDeadAgent publishes a replay job id whose one shard load-1 runs,
// and one heartbeat of load-1, which then dies.
func (f *idFleet) replayOfDeadAgent(t *testing.T, id string) Spec {
	t.Helper()
	rep := replaySpec(id, "load-1", onceReplay(t.TempDir(), "http://127.0.0.1:9"))
	off := f.publishSpec(t, rep)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(rep.JobID, 0), Status{JobID: rep.JobID, Kind: KindReplay, Agent: "load-1", Shard: &shard, State: Running, SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	f.skewedBeat(t, "load-1", Labels{"role": "load"}, 0)
	return rep
}

// TestShowSaysAgentLost: jobs show and --wait say that the agent of a
// part not ended is gone, stopped here (its RUNNING is its last word),
// and since when.
func TestShowSaysAgentLost(t *testing.T) {
	f := newIDFleet(t)
	spec := f.stoppedAgentPart(t, "j-gone")
	var show strings.Builder
	c := &Client{bus: f.bus, Out: &show}
	if err := c.Show(spec.JobID); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`shard/0\s+load-9\s+RUNNING\s+0\s+ \(AGENT STOPPED: \d+s ago; a live agent that trusts the job ends this part `).MatchString(show.String()) {
		t.Errorf("jobs show:\n%s", show.String())
	}
	var wait strings.Builder
	ctx, cancel := context.WithTimeout(f.ctx, 1500*time.Millisecond)
	defer cancel()
	_, _ = (&Client{bus: f.bus, Out: &wait}).Wait(ctx, spec.JobID)
	if !strings.Contains(wait.String(), "shard0@load-9=RUNNING (AGENT STOPPED)") {
		t.Errorf("--wait:\n%s", wait.String())
	}
}

// TestWaitStopsWithNoAgentLeft: --wait on a job whose parts' agents are
// gone, with no live agent in the fleet to end them, stops waiting and
// says why, once a live agent would have ended them; it waited for good.
func TestWaitStopsWithNoAgentLeft(t *testing.T) {
	grace := settleGrace
	t.Cleanup(func() { settleGrace = grace })
	settleGrace = time.Second
	f := newIDFleet(t)
	spec := f.stoppedAgentPart(t, "j-orphan")
	var out strings.Builder
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	_, err := (&Client{bus: f.bus, Out: &out}).Wait(ctx, spec.JobID)
	if err == nil || ctx.Err() != nil || !regexp.MustCompile(`job j-orphan is still ASSIGNED and no live agent is left to end it \(shard0@load-9: agent stopped \d+s ago\)`).MatchString(err.Error()) {
		t.Fatalf("--wait = %v (context: %v)\n%s", err, ctx.Err(), out.String())
	}
}

// stoppedAgentPart publishes replay job id with its shard 0 RUNNING on
// agent load-9, whose last heartbeat, now, says it stopped.
func (f *idFleet) stoppedAgentPart(t *testing.T, id string) Spec {
	t.Helper()
	spec := replaySpec(id, "load-9", "version: 1\n")
	off := f.publishSpec(t, spec)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(spec.JobID, 0), Status{JobID: spec.JobID, Kind: KindReplay, Agent: "load-9", Shard: &shard, State: Running, SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.bus.Publish(f.ctx, AgentsTopic, "load-9", Heartbeat{Name: "load-9", Labels: Labels{"role": "load"}, At: time.Now().UTC(), Stopped: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	return spec
}
