// Package stats collects what happened during a replay: counts, status codes,
// error classes, latency and lateness histograms and a per-second series, and
// shapes them into the JSON report.
//
// Definitions: a request is OK when a complete response arrived, whatever its
// status code (status codes are counted separately, so asserts can use
// status[500]); it is an error when no complete response arrived (a
// transport error, classified by Classify). Latency is recorded for OK
// requests only; lateness (actual − scheduled send) for every request that
// has a scheduled time.
package stats

import (
	"maps"
	"sync"
	"time"
)

// Result is what happened to one replayed request.
type Result struct {
	// Start is when the request was actually sent; Scheduled when it should
	// have been (zero when unpaced: no lateness is recorded).
	Start, Scheduled time.Time
	// Latency is the time from the first byte sent to the last byte of the
	// response received.
	Latency time.Duration
	// Status is the response status code, 0 when none arrived.
	Status int
	// Err is the transport error, nil when a complete response arrived.
	Err error
	// ErrClass is Err's class; Record fills it with Classify(Err) if empty.
	ErrClass string
	// BytesOut and BytesIn count request and response bytes on the wire.
	BytesOut, BytesIn int64
}

// Quantiles summarizes a distribution of durations.
type Quantiles struct {
	P50, P90, P99, P999, Max, Mean time.Duration
}

// Second is one entry of the time series: requests sent in
// [At, At+Width) after the start of the run.
type Second struct {
	At, Width        time.Duration
	Requests, Errors int64
	P50, P99         time.Duration // latency of OK requests
}

// Summary is everything a Recorder knows, at one instant.
type Summary struct {
	Sent, OK, Errors  int64
	Status            map[int]int64
	ErrorClasses      map[string]int64
	Latency, Lateness Quantiles
	// Scheduled and Achieved are rates in requests/s: (n−1) over the span
	// from the first to the last scheduled (actual) send, 0 with fewer than
	// two sends or an empty span.
	Scheduled, Achieved float64
	// Duration runs from the first send to the end of the last response.
	Duration time.Duration
	// FirstSend is the earliest actual send (zero when nothing was sent).
	FirstSend         time.Time
	BytesOut, BytesIn int64
	Series            []Second
	// Histogram is the latency distribution in 1-2-5 buckets.
	Histogram []LatencyBucket
}

// Config configures a Recorder.
type Config struct {
	// Origin is time zero of the series; zero means the first recorded
	// Start.
	Origin time.Time
	// MaxSeries caps the series entries kept (default 3600); past it,
	// neighbouring entries are merged and each entry covers twice as long,
	// so memory stays bounded whatever the run's length.
	MaxSeries int
}

// seriesBits is the precision of the per-second histograms (1.6 %).
const seriesBits = 5

type second struct {
	requests, errors int64
	lat              *Histogram
}

// Recorder collects Results. It is safe for concurrent use by many workers.
type Recorder struct {
	mu        sync.Mutex
	maxSeries int

	sent, ok, errs    int64
	bytesOut, bytesIn int64
	status            map[int]int64
	classes           map[string]int64
	latency, lateness *Histogram

	nSched                int64
	firstSched, lastSched time.Time
	firstStart, lastStart time.Time
	lastEnd               time.Time

	origin time.Time
	width  time.Duration // of one series entry
	series []second
}

// New returns an empty Recorder.
func New(cfg Config) *Recorder {
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = 3600
	}
	cfg.MaxSeries = max(cfg.MaxSeries, 2)
	return &Recorder{
		maxSeries: cfg.MaxSeries,
		status:    map[int]int64{},
		classes:   map[string]int64{},
		latency:   NewHistogram(Precise),
		lateness:  NewHistogram(Precise),
		origin:    cfg.Origin,
		width:     time.Second,
	}
}

// Origin returns time zero of the series: Config.Origin, or the first
// recorded Start; zero before anything was recorded.
func (r *Recorder) Origin() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.origin
}

// Record adds one result.
func (r *Recorder) Record(res Result) {
	if res.Err != nil && res.ErrClass == "" {
		res.ErrClass = Classify(res.Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.bytesOut += res.BytesOut
	r.bytesIn += res.BytesIn
	if res.Status > 0 {
		r.status[res.Status]++
	}
	failed := res.Err != nil
	if failed {
		r.errs++
		r.classes[res.ErrClass]++
	} else {
		r.ok++
		r.latency.Record(res.Latency)
	}
	if !res.Scheduled.IsZero() {
		r.nSched++
		if r.firstSched.IsZero() || res.Scheduled.Before(r.firstSched) {
			r.firstSched = res.Scheduled
		}
		if res.Scheduled.After(r.lastSched) {
			r.lastSched = res.Scheduled
		}
		if !res.Start.IsZero() {
			r.lateness.Record(res.Start.Sub(res.Scheduled))
		}
	}
	at := res.Start
	if at.IsZero() {
		at = res.Scheduled
	}
	if at.IsZero() {
		return
	}
	if r.firstStart.IsZero() || at.Before(r.firstStart) {
		r.firstStart = at
	}
	if at.After(r.lastStart) {
		r.lastStart = at
	}
	if end := at.Add(res.Latency); end.After(r.lastEnd) {
		r.lastEnd = end
	}
	s := r.entry(at)
	s.requests++
	if failed {
		s.errors++
	} else {
		if s.lat == nil {
			s.lat = NewHistogram(seriesBits)
		}
		s.lat.Record(res.Latency)
	}
}

// entry returns the series entry covering instant at, coarsening the series
// when at lies past its cap.
func (r *Recorder) entry(at time.Time) *second {
	if r.origin.IsZero() {
		r.origin = at
	}
	idx := int(max(at.Sub(r.origin), 0) / r.width)
	for idx >= r.maxSeries {
		r.coarsen()
		idx = int(max(at.Sub(r.origin), 0) / r.width)
	}
	if idx >= len(r.series) {
		r.series = append(r.series, make([]second, idx+1-len(r.series))...)
	}
	return &r.series[idx]
}

// coarsen merges neighbouring series entries and doubles their width.
func (r *Recorder) coarsen() {
	n := (len(r.series) + 1) / 2
	for i := range n {
		a := r.series[2*i]
		if 2*i+1 < len(r.series) {
			b := r.series[2*i+1]
			a.requests += b.requests
			a.errors += b.errors
			if a.lat == nil {
				a.lat = b.lat
			} else {
				_ = a.lat.Merge(b.lat)
			}
		}
		r.series[i] = a
	}
	clear(r.series[n:])
	r.series = r.series[:n]
	r.width *= 2
}

// Merge adds everything o recorded into r (for example per-target recorders
// into a run-wide one). Series entries of o land in r's entry holding their
// start.
func (r *Recorder) Merge(o *Recorder) {
	if o == r {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent += o.sent
	r.ok += o.ok
	r.errs += o.errs
	r.bytesOut += o.bytesOut
	r.bytesIn += o.bytesIn
	for k, v := range o.status {
		r.status[k] += v
	}
	for k, v := range o.classes {
		r.classes[k] += v
	}
	_ = r.latency.Merge(o.latency)
	_ = r.lateness.Merge(o.lateness)
	r.nSched += o.nSched
	if !o.firstSched.IsZero() && (r.firstSched.IsZero() || o.firstSched.Before(r.firstSched)) {
		r.firstSched = o.firstSched
	}
	if o.lastSched.After(r.lastSched) {
		r.lastSched = o.lastSched
	}
	if !o.firstStart.IsZero() && (r.firstStart.IsZero() || o.firstStart.Before(r.firstStart)) {
		r.firstStart = o.firstStart
	}
	if o.lastStart.After(r.lastStart) {
		r.lastStart = o.lastStart
	}
	if o.lastEnd.After(r.lastEnd) {
		r.lastEnd = o.lastEnd
	}
	for i, s := range o.series {
		if s.requests == 0 {
			continue
		}
		e := r.entry(o.origin.Add(time.Duration(i) * o.width))
		e.requests += s.requests
		e.errors += s.errors
		if s.lat != nil {
			if e.lat == nil {
				e.lat = NewHistogram(seriesBits)
			}
			_ = e.lat.Merge(s.lat)
		}
	}
}

// Summary returns a snapshot of everything recorded so far.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{
		Sent:         r.sent,
		OK:           r.ok,
		Errors:       r.errs,
		Status:       maps.Clone(r.status),
		ErrorClasses: maps.Clone(r.classes),
		Latency:      r.latency.Quantiles(),
		Histogram:    r.latency.Buckets(),
		Lateness:     r.lateness.Quantiles(),
		Scheduled:    rate(r.nSched, r.lastSched.Sub(r.firstSched)),
		Achieved:     rate(r.sent, r.lastStart.Sub(r.firstStart)),
		BytesOut:     r.bytesOut,
		BytesIn:      r.bytesIn,
		Series:       make([]Second, len(r.series)),
	}
	if !r.firstStart.IsZero() {
		s.Duration = r.lastEnd.Sub(r.firstStart)
		s.FirstSend = r.firstStart
	}
	for i, e := range r.series {
		s.Series[i] = Second{At: time.Duration(i) * r.width, Width: r.width, Requests: e.requests, Errors: e.errors}
		if e.lat != nil {
			s.Series[i].P50, s.Series[i].P99 = e.lat.Quantile(0.5), e.lat.Quantile(0.99)
		}
	}
	return s
}

// rate returns (n−1)/span in events per second: n events spread evenly over
// span have n−1 intervals.
func rate(n int64, span time.Duration) float64 {
	if n < 2 || span <= 0 {
		return 0
	}
	return float64(n-1) / span.Seconds()
}
