package fleet

import (
	"crypto/ed25519"
	"log/slog"
	"testing"
	"time"
)

// TestSkewedOwnerDuplicateCutoff: a spare that re-runs a lost shard counts
// as possible duplicates the requests scheduled before the lost owner's
// next heartbeat was due: after when it read the owner's latest heartbeat,
// on its own clock, as the re-run's scheduled instants are. It took the
// heartbeat's record timestamp, the owner's clock on an agents topic created CreateTime:
// an owner 2 min behind cut them 2 min short (none counted), one 1 h ahead
// counted every request of the next hour.
func TestSkewedOwnerDuplicateCutoff(t *testing.T) {
	f := newProducerTimeFleet(t)
	_, target, work := countedTwoRequests(t)
	text := onceReplay(work, target)
	cases := []struct {
		owner string
		skew  time.Duration
	}{{"owner-behind", -2 * time.Minute}, {"owner-ahead", time.Hour}}
	specs := map[string]accepted{}
	var before time.Time
	for _, c := range cases {
		id := "j-" + c.owner
		spec := replaySpec(id, c.owner, text)
		off := f.publishSpec(t, spec)
		sh := 0
		if err := f.bus.PublishStatus(f.ctx, shardKey(id, 0), Status{JobID: id, Kind: KindReplay, Agent: c.owner, Shard: &sh, State: Running, SpecOffset: off}); err != nil {
			t.Fatal(err)
		}
		specs[c.owner] = accepted{spec: spec, offset: off}
	}
	before = time.Now() // the owners' last heartbeats, read after this
	for _, c := range cases {
		f.skewedBeat(t, c.owner, Labels{"role": "load"}, c.skew)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	read := time.Now() // and before this
	waitFor(t, LostAfter+5*time.Second, "the owners lost", func() bool {
		return !f.bus.AgentAlive("owner-behind", time.Now()) && !f.bus.AgentAlive("owner-ahead", time.Now())
	})
	for _, c := range cases {
		t.Run(c.owner, func(t *testing.T) {
			id := "j-" + c.owner
			a, err := NewAgent(AgentConfig{
				Name: "spare-" + c.owner, Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
				WorkDir: work, AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			a.bus = f.bus
			a.specs[id] = specs[c.owner]
			t.Cleanup(func() {
				a.mu.Lock()
				for _, r := range a.runs {
					r.cancel()
				}
				a.mu.Unlock()
				a.wg.Wait()
				a.stopPublishing()
				h := a.heartbeat() // not a spare for the next case's job
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
			var lastSeen time.Time
			rerun := false
			a.onRerun = func(job string, shard int, seen time.Time) {
				if job == id && shard == 0 {
					rerun, lastSeen = true, seen
				}
			}
			a.watchShards(f.ctx)
			if !rerun {
				t.Fatal("the lost shard was not re-run on the spare: the test proves nothing")
			}
			if lastSeen.Before(before) || lastSeen.After(read) {
				t.Errorf("the owner (clock %s off) counts as last seen at %s, %s from when the spare read its heartbeat (between %s and %s): duplicates cut off at %s",
					c.skew, lastSeen.Format(time.RFC3339Nano), lastSeen.Sub(read).Round(time.Second), before.Format(time.RFC3339Nano), read.Format(time.RFC3339Nano),
					lastSeen.Add(HeartbeatInterval).Format(time.RFC3339Nano))
			}
		})
	}
}
