package fleet

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestResumedShardSaysPossibleDuplicates: a replay shard re-run after its
// run was lost sends again the requests from its resume point on; those
// scheduled before the lost run's next heartbeat (here: its next progress
// record, after a restart) was due may have been sent by it too. jobs
// show's line of the shard says how many (possible-duplicates N), beside
// resume-skipped: it was only in the job's totals. The lost run's last
// progress record is dated an hour on (a manual clock), so that the
// re-run's request counts however long the agent takes to start.
func TestResumedShardSaysPossibleDuplicates(t *testing.T) {
	f := newIDFleet(t)
	hits, target, work := countedTwoRequests(t)
	text := gorReplay("once", work, target, "    on-loss: warn\n")
	id, name := "j-dups", "load-1"
	spec := replaySpec(id, name, text)
	off := f.publishSpec(t, spec)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(id, 0), Status{JobID: id, Kind: KindReplay, Agent: name, Shard: &shard, State: Running,
		SpecOffset: off, At: time.Now().Add(time.Hour).UTC(), Progress: &Progress{Line: "1 sent", Resume: &Resume{At: 1}}}); err != nil {
		t.Fatal(err)
	}
	f.replayAgentWith(t, name, func(cfg *AgentConfig) { cfg.WorkDir = work })
	s := f.finalShard(t, id)
	if s.State != Succeeded || s.Attempt != 1 || hits.Load() != 1 || s.Result == nil || s.Result.Counters["possible-duplicates"] != 1 {
		t.Fatalf("shard %s %q attempt %d, %d sent, result %+v; want it resumed at its second request, counted a possible duplicate", s.State, s.Reason, s.Attempt, hits.Load(), s.Result)
	}
	f.finalJob(t, id, 20*time.Second)
	var show strings.Builder
	if err := (&Client{bus: f.bus, Out: &show}).Show(id); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  shard/0 +load-1 +SUCCEEDED +1 +sent 1 ok 1 errors 0 .* resume-skipped 1 possible-duplicates 1\b`).MatchString(show.String()) {
		t.Errorf("jobs show's line of the resumed shard does not say possible-duplicates 1:\n%s", show.String())
	}
	if !strings.Contains(show.String(), "\n  possible-duplicates: 1\n") {
		t.Errorf("jobs show's totals do not say possible-duplicates: 1:\n%s", show.String())
	}
}
