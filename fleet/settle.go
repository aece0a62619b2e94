package fleet

import (
	"strings"
	"time"
)

// settleGrace is how long after its last part ended a job that did not
// end is settled by any agent (settleStale): longer than the settlement
// of the run that ended last takes at most (finishJob's 30 s).
var settleGrace = 45 * time.Second

// settleStale settles the jobs whose parts all ended at least settleGrace
// ago while the job did not: the process that wrote the last part's final
// status (a run that ended, an agent that failed a lost shard or refused a
// resume) was stopped or killed before it wrote the job's (finishJob), and
// no one else would. It looks at most every settleGrace/4, and settles
// each job once a settleGrace; finishJob Syncs first and leaves a job
// another agent settled meanwhile as it is. Every agent that trusts the
// job's spec may do it: the spec is read as signed from the jobs topic.
func (a *Agent) settleStale(now time.Time) {
	if now.Sub(a.lastSweep) < settleGrace/4 {
		return
	}
	a.lastSweep = now
	for key, js := range a.bus.StatusPrefix("job/") {
		if strings.Count(key, "/") != 1 || js.State.Final() || now.Sub(a.swept[js.JobID]) < settleGrace {
			continue
		}
		spec, ok := a.specAt(js.JobID, js.SpecOffset)
		if !ok {
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
}
