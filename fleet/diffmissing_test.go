package fleet

import (
	"slices"
	"testing"

	"github.com/replayctl/replayctl/compare"
)

// TestDiffsMissing: a part whose result carries no diff while another's
// does (its agent older than diffs in results) makes the merged diff.*
// partial, said a line each; parts that all carry one, or none, are whole.
func TestDiffsMissing(t *testing.T) {
	zero, one := 0, 1
	withDiff := func(shard *int, agent string) Status {
		return Status{Shard: shard, Agent: agent, Result: &Result{Sent: 5, Diff: &compare.DiffSummary{}}}
	}
	without := func(shard *int, agent string) Status {
		return Status{Shard: shard, Agent: agent, Result: &Result{Sent: 7}}
	}
	for _, tt := range []struct {
		name  string
		parts []Status
		want  []string
	}{
		{"all with", []Status{withDiff(&zero, "a"), withDiff(&one, "b")}, nil},
		{"none with (no compare:)", []Status{without(&zero, "a"), without(&one, "b")}, nil},
		{"one without", []Status{withDiff(&zero, "a"), without(&one, "b")}, []string{"shard 1 on b published no diff of its responses (its agent is older than this replayctl): the merged diff.* counts miss its 7 requests"}},
		{"no result yet", []Status{withDiff(&zero, "a"), {Shard: &one, Agent: "b"}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := diffsMissing(tt.parts); !slices.Equal(got, tt.want) {
				t.Errorf("diffsMissing = %q, want %q", got, tt.want)
			}
		})
	}
}
