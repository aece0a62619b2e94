package shard

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "0/4", want: Spec{Index: 0, Count: 4}},
		{in: " 3/4 ", want: Spec{Index: 3, Count: 4}},
		{in: "0/1", want: Spec{Index: 0, Count: 1}},
		{in: "4/4", wantErr: "0-based, 0 to 3"},
		{in: "-1/4", wantErr: "0-based"},
		{in: "1/0", wantErr: "want 1 to"},
		{in: "2", wantErr: "want INDEX/COUNT"},
		{in: "a/b", wantErr: "whole numbers"},
		{in: "1/99999", wantErr: "want 1 to 4096"},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrSpec) {
				t.Errorf("Parse(%q) = %v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	sp, err := FromEnv(env(map[string]string{EnvIndex: "5", EnvCount: "8"}))
	if err != nil || sp != (Spec{Index: 5, Count: 8}) {
		t.Fatalf("FromEnv = %v, %v", sp, err)
	}
	if _, err := FromEnv(env(map[string]string{EnvIndex: "5"})); err == nil || !strings.Contains(err.Error(), EnvCount) {
		t.Fatalf("missing count: %v", err)
	}
	if _, err := FromEnv(env(map[string]string{EnvIndex: "8", EnvCount: "8"})); err == nil {
		t.Fatal("index 8 of 8 accepted")
	}
}

func TestValidateRunID(t *testing.T) {
	for id, ok := range map[string]bool{"run-1": true, "2026-12-04T15:00:00Z": true, "": false, "a b": false, "x/y": false, strings.Repeat("a", 129): false} {
		if err := ValidateRunID(id); (err == nil) != ok {
			t.Errorf("ValidateRunID(%q) = %v", id, err)
		}
	}
}

func window(ranges map[int32][2]int64) catalog.Window {
	w := catalog.Window{Topic: "t", Partitions: map[int32]catalog.Range{}}
	for p, r := range ranges {
		w.Partitions[p] = catalog.Range{Start: r[0], End: r[1]}
	}
	return w
}

// covered checks that the plan's shards are disjoint and cover every
// record of w exactly once, for a sample of keys.
func covered(t *testing.T, w catalog.Window, plan []Assignment) {
	t.Helper()
	for p, r := range w.Partitions {
		if r.Len() == 0 {
			continue
		}
		for k := range 200 {
			key := []byte(fmt.Sprintf("conn-%d-%d", p, k))
			n := 0
			for _, a := range plan {
				if a.Selects(p, key) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("partition %d key %s selected by %d shards: %v", p, key, n, plan)
			}
		}
	}
}

func TestPlanBinPacks(t *testing.T) {
	w := window(map[int32][2]int64{0: {0, 100}, 1: {10, 60}, 2: {0, 300}, 3: {0, 80}, 4: {5, 5}, 5: {0, 90}})
	plan := Plan(w, 3)
	got := make([]string, len(plan))
	for i, a := range plan {
		got[i] = a.String()
	}
	want := []string{
		"shard 0/3: 2:[0,300) (~300 records)",
		"shard 1/3: 0:[0,100) 1:[10,60) (~150 records)",
		"shard 2/3: 3:[0,80) 5:[0,90) (~170 records)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	covered(t, w, plan)
	if !reflect.DeepEqual(Plan(w, 3), plan) {
		t.Fatal("plan not deterministic")
	}
}

func TestPlanSplitsByKey(t *testing.T) {
	w := window(map[int32][2]int64{0: {0, 300}, 1: {0, 100}})
	plan := Plan(w, 5)
	got := make([]string, len(plan))
	for i, a := range plan {
		got[i] = a.String()
	}
	want := []string{
		"shard 0/5: 0:[0,300) key bucket 0/4 (~75 records)",
		"shard 1/5: 0:[0,300) key bucket 1/4 (~75 records)",
		"shard 2/5: 0:[0,300) key bucket 2/4 (~75 records)",
		"shard 3/5: 0:[0,300) key bucket 3/4 (~75 records)",
		"shard 4/5: 1:[0,100) (~100 records)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	covered(t, w, plan)
	if plan[4].Split() || !plan[0].Split() {
		t.Fatal("Split wrong")
	}
	sub := plan[4].Window(w)
	if len(sub.Partitions) != 1 || sub.Partitions[1] != w.Partitions[1] {
		t.Fatalf("sub-window %v", sub.Partitions)
	}
}

func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		ranges := map[int32][2]int64{}
		for p := range int32(r.IntN(9)) {
			s := r.Int64N(50)
			ranges[p] = [2]int64{s, s + r.Int64N(500)}
		}
		w := window(ranges)
		n := 1 + r.IntN(12)
		plan := Plan(w, n)
		if len(plan) != n {
			t.Fatalf("%d shards planned, want %d", len(plan), n)
		}
		for i, a := range plan {
			if a.Index != i || a.Count != n {
				t.Fatalf("assignment %d: %+v", i, a)
			}
		}
		covered(t, w, plan)
	}
}

func TestKeyBucketSpread(t *testing.T) {
	counts := make([]int, 4)
	for i := range 4000 {
		counts[KeyBucket([]byte(fmt.Sprintf("%024x", i)), 4)]++
	}
	for b, c := range counts {
		if c < 800 || c > 1200 {
			t.Fatalf("bucket %d holds %d of 4000 keys: %v", b, c, counts)
		}
	}
	// The contract: fixed values for fixed keys.
	if got := KeyBucket([]byte("conn-1"), 7); got != KeyBucket([]byte("conn-1"), 7) {
		t.Fatal("not deterministic")
	}
}

func armed(shard, count int, nonce string, at time.Time) Record {
	return Record{Kind: KindArmed, RunID: "r", Shard: shard, Count: count, Nonce: nonce, At: at, Window: "w", Margin: time.Second, T0: int64(1000 + shard)}
}

func TestBarrier(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	self := armed(1, 3, "me", t0.Add(time.Second))
	b := NewBarrier(self)
	recs := []Record{
		armed(0, 3, "a", t0),
		{Kind: "note", RunID: "r", Shard: 2}, // a kind this version does not know: ignored
		armed(0, 3, "a2", t0.Add(time.Hour)), // a restart: ignored
		{Kind: KindArmed, RunID: "other", Shard: 2, Count: 3},
		self,
	}
	for _, r := range recs {
		if b.Observe(r) {
			t.Fatalf("decided early at %+v", r)
		}
	}
	if got := b.Missing(); !reflect.DeepEqual(got, []int{2}) {
		t.Fatalf("missing %v", got)
	}
	last := armed(2, 3, "c", t0.Add(2*time.Second))
	last.T0 = 0 // a shard without requests
	if !b.Observe(last) {
		t.Fatal("not decided")
	}
	s, err := b.Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(3 * time.Second); !s.At.Equal(want) || s.T0 != 1000 || len(s.Armed) != 3 {
		t.Fatalf("start %v T0 %d armed %d; want %v 1000 3", s.At, s.T0, len(s.Armed), want)
	}
	// A later abort changes nothing: the log order decided.
	b.Observe(Record{Kind: KindAbort, RunID: "r", Shard: 0})
	if _, err := b.Result(); err != nil {
		t.Fatal(err)
	}
}

func TestBarrierFailures(t *testing.T) {
	t0 := time.Now()
	for _, tc := range []struct {
		name string
		recs []Record
		want error
		text string
	}{
		{"abort", []Record{armed(0, 2, "a", t0), {Kind: KindAbort, RunID: "r", Shard: 0, Reason: "shard 1 not armed after 2m"}}, ErrAborted, "shard 0 gave run \"r\" up: shard 1 not armed"},
		{"count", []Record{armed(0, 3, "a", t0)}, ErrAborted, "same count"},
		{"window", []Record{func() Record { r := armed(0, 2, "a", t0); r.Window = "x"; return r }()}, ErrAborted, "different window"},
		{"late", []Record{armed(0, 2, "a", t0), armed(1, 2, "old", t0), armed(1, 2, "me", t0)}, ErrStarted, "used once"},
		// A run ID used again after a long run: its armed records are older
		// than the read window, its result is not, so it comes before the
		// decision and this attempt is not part of that run.
		{"reused", []Record{{Kind: KindResult, RunID: "r", Shard: 0, At: t0, Host: "h0"}, armed(0, 2, "a", t0), armed(1, 2, "me", t0)}, ErrStarted, "already ran (shard 0 published its result"},
		// Conflicts read before this attempt's own record say the run ID
		// may be reused; after it, they do not.
		{"count-before-self", []Record{armed(0, 3, "a", t0)}, ErrAborted, "if run ID \"r\" was used before"},
		{"abort-before-self", []Record{{Kind: KindAbort, RunID: "r", Shard: 0, Reason: "x"}}, ErrAborted, "a run ID is used once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBarrier(armed(1, 2, "me", t0))
			for _, r := range tc.recs {
				b.Observe(r)
			}
			_, err := b.Result()
			if !b.Done() || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("done %t err %v; want %v with %q", b.Done(), err, tc.want, tc.text)
			}
		})
	}
	t.Run("count-after-self", func(t *testing.T) {
		b := NewBarrier(armed(1, 2, "me", t0))
		b.Observe(armed(1, 2, "me", t0))
		b.Observe(armed(0, 3, "a", t0))
		if _, err := b.Result(); !errors.Is(err, ErrAborted) || strings.Contains(err.Error(), "used before") {
			t.Fatalf("err %v; want ErrAborted without the reuse hint", err)
		}
	})
}

// TestComputeStartExplicit: the explicit start-at is the start while it
// comes at least the margin after the last shard arms; past that, or closer
// than the margin (a shard reading the last armed record late would start
// late), the start is the last armed instant plus the margin, Planned keeps
// the start-at and Postponed says which (the shards do not send at once
// what fell due meanwhile, nor some start late).
func TestComputeStartExplicit(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	const margin = time.Second
	tests := []struct {
		name           string
		armedA, armedB time.Duration // before (−) or after at
		start, planned time.Time
		why            string
	}{
		{"both armed ahead", -time.Minute, -time.Minute, at, time.Time{}, ""},
		{"last armed the margin ahead", -time.Minute, -margin, at, time.Time{}, ""},
		{"last armed within the margin", -time.Minute, -300 * time.Millisecond, at.Add(700 * time.Millisecond), at,
			"the run's start-at came 300ms after the last shard armed, less than the start margin (1s) every shard needs to read that record: some would have started late"},
		{"last armed at the start-at", -time.Minute, 0, at.Add(margin), at, "the run's start-at came 0s after the last shard armed, less than the start margin (1s)"},
		{"one armed 3m late (queued)", -time.Minute, 3 * time.Minute, at.Add(3*time.Minute + margin), at, "the run's start-at had passed when the last shard armed"},
		{"both late", time.Second, 2 * time.Second, at.Add(2*time.Second + margin), at, "had passed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := armed(0, 2, "a", at.Add(tc.armedA))
			a.StartAt, a.Margin = at, margin
			b := armed(1, 2, "b", at.Add(tc.armedB))
			b.StartAt, b.Margin = at, margin
			s := ComputeStart(map[int]Record{0: a, 1: b}, 2)
			if !s.At.Equal(tc.start) || !s.Planned.Equal(tc.planned) {
				t.Fatalf("start %v planned %v, want %v planned %v", s.At, s.Planned, tc.start, tc.planned)
			}
			if (tc.why == "") != (s.Postponed == "") || !strings.Contains(s.Postponed, tc.why) {
				t.Errorf("postponed %q, want %q", s.Postponed, tc.why)
			}
		})
	}
}

func TestMissingText(t *testing.T) {
	if got := MissingText([]int{3, 1}); got != "shards 1, 3" {
		t.Fatal(got)
	}
	if got := MissingText([]int{2}); got != "shard 2" {
		t.Fatal(got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/4", "3/4", "auto", "x", "1/", "/2", "-0/1", "99999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "auto" || strings.TrimSpace(s) == "auto" {
			return // reads the environment
		}
		sp, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrSpec", s, err)
			}
			return
		}
		if sp.Index < 0 || sp.Index >= sp.Count || sp.Count > MaxCount {
			t.Fatalf("Parse(%q) = %+v accepted", s, sp)
		}
		if len(Plan(window(map[int32][2]int64{0: {0, 10}}), sp.Count)) != sp.Count {
			t.Fatal("plan size")
		}
	})
}
