package fleet

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/stats"
)

// TestMergeShardsDiff: a replay job with compare: reports its shards'
// diffs added up, and its diff.* assertions are evaluated on them (they
// read 0 before: a fleet regression test with mismatches passed
// "diff.mismatches == 0"); jobs show prints the merged diff; a shard's
// result carries no examples (request heads and bodies stay in its own
// report, off the status topic).
func TestMergeShardsDiff(t *testing.T) {
	origin := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	asserts := []string{"diff.mismatches == 0", "diff.compared == 10"}
	var parts []Status
	for i, mismatches := range []int64{3, 4} {
		rec := stats.New(stats.Config{Origin: origin})
		for j := range 5 {
			at := origin.Add(time.Duration(2*j+i) * time.Millisecond) // the shards' requests interleave
			rec.Record(stats.Result{Scheduled: at, Start: at, Latency: time.Millisecond, Status: 200})
		}
		st := rec.State()
		diff := &compare.DiffSummary{Compared: 5, Mismatches: mismatches, Rate: float64(mismatches) / 5,
			Endpoints: []compare.EndpointSummary{{Endpoint: "GET /users/{id}", Requests: 5, Mismatches: mismatches,
				TopFields: []compare.FieldCount{{Field: "$.ver", Count: mismatches}},
				Examples:  []compare.Example{{Request: "GET /users/7 HTTP/1.1\r\nCookie: S3CRET\r\n"}}}}}
		res := resultOf(&engine.JobOutcome{Replay: true, Summary: rec.Summary(), State: &st, Asserts: asserts, Diff: diff})
		shard := i
		in := Status{Agent: "load", Shard: &shard, State: Succeeded, Result: res}
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("S3CRET")) || !bytes.Contains(data, []byte(`"mismatches":`)) {
			t.Fatalf("shard result on the status topic: %s; want its diff counts without examples", data)
		}
		var out Status
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, out)
	}
	res, err := MergeShards("replay", parts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Diff == nil || res.Diff.Compared != 10 || res.Diff.Mismatches != 7 {
		t.Fatalf("merged diff %+v, want compared 10, mismatches 7", res.Diff)
	}
	if len(res.Failed) != 1 || !strings.Contains(res.Failed[0], "diff.mismatches == 0") {
		t.Fatalf("failed assertions %q, want diff.mismatches == 0 failed on the merged diff", res.Failed)
	}
	var show bytes.Buffer
	printResult(&show, Status{Kind: KindReplay, State: AssertFailed, Result: res})
	if !strings.Contains(show.String(), "  diff      compared 10  mismatches 7 (70.00%)") || !strings.Contains(show.String(), "GET /users/{id}: 7 of 10 differ: $.ver (7)") {
		t.Errorf("jobs show has no merged diff:\n%s", show.String())
	}
}
