package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCancelRefusalReadByCanceller(t *testing.T) {
	f := newIDFleet(t)
	f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	_ = f.bus.PublishStatus(f.ctx, jobKey("j"), Status{JobID: "j", Kind: KindRecord, State: Assigned, Agents: []string{"web-1"}})
	_ = f.bus.PublishStatus(f.ctx, agentKey("j", "web-1"), Status{JobID: "j", Kind: KindRecord, Agent: "web-1", State: Running, SpecOffset: 3})
	_ = f.bus.Sync(f.ctx)
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	start := time.Now()
	err := NewClient(f.bus, io.Discard).CancelJob(f.ctx, "j", "c-1", rogue)
	if err == nil || !strings.Contains(err.Error(), "web-1: cancel refused: signed by a key this agent does not trust") || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
	t.Logf("%v after %s", err, time.Since(start))
}
