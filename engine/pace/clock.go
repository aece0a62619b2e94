package pace

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Clock gives the current time and waits until an instant.
type Clock interface {
	Now() time.Time
	// SleepUntil returns when t is reached (at once if it is past), or
	// ctx.Err() when ctx is done first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// SpinWindow is how long before the target instant Real stops sleeping on a
// timer and yields in a loop instead. On the build machine (a 2-core VM) Go
// timers fire 0.5–0.75 ms late (p50–p99), so a timer alone misses a 1 ms p99
// target; measured over 1000 waits of 0.5–5 ms (BenchmarkRealClockLateness):
//
//	window 0 (timer only)   p50 577 µs  p99 753 µs  max 2.6 ms
//	window 200 µs           p50 578 µs  p99 753 µs  max 1.8 ms
//	window 1 ms             p50 0.1 µs  p99  91 µs  max 3.5 ms
//
// The cost is up to 1 ms of runtime.Gosched spinning per wait on one thread
// (other goroutines still run), i.e. a busy core when messages are closer
// than 1 ms apart.
const SpinWindow = time.Millisecond

// Real is the wall clock with precise waits: a time.Timer for all but the
// last SpinWindow, then a runtime.Gosched spin.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// SleepUntil waits until t.
func (Real) SleepUntil(ctx context.Context, t time.Time) error {
	if d := time.Until(t) - SpinWindow; d > 0 {
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
	for i := 0; time.Now().Before(t); i++ {
		if i&63 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		runtime.Gosched()
	}
	return ctx.Err()
}

// SleepUntilCoarse waits until t on a timer only, without the final spin:
// it may return up to a timer's slack late (0.5–0.75 ms here), and costs no
// CPU while it waits.
func (Real) SleepUntilCoarse(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		tm.Stop()
		return ctx.Err()
	}
}

// coarseSleeper is a Clock that can also wait without spinning.
type coarseSleeper interface {
	SleepUntilCoarse(ctx context.Context, t time.Time) error
}

// Manual is a clock that moves only when told: SleepUntil jumps straight to
// the target instant and returns. Safe for concurrent use. For tests.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a Manual clock reading start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

// SleepUntil sets the clock to t if t is later, and returns at once.
func (m *Manual) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if t.After(m.now) {
		m.now = t
	}
	m.mu.Unlock()
	return nil
}

var (
	_ Clock = Real{}
	_ Clock = (*Manual)(nil)
)
