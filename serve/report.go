package serve

import (
	"encoding/json"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/report"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// MergedReport is a finished job's report: the merged figures and each
// part's own result. A replay's figures come from its shards' lossless
// stats merged bucket by bucket (fleet.MergeShards), so its percentiles are
// exact; percentiles are never averaged.
type MergedReport struct {
	report.Data
	ID     string        `json:"id"`
	Kind   string        `json:"kind"`
	State  fleet.State   `json:"state"`
	Reason string        `json:"reason,omitempty"`
	Result *fleet.Result `json:"result"`
	Parts  []PartView    `json:"parts"`
	// LatencyNote says which latency figures are the job's own.
	LatencyNote string `json:"latency_note,omitempty"`
}

// assertions lists the job's assert expressions (those the result was
// evaluated with, else the scenario text the spec carries) with their
// outcome on the merged summary; of a job that did not run whole (FAILED,
// CANCELLED), those that did not fail are not evaluated, and say why.
func assertions(sp *fleet.Spec, res *fleet.Result, state fleet.State) []report.Assertion {
	var doc struct {
		Jobs map[string]struct {
			Assert []string `yaml:"assert"`
		} `yaml:"jobs"`
	}
	exprs, failed := res.Shown(), res.Failed
	if len(exprs) == 0 {
		if err := yaml.Unmarshal([]byte(sp.Scenario), &doc); err != nil {
			return nil
		}
		exprs = doc.Jobs[sp.Job].Assert
	}
	var out []report.Assertion
	for _, expr := range exprs {
		a := report.Assertion{Expr: expr, OK: true}
		for _, f := range failed {
			if strings.Contains(f, expr) {
				a.OK, a.Detail = false, f
			}
		}
		if a.OK && state != fleet.Succeeded && state != fleet.AssertFailed {
			// Not evaluated: the job failed or was cancelled (a shard
			// failed, was cancelled or never ran: the totals miss part
			// of the window), as jobs show says it.
			why := "the job " + strings.ToLower(string(state))
			a.OK, a.NotEvaluated, a.Detail = false, why, "not evaluated: "+why
		}
		out = append(out, a)
	}
	return out
}

func ms(d fleet.Duration) float64 { return float64(time.Duration(d)) / float64(time.Millisecond) }

func (s *Server) merged(w http.ResponseWriter, r *http.Request) (MergedReport, bool) {
	v, rec, ok := s.job(w, r)
	if !ok {
		return MergedReport{}, false
	}
	var sp *fleet.Spec // with its scenario text, whose assertions an older agent's result lacks
	if rec != nil {
		if full, err := rec.full(); err == nil {
			sp = full
		}
	}
	if !v.State.Final() {
		fail(w, http.StatusConflict, "job %s is %s: its report comes when it ends", v.ID, v.State)
		return MergedReport{}, false
	}
	res := v.Result
	if res == nil {
		res = &fleet.Result{}
	}
	m := MergedReport{ID: v.ID, Kind: v.Kind, State: v.State, Reason: v.Reason, Result: res, Parts: v.Parts}
	d := &m.Data
	d.Job, d.Scenario, d.GeneratedAt = v.Job, v.Scenario, time.Now().UTC()
	d.Requests = report.Totals{Sent: res.Sent, OK: res.OK, Errors: res.Errors, ErrorClasses: res.ErrorClasses}
	if v.Kind == fleet.KindRecord {
		// A recording counts messages, requests and responses: those
		// captured, written to Kafka and not written (Sent was the
		// requests alone, OK every message written: ok 800 of sent 400).
		d.Requests.Sent = res.Requests + res.Responses
		d.Requests.OK = res.Written
		d.Requests.Errors = res.NotWritten
	}
	d.Status = res.Status
	d.SourceGaps, d.NotSent = res.SourceGaps, res.NotSent
	d.Diff = res.Diff
	d.Breakdown = report.BreakdownRows(res.Protocols, res.GRPC)
	// Totals that miss a lost run's results make the report incomplete,
	// whether the job accepted that (on-loss: warn) or failed on it.
	d.Problems = append(d.Problems, res.Partial...)
	d.Latency.Max = ms(res.LatencyMax)
	d.Lateness.Max = ms(res.LatenessMax)
	var ran []PartView
	for _, p := range v.Parts {
		if p.Result != nil && p.Shard != nil {
			ran = append(ran, p)
		}
	}
	sum, exact := res.Summary()
	switch {
	case exact:
		// The shards' lossless stats merged bucket by bucket (fleet.MergeShards):
		// the figures of one run that sent every request, per-second series
		// and histogram included.
		var fig report.Data
		fig.SetFigures(sum)
		d.Latency, d.Lateness, d.Rate.Scheduled = fig.Latency, fig.Lateness, fig.Rate.Scheduled
		d.Series, d.Histogram = fig.Series, fig.Histogram
		switch {
		case len(res.Partial) > 0:
			m.LatencyNote = "exact over the results the shards reported: their histograms merged bucket by bucket (never averaged), without the results of the lost runs (see the problems above)"
		case len(ran) > 1:
			m.LatencyNote = "exact: the shards' histograms merged bucket by bucket (never averaged), as one run that sent every request"
		}
	case len(ran) == 1:
		d.Latency.P50, d.Latency.P99 = ms(ran[0].Result.LatencyP50), ms(ran[0].Result.LatencyP99)
	}
	if !exact {
		for _, b := range res.Histogram {
			upper := math.Inf(1)
			if b.Upper > 0 {
				upper = float64(b.Upper) / float64(time.Millisecond)
			}
			d.Histogram = append(d.Histogram, report.Bucket{UpperMs: upper, Count: b.Count})
		}
	}
	if sp != nil && sp.Replay != nil {
		win := &report.Window{Name: sp.Replay.Window, Topic: sp.Replay.Topic, Partitions: map[int32]report.Range{}}
		for _, sh := range sp.Replay.Shards {
			for p, rg := range sh.Ranges {
				win.Partitions[p] = report.Range{Start: rg.Start, End: rg.End}
			}
		}
		d.Window = win
		if sp.Replay.StartAt.Before(v.Updated) {
			d.DurationS = v.Updated.Sub(sp.Replay.StartAt).Seconds()
		}
	}
	if d.DurationS > 0 && v.Kind == fleet.KindReplay {
		d.Rate.Achieved = float64(res.Sent) / d.DurationS
	}
	if exact && sum.Achieved > 0 {
		d.Rate.Achieved = sum.Achieved
	}
	if sp != nil {
		d.Assertions = assertions(sp, res, v.State)
	}
	if v.State != fleet.Succeeded && v.State != fleet.AssertFailed {
		d.Ended = string(v.State)
	}
	if len(ran) > 1 && !exact {
		m.LatencyNote = "percentiles are not merged from shards' percentiles (never averaged): each shard's p50/p99 is under parts[].result; max is exact"
	}
	if d.Status == nil {
		d.Status = map[int]int64{}
	}
	return m, true
}

func (s *Server) reportJSON(w http.ResponseWriter, r *http.Request, _ Token) {
	if m, ok := s.merged(w, r); ok {
		writeJSON(w, http.StatusOK, m)
	}
}

// recordPage is a record job's report: what it recorded and lost, and by
// which host.
var recordPage = template.Must(template.New("record").Funcs(template.FuncMap{"lost": catalog.LostText}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.ID}} · record</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#1d2733}table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.3em .7em;text-align:left}td:last-child{overflow-wrap:anywhere}</style></head>
<body><h1>Record job {{.ID}}: {{.State}}</h1>
{{with .Reason}}<p>{{.}}</p>{{end}}
<table><tr><th>requests</th><td>{{.Result.Requests}}</td></tr><tr><th>responses</th><td>{{.Result.Responses}}</td></tr>
<tr><th>written</th><td>{{.Result.Written}}</td></tr><tr><th>not written</th><td>{{.Result.NotWritten}}</td></tr>
{{with lost .Result.Lost}}<tr><th>lost</th><td>{{.}}</td></tr>{{end}}
{{with .Result.Window}}<tr><th>window</th><td>{{.}}{{if lost $.Result.Lost}} (saved partial){{end}}</td></tr>{{end}}</table>
<h2>Hosts</h2><table><tr><th>part</th><th>agent</th><th>state</th><th>requests</th><th>lost</th><th>reason</th></tr>
{{range .Parts}}<tr><td>{{.Part}}</td><td>{{.Agent}}</td><td>{{.State}}</td><td>{{with .Result}}{{.Requests}}{{end}}</td><td>{{with .Result}}{{lost .Lost}}{{end}}</td><td>{{.Reason}}</td></tr>{{end}}</table>
</body></html>`))

func (s *Server) reportHTML(w http.ResponseWriter, r *http.Request, _ Token) {
	m, ok := s.merged(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
	if m.Kind == fleet.KindRecord {
		_ = recordPage.Execute(w, m)
		return
	}
	d := m.Data
	if _, exact := m.Result.Summary(); !exact {
		// Figures a result without its lossless stats does not carry show
		// as "–", not as 0.
		nan := math.NaN()
		d.Latency.P90, d.Latency.P999, d.Lateness.P50, d.Lateness.P99, d.Rate.Scheduled = nan, nan, nan, nan, nan
		if m.LatencyNote != "" {
			d.Latency.P50, d.Latency.P99 = nan, nan
		}
	}
	if err := report.WriteHTML(w, d); err != nil {
		s.log.Warn("report", "err", err)
	}
}
