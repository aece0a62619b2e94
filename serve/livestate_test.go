package serve

import (
	"testing"

	"github.com/replayctl/replayctl/fleet"
)

// TestLiveState: a job whose record says PENDING or ASSIGNED shows how far
// its runs got (RUNNING, else ARMED, else QUEUED); a final record, or runs
// that have not started or have all ended, leave the record's state.
// Refusals and lost shards' records are not runs.
func TestLiveState(t *testing.T) {
	for _, c := range []struct {
		name  string
		job   fleet.State
		parts map[string]fleet.State
		want  fleet.State
	}{
		{"no run yet", fleet.Assigned, nil, fleet.Assigned},
		{"submitted", fleet.Pending, nil, fleet.Pending},
		{"shards armed, waiting for the start", fleet.Assigned, map[string]fleet.State{"shard/0": fleet.Armed, "shard/1": fleet.Armed}, fleet.Armed},
		{"one armed, one queued", fleet.Assigned, map[string]fleet.State{"shard/0": fleet.Queued, "shard/1": fleet.Armed}, fleet.Armed},
		{"one running", fleet.Assigned, map[string]fleet.State{"shard/0": fleet.Running, "shard/1": fleet.Armed, "shard/2": fleet.Queued}, fleet.Running},
		{"queued", fleet.Assigned, map[string]fleet.State{"shard/0": fleet.Queued}, fleet.Queued},
		{"record job's hosts", fleet.Assigned, map[string]fleet.State{"agent/web-1": fleet.Running, "agent/web-2": fleet.Succeeded}, fleet.Running},
		{"runs before the submitter's ASSIGNED", fleet.Pending, map[string]fleet.State{"shard/0": fleet.Armed}, fleet.Armed},
		{"every run ended, the job not yet", fleet.Assigned, map[string]fleet.State{"shard/0": fleet.Succeeded, "shard/1": fleet.Failed}, fleet.Assigned},
		{"final record", fleet.Cancelled, map[string]fleet.State{"shard/0": fleet.Running}, fleet.Cancelled},
		{"a record saying RUNNING itself", fleet.Running, map[string]fleet.State{"shard/0": fleet.Queued}, fleet.Running},
		{"a refusal is no run", fleet.Assigned, map[string]fleet.State{"refused/web-1/12": fleet.Running}, fleet.Assigned},
		{"a lost shard's record is no run", fleet.Assigned, map[string]fleet.State{"shard/0/lost/0": fleet.Running, "shard/0": fleet.Queued}, fleet.Queued},
		{"not a shard number", fleet.Assigned, map[string]fleet.State{"shard/x": fleet.Running, "shard/": fleet.Running, "agent/": fleet.Running}, fleet.Assigned},
	} {
		t.Run(c.name, func(t *testing.T) {
			var runs fleet.State
			f := liveFold{}
			f.add("job", c.job)
			for part, st := range c.parts {
				if fleet.IsRunKey(part) {
					runs = fleet.Furthest(runs, st)
				}
				f.add(part, st)
			}
			if got := fleet.LiveState(c.job, runs); got != c.want {
				t.Errorf("liveState: %s, want %s", got, c.want)
			}
			if got := f.state(); got != c.want {
				t.Errorf("liveFold: %s, want %s", got, c.want)
			}
		})
	}
}

// TestLiveFoldFollows: the events stream's job state follows each record:
// a part moving on, then the job's final record.
func TestLiveFoldFollows(t *testing.T) {
	var f liveFold
	for i, step := range []struct {
		part string
		st   fleet.State
		want fleet.State
	}{
		{"job", fleet.Pending, fleet.Pending},
		{"job", fleet.Assigned, fleet.Assigned},
		{"shard/0", fleet.Armed, fleet.Armed},
		{"shard/1", fleet.Queued, fleet.Armed},
		{"shard/0", fleet.Running, fleet.Running},
		{"shard/0", fleet.Succeeded, fleet.Queued},
		{"shard/1", fleet.Running, fleet.Running},
		{"shard/1", fleet.Succeeded, fleet.Assigned},
		{"job", fleet.Succeeded, fleet.Succeeded},
	} {
		f.add(step.part, step.st)
		if got := f.state(); got != step.want {
			t.Errorf("step %d (%s → %s): job %s, want %s", i, step.part, step.st, got, step.want)
		}
	}
}
