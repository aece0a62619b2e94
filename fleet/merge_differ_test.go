package fleet

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/stats"
)

// TestMergeShardsAssertsDiffer: the shards of a replay job publish the
// assertions their agents read their --var values into; when they differ
// (a threshold, a secret folded to another outcome, an assertion one
// shard's result lacks), the merged totals have no one assertion to be
// held to: MergeShards returns the totals and an *AssertsDifferError
// naming, per assertion as written, each text and the parts that
// published it, and evaluates none. Equal texts are evaluated on the
// merged totals. Parts without a result (never ran) take no part.
func TestMergeShardsAssertsDiffer(t *testing.T) {
	origin := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	type part struct {
		agent          string
		shard          int // -1: a per-agent part (no shard)
		asserts, shown []string
		noResult       bool
	}
	shardPart := func(agent string, shard int, asserts ...string) part {
		return part{agent: agent, shard: shard, asserts: asserts}
	}
	for _, tc := range []struct {
		name   string
		parts  []part
		lines  []string // of the AssertsDifferError; nil: none
		failed []string // merged verdicts, when evaluated
	}{
		{
			name:   "equal texts",
			parts:  []part{shardPart("load-1", 0, "requests.sent == 4", "requests.sent == 3"), shardPart("load-2", 1, "requests.sent == 4", "requests.sent == 3")},
			failed: []string{"job replay (merged): requests.sent == 3  (requests.sent = 4, want == 3)"},
		},
		{
			name:  "texts differ",
			parts: []part{shardPart("load-1", 0, "requests.sent >= 2", "errors.count == 0"), shardPart("load-2", 1, "requests.sent >= 3", "errors.count == 0")},
			lines: []string{"assert requests.sent >= 2 is requests.sent >= 2 on shard 0 (load-1), but requests.sent >= 3 on shard 1 (load-2)"},
		},
		{
			name: "texts differ on three shards, two alike",
			parts: []part{shardPart("load-1", 0, "requests.sent >= 2"), shardPart("load-2", 1, "requests.sent >= 3"),
				shardPart("load-3", 2, "requests.sent >= 2")},
			lines: []string{"assert requests.sent >= 2 is requests.sent >= 2 on shard 0 (load-1), shard 2 (load-3), but requests.sent >= 3 on shard 1 (load-2)"},
		},
		{
			name:  "a secret folded to another outcome, said as written",
			parts: []part{{agent: "load-1", shard: 0, asserts: []string{"true && requests.sent > 0"}, shown: []string{`"${API_TOKEN}" != "" && requests.sent > 0`}}, {agent: "load-2", shard: 1, asserts: []string{"false && requests.sent > 0"}, shown: []string{`"${API_TOKEN}" != "" && requests.sent > 0`}}},
			lines: []string{`assert "${API_TOKEN}" != "" && requests.sent > 0 is true && requests.sent > 0 on shard 0 (load-1), but false && requests.sent > 0 on shard 1 (load-2)`},
		},
		{
			name:  "one shard's result has no assertions",
			parts: []part{shardPart("load-1", 0, "requests.sent == 4"), shardPart("load-2", 1)},
			lines: []string{"assert requests.sent == 4 is requests.sent == 4 on shard 0 (load-1), but (none) on shard 1 (load-2)"},
		},
		{
			name:  "the first shard's result has no assertions",
			parts: []part{shardPart("load-1", 0), shardPart("load-2", 1, "requests.sent == 4")},
			lines: []string{"assert requests.sent == 4 is (none) on shard 0 (load-1), but requests.sent == 4 on shard 1 (load-2)"},
		},
		{
			name:  "one shard has one more",
			parts: []part{shardPart("load-1", 0, "requests.sent == 4", "errors.count == 0"), shardPart("load-2", 1, "requests.sent == 4")},
			lines: []string{"assert errors.count == 0 is errors.count == 0 on shard 0 (load-1), but (none) on shard 1 (load-2)"},
		},
		{
			name: "a part that never ran takes no part",
			parts: []part{{agent: "gone", shard: 0, noResult: true}, shardPart("load-1", 1, "requests.sent == 4"),
				shardPart("load-2", 2, "requests.sent == 4")},
		},
		{
			name: "per-agent parts are named by their place among the job's parts",
			parts: []part{{agent: "gone", shard: -1, noResult: true}, {agent: "load-1", shard: -1, asserts: []string{"requests.sent >= 2"}},
				{agent: "load-2", shard: -1, asserts: []string{"requests.sent >= 3"}}},
			lines: []string{"assert requests.sent >= 2 is requests.sent >= 2 on part 1 (load-1), but requests.sent >= 3 on part 2 (load-2)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts []Status
			for i, p := range tc.parts {
				st := Status{Agent: p.agent, State: Succeeded}
				if p.shard >= 0 {
					st.Shard = &p.shard
				}
				if p.noResult {
					st.State = Failed
					parts = append(parts, st)
					continue
				}
				rec := stats.New(stats.Config{Origin: origin})
				for j := range 2 {
					at := origin.Add(time.Duration(2*j+i) * time.Millisecond)
					rec.Record(stats.Result{Scheduled: at, Start: at, Latency: time.Millisecond, Status: 200})
				}
				state := rec.State()
				st.Result = &Result{Sent: 2, OK: 2, State: &state, Asserts: p.asserts, AssertsShown: p.shown}
				// As the status topic carries it.
				data, err := json.Marshal(st)
				if err != nil {
					t.Fatal(err)
				}
				var back Status
				if err := json.Unmarshal(data, &back); err != nil {
					t.Fatal(err)
				}
				parts = append(parts, back)
			}
			res, err := MergeShards("replay", parts)
			var differ *AssertsDifferError
			if tc.lines == nil {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				if !slices.Equal(res.Failed, tc.failed) {
					t.Fatalf("failed %q, want %q", res.Failed, tc.failed)
				}
				return
			}
			if !errors.As(err, &differ) {
				t.Fatalf("err = %v, want an *AssertsDifferError", err)
			}
			if !slices.Equal(differ.Lines, tc.lines) {
				t.Fatalf("lines\n%q\nwant\n%q", differ.Lines, tc.lines)
			}
			if !strings.Contains(err.Error(), "assertions not evaluated") || !strings.Contains(err.Error(), tc.lines[0]) {
				t.Errorf("error %q", err)
			}
			// The totals are still merged; no assertion was evaluated.
			if res == nil || res.Sent != int64(2*len(slices.DeleteFunc(slices.Clone(tc.parts), func(p part) bool { return p.noResult }))) || len(res.Failed) != 0 {
				t.Fatalf("merged result %+v, want the totals and no verdict", res)
			}
		})
	}
}
