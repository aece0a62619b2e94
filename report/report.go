// Package report renders the result of a replay job as one self-contained
// HTML file: inline CSS, charts drawn as inline SVG in Go, no scripts and no
// external resources, so it opens offline and can be attached to a CI run.
//
// Data is also shaped (and tagged) like the JSON report of the design:
// requests, status, latency, rate, lateness, window, diff.
package report

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replayctl/replayctl/compare"
)

// Data is everything a report shows. Latencies and lateness are in
// milliseconds, rates in requests per second. Zero values render as empty
// sections, never as errors.
type Data struct {
	Job         string    `json:"job"`
	Scenario    string    `json:"scenario"`
	GeneratedAt time.Time `json:"generated_at"`
	// Targets lists the target URLs (or names) replayed to.
	Targets []string `json:"targets"`
	// DurationS is the run's wall time in seconds (0: unknown).
	DurationS float64              `json:"duration_s"`
	Window    *Window              `json:"window,omitempty"`
	Requests  Totals               `json:"requests"`
	Status    map[int]int64        `json:"status"` // status code → count
	Latency   Quantiles            `json:"latency"`
	Rate      Rate                 `json:"rate"`
	Lateness  Lateness             `json:"lateness"`
	Series    []Second             `json:"series"`
	Histogram []Bucket             `json:"histogram"`
	Diff      *compare.DiffSummary `json:"diff,omitempty"`
	// Assertions are the job's assert results, in scenario order.
	Assertions []Assertion `json:"assertions"`
	// Interrupted is true when a signal stopped the job before its end:
	// the figures cover what was done until then.
	Interrupted bool `json:"interrupted"`
	// RunID and Shards: the run and one row per shard of a merged report.
	RunID  string     `json:"run_id,omitempty"`
	Shards []ShardRow `json:"shards,omitempty"`
	// Problems (merged reports) lists what makes the run incomplete or
	// failed: missing shards, failed or interrupted shards. Shown first.
	Problems []string `json:"problems,omitempty"`
	// SourceGaps says what the replayed window lacks of its recording (a
	// window saved partial: its losses; records gone by retention), NotSent
	// which of its requests were not sent and why, a line each (the JSON
	// report's source_gaps and not_sent). Shown after Problems.
	SourceGaps []string `json:"source_gaps,omitempty"`
	NotSent    []string `json:"not_sent,omitempty"`
	// NotSentFails: requests were not sent and the job's on-loss is fail;
	// the verdict says so, as the run's exit code does.
	NotSentFails bool `json:"-"`
	// Breakdown has a row per protocol (when several were used) and per
	// gRPC method.
	Breakdown []BreakdownRow `json:"breakdown,omitempty"`
	// Ended is, for a merged report of a job that did not run whole, its
	// state (FAILED, CANCELLED): the HTML verdict says the job ended so,
	// not whether assertions held. Not in the JSON (the merged report has
	// the job's state).
	Ended string `json:"-"`
}

// ShardRow is one shard of a merged report.
type ShardRow struct {
	Index  int    `json:"index"`
	Host   string `json:"host,omitempty"`
	Parts  string `json:"parts"`
	Sent   int64  `json:"sent"`
	Errors int64  `json:"errors"`
	// Rate is the achieved rate (requests/s), P99 the latency p99 (ms),
	// SkewMS the first send minus its due instant on the run's timeline
	// (nil: the shard sent nothing or was not sharded).
	Rate   float64  `json:"rate"`
	P99    float64  `json:"p99"`
	SkewMS *float64 `json:"skew_ms"`
	// State is "ok", "failed: …", "interrupted" or "missing".
	State string `json:"state"`
}

// BreakdownRow is the results of part of the requests: Kind "protocol"
// (Name "HTTP/2.0", "HTTP/1.x") or "grpc" (Name "/pkg.Service/Method").
type BreakdownRow struct {
	Kind   string  `json:"kind"`
	Name   string  `json:"name"`
	Sent   int64   `json:"sent"`
	OK     int64   `json:"ok"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50"` // ms
	P99    float64 `json:"p99"` // ms
	// GRPCStatus lists the answers by grpc-status, as "0: 36, 5: 4".
	GRPCStatus string `json:"grpc_status,omitempty"`
}

// Window names the Kafka offsets replayed.
type Window struct {
	Name  string `json:"name,omitempty"`
	Topic string `json:"topic"`
	// Partitions maps a partition to its [start, end) offsets.
	Partitions map[int32]Range `json:"partitions"`
}

// Range is a half-open offset range [Start, End).
type Range struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Totals counts requests. ErrorClasses maps an error class (timeout,
// connect, reset, …) to its count.
type Totals struct {
	Sent         int64            `json:"sent"`
	OK           int64            `json:"ok"`
	Errors       int64            `json:"errors"`
	ErrorClasses map[string]int64 `json:"error_classes,omitempty"`
}

// Quantiles of latency in milliseconds.
type Quantiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Rate is the scheduled and achieved request rate (requests/s).
type Rate struct {
	Scheduled float64 `json:"scheduled"`
	Achieved  float64 `json:"achieved"`
}

// Lateness is actual minus scheduled send time, in milliseconds.
type Lateness struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Second is one second of the run.
type Second struct {
	T        int     `json:"t"` // seconds since start
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50      float64 `json:"p50"` // ms
	P99      float64 `json:"p99"` // ms
}

// Bucket is one latency histogram bucket: Count latencies <= UpperMs (and
// above the previous bucket's bound). The last bucket may have UpperMs
// +Inf (written as null in JSON) for everything above.
type Bucket struct {
	UpperMs float64 `json:"upper_ms"`
	Count   int64   `json:"count"`
}

// MarshalJSON writes a non-finite UpperMs (the overflow bucket, +Inf) as
// null, which JSON can carry.
func (b Bucket) MarshalJSON() ([]byte, error) {
	upper := "null"
	if finite(b.UpperMs) {
		upper = strconv.FormatFloat(b.UpperMs, 'g', -1, 64)
	}
	return fmt.Appendf(nil, `{"upper_ms":%s,"count":%d}`, upper, b.Count), nil
}

// SkewText formats SkewMS ("–" when absent).
func (r ShardRow) SkewText() string {
	if r.SkewMS == nil {
		return "–"
	}
	return fmtMs(*r.SkewMS)
}

// Assertion is one assert expression and its outcome. NotEvaluated says
// why one was not evaluated ("the job failed", "the job cancelled": a
// merged report's job did not run whole); OK is then false, and it did
// not fail.
type Assertion struct {
	Expr         string `json:"expr"`
	OK           bool   `json:"ok"`
	Detail       string `json:"detail,omitempty"`
	NotEvaluated string `json:"not_evaluated,omitempty"`
}

//go:embed report.html.tmpl
var pageText string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":     fmtMs,
	"pct":    fmtPct,
	"count":  fmtCount,
	"rate":   fmtRate,
	"sub":    func(a, b int64) int64 { return a - b },
	"pretty": pretty,
	"barWidth": func(r float64) template.CSS {
		if !finite(r) || r < 0 {
			r = 0
		}
		return template.CSS(strconv.FormatFloat(math.Min(r, 1)*100, 'f', 1, 64) + "%")
	},
}).Parse(pageText))

// card is one summary figure.
type card struct {
	Label, Value, Sub string
	Tone              string // "", "good", "bad", "warn"
}

type partition struct {
	Partition  int32
	Start, End int64
}

type kv struct {
	Key   string
	Value int64
}

type view struct {
	D               Data
	Title           string
	Verdict         string // pass, fail, none, interrupted
	VerdictText     string
	Generated       string
	Duration        string
	Failed          int
	AssertNote      string // what the assertions came to (assertNote)
	Cards           []card
	DiffCards       []card
	Partitions      []partition
	ErrorClasses    []kv
	LatencyChart    template.HTML
	HistChart       template.HTML
	ThroughputChart template.HTML
	StatusChart     template.HTML
	LatenessChart   template.HTML
}

// ErrShare is n as a share of all errors.
func (v view) ErrShare(n int64) float64 { return ratio(n, v.D.Requests.Errors) }

// assertNote says what d's assertions came to, under the verdict.
func assertNote(d Data, failed, notEvaluated int) string {
	n := len(d.Assertions)
	plural := func(k int) string {
		if k == 1 {
			return "assertion"
		}
		return "assertions"
	}
	var notes []string
	if d.Ended != "" {
		notes = append(notes, "the job "+strings.ToLower(d.Ended)+" before it ran whole")
	}
	switch {
	case n == 0:
		notes = append(notes, "the job declares no assertions")
	case notEvaluated > 0:
		if failed > 0 {
			notes = append(notes, fmt.Sprintf("%d of %d %s failed", failed, n, plural(n)))
		}
		notes = append(notes, fmt.Sprintf("%d %s not evaluated", notEvaluated, plural(notEvaluated)))
	case failed > 0:
		notes = append(notes, fmt.Sprintf("%d of %d %s failed", failed, n, plural(n)))
	default:
		notes = append(notes, fmt.Sprintf("%d %s held", n, plural(n)))
	}
	return strings.Join(notes, ": ")
}

// WriteHTML renders d as one self-contained HTML page.
func WriteHTML(w io.Writer, d Data) error {
	v := build(d)
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return fmt.Errorf("report: render html: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("report: write html: %w", err)
	}
	return nil
}

func build(d Data) view {
	v := view{D: d, Title: cmp.Or(d.Job, "replay")}
	if d.Scenario != "" {
		v.Title = d.Scenario + " · " + v.Title
	}
	notEvaluated := 0
	for _, a := range d.Assertions {
		switch {
		case a.NotEvaluated != "":
			notEvaluated++
		case !a.OK:
			v.Failed++
		}
	}
	switch {
	case d.Ended != "":
		v.Verdict, v.VerdictText = "fail", "Job "+strings.ToLower(d.Ended)
		if d.Ended == "CANCELLED" {
			v.Verdict = "interrupted"
		}
	case d.Interrupted:
		v.Verdict, v.VerdictText = "interrupted", "Interrupted"
	case len(d.Assertions) == 0:
		v.Verdict, v.VerdictText = "none", "No assertions"
	case v.Failed == 0:
		v.Verdict, v.VerdictText = "pass", "Passed"
	default:
		v.Verdict, v.VerdictText = "fail", "Failed"
	}
	if d.NotSentFails && d.Ended == "" && !d.Interrupted {
		v.Verdict, v.VerdictText = "fail", "Requests not sent"
	}
	if len(d.Problems) > 0 && d.Ended == "" {
		v.Verdict, v.VerdictText = "fail", "Incomplete"
	}
	v.AssertNote = assertNote(d, v.Failed, notEvaluated)
	if !d.GeneratedAt.IsZero() {
		v.Generated = d.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	if d.DurationS > 0 {
		v.Duration = (time.Duration(d.DurationS * float64(time.Second))).Round(time.Millisecond).String()
	}
	if d.Window != nil {
		for _, p := range slices.Sorted(maps.Keys(d.Window.Partitions)) {
			r := d.Window.Partitions[p]
			v.Partitions = append(v.Partitions, partition{p, r.Start, r.End})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Requests.ErrorClasses)) {
		v.ErrorClasses = append(v.ErrorClasses, kv{k, d.Requests.ErrorClasses[k]})
	}
	slices.SortStableFunc(v.ErrorClasses, func(a, b kv) int { return cmp.Compare(b.Value, a.Value) })

	errTone := ""
	if d.Requests.Errors > 0 {
		errTone = "bad"
	}
	v.Cards = []card{
		{Label: "Sent", Value: fmtCount(d.Requests.Sent), Sub: fmtCount(d.Requests.OK) + " ok"},
		{Label: "Errors", Value: fmtCount(d.Requests.Errors), Sub: fmtPct(ratio(d.Requests.Errors, d.Requests.Sent)) + " of sent", Tone: errTone},
		{Label: "Rate", Value: fmtRate(d.Rate.Achieved), Sub: "scheduled " + fmtRate(d.Rate.Scheduled)},
		{Label: "Latency p50", Value: fmtMs(d.Latency.P50), Sub: "p90 " + fmtMs(d.Latency.P90)},
		{Label: "Latency p99", Value: fmtMs(d.Latency.P99), Sub: "p99.9 " + fmtMs(d.Latency.P999)},
		{Label: "Latency max", Value: fmtMs(d.Latency.Max)},
		{Label: "Lateness p99", Value: fmtMs(d.Lateness.P99), Sub: "p50 " + fmtMs(d.Lateness.P50) + " · max " + fmtMs(d.Lateness.Max)},
	}
	if s := d.Diff; s != nil {
		tone := "good"
		if s.Mismatches > 0 {
			tone = "bad"
		}
		v.Cards = append(v.Cards, card{Label: "Mismatches", Value: fmtCount(s.Mismatches),
			Sub: fmtPct(s.Rate) + " of " + fmtCount(s.Compared) + " compared", Tone: tone})
		v.DiffCards = []card{
			{Label: "Compared", Value: fmtCount(s.Compared)},
			{Label: "Mismatches", Value: fmtCount(s.Mismatches), Sub: fmtPct(s.Rate), Tone: tone},
			{Label: "Noise diffs", Value: fmtCount(s.NoiseDiffs), Sub: plural(len(s.NoiseFields), "noisy field")},
			{Label: "Endpoints", Value: fmtCount(int64(len(s.Endpoints)))},
		}
	}

	var xs, p50, p99, reqs, errs []float64
	for _, s := range d.Series {
		xs = append(xs, float64(s.T))
		p50 = append(p50, s.P50)
		p99 = append(p99, s.P99)
		reqs = append(reqs, float64(s.Requests))
		errs = append(errs, float64(s.Errors))
	}
	v.LatencyChart = lineChart("Latency over time", "seconds since start", "ms", []series{
		{Name: "p50", Color: "var(--blue)", X: xs, Y: p50},
		{Name: "p99", Color: "var(--orange)", X: xs, Y: p99},
	})
	v.ThroughputChart = lineChart("Requests and errors per second", "seconds since start", "per second", []series{
		{Name: "requests", Color: "var(--green)", X: xs, Y: reqs},
		{Name: "errors", Color: "var(--red)", X: xs, Y: errs},
	})
	var hist []bar
	for i, b := range d.Histogram {
		label := "≤" + shortNum(b.UpperMs)
		if math.IsInf(b.UpperMs, 1) || (i == len(d.Histogram)-1 && b.UpperMs <= 0) {
			label = "more"
		}
		hist = append(hist, bar{Label: label, Value: float64(b.Count), Color: "var(--blue)"})
	}
	v.HistChart = barChart("Latency histogram", "latency (ms, upper bound)", "requests", hist)
	var status []bar
	for _, code := range slices.Sorted(maps.Keys(d.Status)) {
		label := strconv.Itoa(code)
		if code == 0 {
			label = "none"
		}
		status = append(status, bar{Label: label, Value: float64(d.Status[code]), Color: statusColor(code)})
	}
	v.StatusChart = barChart("Status codes", "status", "responses", status)
	lat := []bar{
		{Label: "p50", Value: d.Lateness.P50, Color: "var(--violet)"},
		{Label: "p99", Value: d.Lateness.P99, Color: "var(--violet)"},
		{Label: "max", Value: d.Lateness.Max, Color: "var(--violet)"},
	}
	if d.Lateness == (Lateness{}) {
		lat = nil
	}
	v.LatenessChart = barChart("Send lateness", "", "ms", lat)
	return v
}

func statusColor(code int) string {
	switch {
	case code >= 500:
		return "var(--red)"
	case code >= 400:
		return "var(--orange)"
	case code >= 300:
		return "var(--blue)"
	case code >= 200:
		return "var(--green)"
	}
	return "var(--grey)"
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// fmtMs formats milliseconds: µs below 1 ms, seconds from 1000 ms.
func fmtMs(ms float64) string {
	switch {
	case !finite(ms):
		return "–"
	case ms == 0:
		return "0 ms"
	case math.Abs(ms) < 1:
		return strconv.FormatFloat(ms*1000, 'f', 0, 64) + " µs"
	case math.Abs(ms) < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	case math.Abs(ms) < 1000:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
}

func fmtPct(r float64) string {
	if !finite(r) {
		return "–"
	}
	p := r * 100
	switch {
	case p == 0:
		return "0%"
	case p < 0.1:
		return "<0.1%"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func fmtRate(r float64) string {
	if !finite(r) {
		return "–"
	}
	if r >= 1000 {
		return fmtCount(int64(math.Round(r))) + "/s"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + "/s"
}

// fmtCount writes n with thin-space thousands separators.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// pretty indents a JSON body for reading; other text is returned as is.
func pretty(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') || !json.Valid([]byte(t)) {
		return s
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(t), "", "  "); err != nil {
		return s
	}
	return buf.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmtCount(int64(n)) + " " + noun + "s"
}
