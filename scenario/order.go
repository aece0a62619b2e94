package scenario

import (
	"fmt"
	"slices"
	"strings"
)

// JobOrder returns the scenario's jobs in needs order: each job after the
// jobs it needs, otherwise in file order. With only, it returns just those
// jobs (in the same order); their needs are not added, the caller runs
// them as they are. An unknown name or a needs cycle is an error.
func JobOrder(s *Scenario, only []string) ([]*Job, error) {
	want := map[string]bool{}
	for _, name := range only {
		if _, ok := s.Jobs[name]; !ok {
			return nil, fmt.Errorf("unknown job %q (jobs: %s)", name, strings.Join(s.JobNames, ", "))
		}
		want[name] = true
	}
	var out []*Job
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if done[name] {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("needs cycle: %s", strings.Join(append(path, name), " → "))
		}
		j, ok := s.Jobs[name]
		if !ok {
			return fmt.Errorf("job %q needs unknown job %q", path[len(path)-1], name)
		}
		visiting[name] = true
		for _, n := range j.Needs {
			if err := visit(n, append(slices.Clone(path), name)); err != nil {
				return err
			}
		}
		visiting[name] = false
		done[name] = true
		if len(want) == 0 || want[name] {
			out = append(out, j)
		}
		return nil
	}
	for _, name := range s.JobNames {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}
