package fleet

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// Refusals of input anyone who writes to the jobs topic can publish (a spec
// that does not verify, a copy of a signed spec that is not its job's spec,
// a cancel that does not verify) are each a status-topic record written by
// every agent the input names: a forger's one record would be N. An agent
// publishes such refusals at most refusalBurst at once, then one every
// refusalEvery; the others are refused all the same, counted
// (RefusalsSuppressed, replayctl_agent_refusals_suppressed_total) and
// logged at most every suppressedLogEvery. The record a job's submitter
// named as its spec is always answered.
const (
	refusalBurst       = 10
	refusalEvery       = 6 * time.Second
	suppressedLogEvery = 10 * time.Second
)

// refusalLimit is a token bucket: burst tokens, one more every every, up
// to burst. It is given the time, so its tests never sleep. The zero
// value allows nothing; newRefusalLimit starts full.
type refusalLimit struct {
	burst  int
	every  time.Duration
	tokens int
	since  time.Time // when the last whole token was added
}

func newRefusalLimit(burst int, every time.Duration) *refusalLimit {
	return &refusalLimit{burst: burst, every: every, tokens: burst}
}

// allow takes a token at now, if there is one.
func (l *refusalLimit) allow(now time.Time) bool {
	if l.since.IsZero() || now.Before(l.since) {
		l.since = now
	}
	if n := int(now.Sub(l.since) / l.every); n > 0 {
		l.tokens = min(l.burst, l.tokens+n)
		l.since = l.since.Add(time.Duration(n) * l.every)
	}
	if l.tokens == 0 {
		return false
	}
	if l.tokens == l.burst {
		l.since = now // a full bucket does not bank time
	}
	l.tokens--
	return true
}

// String says what the limit is, for logs.
func (l *refusalLimit) String() string {
	return fmt.Sprintf("%d at once, then 1 every %s", l.burst, l.every)
}

// RefusalsSuppressed returns how many refusals of unverified input this
// agent did not publish (the rate limit; see refusalBurst).
func (a *Agent) RefusalsSuppressed() int64 { return a.suppressedN.Load() }

// mayPublishRefusal reports whether the refusal of unverified input (what
// it refuses, for the log) may be published now; when not, it is counted,
// and logged at most every suppressedLogEvery.
func (a *Agent) mayPublishRefusal(what string) bool {
	if a.takeRefusalToken() {
		return true
	}
	a.suppressed(what)
	return false
}

// takeRefusalToken takes one of the rate limit's tokens, if there is one.
func (a *Agent) takeRefusalToken() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refusals.allow(time.Now())
}

// suppressed counts a refusal not published (what it refuses, for the
// log), logged at most every suppressedLogEvery.
func (a *Agent) suppressed(what string) {
	now := time.Now()
	a.mu.Lock()
	logIt := now.Sub(a.suppressedLogged) >= suppressedLogEvery
	if logIt {
		a.suppressedLogged = now
	}
	a.mu.Unlock()
	n := a.suppressedN.Add(1)
	a.cfg.Metrics.refusalSuppressed()
	if logIt {
		a.log.Warn("refusals of unverified specs and cancels beyond the rate limit are not published to the status topic (they are refused all the same)",
			"limit", a.refusals.String(), "last", truncate(what, 200), "suppressed-so-far", n)
	}
}

// A refusal the rate limit would hold back, of a spec whose job is still
// PENDING (its submitter writes the spec, then ASSIGNED naming the spec's
// offset), waits up to heldFor for the job's status: if that names this
// record as the job's spec, the refusal is published (a job's own spec is
// always answered: its submitter waits for it); otherwise it is counted as
// suppressed. At most maxHeld wait at once; beyond, suppressed at once.
const (
	heldFor = 20 * time.Second
	maxHeld = 64
)

// heldRefusal is a refusal waiting for its job's status.
type heldRefusal struct {
	st    Status
	peek  Spec
	what  string
	since time.Time
}

// holdRefusal keeps a refusal for retryHeld; false when maxHeld wait.
func (a *Agent) holdRefusal(h heldRefusal) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.held) >= maxHeld {
		return false
	}
	if a.held == nil {
		a.held = map[int64]heldRefusal{}
	}
	a.held[h.st.SpecOffset] = h
	return true
}

// retryHeld publishes each held refusal whose job's status now names its
// record as the job's spec (and settles the job, as refuse does), and
// counts as suppressed those that another record is the spec of, or that
// waited heldFor.
func (a *Agent) retryHeld(ctx context.Context) {
	a.mu.Lock()
	if len(a.held) == 0 {
		a.mu.Unlock()
		return
	}
	held := maps.Clone(a.held)
	a.mu.Unlock()
	for off, h := range held {
		spec, known := specOffset(a.bus, h.st.JobID)
		switch {
		case known && spec == off:
			a.publishRefusal(ctx, h.st)
			a.finishJob(ctx, h.peek)
		case known || time.Since(h.since) > heldFor:
			a.suppressed(h.what)
		default:
			continue
		}
		a.mu.Lock()
		delete(a.held, off)
		a.mu.Unlock()
	}
}
