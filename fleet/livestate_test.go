package fleet

import (
	"strings"
	"testing"
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
