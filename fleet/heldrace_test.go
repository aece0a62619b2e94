package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// TestHeldRefusalStatusRace: the job's own spec (signed by a key the agent
// does not trust) is read while the job is PENDING and the rate limit is
// spent; its refusal is published whether ASSIGNED (naming it) comes after
// the agent handled it (held, then published by retryHeld) or in the
// middle of its checks (the agent blocked on a.mu there).
func TestHeldRefusalStatusRace(t *testing.T) {
	for _, race := range []bool{false, true} {
		f := newIDFleet(t)
		a, err := NewAgent(AgentConfig{Name: "web-1", Labels: Labels{"role": "web"}, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{f.pub},
			WorkDir: filepath.Join(t.TempDir(), "work"), Kafka: f.cfg, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		a.bus = f.bus
		a.refusals = &refusalLimit{burst: 1, every: time.Hour} // spent
		_, rogue, _ := ed25519.GenerateKey(rand.Reader)
		id := "j-own"
		if err := f.bus.PublishStatus(f.ctx, jobKey(id), Status{JobID: id, Kind: KindRecord, State: Pending, Agents: []string{"web-1"}}); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		env, _ := Seal("spec", Spec{JobID: id, Kind: KindRecord, Agents: []string{"web-1"}, Selector: Selector{"role": "web"}, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}, rogue)
		rec, err := f.bus.Publish(f.ctx, JobsTopic, "spec/"+id, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.bus.Sync(f.ctx); err != nil {
			t.Fatal(err)
		}
		jr := f.bus.Jobs(rec.Offset)[0]
		assign := func() {
			if err := f.bus.PublishStatus(f.ctx, jobKey(id), Status{JobID: id, Kind: KindRecord, State: Assigned, Agents: []string{"web-1"}, SpecOffset: rec.Offset}); err != nil {
				t.Error(err)
			}
			if err := f.bus.Sync(f.ctx); err != nil {
				t.Error(err)
			}
		}
		if race {
			a.mu.Lock() // handleSpec blocks in takeRefusalToken, past its first checks
			done := make(chan struct{})
			go func() { a.handleSpec(f.ctx, jr); close(done) }()
			time.Sleep(300 * time.Millisecond)
			assign()
			a.mu.Unlock()
			<-done
		} else {
			a.handleSpec(f.ctx, jr)
			assign()
		}
		a.retryHeld(f.ctx)
		_, published := f.bus.Status(refusedKey(id, "web-1", rec.Offset))
		if !published {
			t.Errorf("ASSIGNED lands mid-check=%v: refusal of the job's own spec not published (suppressed=%d held=%d)", race, a.RefusalsSuppressed(), len(a.held))
		}
	}
}
