package fleet

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSkewedAgentClockLiveness: on a broker that keeps its producers'
// timestamps (an agents topic created CreateTime), a heartbeat's record timestamp is its
// agent's own clock. Whether an agent is alive goes by when this process
// read its latest heartbeat, on this process's clock: an agent whose clock
// is 2 min behind is alive while it heartbeats (it looked lost, so a spare
// took its running shard and its requests went twice), and one whose
// clock is an hour ahead is lost LostAfter after its last heartbeat (it
// looked alive for an hour, its shard stuck). A bus opened afterwards
// reads those heartbeats from before it opened: the one from the future
// counts as seen when read, not an hour on.
func TestSkewedAgentClockLiveness(t *testing.T) {
	f := newProducerTimeFleet(t)
	skewed := func(offset time.Duration) func() time.Time { // an agent's manual clock
		return func() time.Time { return time.Now().Add(offset) }
	}
	beat := func(name string, clock func() time.Time) {
		t.Helper()
		h := Heartbeat{Name: name, Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Version: "v", At: clock().UTC(), Instance: name + "-1"}
		v, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Topic: AgentsTopic, Key: []byte(name), Value: v, Timestamp: clock()}
		if err := f.bus.cl.ProduceSync(f.ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := f.bus.Sync(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	behind, ahead := skewed(-2*time.Minute), skewed(time.Hour)
	beat("behind", behind)
	beat("ahead", ahead)
	if _, ts, _ := f.bus.Agent("behind"); ts.After(time.Now().Add(-time.Minute)) {
		t.Fatalf("the broker stamped the heartbeat %s: this test needs one that keeps its producers' timestamps", ts)
	}
	now := time.Now()
	if !f.bus.AgentAlive("behind", now) {
		t.Errorf("an agent whose clock is 2m behind looks lost right after its heartbeat")
	}
	if !f.bus.AgentAlive("ahead", now) {
		t.Errorf("an agent whose clock is 1h ahead looks lost right after its heartbeat")
	}
	// No heartbeat from either after this one: lost LostAfter on.
	later := now.Add(LostAfter + time.Second)
	if f.bus.AgentAlive("ahead", later) {
		t.Errorf("an agent whose clock is 1h ahead still looks alive %s after its last heartbeat", later.Sub(now))
	}
	if f.bus.AgentAlive("behind", later) {
		t.Errorf("an agent whose clock is 2m behind still looks alive %s after its last heartbeat", later.Sub(now))
	}

	// A bus opened now reads both heartbeats from before it opened.
	b2, err := OpenBus(f.ctx, f.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Close)
	if err := b2.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if b2.AgentAlive("ahead", time.Now().Add(LostAfter+time.Second)) {
		t.Errorf("a bus opened later takes the heartbeat from 1h ahead for one seen then")
	}
	// The behind agent's next heartbeat, read as it comes, is alive.
	beat("behind", behind)
	if err := b2.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if !b2.AgentAlive("behind", time.Now()) {
		t.Errorf("a bus opened before the heartbeat of an agent whose clock is 2m behind takes it for lost")
	}
}
