package shard

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record kinds on the run topic.
const (
	KindArmed  = "armed"  // a shard is ready: connected, first request in hand
	KindAbort  = "abort"  // a shard gives the run up before the start (timeout, failure)
	KindResult = "result" // a shard's report, after its run
)

// Record is one message of a run on the run topic (key = run ID). Its JSON
// form is the record value.
type Record struct {
	Kind  string `json:"kind"`
	RunID string `json:"run"`
	Shard int    `json:"shard"`
	Count int    `json:"count"`
	// Nonce is unique to one process attempt at a shard: a restarted shard
	// arms with a new nonce and so can tell its own record from an earlier
	// attempt's.
	Nonce string    `json:"nonce"`
	Host  string    `json:"host,omitempty"`
	At    time.Time `json:"at"` // when armed, aborted or published, on the shard's clock
	// T0 (armed) is the capture time (Unix ns) of the shard's first request;
	// 0 when the shard has none.
	T0 int64 `json:"t0,omitempty"`
	// Window (armed) is the window's Fingerprint.
	Window string `json:"window,omitempty"`
	// Margin (armed) is added to the last armed instant to get the start.
	Margin time.Duration `json:"margin_ns,omitempty"`
	// StartAt (armed) is the scenario's explicit start-at, if any.
	StartAt time.Time `json:"start_at,omitzero"`
	// Reason (abort) says why.
	Reason string `json:"reason,omitempty"`
	// Report (result) is the shard's JSON report.
	Report json.RawMessage `json:"report,omitempty"`
}

// Start is what the barrier agrees on: every shard schedules its request i
// at At + (t_i − T0)/speed.
type Start struct {
	At time.Time
	// Planned is the run's explicit start-at when it had passed before the
	// last shard armed, or came less than the start margin after it (zero
	// otherwise): the run starts at At instead, the last armed instant plus
	// the margin, every shard at once, rather than every shard sending at
	// once what fell due meanwhile, or the shards that read the last armed
	// record late starting late. Postponed says which.
	Planned   time.Time
	Postponed string
	// T0 is the earliest first-request capture time of all shards (the
	// timeline's origin); 0 when no shard has a request.
	T0 int64
	// Armed holds each shard's (first) armed record, by index.
	Armed []Record
}

// ErrStarted is wrapped when a shard arms for a run whose shards had all
// armed without it (a restarted shard, or a run ID used twice): the run has
// its start already, and this attempt is not part of it.
var ErrStarted = errors.New("run already started")

// ErrAborted is wrapped when the run is given up before its start.
var ErrAborted = errors.New("run aborted")

// Coordinator carries a run's barrier and results between its shards.
// runbus implements it over a Kafka topic.
type Coordinator interface {
	// Arm publishes self (an armed record) and waits until every shard of
	// the run has armed, then returns the start they all compute. After
	// timeout without all shards, it publishes an abort naming the missing
	// shards and returns an error wrapping ErrAborted (unless the last
	// shard's record came first in the log order). An abort by another
	// shard also ends the wait with ErrAborted.
	Arm(ctx context.Context, self Record, timeout time.Duration) (Start, error)
	// Abort tells the other shards that self's shard gives the run up.
	Abort(ctx context.Context, self Record) error
	// Publish publishes a result record.
	Publish(ctx context.Context, r Record) error
}

// Barrier decides a run's start from its records, in log order, as every
// shard reads them: so every shard decides the same. It is a pure state
// machine; a transport feeds it.
type Barrier struct {
	self  Record
	armed map[int]Record
	done  bool
	start Start
	err   error
	// seenSelf is set once this attempt's own armed record came back: a
	// conflicting record before it may be from an earlier use of the run ID.
	seenSelf bool
}

// NewBarrier returns a barrier for the shard that armed with self.
func NewBarrier(self Record) *Barrier { return &Barrier{self: self, armed: map[int]Record{}} }

// Done reports whether the barrier decided (a start or an error).
func (b *Barrier) Done() bool { return b.done }

// Result returns the decision: the start, or an error.
func (b *Barrier) Result() (Start, error) { return b.start, b.err }

// Missing returns the shard indexes that have not armed yet.
func (b *Barrier) Missing() []int {
	var out []int
	for i := range b.self.Count {
		if _, ok := b.armed[i]; !ok {
			out = append(out, i)
		}
	}
	return out
}

func (b *Barrier) fail(err error) bool {
	b.done, b.err = true, err
	return true
}

// Observe feeds the next record of the run (in log order) and reports
// whether the barrier is decided. Records after the decision are ignored.
func (b *Barrier) Observe(r Record) bool {
	if b.done || r.RunID != b.self.RunID {
		return b.done
	}
	switch r.Kind {
	case KindResult:
		// A result is published after its shard's start, which every shard
		// decides at the last armed record: one read before this barrier
		// decides is from a run that started without this attempt.
		return b.fail(fmt.Errorf("%w: run %q already ran (shard %d published its result at %s, from %s); a run ID is used once: pick a new one",
			ErrStarted, r.RunID, r.Shard, r.At.Format(time.RFC3339), cmp.Or(r.Host, "?")))
	case KindAbort:
		who := "shard " + strconv.Itoa(r.Shard)
		return b.fail(fmt.Errorf("%w: %s gave run %q up: %s%s", ErrAborted, who, r.RunID, r.Reason, b.reuseHint()))
	case KindArmed:
		if r.Shard == b.self.Shard && r.Nonce == b.self.Nonce {
			b.seenSelf = true
		}
	default:
		return false
	}
	if r.Count != b.self.Count {
		return b.fail(fmt.Errorf("%w: shard %d of run %q armed as one of %d shards, this one (shard %d) as one of %d: every shard of a run needs the same count%s",
			ErrAborted, r.Shard, r.RunID, r.Count, b.self.Shard, b.self.Count, b.reuseHint()))
	}
	if r.Shard < 0 || r.Shard >= r.Count {
		return false
	}
	if _, seen := b.armed[r.Shard]; seen {
		return false // a restarted shard: its first attempt counts
	}
	if b.self.Window != "" && r.Window != "" && r.Window != b.self.Window {
		return b.fail(fmt.Errorf("%w: shard %d of run %q resolved a different window (fingerprint %s, this shard %s): shards must replay the same offsets; a window relative to now (last:, from: -15m) resolves differently on each shard: save it as a recording",
			ErrAborted, r.Shard, r.RunID, r.Window, b.self.Window))
	}
	b.armed[r.Shard] = r
	if len(b.armed) < b.self.Count {
		return false
	}
	b.done = true
	b.start = ComputeStart(b.armed, b.self.Count)
	if mine := b.armed[b.self.Shard]; mine.Nonce != b.self.Nonce {
		b.err = fmt.Errorf("%w: every shard of run %q had armed (shard %d by an earlier attempt from %s at %s) and it starts at %s; a run ID is used once: pick a new one",
			ErrStarted, b.self.RunID, b.self.Shard, cmp.Or(mine.Host, "?"), mine.At.Format(time.RFC3339Nano), b.start.At.Format(time.RFC3339Nano))
	}
	return true
}

// reuseHint is added to a conflict read before this attempt's own armed
// record: that record may be left over from an earlier run with this ID.
func (b *Barrier) reuseHint() string {
	if b.seenSelf {
		return ""
	}
	return fmt.Sprintf(" (read before this shard's own armed record: if run ID %q was used before, that is the earlier run; a run ID is used once: pick a new one)", b.self.RunID)
}

// ComputeStart is the start every shard computes from the run's armed
// records (indexes 0..count-1): the explicit start-at if any shard has one
// (the latest) and it is at least the largest margin after the latest armed
// instant, else that instant plus the margin (Planned then keeps the
// start-at, and Postponed says why: it had passed, or it left the shards
// less than the margin to read the last armed record, so that some would
// have started late); T0 is the earliest non-zero first-request time.
func ComputeStart(armed map[int]Record, count int) Start {
	s := Start{Armed: make([]Record, 0, count)}
	var last, explicit time.Time
	var margin time.Duration
	for i := range count {
		r := armed[i]
		s.Armed = append(s.Armed, r)
		if r.At.After(last) {
			last = r.At
		}
		if r.StartAt.After(explicit) {
			explicit = r.StartAt
		}
		margin = max(margin, r.Margin)
		if r.T0 != 0 && (s.T0 == 0 || r.T0 < s.T0) {
			s.T0 = r.T0
		}
	}
	s.At = last.Add(margin)
	switch {
	case explicit.IsZero():
	case explicit.Before(last):
		s.Planned, s.Postponed = explicit, "the run's start-at had passed when the last shard armed"
	case explicit.Before(s.At):
		s.Planned, s.Postponed = explicit, fmt.Sprintf("the run's start-at came %s after the last shard armed, less than the start margin (%s) every shard needs to read that record: some would have started late",
			explicit.Sub(last).Round(time.Millisecond), margin)
	default:
		s.At = explicit
	}
	return s
}

// MissingText formats shard indexes for messages: "shards 1, 3" or "shard 2".
func MissingText(idx []int) string {
	idx = slices.Clone(idx)
	slices.Sort(idx)
	parts := make([]string, len(idx))
	for i, n := range idx {
		parts[i] = strconv.Itoa(n)
	}
	if len(idx) == 1 {
		return "shard " + parts[0]
	}
	return "shards " + strings.Join(parts, ", ")
}

// NewNonce returns a random nonce for a shard's records.
func NewNonce() string {
	var n [8]byte
	_, _ = rand.Read(n[:])
	return hex.EncodeToString(n[:])
}
