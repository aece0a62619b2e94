package fleet

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// TestLateOwnerNotLost: an agent finds a replay shard's owner lost (no
// heartbeat for LostAfter), then reads the topics to their end before it
// acts. When what it reads shows the owner runs on (its heartbeat was only
// late, or its shard's progress came in), it neither fails the shard nor
// re-runs it on a spare: nothing is recorded LOST, the shard stays the
// owner's, and nothing is sent twice. It acted on the picture from before
// the read.
func TestLateOwnerNotLost(t *testing.T) {
	f := newIDFleet(t)
	hits, target, work := countedTwoRequests(t)
	text := onceReplay(work, target)
	type lateCase struct {
		name, id, owner string
		spare           bool   // the agent watching is a spare (else: none, it would fail the shard)
		late            string // what comes in during the read: "heartbeat" or "progress"
	}
	cases := []lateCase{
		{"heartbeat late, a spare would re-run the shard", "j-late-1", "owner-1", true, "heartbeat"},
		{"heartbeat late, no spare: the shard would be failed", "j-late-2", "owner-2", false, "heartbeat"},
		{"progress comes in, a spare would re-run the shard", "j-late-3", "owner-3", true, "progress"},
	}
	shard := 0
	running := func(c lateCase, line string) Status {
		return Status{JobID: c.id, Kind: KindReplay, Agent: c.owner, Shard: &shard, State: Running, Progress: &Progress{Line: line}}
	}
	specs := map[string]accepted{}
	for _, c := range cases {
		f.beat(t, c.owner, Labels{"role": "load"}, false)
		spec := replaySpec(c.id, c.owner, text)
		if !c.spare {
			spec.Selector = Selector{"role": "lone"}
		}
		off := f.publishSpec(t, spec)
		st := running(c, "sent 0")
		st.SpecOffset = off
		if err := f.bus.PublishStatus(f.ctx, shardKey(c.id, 0), st); err != nil {
			t.Fatal(err)
		}
		specs[c.id] = accepted{spec: spec, offset: off}
	}
	// The owners' next heartbeats are late.
	waitFor(t, LostAfter+5*time.Second, "the owners lost", func() bool {
		for _, c := range cases {
			if f.bus.AgentAlive(c.owner, time.Now()) {
				return false
			}
		}
		return true
	})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := AgentConfig{
				Name: "watcher-" + c.id, Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
				WorkDir: work, AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg, Logger: slog.New(slog.DiscardHandler),
			}
			if !c.spare {
				cfg.Labels, cfg.Allow = Labels{"role": "lone"}, []string{KindRecord}
			}
			a, err := NewAgent(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a.bus = f.bus
			a.specs[c.id] = specs[c.id]
			t.Cleanup(func() {
				a.mu.Lock()
				for _, r := range a.runs {
					r.cancel()
				}
				a.mu.Unlock()
				a.wg.Wait()
				a.stopPublishing()
				// Not a spare for the next case's job.
				h := a.heartbeat()
				h.Stopped = true
				if _, err := f.bus.Publish(f.ctx, AgentsTopic, a.cfg.Name, h); err != nil {
					t.Error(err)
				}
			})
			if _, err := f.bus.Publish(f.ctx, AgentsTopic, a.cfg.Name, a.heartbeat()); err != nil {
				t.Fatal(err)
			}
			if err := f.bus.Sync(f.ctx); err != nil {
				t.Fatal(err)
			}
			before, _ := f.bus.Status(shardKey(c.id, 0))
			found := false
			a.beforeLostSync = func(id string, sh int, owner string) {
				if id != c.id || sh != 0 || owner != c.owner {
					t.Errorf("found lost: job %s shard %d of %s", id, sh, owner)
					return
				}
				found = true
				switch c.late {
				case "heartbeat":
					f.beat(t, c.owner, Labels{"role": "load"}, false)
				case "progress":
					st := before
					st.Progress, st.At = &Progress{Line: fmt.Sprintf("sent %d", i+1)}, time.Time{}
					if err := f.bus.PublishStatus(f.ctx, shardKey(c.id, 0), st); err != nil {
						t.Error(err)
					}
				}
			}
			a.watchShards(f.ctx)
			if !found {
				t.Fatal("the owner was not found lost: the test proves nothing")
			}
			a.mu.Lock()
			runs := len(a.runs)
			a.mu.Unlock()
			if err := f.bus.Sync(f.ctx); err != nil {
				t.Fatal(err)
			}
			if lost, ok := f.bus.Status(lostKey(c.id, 0, 0)); ok {
				t.Errorf("the shard was recorded LOST while its owner runs on: %q", lost.Reason)
			}
			if s, _ := f.bus.Status(shardKey(c.id, 0)); s.State != Running || s.Agent != c.owner || s.Attempt != 0 {
				t.Errorf("shard %s on %s at attempt %d %q, want it RUNNING on %s at attempt 0", s.State, s.Agent, s.Attempt, s.Reason, c.owner)
			}
			if runs != 0 {
				t.Error("the watching agent re-ran the shard of a live owner")
			}
			if js, _ := f.bus.Status(jobKey(c.id)); js.State.Final() {
				t.Errorf("job %s %q while its shard runs on", js.State, js.Reason)
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // a re-run would have sent by now
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests sent again by a re-run of a live owner's shard", n)
	}
}
