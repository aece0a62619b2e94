package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/stats"
)

// TestMergeShardsExact: the job result merged from random shard results
// (each sent through the status topic's JSON) equals one recorder fed every
// sample: counts, status codes, every percentile, the latency buckets; the
// job's assertions are evaluated on the merged summary.
func TestMergeShardsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 3))
	origin := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	for trial := range 30 {
		n := 300 + rng.IntN(4000)
		whole := stats.New(stats.Config{Origin: origin})
		recs := make([]*stats.Recorder, 1+rng.IntN(6))
		for i := range recs {
			recs[i] = stats.New(stats.Config{Origin: origin})
		}
		for range n {
			sched := origin.Add(time.Duration(rng.Int64N(int64(10 * time.Second))))
			r := stats.Result{
				Scheduled: sched,
				Start:     sched.Add(time.Duration(rng.ExpFloat64() * 2e5)),
				Latency:   time.Duration(math.Exp(rng.NormFloat64()*1.3) * 3e6),
				Status:    []int{200, 200, 200, 404, 503}[rng.IntN(5)],
			}
			if rng.IntN(30) == 0 {
				r.Status, r.Err, r.ErrClass = 0, errors.New("boom"), "timeout"
			}
			whole.Record(r)
			recs[rng.IntN(len(recs))].Record(r)
		}
		asserts := []string{fmt.Sprintf("requests.sent == %d", n), "latency.p99 < 1ms"}
		var parts []Status
		for i, rec := range recs {
			st := rec.State()
			s := rec.Summary()
			in := Status{Agent: fmt.Sprintf("load-%d", i), Shard: &i, State: Succeeded, Result: &Result{
				Sent: s.Sent, State: &st, Asserts: asserts, Counters: map[string]int64{"sink.retries": int64(i + 1)},
			}}
			data, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var out Status
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, out)
		}
		parts = append(parts, Status{Agent: "never-ran", State: Failed}) // no result: left out

		res, err := MergeShards("replay", parts)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		want := whole.Summary()
		got, ok := res.Summary()
		if !ok {
			t.Fatalf("trial %d: merged result has no state", trial)
		}
		if res.Sent != want.Sent || res.OK != want.OK || res.Errors != want.Errors || !maps.Equal(res.Status, want.Status) {
			t.Fatalf("trial %d: counts %d/%d/%d %v, want %d/%d/%d %v", trial, res.Sent, res.OK, res.Errors, res.Status, want.Sent, want.OK, want.Errors, want.Status)
		}
		if time.Duration(res.LatencyP50) != want.Latency.P50 || time.Duration(res.LatencyP90) != want.Latency.P90 ||
			time.Duration(res.LatencyP99) != want.Latency.P99 || time.Duration(res.LatencyMax) != want.Latency.Max {
			t.Fatalf("trial %d (%d shards): p50/p90/p99/max %s/%s/%s/%s, want %s/%s/%s/%s", trial, len(recs),
				time.Duration(res.LatencyP50), time.Duration(res.LatencyP90), time.Duration(res.LatencyP99), time.Duration(res.LatencyMax), want.Latency.P50, want.Latency.P90, want.Latency.P99, want.Latency.Max)
		}
		if got.Latency.P999 != want.Latency.P999 || got.Lateness.P99 != want.Lateness.P99 || !reflect.DeepEqual(got.Histogram, want.Histogram) {
			t.Fatalf("trial %d: rebuilt summary differs: %+v vs %+v", trial, got.Latency, want.Latency)
		}
		ws := whole.State()
		if !reflect.DeepEqual(res.State.Latency.Buckets, ws.Latency.Buckets) || !reflect.DeepEqual(res.State.Lateness.Buckets, ws.Lateness.Buckets) {
			t.Fatalf("trial %d: merged buckets differ from one recorder's", trial)
		}
		if res.Counters["sink.retries"] != int64(len(recs)*(len(recs)+1)/2) {
			t.Fatalf("trial %d: counters %v", trial, res.Counters)
		}
		// requests.sent == n holds only on the merged summary (a shard sent
		// part of it); latency.p99 < 1ms fails on it.
		if len(res.Failed) != 1 || !strings.Contains(res.Failed[0], "latency.p99 < 1ms") || !strings.Contains(res.Failed[0], "merged") {
			t.Fatalf("trial %d: failed assertions %q", trial, res.Failed)
		}
	}
}

func TestMergeShardsRefusesResultWithoutState(t *testing.T) {
	i := 0
	_, err := MergeShards("replay", []Status{{Agent: "old", Shard: &i, Result: &Result{Sent: 3}}})
	if err == nil || !strings.Contains(err.Error(), "shard 0 (old)") {
		t.Fatalf("err = %v", err)
	}
}
