package stats

import (
	"fmt"
	"time"
)

// Report is the JSON report of one job (the shape DESIGN.md names). The
// engine fills Job, Window, Diff and Counters; the rest comes from a Summary.
// Durations are in milliseconds (float), rates in requests/s.
type Report struct {
	Job          string           `json:"job"`
	Requests     ReportRequests   `json:"requests"`
	Status       map[int]int64    `json:"status"`
	ErrorClasses map[string]int64 `json:"error_classes"`
	Latency      ReportLatency    `json:"latency"`
	Rate         ReportRate       `json:"rate"`
	Lateness     ReportLateness   `json:"lateness"`
	DurationMS   float64          `json:"duration_ms"`
	Bytes        ReportBytes      `json:"bytes"`
	Window       any              `json:"window"`
	// SourceGaps says what the replayed window lacks of its recording (a
	// window saved partial, records gone by retention), one line each.
	SourceGaps []string `json:"source_gaps,omitempty"`
	// NotSent says which requests of the window were not sent, and why
	// (bodies cut when recorded), one line each.
	NotSent []string `json:"not_sent,omitempty"`
	// OnLoss is the replay job's on-loss: "fail" (requests not sent fail
	// the run) or "warn"; report merge decides by it, as the run did.
	OnLoss string `json:"on_loss,omitempty"`
	Diff   any    `json:"diff,omitempty"`
	// Counters holds the sources' and sinks' Stats (drops, retries, …).
	Counters map[string]int64 `json:"counters,omitempty"`
	Series   []ReportSecond   `json:"series,omitempty"`
	// Scenario is the scenario's name.
	Scenario string `json:"scenario,omitempty"`
	// Error says why the job failed (empty when it did not); Interrupted
	// is set when a signal stopped it (it drained and reported).
	Error       string `json:"error,omitempty"`
	Interrupted bool   `json:"interrupted"`
	// Assertions are the job's assert expressions and their verdicts.
	Assertions []ReportAssertion `json:"assertions,omitempty"`
	// Shard describes the shard of a run this report is of (sharded runs).
	Shard any `json:"shard,omitempty"`
	// State is the lossless content of the job's stats (histograms
	// included), which `replayctl report merge` adds up exactly.
	State *State `json:"state,omitempty"`
}

// ReportAssertion is one assert expression and its verdict.
type ReportAssertion struct {
	Expr   string `json:"expr"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Unmergeable says why a merge of this report cannot evaluate the
	// assertion: a secret's value reaches the summary's values in it, and
	// Expr has it as written ("${API_TOKEN}", not the value).
	Unmergeable string `json:"unmergeable,omitempty"`
}

// ReportRequests counts requests: ok = a complete response arrived (any
// status), errors = none did.
type ReportRequests struct {
	Sent   int64 `json:"sent"`
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
}

// ReportLatency is the latency distribution of OK requests, in ms.
type ReportLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// ReportRate holds the scheduled and achieved send rates, in requests/s.
type ReportRate struct {
	Scheduled float64 `json:"scheduled"`
	Achieved  float64 `json:"achieved"`
}

// ReportLateness is actual − scheduled send time, in ms.
type ReportLateness struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// ReportBytes counts bytes on the wire.
type ReportBytes struct {
	Out int64 `json:"out"`
	In  int64 `json:"in"`
}

// ReportSecond is one series entry: T seconds after the start, covering
// Width seconds.
type ReportSecond struct {
	T        float64 `json:"t"`
	Width    float64 `json:"width"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
}

// MS converts a duration to float milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// MSDuration turns milliseconds (the reports' unit) back into a duration.
func MSDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// DurationText is how every summary on a terminal writes a latency: in
// milliseconds ("0.133ms" below 1 ms, "12.5ms" below 10 s), as a duration
// from 10 s ("12s"), and "0" for none.
func DurationText(d time.Duration) string {
	abs := d
	if abs < 0 {
		abs = -d // a skew may be negative
	}
	switch {
	case d == 0:
		return "0"
	case abs < time.Millisecond:
		return fmt.Sprintf("%.3fms", float64(d)/1e6)
	case abs < 10*time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return d.Round(time.Millisecond).String()
}

// Report shapes s as the JSON report of job; Window, Diff and Counters are
// left for the caller.
func (s Summary) Report(job string) Report {
	r := Report{
		Job:          job,
		Requests:     ReportRequests{Sent: s.Sent, OK: s.OK, Errors: s.Errors},
		Status:       s.Status,
		ErrorClasses: s.ErrorClasses,
		Latency: ReportLatency{P50: MS(s.Latency.P50), P90: MS(s.Latency.P90), P99: MS(s.Latency.P99),
			P999: MS(s.Latency.P999), Max: MS(s.Latency.Max), Mean: MS(s.Latency.Mean)},
		Rate:       ReportRate{Scheduled: s.Scheduled, Achieved: s.Achieved},
		Lateness:   ReportLateness{P50: MS(s.Lateness.P50), P99: MS(s.Lateness.P99), Max: MS(s.Lateness.Max)},
		DurationMS: MS(s.Duration),
		Bytes:      ReportBytes{Out: s.BytesOut, In: s.BytesIn},
	}
	if r.Status == nil {
		r.Status = map[int]int64{}
	}
	if r.ErrorClasses == nil {
		r.ErrorClasses = map[string]int64{}
	}
	for _, e := range s.Series {
		r.Series = append(r.Series, ReportSecond{T: e.At.Seconds(), Width: e.Width.Seconds(),
			Requests: e.Requests, Errors: e.Errors, P50: MS(e.P50), P99: MS(e.P99)})
	}
	return r
}
