package fleet

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/stats"
)

// MergeShards merges the results of a replay job's shards exactly, with the
// code `replayctl report merge` uses (report.Merge): counters add, the
// lossless stats (stats.State) add bucket by bucket, so the merged
// percentiles are those of one run that sent every request; the job's
// assertions are evaluated on the merged summary (Result.Failed). Parts
// without a result (never ran) are left out; a result without its State
// (an older agent) cannot be merged exactly and is an error.
func MergeShards(job string, parts []Status) (*Result, error) {
	var inputs []*report.Input
	for i, p := range parts {
		r := p.Result
		if r == nil {
			continue
		}
		name := fmt.Sprintf("part %d (%s)", i, p.Agent)
		if p.Shard != nil {
			name = fmt.Sprintf("shard %d (%s)", *p.Shard, p.Agent)
		}
		if r.State == nil {
			return nil, fmt.Errorf("%s: its result has no lossless stats (an agent older than this replayctl?)", name)
		}
		in := &report.Input{Name: name, Report: stats.Report{Job: job, State: r.State, Counters: r.Counters, SourceGaps: r.SourceGaps, NotSent: r.NotSent}, Diff: r.Diff}
		for _, a := range r.Asserts {
			in.Assertions = append(in.Assertions, stats.ReportAssertion{Expr: a})
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		return &Result{}, nil
	}
	m, err := report.Merge(inputs, "")
	if err != nil {
		return nil, err
	}
	r := resultOfSummary(m.Summary, m.JSON.State, m.JSON.Counters, inputs[0].Report.Assertions, m.Failed)
	// A line only some shards have is prefixed with the shard's name.
	r.SourceGaps, r.NotSent = m.JSON.SourceGaps, m.JSON.NotSent
	if d, ok := m.JSON.Diff.(*compare.DiffSummary); ok {
		r.Diff = d
	}
	return r, nil
}

// withoutExamples is d without its endpoints' examples.
func withoutExamples(d *compare.DiffSummary) *compare.DiffSummary {
	if d == nil {
		return nil
	}
	c := *d
	c.Endpoints = make([]compare.EndpointSummary, len(d.Endpoints))
	for i, e := range d.Endpoints {
		e.Examples = nil
		c.Endpoints[i] = e
	}
	return &c
}

// resultOfSummary is a replay's Result from its summary and lossless state.
func resultOfSummary(s stats.Summary, st *stats.State, counters map[string]int64, asserts []stats.ReportAssertion, failed []string) *Result {
	r := &Result{
		Sent: s.Sent, OK: s.OK, Errors: s.Errors, Status: s.Status, ErrorClasses: s.ErrorClasses,
		LatencyP50: Duration(s.Latency.P50), LatencyP90: Duration(s.Latency.P90), LatencyP99: Duration(s.Latency.P99),
		LatencyMax: Duration(s.Latency.Max), LatenessMax: Duration(s.Lateness.Max),
		Histogram: s.Histogram, State: st, Counters: counters, Failed: failed,
	}
	for _, a := range asserts {
		r.Asserts = append(r.Asserts, a.Expr)
	}
	return r
}

// Summary rebuilds the full summary (every percentile, lateness, rate) of a
// replay result from its lossless stats; ok is false when it has none.
func (r *Result) Summary() (stats.Summary, bool) {
	if r == nil || r.State == nil {
		return stats.Summary{}, false
	}
	rec, err := stats.FromState(*r.State, stats.Config{})
	if err != nil {
		return stats.Summary{}, false
	}
	return rec.Summary(), true
}

// lostResults says, a line per shard, what a replay job's merged totals
// miss: the requests that a lost run of the shard (its agent killed or
// restarted) had answered before its last resume point. The re-run
// resumed after them (resume-skipped: not sent again), and their results
// (counts, latencies) were lost with that run: a run reports them only
// when it ends. Nil when nothing is missing.
func lostResults(b *Bus, jobID string, parts []Status) []string {
	var out []string
	for i, p := range parts {
		if p.Result == nil || p.Result.Counters["resume-skipped"] <= 0 {
			continue
		}
		shard := i
		if p.Shard != nil {
			shard = *p.Shard
		}
		lost := b.StatusPrefix(fmt.Sprintf("%s/shard/%d/lost/", jobKey(jobID), shard))
		var named []string
		for _, l := range slices.SortedFunc(maps.Values(lost), func(x, y Status) int { return cmp.Compare(x.Attempt, y.Attempt) }) {
			named = append(named, fmt.Sprintf("attempt %d on %s", l.Attempt, l.Agent))
		}
		which := "its lost run"
		if len(named) > 1 {
			which += "s"
		}
		if len(named) > 0 {
			which += " (" + strings.Join(named, ", ") + ")"
		}
		out = append(out, fmt.Sprintf("shard %d: the results of %d request(s) answered by %s are not in these totals: they were lost with it, and the re-run did not send those requests again (resume-skipped)",
			shard, p.Result.Counters["resume-skipped"], which))
	}
	return out
}
