// Package pace schedules replayed messages in time: an absolute schedule from
// the start of the run (send time of message i = start + (t_i − t_0) / speed),
// so delays never accumulate and out-of-order capture times never stretch a
// run. A Pacer only computes instants; waiting is done through a Clock, so
// tests are tables that never sleep.
package pace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Config configures a Pacer.
type Config struct {
	// Speed multiplies the recorded timeline's pace; 0 means max (no waiting).
	Speed float64
	// Rate caps the send rate in requests per second; 0 means no cap. With a
	// cap, scheduled = max(timeline slot, previous scheduled + 1/Rate).
	Rate float64
	// MaxGap shortens idle gaps longer than MaxGap to MaxGap. It is measured
	// in replay (wall-clock) time, after Speed: with speed 0.5 and max-gap 1s
	// a 10s recorded gap is replayed as 1s, not 2s. 0 means no limit.
	MaxGap time.Duration
	// StartAt is the instant the first message is scheduled at; zero means
	// Clock.Now() when the first message is scheduled, so that the source's
	// start-up (connecting to Kafka, the first fetch) does not make the
	// first messages late.
	StartAt time.Time
	// Clock gives the time and waits; nil means Real.
	Clock Clock
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("bad pacer config")

// Pacer computes the send instant of each message in turn. It is stateful and
// not safe for concurrent use: one goroutine (the engine's replay loop) calls
// Schedule or Wait for each message in order.
type Pacer struct {
	clock  Clock
	speed  float64
	gap    time.Duration // between rate-capped sends; 0 = no cap
	maxGap int64         // max gap in recorded ns (MaxGap × speed); 0 = none

	base     time.Time // start of the current loop iteration
	started  bool      // t0 is known for this iteration
	t0       int64     // first capture time of this iteration
	hwm      int64     // highest capture time seen in this iteration
	squeezed int64     // recorded ns removed by max-gap compression
	count    int       // messages scheduled in this iteration
	aligned  bool      // Align set t0; max-gap starts at the first message

	firstGap  time.Duration // replay gap between the first two messages of the first iteration
	haveFirst bool
	last      time.Time // last instant returned
	nextFree  time.Time // rate cap: earliest instant for the next message
	any       bool      // Schedule has returned at least once
}

// New validates cfg and returns a Pacer.
func New(cfg Config) (*Pacer, error) {
	switch {
	case cfg.Speed < 0 || math.IsNaN(cfg.Speed) || math.IsInf(cfg.Speed, 0):
		return nil, fmt.Errorf("%w: speed %v: want > 0, or 0 for max", ErrConfig, cfg.Speed)
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return nil, fmt.Errorf("%w: rate %v: want > 0 requests/s, or 0 for no cap", ErrConfig, cfg.Rate)
	case cfg.MaxGap < 0:
		return nil, fmt.Errorf("%w: max-gap %v: want >= 0", ErrConfig, cfg.MaxGap)
	}
	p := &Pacer{clock: cfg.Clock, speed: cfg.Speed}
	if p.clock == nil {
		p.clock = Real{}
	}
	if cfg.Rate > 0 {
		p.gap = time.Duration(float64(time.Second) / cfg.Rate)
		if p.gap <= 0 {
			p.gap = 1
		}
	}
	if cfg.MaxGap > 0 && cfg.Speed > 0 {
		p.maxGap = int64(float64(cfg.MaxGap) * cfg.Speed)
	}
	p.base = cfg.StartAt
	return p, nil
}

// Max reports whether the pacer runs at max speed (the timeline is ignored).
func (p *Pacer) Max() bool { return p.speed == 0 }

// Start returns the instant the current loop iteration starts at: zero
// before the first message when Config.StartAt was zero.
func (p *Pacer) Start() time.Time { return p.base }

// Schedule returns the send instant for the next message, whose capture time
// is captureTime (Unix ns). Capture times earlier than the iteration's first
// one are scheduled at its start. At max speed without a rate cap every
// message is scheduled at the start (Wait then returns at once).
func (p *Pacer) Schedule(captureTime int64) time.Time {
	if p.base.IsZero() {
		p.base = p.clock.Now()
	}
	if !p.started {
		p.started, p.t0, p.hwm = true, captureTime, captureTime
	}
	if p.aligned {
		// The gap before this pacer's first message belongs to other
		// pacers on the shared timeline: it is not squeezed.
		p.aligned, p.hwm = false, max(captureTime, p.t0)
	}
	if captureTime > p.hwm {
		if p.maxGap > 0 && captureTime-p.hwm > p.maxGap {
			p.squeezed += captureTime - p.hwm - p.maxGap
		}
		p.hwm = captureTime
	}
	at := p.base
	if p.speed > 0 {
		rec := captureTime - p.t0 - p.squeezed
		if rec > 0 {
			at = p.base.Add(time.Duration(float64(rec) / p.speed))
		}
	}
	if p.gap > 0 && p.any && at.Before(p.nextFree) {
		at = p.nextFree
	}
	if p.gap > 0 {
		p.nextFree = at.Add(p.gap)
	}
	if p.count == 1 && !p.haveFirst {
		p.firstGap, p.haveFirst = max(at.Sub(p.last), 0), true
	}
	p.count++
	if !p.any || at.After(p.last) {
		p.last = at
	}
	p.any = true
	return at
}

// ScheduleUntimed returns the send instant of a message whose capture time
// cannot place it (a bogus one: zero, decades away): with the message
// before it, or at the start. Its time does not become the iteration's
// first one nor move max-gap's high-water mark, so the messages around it
// keep their own gaps; the rate cap applies.
func (p *Pacer) ScheduleUntimed() time.Time {
	if p.base.IsZero() {
		p.base = p.clock.Now()
	}
	at := p.base
	if p.any && p.last.After(at) {
		at = p.last
	}
	if p.gap > 0 && p.any && at.Before(p.nextFree) {
		at = p.nextFree
	}
	if p.gap > 0 {
		p.nextFree = at.Add(p.gap)
	}
	p.last, p.any = at, true
	return at
}

// Align puts the first loop iteration on a timeline shared with other
// pacers (the shards of a run): capture time t0 is scheduled at start, and
// a message captured at t at start + (t − t0)/speed. Call it before the
// first Schedule; captures earlier than t0 are scheduled at start. Max-gap
// compression starts at this pacer's first message.
func (p *Pacer) Align(start time.Time, t0 int64) {
	if p.any {
		return
	}
	p.base = start
	p.started, p.t0, p.hwm, p.aligned = true, t0, t0, true
}

// Rebase starts the next loop iteration: its first message is scheduled
// after the last instant scheduled so far plus the first iteration's first
// gap (between its first two messages), so loops run back to back with the
// recording's own rhythm. Max-gap compression restarts; the rate cap carries
// on.
func (p *Pacer) Rebase() {
	if !p.any {
		return
	}
	p.base = p.last.Add(p.firstGap)
	p.started, p.squeezed, p.count = false, 0, 0
}

// spinEvery is the shortest gap between two scheduled instants for which
// Wait spins for precision (Real.SleepUntil): with closer messages the spin
// would keep a core busy all the time (1 ms of spin per message), taking it
// from the target and the sender; they are waited for on a timer alone
// (at most a timer's slack late, 0.5–0.75 ms on the build machine), and
// messages already due go out back to back.
const spinEvery = 4 * SpinWindow

// Wait schedules the next message and waits on the clock until its instant.
// It returns the scheduled instant; at max speed without a rate cap that is
// the clock's current time, so lateness measures only what follows.
func (p *Pacer) Wait(ctx context.Context, captureTime int64) (time.Time, error) {
	prev, had := p.last, p.any
	return p.wait(ctx, p.Schedule(captureTime), prev, had)
}

// WaitUntimed schedules the next message as ScheduleUntimed does and waits
// until its instant, as Wait does.
func (p *Pacer) WaitUntimed(ctx context.Context) (time.Time, error) {
	prev, had := p.last, p.any
	return p.wait(ctx, p.ScheduleUntimed(), prev, had)
}

// wait waits until at, the instant just scheduled; prev and had are the
// last instant scheduled before it and whether there was one.
func (p *Pacer) wait(ctx context.Context, at, prev time.Time, had bool) (time.Time, error) {
	if p.speed == 0 && p.gap == 0 {
		if err := ctx.Err(); err != nil {
			return at, err
		}
		return p.clock.Now(), nil
	}
	if cs, ok := p.clock.(coarseSleeper); ok && had && at.Sub(prev) < spinEvery {
		if err := cs.SleepUntilCoarse(ctx, at); err != nil {
			return at, err
		}
		return at, nil
	}
	if err := p.clock.SleepUntil(ctx, at); err != nil {
		return at, err
	}
	return at, nil
}
