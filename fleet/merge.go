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
		in := &report.Input{Name: name, Report: stats.Report{Job: job, State: r.State, Counters: r.Counters, SourceGaps: r.SourceGaps, NotSent: r.NotSent}, Diff: r.Diff,
			Protocols: r.Protocols, GRPC: r.GRPC}
		for _, a := range r.Asserts {
			in.Assertions = append(in.Assertions, stats.ReportAssertion{Expr: a})
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		return &Result{}, nil
	}
	differ := assertsDiffer(parts)
	if differ != nil {
		// Which of them would be the job's? None: no verdict.
		for _, in := range inputs {
			in.Assertions = nil
		}
	}
	m, err := report.Merge(inputs, "")
	if err != nil {
		return nil, err
	}
	var first *Result
	for _, p := range parts {
		if p.Result != nil {
			first = p.Result
			break
		}
	}
	shown := first.Shown()
	var failed []string
	for i, a := range m.JSON.Assertions {
		if a.OK || !slices.Contains(m.Failed, fmt.Sprintf("job %s (merged): %s%s", job, a.Expr, inParens(a.Detail))) {
			continue // held, or not evaluated (the totals miss a part)
		}
		// Said as written: an assertion a secret went into is evaluated
		// as published (its secret's parts' outcomes), shown as written.
		text := a.Expr
		if i < len(shown) {
			text = shown[i]
		}
		failed = append(failed, fmt.Sprintf("job %s (merged): %s%s", job, text, inParens(a.Detail)))
	}
	r := resultOfSummary(m.Summary, m.JSON.State, m.JSON.Counters, nil, failed)
	r.Asserts = slices.Clone(first.Asserts)
	if len(first.AssertsShown) == len(first.Asserts) {
		r.AssertsShown = slices.Clone(first.AssertsShown)
	}
	// A line only some shards have is prefixed with the shard's name.
	r.SourceGaps, r.NotSent = m.JSON.SourceGaps, m.JSON.NotSent
	if d, ok := m.JSON.Diff.(*compare.DiffSummary); ok {
		r.Diff = d
	}
	r.Protocols, r.GRPC = m.JSON.Protocols, m.JSON.GRPC
	if differ != nil {
		return r, differ
	}
	return r, nil
}

// inParens is an assertion's detail as report.Merge writes it after the
// expression in a failed line.
func inParens(detail string) string {
	if detail == "" {
		return ""
	}
	return "  (" + detail + ")"
}

// AssertsDifferError says that the shards of a replay job published
// different assertions: their agents read different --var values into
// them (a threshold, or a secret whose comparisons came out otherwise).
// The merged totals then have no one assertion to be held to: the job
// fails with this, rather than with the verdict of one shard's values.
type AssertsDifferError struct{ Lines []string }

func (e *AssertsDifferError) Error() string {
	return "assertions not evaluated: the shards' agents read different values into them (their --var differ), so the merged totals have no one assertion to be held to: " + strings.Join(e.Lines, "; ")
}

// assertsDiffer compares the assertions the parts with a result
// published, one by one; nil when they agree.
func assertsDiffer(parts []Status) *AssertsDifferError {
	type seen struct {
		text  string
		parts []string
	}
	// The parts with a result, each named as MergeShards names it: by
	// its shard, else by its place among the job's parts.
	var ran []Status
	var names []string
	n := 0
	for i, p := range parts {
		if p.Result != nil {
			name := fmt.Sprintf("part %d (%s)", i, p.Agent)
			if p.Shard != nil {
				name = fmt.Sprintf("shard %d (%s)", *p.Shard, p.Agent)
			}
			ran = append(ran, p)
			names = append(names, name)
			n = max(n, len(p.Result.Asserts))
		}
	}
	var lines []string
	for i := range n {
		var texts []*seen
		shown := ""
		for j, p := range ran {
			text := "(none)"
			if i < len(p.Result.Asserts) {
				text = p.Result.Asserts[i]
				if s := p.Result.Shown(); shown == "" && i < len(s) {
					shown = s[i]
				}
			}
			name := names[j]
			k := slices.IndexFunc(texts, func(s *seen) bool { return s.text == text })
			if k < 0 {
				texts = append(texts, &seen{text: text})
				k = len(texts) - 1
			}
			texts[k].parts = append(texts[k].parts, name)
		}
		if len(texts) < 2 {
			continue
		}
		var alts []string
		for _, s := range texts {
			alts = append(alts, fmt.Sprintf("%s on %s", s.text, strings.Join(s.parts, ", ")))
		}
		lines = append(lines, fmt.Sprintf("assert %s is %s", shown, strings.Join(alts, ", but ")))
	}
	if lines == nil {
		return nil
	}
	return &AssertsDifferError{Lines: lines}
}

// diffsMissing says, a line each, which parts' results carry no diff
// when others' do: their agents, of a version older than diffs in results,
// compared too (the parts run one scenario) but kept it to themselves, so
// the merged diff.* counts miss their requests: the totals are partial.
func diffsMissing(parts []Status) []string {
	var with, without []Status
	for _, p := range parts {
		switch {
		case p.Result == nil:
		case p.Result.Diff != nil:
			with = append(with, p)
		default:
			without = append(without, p)
		}
	}
	if len(with) == 0 {
		return nil
	}
	var lines []string
	for _, p := range without {
		name := "part on " + p.Agent
		if p.Shard != nil {
			name = fmt.Sprintf("shard %d on %s", *p.Shard, p.Agent)
		}
		lines = append(lines, fmt.Sprintf("%s published no diff of its responses (its agent is older than this replayctl): the merged diff.* counts miss its %d requests", name, p.Result.Sent))
	}
	return lines
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
