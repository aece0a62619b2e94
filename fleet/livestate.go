package fleet

import "strings"

// A job's own status record (job/ID) says PENDING when it is submitted,
// ASSIGNED once its spec is on the jobs topic, then its final state: no
// one writes it in between, as every run of the job would race to. How far
// a job that has not ended got is in its runs' records (job/ID/agent/NAME
// of a record job, job/ID/shard/N of a replay), which LiveState reads.

// runRank orders the states of a run that has not ended by how far it got;
// 0 for the others.
func runRank(st State) int {
	switch st {
	case Queued:
		return 1
	case Armed:
		return 2
	case Running:
		return 3
	}
	return 0
}

// Furthest returns whichever of two run states got further: RUNNING,
// then ARMED, then QUEUED; a's when neither is one of those.
func Furthest(a, b State) State {
	if runRank(b) > runRank(a) {
		return b
	}
	return a
}

// IsRunKey reports whether part, a status key below job/ID/, is one of the
// job's runs: agent/NAME or shard/N, not a refusal (refused/NAME/OFFSET)
// nor a lost shard's record (shard/N/lost/ATTEMPT).
func IsRunKey(part string) bool {
	if name, ok := strings.CutPrefix(part, "agent/"); ok {
		return name != ""
	}
	n, ok := strings.CutPrefix(part, "shard/")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// LiveState is the state a job shows: its record's (job), except while
// that says PENDING or ASSIGNED and a run of it is going, where it is how
// far its runs got (runs: Furthest over their states): RUNNING, else ARMED
// (connected and prefetched, waiting for the shards' one start instant),
// else QUEUED (waiting for a free run on its agent).
func LiveState(job, runs State) State {
	if (job == Pending || job == Assigned) && runRank(runs) > 0 {
		return runs
	}
	return job
}

// JobLiveState is LiveState of job id from the status records read.
func (b *Bus) JobLiveState(id string, job State) State {
	return LiveState(job, runStates(b.StatusPrefix(jobKey(id) + "/"))[id])
}

// runStates returns, by job ID, Furthest over the states of each job's
// runs among statuses (keyed as the status topic is): one pass for a list
// of every job, where JobLiveState for each would scan them all per job.
func runStates(statuses map[string]Status) map[string]State {
	out := map[string]State{}
	for k, s := range statuses {
		id, part, ok := strings.Cut(strings.TrimPrefix(k, "job/"), "/")
		if ok && strings.HasPrefix(k, "job/") && IsRunKey(part) {
			out[id] = Furthest(out[id], s.State)
		}
	}
	return out
}
