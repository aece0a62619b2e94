package fleet

import (
	"testing"
	"time"
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
