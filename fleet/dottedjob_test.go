package fleet

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/replayctl/replayctl/scenario"
)

// TestGeneratedSetsNameDottedJobs: the --set overrides the fleet writes
// (a submission's --for, the shards' start instant) name their job even
// when another job's name is a prefix of it up to a dot (jobs r and
// r.stop): jobs.r.stop.after reads two ways, which --set refuses.
func TestGeneratedSetsNameDottedJobs(t *testing.T) {
	const text = `version: 1
name: dotted
kafka: {brokers: [embedded]}
topics:
  traffic: {name: dotted-http}
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  r:
    source: {window: w}
    sink: {http: {target: t}}
  r.stop:
    source: {window: w}
    sink: {http: {target: t}}
`
	start := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, job := range []string{"r", "r.stop"} {
		t.Run(job, func(t *testing.T) {
			set := append(submitSet(SubmitRequest{Job: job, Text: []byte(text), For: 7 * time.Second}), shardSets(job, JobNames([]byte(text)), &ReplayPlan{StartAt: start})...)
			s, err := scenario.LoadBytes(filepath.Join(t.TempDir(), "s.yaml"), []byte(text), scenario.Options{Set: set, Env: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatalf("load with %q: %v", set, err)
			}
			for _, j := range s.Jobs {
				mine := j.Name == job
				if got := j.Stop.After == 7*time.Second; got != mine {
					t.Errorf("job %s: stop.after %v (the overrides were for %s)", j.Name, j.Stop.After, job)
				}
				if got := j.StartAt != nil && j.StartAt.Time.Equal(start); got != mine {
					t.Errorf("job %s: start-at %+v (the overrides were for %s)", j.Name, j.StartAt, job)
				}
			}
		})
	}
}

// TestGeneratedSetsUnquotedWhereUnambiguous: where a job's name reads one
// way, the overrides the fleet writes leave it unquoted, as before quotes
// were read: an agent of the previous version, during a rolling upgrade,
// reads "r" in jobs."r".stop.after as a job named with its quotes.
func TestGeneratedSetsUnquotedWhereUnambiguous(t *testing.T) {
	text := []byte("version: 1\njobs:\n  r: {}\n  other: {}\n")
	start := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	got := append(submitSet(SubmitRequest{Job: "r", Text: text, For: 7 * time.Second}), shardSets("r", JobNames(text), &ReplayPlan{StartAt: start})...)
	want := []string{"jobs.r.stop.after=7s", "jobs.r.start-at=2026-12-07T08:00:00Z"}
	if !slices.Equal(got, want) {
		t.Errorf("overrides %q, want %q", got, want)
	}
	for _, s := range []string{"jobs.r.stop.after=7s", `jobs."r".stop.after=7s`} {
		if !IsStopAfterSet(s, "r", 7*time.Second) {
			t.Errorf("IsStopAfterSet(%q) is false", s)
		}
	}
	if IsStopAfterSet("jobs.r.stop.after=8s", "r", 7*time.Second) || IsStopAfterSet("jobs.other.stop.after=7s", "r", 7*time.Second) {
		t.Error("IsStopAfterSet took another override for --for's")
	}
}
