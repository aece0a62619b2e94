package pace

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const ms = int64(time.Millisecond)

// untimed in a capture list stands for a message without a capture time to
// go by (ScheduleUntimed).
const untimed = math.MinInt64

// offsets returns the scheduled instants as offsets from t0 in milliseconds.
func offsets(p *Pacer, capture []int64) []float64 {
	out := make([]float64, len(capture))
	for i, c := range capture {
		at := p.ScheduleUntimed
		if c != untimed {
			at = func() time.Time { return p.Schedule(c) }
		}
		out[i] = float64(at().Sub(t0)) / float64(time.Millisecond)
	}
	return out
}

func TestSchedule(t *testing.T) {
	base := int64(1_700_000_000_000_000_000)
	at := func(msOffsets ...int64) []int64 {
		out := make([]int64, len(msOffsets))
		for i, o := range msOffsets {
			out[i] = base + o*ms
			if o == untimed {
				out[i] = untimed
			}
		}
		return out
	}
	const u = untimed
	tests := []struct {
		name    string
		cfg     Config
		capture []int64
		want    []float64 // ms after t0
	}{
		{"speed 1", Config{Speed: 1}, at(0, 100, 250, 1000), []float64{0, 100, 250, 1000}},
		{"speed 0.5", Config{Speed: 0.5}, at(0, 100, 250), []float64{0, 200, 500}},
		{"speed 4", Config{Speed: 4}, at(0, 100, 1000), []float64{0, 25, 250}},
		{"max", Config{}, at(0, 100, 1000), []float64{0, 0, 0}},
		{"rate cap only", Config{Rate: 10}, at(0, 0, 0, 0), []float64{0, 100, 200, 300}},
		{"rate cap below timeline", Config{Speed: 1, Rate: 10}, at(0, 10, 500, 510), []float64{0, 100, 500, 600}},
		{"rate cap above timeline", Config{Speed: 1, Rate: 1000}, at(0, 10, 500), []float64{0, 10, 500}},
		{"max gap", Config{Speed: 1, MaxGap: 50 * time.Millisecond}, at(0, 10, 1010, 1020, 5020), []float64{0, 10, 60, 70, 120}},
		{"max gap after speed", Config{Speed: 0.5, MaxGap: 100 * time.Millisecond}, at(0, 10, 1010), []float64{0, 20, 120}},
		{"start at", Config{Speed: 1, StartAt: t0.Add(time.Second)}, at(0, 100), []float64{1000, 1100}},
		{"out of order", Config{Speed: 1}, at(100, 50, 200, 150, 300), []float64{0, 0, 100, 50, 200}},
		{"out of order never negative", Config{Speed: 2}, at(1000, 0, 1200), []float64{0, 0, 100}},
		{"no delay accumulation", Config{Speed: 1}, at(0, 1, 2, 3, 1000), []float64{0, 1, 2, 3, 1000}},
		{"untimed first", Config{Speed: 1}, at(u, 0, 100), []float64{0, 0, 100}},
		{"untimed between", Config{Speed: 1}, at(0, 100, u, 250), []float64{0, 100, 100, 250}},
		{"untimed keeps max gap's mark", Config{Speed: 1, MaxGap: 50 * time.Millisecond}, at(0, 10, u, 20, 1020), []float64{0, 10, 10, 20, 70}},
		{"untimed under a rate cap", Config{Speed: 1, Rate: 10}, at(0, u, u, 500), []float64{0, 100, 200, 500}},
		{"untimed at max", Config{}, at(0, u, 1000), []float64{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Clock = NewManual(t0)
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := offsets(p, tt.capture); !slices.Equal(got, tt.want) {
				t.Errorf("scheduled %v ms, want %v", got, tt.want)
			}
		})
	}
}

// The schedule starts at the first message, not at New: a source that
// takes a while to deliver its first message does not make it late.
func TestStartsAtFirstMessage(t *testing.T) {
	clock := NewManual(t0)
	p, err := New(Config{Speed: 1, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Start().IsZero() {
		t.Errorf("Start() before the first message = %v, want zero", p.Start())
	}
	clock.Advance(time.Second) // the source connects, fetches
	if got, want := offsets(p, []int64{5_000 * ms, 5_100 * ms}), []float64{1000, 1100}; !slices.Equal(got, want) {
		t.Errorf("scheduled %v ms, want %v", got, want)
	}
	if got := p.Start(); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("Start() = %v, want %v", got, t0.Add(time.Second))
	}
}

func TestRebase(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		loop []int64 // ms
		want []float64
	}{
		{"speed 1", Config{Speed: 1}, []int64{0, 20, 100}, []float64{0, 20, 100, 120, 140, 220, 240, 260, 340}},
		{"speed 2", Config{Speed: 2}, []int64{0, 20, 100}, []float64{0, 10, 50, 60, 70, 110, 120, 130, 170}},
		{"rate carries on", Config{Speed: 1, Rate: 20}, []int64{0, 0, 0}, []float64{0, 50, 100, 150, 200, 250, 300, 350, 400}},
		{"out of order last", Config{Speed: 1}, []int64{0, 50, 10}, []float64{0, 50, 10, 100, 150, 110, 200, 250, 210}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Clock = NewManual(t0)
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []float64
			for i := range 3 {
				if i > 0 {
					p.Rebase()
				}
				capture := make([]int64, len(tt.loop))
				for j, o := range tt.loop {
					capture[j] = 5_000*ms + o*ms // the same recording each time
				}
				got = append(got, offsets(p, capture)...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("scheduled %v ms, want %v", got, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{{Speed: -1}, {Rate: -2}, {MaxGap: -time.Second}} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestWaitManual(t *testing.T) {
	clk := NewManual(t0)
	p, err := New(Config{Speed: 1, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []int64{0, 30 * ms, 10 * ms, 100 * ms} {
		at, err := p.Wait(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if now := clk.Now(); now.Before(at) {
			t.Errorf("message %d: clock %v before scheduled %v", i, now, at)
		}
	}
	if got := clk.Now().Sub(t0); got != 100*time.Millisecond {
		t.Errorf("clock moved %v, want 100ms", got)
	}

	// At max speed Wait returns the current time and never moves the clock.
	clk = NewManual(t0)
	p, _ = New(Config{Clock: clk})
	clk.Advance(time.Second)
	at, err := p.Wait(context.Background(), 99)
	if err != nil || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("max Wait = %v, %v; want now", at, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, _ = New(Config{Speed: 1, Clock: clk})
	if _, err := p.Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Wait = %v", err)
	}
}

func TestRealSleepUntil(t *testing.T) {
	var c Real
	target := c.Now().Add(3 * time.Millisecond)
	if err := c.SleepUntil(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if c.Now().Before(target) {
		t.Error("returned before the target instant")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := c.SleepUntil(ctx, c.Now().Add(time.Hour)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SleepUntil past deadline = %v", err)
	}
}

// BenchmarkRealClockLateness measures how late Real.SleepUntil returns for
// waits of 0.5–5 ms and reports p50/p99/max lateness in µs.
func BenchmarkRealClockLateness(b *testing.B) {
	var c Real
	late := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		target := time.Now().Add(time.Duration(500+i%10*500) * time.Microsecond)
		_ = c.SleepUntil(context.Background(), target)
		late = append(late, time.Since(target))
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	q := func(f float64) float64 { return float64(late[int(f*float64(len(late)-1))]) / 1e3 }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(1), "max-µs")
}

// TestAlign: shards share one timeline: a pacer aligned on (start, t0)
// schedules its first message by its capture time relative to t0, not at
// the start.
func TestAlign(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		speed  float64
		maxGap time.Duration
		at     []int64 // capture times (ns after t0)
		want   []time.Duration
	}{
		{speed: 1, at: []int64{5e6, 7e6}, want: []time.Duration{5 * time.Millisecond, 7 * time.Millisecond}},
		{speed: 2, at: []int64{10e6, 30e6}, want: []time.Duration{5 * time.Millisecond, 15 * time.Millisecond}},
		{speed: 1, at: []int64{-3e6}, want: []time.Duration{0}},
		// max-gap squeezes this pacer's own gaps, not the one before its first message
		{speed: 1, maxGap: time.Millisecond, at: []int64{5e6, 9e6}, want: []time.Duration{5 * time.Millisecond, 6 * time.Millisecond}},
	} {
		p, err := New(Config{Speed: tc.speed, MaxGap: tc.maxGap, Clock: NewManual(start.Add(-time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		const t0 = int64(1e18)
		p.Align(start, t0)
		for i, at := range tc.at {
			if got := p.Schedule(t0 + at).Sub(start); got != tc.want[i] {
				t.Errorf("speed %v message %d: scheduled at start+%v, want +%v", tc.speed, i, got, tc.want[i])
			}
		}
	}
}

func TestRealSleepUntilCoarse(t *testing.T) {
	var c Real
	target := c.Now().Add(3 * time.Millisecond)
	if err := c.SleepUntilCoarse(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if c.Now().Before(target) {
		t.Error("returned before the target instant")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := c.SleepUntilCoarse(ctx, c.Now().Add(time.Hour)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SleepUntilCoarse past deadline = %v", err)
	}
}
