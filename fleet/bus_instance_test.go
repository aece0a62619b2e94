package fleet

import (
	"testing"
	"time"
)

// TestStoppedTwinDoesNotHideLiveProcess: of two processes named web-1, the
// one that stops does not make the other, still heartbeating, look stopped.
func TestStoppedTwinDoesNotHideLiveProcess(t *testing.T) {
	f := newIDFleet(t)
	pubBeat := func(inst string, stopped bool) {
		h := Heartbeat{Name: "web-1", Labels: Labels{"role": inst}, At: time.Now().UTC(), Stopped: stopped, Instance: inst}
		if _, err := f.bus.Publish(f.ctx, AgentsTopic, "web-1", h); err != nil {
			t.Fatal(err)
		}
	}
	pubBeat("a", false)
	pubBeat("b", false)
	pubBeat("b", true)
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	h, _, _ := f.bus.Agent("web-1")
	if !f.bus.AgentAlive("web-1", time.Now()) || h.Instance != "a" {
		t.Fatalf("%+v", h)
	}
	pubBeat("a", true)
	_ = f.bus.Sync(f.ctx)
	if f.bus.AgentAlive("web-1", time.Now()) {
		t.Fatal("alive after both stopped")
	}
}

// TestStoppedAfterKilledTwin: a process that went quiet (killed, then
// replaced by one that stops soon after) is not brought back as live by
// the replacement's stopped heartbeat.
func TestStoppedAfterKilledTwin(t *testing.T) {
	b := &Bus{live: map[string]map[string]liveBeat{}, agents: map[string]Heartbeat{}, agentTS: map[string]time.Time{}, seen: map[string]time.Time{}}
	t0 := time.Now()
	beat := func(inst string, stopped bool, at time.Time) {
		h := Heartbeat{Name: "web-1", Instance: inst, Stopped: stopped, At: at}
		b.agents["web-1"], b.agentTS["web-1"], b.seen["web-1"] = h, at, at
		b.applyInstance("web-1", h, at, at)
	}
	beat("killed", false, t0)
	beat("new", false, t0.Add(4*time.Second))
	beat("new", true, t0.Add(5*time.Second))
	if h := b.agents["web-1"]; h.Instance != "new" || !h.Stopped {
		t.Fatalf("web-1 = %+v, want the new process's stopped heartbeat", h)
	}
}
