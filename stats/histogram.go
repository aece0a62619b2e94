package stats

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Histogram is a log-bucketed (HDR-style) histogram of durations in
// nanoseconds. Values below 2^(b+1) ns are exact; above, every power of two
// is split into 2^b equal buckets, so a quantile is within 1/2^(b+1) of the
// true value (b = 7: 0.4 %). Recording is O(1) (amortized: the bucket slice
// covers only the range seen so far and grows on demand). Not safe for
// concurrent use; Recorder guards its histograms.
type Histogram struct {
	bits   uint8
	lo     int      // bucket index of counts[0]
	counts []uint64 // counts[i] = values in bucket lo+i
	n      uint64
	sum    float64
	min    int64
	max    int64
}

// Precise is the sub-bucket bits of the run-wide histograms (0.4 % error).
const Precise = 7

// NewHistogram returns an empty histogram with 2^subBits buckets per power of
// two (1–10; 7 gives 0.4 % relative error).
func NewHistogram(subBits int) *Histogram {
	subBits = min(max(subBits, 1), 10)
	return &Histogram{bits: uint8(subBits)}
}

func (h *Histogram) index(v int64) int {
	s := int64(1) << h.bits
	if v < 2*s {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - int(h.bits) - 1
	return shift*int(s) + int(v>>shift)
}

// bucket returns the lowest value and the width of bucket idx.
func (h *Histogram) bucket(idx int) (low, width int64) {
	s := 1 << h.bits
	if idx < 2*s {
		return int64(idx), 1
	}
	shift := idx/s - 1
	return int64(idx-shift*s) << shift, int64(1) << shift
}

// Record adds one value; negative values are recorded as 0.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN adds a value n times.
func (h *Histogram) RecordN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	v := max(int64(d), 0)
	idx := h.index(v)
	h.grow(idx)
	h.counts[idx-h.lo] += n
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n += n
	h.sum += float64(v) * float64(n)
}

// grow makes counts cover bucket idx.
func (h *Histogram) grow(idx int) {
	switch {
	case len(h.counts) == 0:
		h.lo, h.counts = idx, make([]uint64, 1, 16)
	case idx < h.lo:
		add := h.lo - idx
		add = max(add, len(h.counts)/2) // amortize repeated growth downwards
		add = min(add, h.lo)
		c := make([]uint64, len(h.counts)+add)
		copy(c[add:], h.counts)
		h.lo, h.counts = h.lo-add, c
	case idx >= h.lo+len(h.counts):
		need := idx - h.lo + 1
		if need <= cap(h.counts) {
			h.counts = h.counts[:need]
		} else {
			c := make([]uint64, need, max(need, 2*cap(h.counts)))
			copy(c, h.counts)
			h.counts = c
		}
	}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest value recorded (exact), 0 if empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest value recorded (exact), 0 if empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the mean of the values recorded, 0 if empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q (0–1): the middle of the bucket
// holding the ceil(q·n)-th smallest value, clamped to the exact min and max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 || math.IsNaN(q) {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, w := h.bucket(h.lo + i)
			v := low + (w-1)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Merge adds o's values into h. Both must have the same sub-bucket bits.
func (h *Histogram) Merge(o *Histogram) error {
	if o == nil || o.n == 0 {
		return nil
	}
	if o.bits != h.bits {
		return fmt.Errorf("merge histograms: sub-bucket bits %d and %d differ", h.bits, o.bits)
	}
	h.grow(o.lo)
	h.grow(o.lo + len(o.counts) - 1)
	for i, c := range o.counts {
		h.counts[o.lo+i-h.lo] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	return nil
}

// Quantiles summarizes h.
func (h *Histogram) Quantiles() Quantiles {
	return Quantiles{
		P50:  h.Quantile(0.5),
		P90:  h.Quantile(0.9),
		P99:  h.Quantile(0.99),
		P999: h.Quantile(0.999),
		Max:  h.Max(),
		Mean: h.Mean(),
	}
}

// CountAtOrBelow returns how many values are at or below d (bucket
// resolution: a bucket counts when its lowest value is at or below d).
func (h *Histogram) CountAtOrBelow(d time.Duration) uint64 {
	var n uint64
	for i, c := range h.counts {
		low, _ := h.bucket(h.lo + i)
		if low > int64(d) {
			break
		}
		n += c
	}
	return n
}

// LatencyBucket is one bar of a latency histogram: Count values above the
// previous bucket's Upper and at or below Upper (Upper 0: the rest).
type LatencyBucket struct {
	Upper time.Duration
	Count int64
}

// Buckets folds the histogram into readable 1-2-5 bounds (0.1 ms, 0.2 ms,
// 0.5 ms, 1 ms, …) from the minimum to the maximum value seen.
func (h *Histogram) Buckets() []LatencyBucket {
	if h.n == 0 {
		return nil
	}
	var out []LatencyBucket
	var prev uint64
	for decade := time.Duration(10 * time.Microsecond); ; decade *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			bound := decade * m
			cum := h.CountAtOrBelow(bound)
			if cum == 0 && bound < time.Duration(h.min) {
				continue
			}
			out = append(out, LatencyBucket{Upper: bound, Count: int64(cum - prev)})
			prev = cum
			if bound >= time.Duration(h.max) || cum == h.n {
				if rest := h.n - cum; rest > 0 {
					out = append(out, LatencyBucket{Count: int64(rest)})
				}
				return out
			}
		}
		if decade > time.Hour {
			return append(out, LatencyBucket{Count: int64(h.n - prev)})
		}
	}
}
