package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// StateVersion is the version of the State format.
const StateVersion = 1

// State is everything a Recorder holds, in a lossless JSON form: a
// Recorder rebuilt from it (FromState) gives the same Summary, and merging
// rebuilt Recorders gives exactly what one Recorder fed every result would
// have (counters add, histograms add bucket by bucket). It is the "state"
// member of a replay's JSON report, which `replayctl report merge` reads.
type State struct {
	Version      int              `json:"version"`
	Sent         int64            `json:"sent"`
	OK           int64            `json:"ok"`
	Errors       int64            `json:"errors"`
	BytesOut     int64            `json:"bytes_out"`
	BytesIn      int64            `json:"bytes_in"`
	Status       map[int]int64    `json:"status"`
	ErrorClasses map[string]int64 `json:"error_classes"`
	// Latency (OK requests) and Lateness (actual − scheduled send).
	Latency  HistogramState `json:"latency"`
	Lateness HistogramState `json:"lateness"`
	// Scheduled counts the results that had a scheduled time.
	Scheduled      int64     `json:"scheduled"`
	FirstScheduled time.Time `json:"first_scheduled,omitzero"`
	LastScheduled  time.Time `json:"last_scheduled,omitzero"`
	FirstStart     time.Time `json:"first_start,omitzero"`
	LastStart      time.Time `json:"last_start,omitzero"`
	LastEnd        time.Time `json:"last_end,omitzero"`
	// Origin is time zero of the series; each entry covers WidthNS.
	Origin  time.Time     `json:"origin,omitzero"`
	WidthNS int64         `json:"width_ns"`
	Series  []SecondState `json:"series"`
}

// SecondState is one series entry: requests and errors sent in it, and the
// latency of its OK requests (a histogram with 5 sub-bucket bits).
type SecondState struct {
	Requests int64           `json:"requests"`
	Errors   int64           `json:"errors"`
	Latency  *HistogramState `json:"latency,omitempty"`
}

// HistogramState is a Histogram in a lossless form. Values are in
// nanoseconds. With b = SubBits and S = 2^b, bucket index i holds the values
// v with index(v) = i, where index(v) = v for v < 2S, else
// shift·S + (v >> shift) with shift = bitlen(v) − b − 1; bucket i ≥ 2S
// therefore covers [(i − shift·S) << shift, that + 2^shift) with
// shift = i/S − 1. Buckets lists the non-empty buckets as [index, count]
// pairs in increasing index order. Count, SumNS, MinNS and MaxNS are the
// exact count, sum, minimum and maximum.
type HistogramState struct {
	SubBits int     `json:"sub_bits"`
	Count   uint64  `json:"count"`
	SumNS   float64 `json:"sum_ns"`
	MinNS   int64   `json:"min_ns"`
	MaxNS   int64   `json:"max_ns"`
	Buckets Buckets `json:"buckets"`
}

// Buckets are [index, count] pairs. In JSON they are one string of
// "index:count" pairs separated by spaces ("1163:2 1164:5"), which stays
// short and on one line in an indented report.
type Buckets [][2]uint64

// MarshalJSON writes the pairs as one string.
func (b Buckets) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2+len(b)*10)
	out = append(out, '"')
	for i, p := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = strconv.AppendUint(out, p[0], 10)
		out = append(out, ':')
		out = strconv.AppendUint(out, p[1], 10)
	}
	return append(out, '"'), nil
}

// UnmarshalJSON reads the string MarshalJSON writes.
func (b *Buckets) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return fmt.Errorf("histogram buckets: want a string of index:count pairs: %w", err)
	}
	fields := strings.Fields(text)
	out := make(Buckets, 0, len(fields))
	for _, f := range fields {
		is, cs, ok := strings.Cut(f, ":")
		i, err1 := strconv.ParseUint(is, 10, 64)
		c, err2 := strconv.ParseUint(cs, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("histogram buckets: %q is not index:count", f)
		}
		out = append(out, [2]uint64{i, c})
	}
	*b = out
	return nil
}

// State returns h's lossless form.
func (h *Histogram) State() HistogramState {
	s := HistogramState{SubBits: int(h.bits), Count: h.n, SumNS: h.sum, MinNS: h.min, MaxNS: h.max, Buckets: Buckets{}}
	for i, c := range h.counts {
		if c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(h.lo + i), c})
		}
	}
	return s
}

// maxBucketIndex bounds bucket indexes (values up to 2^63 ns with 10 bits).
const maxBucketIndex = 64 << 10

// HistogramFromState rebuilds a Histogram, checking that s is consistent.
func HistogramFromState(s HistogramState) (*Histogram, error) {
	if s.SubBits < 1 || s.SubBits > 10 {
		return nil, fmt.Errorf("histogram: sub_bits %d: want 1 to 10", s.SubBits)
	}
	h := NewHistogram(s.SubBits)
	var n uint64
	prev := -1
	for _, b := range s.Buckets {
		idx := int(min(b[0], maxBucketIndex+1))
		if idx > maxBucketIndex || idx <= prev {
			return nil, fmt.Errorf("histogram: bucket index %d out of order or out of range", b[0])
		}
		prev = idx
		if b[1] == 0 {
			continue
		}
		h.grow(idx)
		h.counts[idx-h.lo] = b[1]
		n += b[1]
	}
	if n != s.Count {
		return nil, fmt.Errorf("histogram: buckets hold %d values, count says %d", n, s.Count)
	}
	if n > 0 && (s.MinNS < 0 || s.MaxNS < s.MinNS) {
		return nil, fmt.Errorf("histogram: min %d and max %d do not fit", s.MinNS, s.MaxNS)
	}
	h.n, h.sum, h.min, h.max = n, s.SumNS, s.MinNS, s.MaxNS
	return h, nil
}

// State returns everything r recorded, losslessly.
func (r *Recorder) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := State{
		Version: StateVersion, Sent: r.sent, OK: r.ok, Errors: r.errs, BytesOut: r.bytesOut, BytesIn: r.bytesIn,
		Status: maps.Clone(r.status), ErrorClasses: maps.Clone(r.classes),
		Latency: r.latency.State(), Lateness: r.lateness.State(),
		Scheduled: r.nSched, FirstScheduled: r.firstSched, LastScheduled: r.lastSched,
		FirstStart: r.firstStart, LastStart: r.lastStart, LastEnd: r.lastEnd,
		Origin: r.origin, WidthNS: int64(r.width), Series: make([]SecondState, len(r.series)),
	}
	for i, e := range r.series {
		s.Series[i] = SecondState{Requests: e.requests, Errors: e.errors}
		if e.lat != nil {
			hs := e.lat.State()
			s.Series[i].Latency = &hs
		}
	}
	return s
}

// FromState rebuilds a Recorder from s (MaxSeries as in cfg), checking s.
func FromState(s State, cfg Config) (*Recorder, error) {
	if s.Version != StateVersion {
		return nil, fmt.Errorf("stats state: version %d: this replayctl reads version %d", s.Version, StateVersion)
	}
	if s.WidthNS <= 0 {
		return nil, errors.New("stats state: width_ns must be positive")
	}
	if s.OK+s.Errors != s.Sent {
		return nil, fmt.Errorf("stats state: ok %d + errors %d != sent %d", s.OK, s.Errors, s.Sent)
	}
	cfg.Origin = s.Origin
	r := New(cfg)
	var err error
	if r.latency, err = HistogramFromState(s.Latency); err != nil {
		return nil, fmt.Errorf("stats state: latency: %w", err)
	}
	if r.lateness, err = HistogramFromState(s.Lateness); err != nil {
		return nil, fmt.Errorf("stats state: lateness: %w", err)
	}
	r.sent, r.ok, r.errs, r.bytesOut, r.bytesIn = s.Sent, s.OK, s.Errors, s.BytesOut, s.BytesIn
	maps.Copy(r.status, s.Status)
	maps.Copy(r.classes, s.ErrorClasses)
	r.nSched, r.firstSched, r.lastSched = s.Scheduled, s.FirstScheduled, s.LastScheduled
	r.firstStart, r.lastStart, r.lastEnd = s.FirstStart, s.LastStart, s.LastEnd
	r.width = time.Duration(s.WidthNS)
	r.series = make([]second, len(s.Series))
	for i, e := range s.Series {
		r.series[i] = second{requests: e.Requests, errors: e.Errors}
		if e.Latency != nil {
			if r.series[i].lat, err = HistogramFromState(*e.Latency); err != nil {
				return nil, fmt.Errorf("stats state: series %d: %w", i, err)
			}
		}
	}
	for len(r.series) > r.maxSeries {
		r.coarsen()
	}
	return r, nil
}

// SetOrigin sets time zero of the series, before anything is recorded (a
// sharded run sets the run's start instant, so that every shard's series
// lines up). It does nothing once a result is recorded.
func (r *Recorder) SetOrigin(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.series) == 0 {
		r.origin = t
	}
}
