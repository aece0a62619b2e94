package fleet

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLostRunResultsSaidPartial: a replay shard whose run was lost (its
// agent killed, here restarted) is re-run from its resume point: the
// requests before it, answered by the lost run, are not sent again, and
// their results died with that run. The job's merged totals miss them:
// its result says so (partial, how many, which run), and so do jobs show
// (also by the assertions that held on those totals) and jobs ls, and
// the job fails unless it says on-loss: warn. It ended SUCCEEDED with the
// totals of half the shard, silently.
func TestLostRunResultsSaidPartial(t *testing.T) {
	for _, tc := range []struct {
		name, onLoss, assert string
		want                 State
	}{
		// Loud about loss: the job fails on partial totals, as a run's
		// own loss fails it, unless the job says on-loss: warn.
		{"on-loss fail (default)", "", "requests.errors == 0", Failed},
		{"on-loss warn", "    on-loss: warn\n", "requests.errors == 0", Succeeded},
		// An assertion that fails on partial totals does not hide the
		// loss: FAILED (exit 1), not ASSERT_FAILED (exit 3), as a run
		// that lost anything exits 1 whatever its assertions say.
		{"on-loss fail and an assertion failed", "", "requests.sent > 5", Failed},
		{"on-loss warn and an assertion failed", "    on-loss: warn\n", "requests.sent > 5", AssertFailed},
	} {
		t.Run(tc.name, func(t *testing.T) { lostRunResults(t, tc.onLoss, tc.assert, tc.want) })
	}
}

func lostRunResults(t *testing.T, onLoss, assertion string, want State) {
	f := newIDFleet(t)
	hits, target, work := countedTwoRequests(t)
	text := gorReplay("once", work, target, onLoss+"    assert: [\""+assertion+"\"]\n")
	// What the killed agent left: its shard RUNNING, the first request
	// answered (its last resume point).
	id, name := "j-lost-results", "load-1"
	spec := replaySpec(id, name, text)
	off := f.publishSpec(t, spec)
	shard := 0
	if err := f.bus.PublishStatus(f.ctx, shardKey(id, 0), Status{JobID: id, Kind: KindReplay, Agent: name, Shard: &shard, State: Running,
		SpecOffset: off, Progress: &Progress{Line: "1 sent", Resume: &Resume{At: 1}}}); err != nil {
		t.Fatal(err)
	}
	f.replayAgentWith(t, name, func(cfg *AgentConfig) { cfg.WorkDir = work })
	s := f.finalShard(t, id)
	if s.State != Succeeded || s.Attempt != 1 || hits.Load() != 1 {
		t.Fatalf("shard %s %q attempt %d, %d sent; want it resumed at its second request: SUCCEEDED at attempt 1, 1 sent", s.State, s.Reason, s.Attempt, hits.Load())
	}
	js := f.finalJob(t, id, 20*time.Second)
	if js.State != want || js.Result == nil || js.Result.Sent != 1 {
		t.Fatalf("job %s %q, result %+v: want %s with the re-run's 1 request", js.State, js.Reason, js.Result, want)
	}
	lost := "shard 0: the results of 1 request(s) answered by its lost run (attempt 0 on load-1) are not in these totals: they were lost with it"
	if want == Failed && (!strings.Contains(js.Reason, "the merged results are partial: "+lost) || !strings.Contains(js.Reason, "on-loss: warn accepts partial totals")) {
		t.Errorf("the job's reason does not say its results are partial, and what accepts that: %q", js.Reason)
	}
	var show, ls strings.Builder
	if err := (&Client{bus: f.bus, Out: &show}).Show(id); err != nil {
		t.Fatal(err)
	}
	(&Client{bus: f.bus, Out: &ls}).List()
	// The resumed shard's own line says how many requests it skipped:
	// the one its lost run had answered.
	if !regexp.MustCompile(`(?m)^  shard/0 +load-1 +SUCCEEDED +1 +sent 1 ok 1 errors 0 .* resume-skipped 1\b`).MatchString(show.String()) {
		t.Errorf("jobs show's line of the resumed shard does not say resume-skipped 1:\n%s", show.String())
	}
	if !strings.Contains(show.String(), "  partial   "+lost) {
		t.Errorf("jobs show does not say the totals miss the lost run's results (want %q):\n%s", lost, show.String())
	}
	assert := "assert ok   " + assertion + "  (held on partial totals)"
	switch {
	case strings.Contains(assertion, "> 5"):
		assert = "assert FAIL "
		if want == Failed && !strings.Contains(js.Reason, "requests.sent > 5") {
			t.Errorf("the job's reason does not say its assertion failed too: %q", js.Reason)
		}
	case want == Failed:
		assert = "assert --   " + assertion + "  (not evaluated: the job failed)"
	}
	if !strings.Contains(show.String(), assert) {
		t.Errorf("jobs show does not say %q:\n%s", assert, show.String())
	}
	if !strings.Contains(ls.String(), "PARTIAL: "+lost) {
		t.Errorf("jobs ls does not say the job's totals are partial:\n%s", ls.String())
	}
}
