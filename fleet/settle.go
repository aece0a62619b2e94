package fleet

import (
	"time"
)

// settleGrace is how long after its last part ended a job that did not
// end is settled by any agent (settleStale): longer than the settlement
// of the run that ended last takes at most (finishJob's 30 s).
var settleGrace = 45 * time.Second

// sweptSpec is a job's spec as settleStale read it at offset: ok when it
// verified (by this agent's --trust, which does not change) and is the
// job's.
type sweptSpec struct {
	offset int64
	spec   Spec
	ok     bool
}

// settleStale settles the jobs whose parts all ended at least settleGrace
// ago while the job did not: the process that wrote the last part's final
// status (a run that ended, an agent that failed a lost shard or refused a
// resume) was stopped or killed before it wrote the job's (finishJob), and
// no one else would. It looks at most every settleGrace/4, and settles
// each job once a settleGrace; finishJob Syncs first and leaves a job
// another agent settled meanwhile as it is. Every agent that trusts the
// job's spec may do it: the spec is read as signed from the jobs topic.
//
// A pass costs what the jobs not ended cost: it copies their statuses
// only, reads and verifies each one's spec once (sweptSpecs), and looks
// their parts up by key before it reads them as finishJob does (jobParts).
// A PENDING job names no spec yet (its submitter's ASSIGNED does): its
// runs' finishJob waits for that (awaitAssigned).
func (a *Agent) settleStale(now time.Time) {
	if now.Sub(a.lastSweep) < settleGrace/4 {
		return
	}
	a.lastSweep = now
	open := map[string]bool{}
	for _, js := range a.bus.openJobs() {
		open[js.JobID] = true
		if js.State == Pending || now.Sub(a.swept[js.JobID]) < settleGrace {
			continue
		}
		spec, ok := a.sweptSpec(js.JobID, js.SpecOffset)
		if !ok || !partsFinal(a.bus, spec, js.SpecOffset) {
			continue
		}
		parts := jobParts(a.bus, spec)
		var last time.Time
		ended := len(parts) > 0
		for _, p := range parts {
			if !p.State.Final() {
				ended = false
				break
			}
			if p.At.After(last) {
				last = p.At
			}
		}
		if !ended || now.Sub(last) < settleGrace {
			continue
		}
		if a.swept == nil {
			a.swept = map[string]time.Time{}
		}
		a.swept[js.JobID] = now
		a.log.Warn("settling a job whose parts all ended without it", "job", spec.JobID, "last part ended", last.Format(time.RFC3339))
		a.settle(spec)
	}
	// The jobs that ended since are forgotten.
	for id := range a.sweptSpecs {
		if !open[id] {
			delete(a.sweptSpecs, id)
		}
	}
	for id := range a.swept {
		if !open[id] {
			delete(a.swept, id)
		}
	}
}

// sweptSpec is job id's spec at offset of the jobs topic when it verifies
// (specAt), remembered once read: a record not read yet is asked for again
// at the next pass.
func (a *Agent) sweptSpec(id string, offset int64) (Spec, bool) {
	if c, ok := a.sweptSpecs[id]; ok && c.offset == offset {
		return c.spec, c.ok
	}
	if _, read := a.bus.JobAt(offset); !read {
		return Spec{}, false
	}
	spec, ok := a.specAt(id, offset)
	if a.sweptSpecs == nil {
		a.sweptSpecs = map[string]sweptSpec{}
	}
	a.sweptSpecs[id] = sweptSpec{offset: offset, spec: spec, ok: ok}
	return spec, ok
}

// partsFinal says, by one lookup of each part's status (and, for a part
// with none, of its agent's refusal of the spec at offset), whether every
// part of the job may be final: false when one is not, as jobParts would
// read it.
func partsFinal(b *Bus, spec Spec, offset int64) bool {
	for i, name := range spec.Agents {
		key := agentKey(spec.JobID, name)
		if spec.Kind != KindRecord {
			key = shardKey(spec.JobID, i)
		}
		if s, ok := b.Status(key); ok {
			if !s.State.Final() {
				return false
			}
			continue
		}
		if _, ok := b.Status(refusedKey(spec.JobID, name, offset)); !ok {
			return false
		}
	}
	return true
}
