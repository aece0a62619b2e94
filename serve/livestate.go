package serve

import (
	"strings"

	"github.com/replayctl/replayctl/fleet"
)

// A job's own status record (job/ID) says PENDING when it is submitted,
// ASSIGNED once its spec is on the jobs topic, then its final state: no
// one writes it in between, as every run of the job would race to. How far
// a job that has not ended got is in its runs' records (job/ID/agent/NAME
// of a record job, job/ID/shard/N of a replay), which liveState reads.

// runRank orders the states of a run that has not ended by how far it got;
// 0 for the others.
func runRank(st fleet.State) int {
	switch st {
	case fleet.Queued:
		return 1
	case fleet.Armed:
		return 2
	case fleet.Running:
		return 3
	}
	return 0
}

// furthest returns whichever of two run states got further (runRank).
func furthest(a, b fleet.State) fleet.State {
	if runRank(b) > runRank(a) {
		return b
	}
	return a
}

// isRun reports whether part, a status key below job/ID/, is one of the
// job's runs: agent/NAME or shard/N, not a refusal (refused/NAME/OFFSET)
// nor a lost shard's record (shard/N/lost/ATTEMPT).
func isRun(part string) bool {
	if name, ok := strings.CutPrefix(part, "agent/"); ok {
		return name != ""
	}
	n, ok := strings.CutPrefix(part, "shard/")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// liveState is the state a job shows: its record's, except while that
// says PENDING or ASSIGNED and a run of it is going, where it is how far
// its runs got (runs: furthest over their states): RUNNING, else ARMED
// (connected and prefetched, waiting for the shards' one start instant),
// else QUEUED (waiting for a free run on its agent).
func liveState(job, runs fleet.State) fleet.State {
	if (job == fleet.Pending || job == fleet.Assigned) && runRank(runs) > 0 {
		return runs
	}
	return job
}

// liveFold follows a job's state through its status records in topic
// order, as the events stream sends them.
type liveFold struct {
	job  fleet.State
	runs map[string]fleet.State // by part
}

// add takes one record of the job (part "job", or below job/ID/).
func (f *liveFold) add(part string, st fleet.State) {
	switch {
	case part == "job":
		f.job = st
	case isRun(part):
		if f.runs == nil {
			f.runs = map[string]fleet.State{}
		}
		f.runs[part] = st
	}
}

// state is the job's state after the records added (liveState).
func (f *liveFold) state() fleet.State {
	var runs fleet.State
	for _, st := range f.runs {
		runs = furthest(runs, st)
	}
	return liveState(f.job, runs)
}
