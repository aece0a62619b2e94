package windowsrc

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// run pushes messages captured at times (arrival order) through a reorder
// and returns the times released, in order.
func runReorder(ro *reorder, times []int64) []int64 {
	var out []int64
	for i, t := range times {
		ro.push(&message.Message{Kind: message.Request, Time: t, ID: string(rune('a' + i%26))})
		for ro.ready() {
			out = append(out, ro.pop().Time)
		}
	}
	for ro.held() > 0 {
		out = append(out, ro.pop().Time)
	}
	return out
}

func TestReorder(t *testing.T) {
	for _, c := range []struct {
		name      string
		hold      int64
		max       int
		in, want  []int64
		late      int64
		worst     int64
		reordered int64
	}{
		{"in order", 10, 100, []int64{1, 2, 3, 3, 4}, []int64{1, 2, 3, 3, 4}, 0, 0, 0},
		{"inverted within hold", 10, 100, []int64{5, 6, 1, 7, 2, 30}, []int64{1, 2, 5, 6, 7, 30}, 0, 0, 2},
		// 20 waits for a message captured after 30; 5 is gone when 1 comes.
		{"inverted beyond hold", 10, 100, []int64{5, 20, 30, 1, 40}, []int64{5, 1, 20, 30, 40}, 1, 4, 1},
		{"off", 0, 100, []int64{5, 6, 1, 7}, []int64{5, 6, 1, 7}, 1, 5, 0},
		{"bounded by max", 1000, 2, []int64{5, 6, 7, 1, 8}, []int64{5, 1, 6, 7, 8}, 1, 4, 1},
		{"empty", 10, 100, nil, nil, 0, 0, 0},
		// One record far ahead (a host's clock step) flushes what is held
		// once; the reordering goes on after it.
		{"far-future outlier", 10, 100, []int64{100, 101, math.MaxInt64, 105, 103, 104, 102, 106}, []int64{100, 101, 102, 103, 104, 105, 106, math.MaxInt64}, 0, 0, 5},
		// Extreme times do not overflow the comparisons.
		{"extremes", 10, 100, []int64{math.MinInt64, 5, math.MaxInt64, math.MinInt64}, []int64{math.MinInt64, 5, math.MinInt64, math.MaxInt64}, 1, math.MaxInt64, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ro := newReorder(c.hold, c.max, math.MaxInt64)
			got := runReorder(ro, c.in)
			if !slices.Equal(got, c.want) || ro.late != c.late || ro.worstLate != c.worst || ro.reordered != c.reordered {
				t.Fatalf("got %v late %d worst %d reordered %d, want %v late %d worst %d reordered %d",
					got, ro.late, ro.worstLate, ro.reordered, c.want, c.late, c.worst, c.reordered)
			}
		})
	}
}

// TestReorderBounds: the bytes bound releases like the count bound, and
// responses are reordered but not counted (only requests pace a replay).
func TestReorderBounds(t *testing.T) {
	ro := newReorder(1000, 100, 10)
	var got []int64
	for _, x := range []struct {
		t    int64
		kind message.Kind
	}{{5, message.Request}, {6, message.Response}, {1, message.Response}, {7, message.Request}, {2, message.Request}} {
		ro.push(&message.Message{Kind: x.kind, Time: x.t, Raw: []byte("0123")})
		for ro.ready() {
			got = append(got, ro.pop().Time)
		}
	}
	for ro.held() > 0 {
		got = append(got, ro.pop().Time)
	}
	// 12 bytes held at the third push: the oldest (1) goes, then 5 at the
	// fourth; 2, a request read after 5, comes out after it (late by 3).
	if !slices.Equal(got, []int64{1, 5, 2, 6, 7}) || ro.late != 1 || ro.worstLate != 3 || ro.reordered != 1 {
		t.Fatalf("got %v late %d worst %d reordered %d", got, ro.late, ro.worstLate, ro.reordered)
	}
}

// TestReorderTies: equal capture times keep their arrival order, whether
// they went through the FIFO or the heap.
func TestReorderTies(t *testing.T) {
	ro := newReorder(100, 1000, math.MaxInt64)
	var ids []string
	in := []struct {
		t  int64
		id string
	}{{10, "a"}, {20, "b"}, {10, "c"}, {10, "d"}, {20, "e"}, {5, "f"}}
	for _, x := range in {
		ro.push(&message.Message{Kind: message.Request, Time: x.t, ID: x.id})
	}
	for ro.held() > 0 {
		ids = append(ids, ro.pop().ID)
	}
	if !slices.Equal(ids, []string{"f", "a", "c", "d", "b", "e"}) {
		t.Fatalf("got %v", ids)
	}
}

// TestReorderProperties: on random arrival orders with bounded inversions
// the output is the input sorted (stably), nothing lost or doubled, and
// the same input gives the same output.
func TestReorderProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := rng.IntN(2000)
		const hold = 50
		// Capture time 2i, arriving up to hold-1 later: arrival order is
		// the order of capture time + delay.
		type msg struct{ t, at int64 }
		ms := make([]msg, n)
		for i := range ms {
			ms[i] = msg{int64(2 * i), int64(2*i + rng.IntN(hold))}
		}
		slices.SortStableFunc(ms, func(a, b msg) int { return int(a.at - b.at) })
		in := make([]int64, n)
		for i, m := range ms {
			in[i] = m.t
		}
		max := 1 << 20
		got := runReorder(newReorder(hold, max, math.MaxInt64), in)
		again := runReorder(newReorder(hold, max, math.MaxInt64), in)
		want := slices.Clone(in)
		slices.Sort(want)
		if !slices.Equal(got, want) || !slices.Equal(got, again) {
			t.Fatalf("round %d: not sorted or not deterministic:\nin   %v\ngot  %v", round, in, got)
		}
	}
}

func FuzzReorder(f *testing.F) {
	f.Add([]byte{5, 6, 1, 7, 2, 30}, uint8(10), uint8(3), false)
	f.Add([]byte{5, 0, 6, 1, 255, 7, 2, 30}, uint8(10), uint8(3), true)
	f.Fuzz(func(t *testing.T, b []byte, hold, max uint8, untimed bool) {
		in := make([]int64, len(b))
		for i, x := range b {
			in[i] = int64(x)
		}
		ro := newReorder(int64(hold), int(max)+1, math.MaxInt64)
		isUntimed := func(int64) bool { return false }
		if untimed {
			// 0 and 255 stand for bogus times.
			isUntimed = func(t int64) bool { return t == 0 || t == 255 }
			ro.untimed = isUntimed
		}
		got := runReorder(ro, in)
		a, c := slices.Clone(in), slices.Clone(got)
		slices.Sort(a)
		slices.Sort(c)
		if !slices.Equal(a, c) {
			t.Fatalf("lost or doubled: in %v out %v", in, got)
		}
		var late int64
		var timed []int64
		for _, x := range got {
			if isUntimed(x) {
				continue
			}
			if len(timed) > 0 && x < slices.Max(timed) {
				late++
			}
			timed = append(timed, x)
		}
		if late != ro.late {
			t.Fatalf("late %d, counted %d: out %v", late, ro.late, got)
		}
	})
}

// TestReorderUntimed: a message whose capture time cannot be real (a .gor
// file's zero, a time decades ahead) keeps its place in arrival order,
// sorted as the message read before it; it is not counted late, and the
// others are still put back in order around it.
func TestReorderUntimed(t *testing.T) {
	ro := newReorder(10, 1000, math.MaxInt64)
	ro.untimed = func(t int64) bool { return t < 100 || t > 1_000_000 }
	got := runReorder(ro, []int64{1000, 0, 1005, 1_000_000_000, 990, 1010})
	if want := []int64{990, 1000, 0, 1005, 1_000_000_000, 1010}; !slices.Equal(got, want) {
		t.Errorf("out %v, want %v", got, want)
	}
	if ro.late != 0 || ro.worstLate != 0 || ro.reordered != 1 {
		t.Errorf("late %d (worst %d), reordered %d; want 0, 0 and 1 (990)", ro.late, ro.worstLate, ro.reordered)
	}
}
