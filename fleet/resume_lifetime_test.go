package fleet

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestResumeChecksSpec: an agent restarted while its replay shard was
// ARMED or RUNNING (killed: the status topic still says so) resumes it
// only when it could take the shard's spec now, as a fresh claim checks it:
// a spec that expired since, that is valid for longer than the restarted
// agent's --max-spec-ttl, or of a kind it no longer allows, is refused
// loudly: the shard ends
// FAILED saying why, the job FAILED with it (jobs ls, jobs show), and
// nothing is sent. A spec still valid is resumed.
func TestResumeChecksSpec(t *testing.T) {
	f := newIDFleet(t)
	now := time.Now().UTC()
	for i, c := range []struct {
		name            string
		state           State // the shard's state when the agent was killed
		issued, expires time.Time
		maxTTL          time.Duration // the restarted agent's --max-spec-ttl (0: the default)
		allow           []string      // the restarted agent's --allow (nil: as started)
		want            string        // the refusal; "" when the shard is resumed
	}{
		{"valid: resumed", Running, now.Add(-time.Minute), now.Add(time.Hour), 0, nil, ""},
		{"expired while running", Running, now.Add(-10 * time.Minute), now.Add(-5 * time.Minute), 0, nil,
			fmt.Sprintf("expired: the spec expired at %s (now ", now.Add(-5*time.Minute).Format(time.RFC3339))},
		{"expired while armed", Armed, now.Add(-10 * time.Minute), now.Add(-time.Second), 0, nil, "expired: the spec expired at "},
		{"longer than the restarted agent's --max-spec-ttl", Running, now.Add(-time.Minute), now.Add(2 * time.Hour), time.Hour, nil,
			"valid for too long: valid for 2h1m0s (issued "},
		{"restarted without --allow replay", Running, now.Add(-time.Minute), now.Add(time.Hour), 0, []string{KindRecord},
			"kind replay not allowed on this agent (it allows record)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hits, target, work := countedTwoRequests(t)
			name, id := fmt.Sprintf("load-%d", i), fmt.Sprintf("j-resume-%d", i)
			text := onceReplay(work, target)
			// What the killed agent left: the job taken (its spec and
			// ASSIGNED) and its shard's last status.
			spec := replaySpec(id, name, text)
			spec.IssuedAt, spec.ExpiresAt = c.issued, c.expires
			off := f.publishSpec(t, spec)
			shard := 0
			if err := f.bus.PublishStatus(f.ctx, shardKey(id, 0), Status{JobID: id, Kind: KindReplay, Agent: name, Shard: &shard, State: c.state,
				SpecOffset: off, Progress: &Progress{Line: "sent 0"}}); err != nil {
				t.Fatal(err)
			}
			f.replayAgentWith(t, name, func(cfg *AgentConfig) {
				cfg.WorkDir, cfg.MaxSpecTTL = work, c.maxTTL
				if c.allow != nil {
					cfg.Allow = c.allow
				}
			})
			s := f.finalShard(t, id)
			if c.want == "" {
				if s.State != Succeeded || s.Attempt != 1 || hits.Load() != 2 {
					t.Fatalf("shard %s %q attempt %d, %d requests sent; want it resumed: SUCCEEDED at attempt 1, 2 sent", s.State, s.Reason, s.Attempt, hits.Load())
				}
				return
			}
			wantShard := fmt.Sprintf("agent %s restarted while the shard was %s and refused to resume it: %s", name, c.state, c.want)
			if s.State != Failed || s.Attempt != 0 || !strings.Contains(s.Reason, wantShard) {
				t.Errorf("shard %s %q attempt %d, want FAILED at attempt 0 with %q", s.State, s.Reason, s.Attempt, wantShard)
			}
			if _, resumed := f.bus.Status(lostKey(id, 0, 0)); resumed {
				t.Error("the shard was recorded LOST for a re-run")
			}
			var js Status
			waitFor(t, 20*time.Second, "the job's end", func() bool {
				js, _ = f.bus.Status(jobKey(id))
				return js.State.Final()
			})
			if js.State != Failed || !strings.Contains(js.Reason, "shard 0 on "+name+": "+wantShard) {
				t.Errorf("job %s %q, want FAILED with the shard's reason", js.State, js.Reason)
			}
			var out strings.Builder
			cl := &Client{bus: f.bus, Out: &out}
			cl.List()
			if err := cl.Show(id); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), id+"  replay  FAILED") || strings.Count(out.String(), c.want) < 3 {
				t.Errorf("jobs ls and jobs show do not say why the job failed:\n%s", out.String())
			}
			time.Sleep(500 * time.Millisecond) // a resumed run would have sent by now
			if hits.Load() != 0 {
				t.Errorf("the refused shard sent %d requests", hits.Load())
			}
		})
	}
}

// TestLostShardOfExpiredSpec: a shard whose agent is lost after the spec
// expired is not re-run on a spare (a re-run takes the spec again, as a
// restarted agent's resume does): the spare fails it saying why, and
// sends nothing.
func TestLostShardOfExpiredSpec(t *testing.T) {
	f := newIDFleet(t)
	hits, target, work := countedTwoRequests(t)
	// The owner is alive when the spare reads the spec, and stops
	// heartbeating at once: it is lost LostAfter later, past the expiry.
	f.beat(t, "owner", Labels{"role": "load"}, false)
	spec := replaySpec("j-lost-expired", "owner", onceReplay(work, target))
	spec.ExpiresAt = time.Now().UTC().Add(2 * time.Second)
	off := f.publishSpec(t, spec)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(spec.JobID, 0), Status{JobID: spec.JobID, Kind: KindReplay, Agent: "owner", Shard: &shard, State: Running,
		SpecOffset: off, Progress: &Progress{Line: "sent 0"}}); err != nil {
		t.Fatal(err)
	}
	f.replayAgentWith(t, "spare", func(cfg *AgentConfig) { cfg.WorkDir = work })
	s := f.finalShard(t, spec.JobID)
	want := "agent owner missed 3 heartbeats; not re-run on a spare: the spec expired at " + spec.ExpiresAt.Format(time.RFC3339)
	if s.State != Failed || s.Attempt != 0 || !strings.Contains(s.Reason, want) {
		t.Fatalf("shard %s %q attempt %d on %s, want FAILED at attempt 0 with %q", s.State, s.Reason, s.Attempt, s.Agent, want)
	}
	time.Sleep(500 * time.Millisecond)
	if hits.Load() != 0 {
		t.Errorf("the expired shard sent %d requests", hits.Load())
	}
}

// TestRestartSettlesTheJob: an agent restarted while its record run was
// RUNNING (killed: a recording cannot be resumed) marks the run FAILED,
// and, that run being the job's only part, the job too: it did not stay
// RUNNING for ever.
func TestRestartSettlesTheJob(t *testing.T) {
	f := newIDFleet(t)
	off := f.submit(t, "j-stale", Selector{"role": "web"}, "web-1")
	if err := f.bus.PublishStatus(f.ctx, agentKey("j-stale", "web-1"), Status{JobID: "j-stale", Kind: KindRecord, Agent: "web-1", State: Running, SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	f.agent(t, "web-1", Labels{"role": "web"})
	js := f.finalJob(t, "j-stale", 20*time.Second)
	if want := "web-1: agent web-1 restarted while the run was RUNNING"; js.State != Failed || !strings.Contains(js.Reason, want) {
		t.Fatalf("job %s %q, want FAILED with %q", js.State, js.Reason, want)
	}
}

// TestRestartSettlesWithoutDelayingStart: an agent restarted with several
// stale runs whose jobs wait for their submitter's ASSIGNED (it died after
// PENDING: each settlement waits assignWait) heartbeats at once, and still
// settles every job. It settled them one by one before its first
// heartbeat, 10 s each: 30 s here of an agent that looked dead.
func TestRestartSettlesWithoutDelayingStart(t *testing.T) {
	f := newIDFleet(t)
	ids := []string{"j-stale-1", "j-stale-2", "j-stale-3"}
	for _, id := range ids {
		off := f.submit(t, id, Selector{"role": "web"}, "web-1")
		if err := f.bus.PublishStatus(f.ctx, jobKey(id), Status{JobID: id, Kind: KindRecord, State: Pending, Agents: []string{"web-1"}}); err != nil {
			t.Fatal(err)
		}
		if err := f.bus.PublishStatus(f.ctx, agentKey(id, "web-1"), Status{JobID: id, Kind: KindRecord, Agent: "web-1", State: Running, SpecOffset: off}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	f.agent(t, "web-1", Labels{"role": "web"})
	waitFor(t, 5*time.Second, "first heartbeat", func() bool { return f.bus.AgentAlive("web-1", time.Now()) })
	t.Logf("first heartbeat after %s", time.Since(start).Round(time.Millisecond))
	waitFor(t, assignWait+10*time.Second, "every job's end", func() bool {
		for _, id := range ids {
			if js, _ := f.bus.Status(jobKey(id)); !js.State.Final() {
				return false
			}
		}
		return true
	})
}

// TestStopMidSettleSettles: an agent restarted with a stale run marks it
// FAILED and settles its job; a SIGTERM (the agent's context cancelled)
// while that settlement waits (here for the submitter's ASSIGNED, which
// comes after the stop) does not cut it short: the agent's stop waits for
// it, and the job ends FAILED. It stayed PENDING: the run was FAILED
// already, so no restart would have settled the job again.
func TestStopMidSettleSettles(t *testing.T) {
	f := newIDFleet(t)
	id := "j-stale-stop"
	off := f.submit(t, id, Selector{"role": "web"}, "web-1")
	// The submitter's first write is the last so far: settling the job
	// waits for its ASSIGNED (awaitAssigned).
	if err := f.bus.PublishStatus(f.ctx, jobKey(id), Status{JobID: id, Kind: KindRecord, State: Pending, Agents: []string{"web-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.PublishStatus(f.ctx, agentKey(id, "web-1"), Status{JobID: id, Kind: KindRecord, Agent: "web-1", State: Running, SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	ag := f.agent(t, "web-1", Labels{"role": "web"})
	waitFor(t, 10*time.Second, "the stale run FAILED", func() bool {
		s, _ := f.bus.Status(agentKey(id, "web-1"))
		return s.State == Failed
	})
	ag.stop() // SIGTERM, the job's settlement waiting for ASSIGNED
	if err := f.bus.PublishStatus(f.ctx, jobKey(id), Status{JobID: id, Kind: KindRecord, State: Assigned, Agents: []string{"web-1"}, SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ag.done:
		ag.done <- err // for the cleanup
	case <-time.After(assignWait + 20*time.Second):
		t.Fatal("the agent did not stop")
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	js, _ := f.bus.Status(jobKey(id))
	if want := "web-1: agent web-1 restarted while the run was RUNNING"; js.State != Failed || !strings.Contains(js.Reason, want) {
		t.Fatalf("job %s %q after the agent stopped, want FAILED with %q", js.State, js.Reason, want)
	}
}

// TestRestartSettlesAfterKill: an agent killed (kill -9) after its run's
// final status and before the job's (it settled the job then) settles the
// job once restarted. Nothing else would: every part is final, so no run
// ends again and no agent watches it; the job stayed ASSIGNED for ever.
func TestRestartSettlesAfterKill(t *testing.T) {
	f := newIDFleet(t)
	id := "j-killed-settling"
	off := f.submit(t, id, Selector{"role": "web"}, "web-1")
	if err := f.bus.PublishStatus(f.ctx, agentKey(id, "web-1"), Status{JobID: id, Kind: KindRecord, Agent: "web-1", State: Failed,
		Reason: "ended before the kill", SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	f.agent(t, "web-1", Labels{"role": "web"})
	js := f.finalJob(t, id, 10*time.Second)
	if want := "web-1: ended before the kill"; js.State != Failed || !strings.Contains(js.Reason, want) {
		t.Fatalf("job %s %q, want FAILED with %q", js.State, js.Reason, want)
	}
}
