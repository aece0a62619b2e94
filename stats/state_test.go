package stats

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomResults returns n results on a timeline from origin: lognormal
// latencies, some errors, lateness of a few hundred µs.
func randomResults(rng *rand.Rand, origin time.Time, n int) []Result {
	out := make([]Result, n)
	for i := range out {
		sched := origin.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
		r := Result{
			Scheduled: sched,
			Start:     sched.Add(time.Duration(rng.ExpFloat64() * 3e5)),
			Latency:   time.Duration(math.Exp(rng.NormFloat64()*1.2) * 4e6),
			Status:    []int{200, 200, 200, 404, 503}[rng.IntN(5)],
			BytesOut:  int64(100 + rng.IntN(50)),
			BytesIn:   int64(rng.IntN(2000)),
		}
		if rng.IntN(40) == 0 {
			r.Status, r.Err, r.ErrClass = 0, errors.New("boom"), []string{"timeout", "reset"}[rng.IntN(2)]
		}
		out[i] = r
	}
	return out
}

// roundTrip sends r's state through JSON and rebuilds it.
func roundTrip(t *testing.T, r *Recorder) *Recorder {
	t.Helper()
	data, err := json.Marshal(r.State())
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	back, err := FromState(s, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// TestMergeExactOverRandomSplits: merging the JSON states of any split of
// the results gives the histogram, counters and quantiles of one recorder
// fed every result.
func TestMergeExactOverRandomSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	origin := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	for trial := range 40 {
		results := randomResults(rng, origin, 500+rng.IntN(5000))
		whole := New(Config{Origin: origin})
		shards := make([]*Recorder, 1+rng.IntN(8))
		for i := range shards {
			shards[i] = New(Config{})
			shards[i].SetOrigin(origin)
		}
		for _, r := range results {
			whole.Record(r)
			shards[rng.IntN(len(shards))].Record(r)
		}
		merged := New(Config{Origin: origin})
		for _, s := range shards {
			merged.Merge(roundTrip(t, s))
		}
		ws, ms := whole.State(), merged.State()
		if math.Abs(ws.Latency.SumNS-ms.Latency.SumNS) > 1e-9*ws.Latency.SumNS {
			t.Fatalf("trial %d: latency sums %v and %v", trial, ws.Latency.SumNS, ms.Latency.SumNS)
		}
		for _, st := range []*State{&ws, &ms} {
			st.Latency.SumNS, st.Lateness.SumNS = 0, 0
			for i := range st.Series {
				if st.Series[i].Latency != nil {
					st.Series[i].Latency.SumNS = 0
				}
			}
		}
		if !reflect.DeepEqual(ws, ms) {
			a, _ := json.Marshal(ws)
			b, _ := json.Marshal(ms)
			t.Fatalf("trial %d (%d shards): merged state differs\nwhole  %.600s\nmerged %.600s", trial, len(shards), a, b)
		}
		wsum, msum := whole.Summary(), merged.Summary()
		if wsum.Latency.P50 != msum.Latency.P50 || wsum.Latency.P99 != msum.Latency.P99 || wsum.Latency.P999 != msum.Latency.P999 ||
			wsum.Lateness.P50 != msum.Lateness.P50 || wsum.Lateness.P99 != msum.Lateness.P99 || wsum.Lateness.Max != msum.Lateness.Max ||
			wsum.Sent != msum.Sent || wsum.Errors != msum.Errors || !reflect.DeepEqual(wsum.ErrorClasses, msum.ErrorClasses) ||
			!reflect.DeepEqual(wsum.Status, msum.Status) || !reflect.DeepEqual(wsum.Series, msum.Series) {
			t.Fatalf("trial %d: summaries differ:\n%+v\n%+v", trial, wsum, msum)
		}
	}
}

func TestStateRoundTripSummary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := New(Config{})
	for _, res := range randomResults(rng, time.Now(), 3000) {
		r.Record(res)
	}
	if got, want := roundTrip(t, r).Summary(), r.Summary(); !reflect.DeepEqual(got.Latency, want.Latency) || got.Sent != want.Sent ||
		!got.FirstSend.Equal(want.FirstSend) || got.Achieved != want.Achieved {
		t.Fatalf("round trip changed the summary:\n%+v\n%+v", got, want)
	}
}

func TestFromStateRejectsBadInput(t *testing.T) {
	good := New(Config{})
	good.Record(Result{Start: time.Now(), Latency: time.Millisecond, Status: 200})
	for name, edit := range map[string]func(*State){
		"version":    func(s *State) { s.Version = 9 },
		"width":      func(s *State) { s.WidthNS = 0 },
		"counts":     func(s *State) { s.OK = 5 },
		"bits":       func(s *State) { s.Latency.SubBits = 0 },
		"sum":        func(s *State) { s.Latency.Count = 7 },
		"order":      func(s *State) { s.Latency.Buckets = [][2]uint64{{9, 1}, {3, 0}} },
		"huge index": func(s *State) { s.Latency.Buckets = [][2]uint64{{1 << 62, 1}} },
		"min/max":    func(s *State) { s.Latency.MinNS, s.Latency.MaxNS = 9, 1 },
	} {
		s := good.State()
		edit(&s)
		if _, err := FromState(s, Config{}); err == nil || !strings.HasPrefix(err.Error(), "stats state: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzHistogramFromState(f *testing.F) {
	h := NewHistogram(Precise)
	for _, v := range []time.Duration{1, 300, time.Millisecond, time.Hour} {
		h.Record(v)
	}
	seed, _ := json.Marshal(h.State())
	f.Add(seed)
	f.Add([]byte(`{"sub_bits":7,"count":1,"buckets":"4294967295:1"}`))
	f.Add([]byte(`{"sub_bits":5,"count":3,"buckets":"1:1 2:2"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s HistogramState
		if json.Unmarshal(data, &s) != nil {
			return
		}
		h, err := HistogramFromState(s)
		if err != nil {
			return
		}
		_ = h.Quantiles()
		back := h.State()
		if back.Count != s.Count {
			t.Fatalf("count %d became %d", s.Count, back.Count)
		}
	})
}

func TestBucketsJSON(t *testing.T) {
	b := Buckets{{3, 1}, {1163, 25}}
	data, err := json.Marshal(b)
	if err != nil || string(data) != `"3:1 1163:25"` {
		t.Fatalf("%s %v", data, err)
	}
	var back Buckets
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, b) {
		t.Fatalf("%v %v", back, err)
	}
	for _, bad := range []string{`"3"`, `"3:x"`, `"-1:2"`, `[[1,2]]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
