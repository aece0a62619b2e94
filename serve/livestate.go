package serve

import "github.com/replayctl/replayctl/fleet"

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
	case fleet.IsRunKey(part):
		if f.runs == nil {
			f.runs = map[string]fleet.State{}
		}
		f.runs[part] = st
	}
}

// state is the job's state after the records added (fleet.LiveState).
func (f *liveFold) state() fleet.State {
	var runs fleet.State
	for _, st := range f.runs {
		runs = fleet.Furthest(runs, st)
	}
	return fleet.LiveState(f.job, runs)
}
