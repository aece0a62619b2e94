package report

import (
	"math"

	"github.com/replayctl/replayctl/stats"
)

// SetFigures fills the figures of d from a replay's summary: totals,
// status codes, latency and lateness quantiles, rates, the per-second
// series (per-second rates, whatever each entry's width) and the latency
// histogram. The engine's report, a merged report and serve's job page use
// it, so the three show the same figures the same way.
func (d *Data) SetFigures(s stats.Summary) {
	d.Requests = Totals{Sent: s.Sent, OK: s.OK, Errors: s.Errors, ErrorClasses: s.ErrorClasses}
	d.Status = s.Status
	d.Latency = Quantiles{P50: stats.MS(s.Latency.P50), P90: stats.MS(s.Latency.P90), P99: stats.MS(s.Latency.P99),
		P999: stats.MS(s.Latency.P999), Max: stats.MS(s.Latency.Max)}
	d.Rate = Rate{Scheduled: s.Scheduled, Achieved: s.Achieved}
	d.Lateness = Lateness{P50: stats.MS(s.Lateness.P50), P99: stats.MS(s.Lateness.P99), Max: stats.MS(s.Lateness.Max)}
	d.Series = d.Series[:0]
	for _, sec := range s.Series {
		width := sec.Width.Seconds()
		if width <= 0 {
			width = 1
		}
		d.Series = append(d.Series, Second{T: int(sec.At.Seconds()), Requests: int64(float64(sec.Requests) / width),
			Errors: int64(float64(sec.Errors) / width), P50: stats.MS(sec.P50), P99: stats.MS(sec.P99)})
	}
	d.Histogram = d.Histogram[:0]
	for _, b := range s.Histogram {
		upper := stats.MS(b.Upper)
		if b.Upper == 0 {
			upper = math.Inf(1) // the overflow bucket
		}
		d.Histogram = append(d.Histogram, Bucket{UpperMs: upper, Count: b.Count})
	}
}
