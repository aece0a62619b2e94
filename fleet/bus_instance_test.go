package fleet

import (
	"testing"
	"time"
)

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
