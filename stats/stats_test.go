package stats

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 1µs-1s", func() time.Duration { return time.Microsecond + time.Duration(rng.Int64N(int64(time.Second))) }},
		{"lognormal ~5ms", func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*1.5) * 5e6) }},
		{"exponential 200µs", func() time.Duration { return time.Duration(rng.ExpFloat64() * 2e5) }},
		{"wide 1µs-1h", func() time.Duration { return time.Duration(math.Pow(10, 3+rng.Float64()*9.5)) }},
	}
	for _, bitsTol := range []struct {
		bits int
		tol  float64
	}{{Precise, 0.01}, {seriesBits, 0.02}} {
		for _, d := range dists {
			t.Run(fmt.Sprintf("%s/bits=%d", d.name, bitsTol.bits), func(t *testing.T) {
				h := NewHistogram(bitsTol.bits)
				vals := make([]time.Duration, 20000)
				var sum float64
				for i := range vals {
					vals[i] = d.gen()
					h.Record(vals[i])
					sum += float64(vals[i])
				}
				slices.Sort(vals)
				for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
					exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
					got := h.Quantile(q)
					if rel := math.Abs(float64(got-exact)) / float64(exact); rel > bitsTol.tol {
						t.Errorf("q%v = %v, exact %v (rel error %.4f > %v)", q, got, exact, rel, bitsTol.tol)
					}
				}
				if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
					t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
				}
				if mean := float64(h.Mean()); math.Abs(mean-sum/float64(len(vals)))/mean > 1e-5 {
					t.Errorf("mean %v, want %v", mean, sum/float64(len(vals)))
				}
			})
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram(Precise)
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Error("empty histogram not zero")
	}
	h.Record(-5)
	h.Record(0)
	h.Record(time.Duration(math.MaxInt64))
	h.Record(7)
	if h.Count() != 4 || h.Min() != 0 || h.Max() != time.Duration(math.MaxInt64) {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if got := h.Quantile(0.75); got != 7 {
		t.Errorf("q75 = %v, want 7ns", got)
	}
	if err := h.Merge(NewHistogram(3)); err != nil {
		t.Errorf("merging an empty histogram: %v", err)
	}
	o := NewHistogram(3)
	o.Record(1)
	if err := h.Merge(o); err == nil {
		t.Error("merging different precisions: no error")
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all := NewHistogram(Precise)
	parts := []*Histogram{NewHistogram(Precise), NewHistogram(Precise), NewHistogram(Precise)}
	for i := range 30000 {
		// Each part covers a different range, so merging must grow both ways.
		v := time.Duration(rng.Int64N(1e6)) * time.Duration(int64(1)<<(4*(i%3)))
		all.Record(v)
		parts[i%3].Record(v)
	}
	merged := NewHistogram(Precise)
	for _, i := range []int{1, 0, 2} {
		if err := merged.Merge(parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if merged.Quantiles() != all.Quantiles() || merged.Count() != all.Count() {
		t.Errorf("merged %+v, want %+v", merged.Quantiles(), all.Quantiles())
	}
}

var origin = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRecorderSummary(t *testing.T) {
	r := New(Config{})
	for i := range 10 {
		sched := origin.Add(time.Duration(i) * 100 * time.Millisecond)
		res := Result{Start: sched.Add(time.Millisecond), Scheduled: sched, Latency: 10 * time.Millisecond,
			Status: 200, BytesOut: 100, BytesIn: 50}
		switch i {
		case 3:
			res.Status = 500
		case 7:
			res = Result{Start: res.Start, Scheduled: sched, Err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED), BytesOut: 100}
		}
		r.Record(res)
	}
	s := r.Summary()
	if s.Sent != 10 || s.OK != 9 || s.Errors != 1 {
		t.Errorf("sent/ok/errors = %d/%d/%d", s.Sent, s.OK, s.Errors)
	}
	if s.Status[200] != 8 || s.Status[500] != 1 || len(s.Status) != 2 {
		t.Errorf("status %v", s.Status)
	}
	if s.ErrorClasses[ClassConnectRefused] != 1 {
		t.Errorf("error classes %v", s.ErrorClasses)
	}
	if s.Scheduled != 10 || s.Achieved != 10 {
		t.Errorf("rates %v/%v, want 10/10", s.Scheduled, s.Achieved)
	}
	if s.Lateness.Max != time.Millisecond || s.Latency.P50 != 10*time.Millisecond {
		t.Errorf("lateness %+v latency %+v", s.Lateness, s.Latency)
	}
	if s.Duration != 901*time.Millisecond-time.Millisecond+10*time.Millisecond {
		t.Errorf("duration %v", s.Duration)
	}
	if s.BytesOut != 1000 || s.BytesIn != 450 {
		t.Errorf("bytes %d/%d", s.BytesOut, s.BytesIn)
	}
	if len(s.Series) != 1 || s.Series[0].Requests != 10 || s.Series[0].Errors != 1 {
		t.Errorf("series %+v", s.Series)
	}

	rep := s.Report("replay")
	rep.Window = map[string]any{"topic": "t"}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = back
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		return v
	}
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"job"}, "replay"},
		{[]string{"requests", "sent"}, 10.0},
		{[]string{"requests", "ok"}, 9.0},
		{[]string{"requests", "errors"}, 1.0},
		{[]string{"status", "500"}, 1.0},
		{[]string{"latency", "p50"}, 10.0},
		{[]string{"rate", "scheduled"}, 10.0},
		{[]string{"rate", "achieved"}, 10.0},
		{[]string{"lateness", "max"}, 1.0},
		{[]string{"window", "topic"}, "t"},
	} {
		if got := get(c.path...); got != c.want {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	if _, ok := back["diff"]; ok {
		t.Error("diff present though empty")
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := New(Config{Origin: origin})
	var wg sync.WaitGroup
	const workers, each = 8, 2000
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				at := origin.Add(time.Duration(i) * time.Millisecond)
				res := Result{Start: at, Scheduled: at, Latency: time.Duration(w+1) * time.Millisecond, Status: 200}
				if i%100 == 0 {
					res.Err, res.Status = os.ErrDeadlineExceeded, 0
				}
				r.Record(res)
				if i%500 == 0 {
					_ = r.Summary()
				}
			}
		})
	}
	wg.Wait()
	s := r.Summary()
	if s.Sent != workers*each || s.Errors != workers*each/100 || s.ErrorClasses[ClassTimeout] != s.Errors {
		t.Errorf("sent %d errors %d classes %v", s.Sent, s.Errors, s.ErrorClasses)
	}
	var n int64
	for _, e := range s.Series {
		n += e.Requests
	}
	if n != s.Sent || len(s.Series) != 2 {
		t.Errorf("series holds %d requests in %d entries, want %d in 2", n, len(s.Series), s.Sent)
	}
}

func TestRecorderSeriesCoarsens(t *testing.T) {
	r := New(Config{Origin: origin, MaxSeries: 4})
	for i := range 10 { // one request per second for 10 s
		r.Record(Result{Start: origin.Add(time.Duration(i) * time.Second), Latency: time.Duration(i+1) * time.Millisecond})
	}
	s := r.Summary()
	want := []Second{
		{At: 0, Width: 4 * time.Second, Requests: 4},
		{At: 4 * time.Second, Width: 4 * time.Second, Requests: 4},
		{At: 8 * time.Second, Width: 4 * time.Second, Requests: 2},
	}
	if len(s.Series) != len(want) {
		t.Fatalf("series %+v", s.Series)
	}
	for i, w := range want {
		g := s.Series[i]
		if g.At != w.At || g.Width != w.Width || g.Requests != w.Requests {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	if p := s.Series[2].P99; p < 9*time.Millisecond || p > 10*time.Millisecond {
		t.Errorf("last entry p99 %v", p)
	}
}

func TestRecorderMerge(t *testing.T) {
	a, b, all := New(Config{}), New(Config{}), New(Config{})
	for i := range 100 {
		res := Result{Start: origin.Add(time.Duration(i) * 50 * time.Millisecond), Latency: time.Duration(i) * time.Millisecond, Status: 200 + i%2}
		res.Scheduled = res.Start
		all.Record(res)
		if i%2 == 0 {
			a.Record(res)
		} else {
			b.Record(res)
		}
	}
	a.Merge(b)
	got, want := a.Summary(), all.Summary()
	if got.Sent != want.Sent || got.Latency != want.Latency || got.Achieved != want.Achieved ||
		got.Status[201] != 50 || len(got.Series) != len(want.Series) {
		t.Errorf("merged %+v\nwant %+v", got, want)
	}
	for i := range want.Series {
		if got.Series[i] != want.Series[i] {
			t.Errorf("series %d: %+v, want %+v", i, got.Series[i], want.Series[i])
		}
	}
}

type classed struct{}

func (classed) Error() string    { return "custom" }
func (classed) ErrClass() string { return "custom-class" }

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ClassConnectRefused},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), ClassTimeout},
		{context.DeadlineExceeded, ClassTimeout},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ClassReset},
		{fmt.Errorf("write: %w", syscall.EPIPE), ClassReset},
		{io.ErrUnexpectedEOF, ClassReset},
		{tls.RecordHeaderError{Msg: "not tls"}, ClassTLS},
		{fmt.Errorf("x: %w", ErrBadResponse), ClassBadResponse},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid"}}, ClassDial},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, ClassDial},
		{fmt.Errorf("send: %w", context.Canceled), ClassCanceled},
		{errors.New("strange"), ClassOther},
		{fmt.Errorf("w: %w", classed{}), "custom-class"},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	r := New(Config{})
	res := Result{Start: origin, Scheduled: origin, Latency: 3 * time.Millisecond, Status: 200}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(res)
		}
	})
}

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram(Precise)
	for _, d := range []time.Duration{150 * time.Microsecond, 300 * time.Microsecond, 300 * time.Microsecond, 3 * time.Millisecond, 40 * time.Millisecond} {
		h.Record(d)
	}
	got := h.Buckets()
	want := []LatencyBucket{
		{Upper: 200 * time.Microsecond, Count: 1},
		{Upper: 500 * time.Microsecond, Count: 2},
		{Upper: time.Millisecond, Count: 0},
		{Upper: 2 * time.Millisecond, Count: 0},
		{Upper: 5 * time.Millisecond, Count: 1},
		{Upper: 10 * time.Millisecond, Count: 0},
		{Upper: 20 * time.Millisecond, Count: 0},
		{Upper: 50 * time.Millisecond, Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("buckets = %v, want %v", got, want)
	}
	var total int64
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bucket %d = %v, want %v", i, got[i], want[i])
		}
		total += got[i].Count
	}
	if total != 5 {
		t.Errorf("total %d, want 5", total)
	}
	if NewHistogram(Precise).Buckets() != nil {
		t.Error("empty histogram has buckets")
	}
}
