package fleet

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestJobsListShowsLiveState: while a job's own record says ASSIGNED (no
// one writes it between submission and the end), jobs ls and jobs show
// say how far its runs got, as serve does: ARMED with a shard armed,
// RUNNING once one runs; the final state once the record has one.
func TestJobsListShowsLiveState(t *testing.T) {
	f := newIDFleet(t)
	spec := replaySpec("j-live", "load-1", "version: 1\n")
	spec.Agents, spec.Shards = []string{"load-1", "load-2"}, 2
	off := f.publishSpec(t, spec)
	for _, c := range []struct {
		shard int
		key   string
		state State
		want  string
	}{
		{0, shardKey("j-live", 0), Armed, "ARMED"},
		{1, shardKey("j-live", 1), Running, "RUNNING"},
		{0, shardKey("j-live", 0), Succeeded, "RUNNING"}, // shard 1 still runs
		{-1, jobKey("j-live"), Failed, "FAILED"},
	} {
		st := Status{JobID: "j-live", Kind: KindReplay, State: c.state, SpecOffset: off}
		if c.shard >= 0 {
			st.Shard, st.Agent = &c.shard, spec.Agents[c.shard]
		}
		if err := f.bus.PublishStatus(f.ctx, c.key, st); err != nil {
			t.Fatal(err)
		}
		if err := f.bus.Sync(f.ctx); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cl := &Client{bus: f.bus, Out: &out}
		cl.List()
		if err := cl.Show("j-live"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "j-live  replay  "+c.want) || !strings.Contains(out.String(), "job j-live  replay  "+c.want) {
			t.Errorf("after %s %s: want %s in jobs ls and jobs show:\n%s", c.key, c.state, c.want, out.String())
		}
	}
}

// TestJobsListManyJobs: jobs ls reads the runs' states of every job in one
// pass over the status records; it scanned them all once per job
// (JobLiveState), some 10^9 key comparisons for 20 000 jobs of 3 runs.
func TestJobsListManyJobs(t *testing.T) {
	const n = 20000
	b := &Bus{status: make(map[string]Status, 4*n)}
	for i := range n {
		id := fmt.Sprintf("j-%05d", i)
		b.status[jobKey(id)] = Status{JobID: id, Kind: KindRecord, State: Assigned}
		for _, a := range []string{"a", "b", "c"} {
			b.status[agentKey(id, a)] = Status{JobID: id, Agent: a, State: Queued}
		}
	}
	b.status[agentKey("j-00007", "b")] = Status{JobID: "j-00007", Agent: "b", State: Running}
	var out strings.Builder
	start := time.Now()
	(&Client{bus: b, Out: &out}).List()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("jobs ls of %d jobs took %s", n, d)
	}
	if !regexp.MustCompile(`(?m)^j-00007 +record +RUNNING `).MatchString(out.String()) || !regexp.MustCompile(`(?m)^j-00008 +record +QUEUED `).MatchString(out.String()) {
		t.Errorf("jobs ls lacks j-00007 RUNNING and j-00008 QUEUED")
	}
}
