package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/shard"
	"github.com/replayctl/replayctl/stats"
)

// Input is one replay JSON report to merge (a shard's, or any replay's):
// the stats.Report shape with its members typed.
type Input struct {
	// Name says where the report came from (a file, the run topic).
	Name string `json:"-"`
	stats.Report
	Window *catalog.Window      `json:"window"`
	Diff   *compare.DiffSummary `json:"diff"`
	Shard  *shard.Info          `json:"shard"`
	// Protocols and GRPC break the results down by protocol and by gRPC
	// method, each part with its lossless state.
	Protocols map[string]Breakdown `json:"protocols"`
	GRPC      map[string]Breakdown `json:"grpc"`
}

// ParseInput reads a replay job's JSON report. It must carry the lossless
// "state" member (the histograms), or it cannot be merged exactly.
func ParseInput(name string, data []byte) (*Input, error) {
	// A record job's report has requests as a number, and written and
	// sink members: say so rather than fail to read it as a replay's.
	var probe struct {
		Job      string          `json:"job"`
		Requests json.RawMessage `json:"requests"`
		Written  json.RawMessage `json:"written"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%s: not a JSON report: %w", name, err)
	}
	if probe.Job != "" && (isNumber(probe.Requests) || probe.Written != nil) {
		return nil, fmt.Errorf("%s is a record job's report; report merge takes replay reports", name)
	}
	in := &Input{Name: name}
	if err := json.Unmarshal(data, in); err != nil {
		return nil, fmt.Errorf("%s: not a JSON report: %w", name, err)
	}
	if in.Job == "" {
		return nil, fmt.Errorf("%s: not a replay job's JSON report (no \"job\")", name)
	}
	if in.State == nil {
		return nil, fmt.Errorf("%s: job %s's report has no \"state\" member (the histograms): it is a record job's report or from an older replayctl, and cannot be merged exactly", name, in.Job)
	}
	if in.Shard != nil && (in.Shard.Count < 1 || in.Shard.Index < 0 || in.Shard.Index >= in.Shard.Count) {
		return nil, fmt.Errorf("%s: shard %d of %d is not a shard", name, in.Shard.Index, in.Shard.Count)
	}
	return in, nil
}

// isNumber reports whether raw is a JSON number.
func isNumber(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9')
}

// MergedReport is the JSON report of a merge: the shape of a job's report
// (totals, histograms' quantiles, state) plus the run and one row per shard.
type MergedReport struct {
	stats.Report
	RunID string `json:"run_id,omitempty"`
	// Complete is false when a shard is missing, failed or was interrupted;
	// Problems says which.
	Complete bool     `json:"complete"`
	Problems []string `json:"problems,omitempty"`
	// NotSentFails is true when a part did not send some of its requests
	// (not_sent) and its job's on-loss is fail: the merge fails as that
	// part's run did.
	NotSentFails bool       `json:"not_sent_fails,omitempty"`
	Shards       []ShardRow `json:"shards"`
	// Protocols and GRPC are the shards' breakdowns added up (absent when
	// they could not be: an assertion reading them then failed, saying why).
	Protocols map[string]Breakdown `json:"protocols,omitempty"`
	GRPC      map[string]Breakdown `json:"grpc,omitempty"`
}

// Merged is the exact merge of a run's reports.
type Merged struct {
	JSON    MergedReport
	Summary stats.Summary
	// Failed lists the assertions that do not hold on the merged summary.
	Failed []string
	// Notes are remarks that do not change the verdict (a shard reported twice).
	Notes []string
}

// Complete reports whether every shard reported a finished run.
func (m *Merged) Complete() bool { return m.JSON.Complete }

// Merge adds reports up exactly: counters add, histograms add bucket by
// bucket (stats.State), the diff's counts add. The reports must be parts of
// one whole: the shards of one run (runID, when set, must be their run; the
// shard count comes from the reports), or unsharded reports of disjoint
// parts of one window (one name, topic and recording). Reports of different
// windows or runs, and reports whose parts of the window overlap, are
// refused naming two of them: their sum would be of no one replay, or
// count requests twice. One report given twice (the same file, or a copy:
// the same identity) is refused too. Unsharded reports without a window (a
// file or capture source) cannot be checked so: they are added up as
// given, and a note says so. A shard with no report is missing (the merge
// is incomplete, and the part of the window it had is named); with a shard
// missing or failed the assertions are not evaluated, as for a failed job.
func Merge(inputs []*Input, runID string) (*Merged, error) {
	if len(inputs) == 0 {
		return nil, errors.New("merge: no report")
	}
	first := inputs[0]
	count, sharded := len(inputs), first.Shard != nil
	if sharded {
		count = first.Shard.Count
		runID = cmp.Or(runID, first.Shard.RunID)
	}
	index := func(i int, in *Input) int {
		if sharded {
			return in.Shard.Index
		}
		return i
	}
	byIndex := map[int]*Input{}
	seen := map[identity]int{}
	var notes []string
	for i, in := range inputs {
		if in.Job != first.Job {
			return nil, fmt.Errorf("merge: %s is job %q, %s job %q: merge one job's reports", in.Name, in.Job, first.Name, first.Job)
		}
		if (in.Shard != nil) != sharded {
			return nil, fmt.Errorf("merge: %s and %s: one is a shard's report and the other is not", first.Name, in.Name)
		}
		if sharded {
			s := in.Shard
			switch {
			case s.RunID != runID:
				return nil, fmt.Errorf("merge: %s is shard %d of run %q, not of run %q", in.Name, s.Index, s.RunID, runID)
			case s.Count != count:
				return nil, fmt.Errorf("merge: %s is shard %d of %d, %s of %d: one run has one shard count", in.Name, s.Index, s.Count, first.Name, count)
			case s.Fingerprint != first.Shard.Fingerprint:
				return nil, fmt.Errorf("merge: %s replayed window %s, %s window %s: shards of one run replay one window", in.Name, s.Fingerprint, first.Name, first.Shard.Fingerprint)
			}
		}
		if id, ok := reportIdentity(in); ok {
			if j, dup := seen[id]; dup {
				return nil, fmt.Errorf("merge: %s (input %d) and %s (input %d) are one report given twice (%s): it would count twice; give each report once",
					inputs[j].Name, j+1, in.Name, i+1, id.describe())
			}
			seen[id] = i
		}
		if err := sameWindow(first, in); err != nil {
			return nil, err
		}
		idx := index(i, in)
		if prev, dup := byIndex[idx]; dup {
			notes = append(notes, fmt.Sprintf("shard %d reported twice (%s and %s): the last one counts", idx, prev.Name, in.Name))
		}
		byIndex[idx] = in
	}
	// The reports that count, in input order.
	var kept []*Input
	taken := map[int]bool{}
	for i, in := range inputs {
		if idx := index(i, in); byIndex[idx] == in && !taken[idx] {
			taken[idx] = true
			kept = append(kept, in)
		}
	}
	if err := checkOverlap(kept); err != nil {
		return nil, err
	}
	if !sharded && len(kept) > 1 && first.Window == nil {
		notes = append(notes, "these reports name no window (a file or capture source): whether they are disjoint parts of one whole cannot be checked; they are added up as given")
	}

	var origin time.Time
	for _, in := range byIndex {
		if o := in.State.Origin; !o.IsZero() && (origin.IsZero() || o.Before(origin)) {
			origin = o
		}
	}
	rec := stats.New(stats.Config{Origin: origin})
	counters := map[string]int64{}
	var diff *compare.DiffSummary
	var problems []string
	var rows []ShardRow
	window := first.Window
	switch {
	case sharded && first.Shard.Window != nil:
		window = first.Shard.Window
	case !sharded:
		var gaps []string
		window, gaps = unionWindow(kept)
		notes = append(notes, gaps...)
	}
	if sharded {
		notes = append(notes, postponedNote(kept)...)
		for _, x := range kept {
			if x.Shard.T0Note != "" {
				notes = append(notes, fmt.Sprintf("shard %d: %s", x.Shard.Index, x.Shard.T0Note))
			}
		}
	}
	var plan []shard.Assignment
	if sharded && window != nil {
		plan = shard.Plan(*window, count)
	}
	partial, interrupted := false, false // partial: a report missing or of a failed job
	notSentFails := false                // a part's requests not sent, with on-loss fail
	for idx := range count {
		in, ok := byIndex[idx]
		if !ok {
			row := ShardRow{Index: idx, State: "missing"}
			what := "its part of the window"
			if plan != nil {
				row.Parts = partsText(plan[idx].Parts)
				what = "its part of the window (" + row.Parts + ")"
			}
			problems = append(problems, fmt.Sprintf("shard %d never reported: %s is missing from these totals", idx, what))
			rows = append(rows, row)
			partial = true
			continue
		}
		r, err := stats.FromState(*in.State, stats.Config{})
		if err != nil {
			return nil, fmt.Errorf("merge: %s: %w", in.Name, err)
		}
		rec.Merge(r)
		for k, v := range in.Counters {
			AddCounter(counters, k, v)
		}
		if in.Diff != nil {
			diff = mergeDiff(diff, in.Diff)
		}
		s := r.Summary()
		row := ShardRow{Index: idx, Sent: s.Sent, Errors: s.Errors, Rate: s.Achieved, P99: stats.MS(s.Latency.P99), State: "ok", Parts: "whole window"}
		if in.Shard != nil {
			row.Host, row.Parts, row.SkewMS = in.Shard.Host, partsText(in.Shard.Parts), in.Shard.SkewMS
		} else if in.Window != nil {
			row.Parts = partsText(coverage(in))
		}
		// An unsharded report is named by its input: its index is only
		// its place among them, no shard of a run.
		who := fmt.Sprintf("shard %d", idx)
		if !sharded {
			who = in.Name
		}
		switch {
		case in.Error != "":
			row.State = "failed: " + in.Error
			problems = append(problems, fmt.Sprintf("%s failed: %s", who, in.Error))
			partial = true
		case in.Interrupted:
			row.State = "interrupted"
			problems = append(problems, fmt.Sprintf("%s was interrupted: it sent only part of its share", who))
		case len(in.NotSent) > 0 && in.OnLoss != "warn":
			row.State = "requests not sent"
		}
		notSentFails = notSentFails || len(in.NotSent) > 0 && in.OnLoss != "warn"
		interrupted = interrupted || in.Interrupted
		rows = append(rows, row)
	}

	label := func(in *Input) string {
		if in.Shard != nil {
			return fmt.Sprintf("shard %d", in.Shard.Index)
		}
		return in.Name
	}
	bd, err := mergeBreakdowns(kept, label)
	if err != nil {
		return nil, err
	}
	sum := rec.Summary()
	rep := sum.Report(first.Job)
	rep.Scenario = first.Scenario
	rep.Counters = counters
	if window != nil {
		rep.Window = window
	}
	rep.SourceGaps = unionLines(kept, label, func(in *Input) []string { return in.SourceGaps })
	rep.NotSent = unionLines(kept, label, func(in *Input) []string { return in.NotSent })
	rep.Interrupted = interrupted
	if diff != nil {
		rep.Diff = diff
	}
	state := rec.State()
	rep.State = &state
	m := &Merged{Summary: sum, Notes: notes}
	env := summaryEnv(sum, diff)
	bd.env(&env)
	for _, a := range firstAssertions(inputs) {
		if partial {
			// The totals miss part of the window: a verdict on them would
			// mislead ("ok errors.rate < 0.01" of a run that sent nothing).
			rep.Assertions = append(rep.Assertions, stats.ReportAssertion{Expr: a.Expr, Detail: notEvaluated})
			continue
		}
		if a.Unmergeable != "" {
			// Its text has the secret as written: evaluated, it would
			// read "${API_TOKEN}" as the text it is.
			detail := "not evaluated: " + a.Unmergeable + "; a report holds no secret's value, so a merge cannot evaluate it"
			rep.Assertions = append(rep.Assertions, stats.ReportAssertion{Expr: a.Expr, Detail: detail, Unmergeable: a.Unmergeable})
			m.Failed = append(m.Failed, fmt.Sprintf("job %s (merged): %s%s", first.Job, a.Expr, inParens(detail)))
			continue
		}
		ok, detail := evalAssert(a.Expr, env, bd.unmerged)
		rep.Assertions = append(rep.Assertions, stats.ReportAssertion{Expr: a.Expr, OK: ok, Detail: detail})
		if !ok {
			m.Failed = append(m.Failed, fmt.Sprintf("job %s (merged): %s%s", first.Job, a.Expr, inParens(detail)))
		}
	}
	if len(problems) > 0 {
		rep.Error = "incomplete: " + strings.Join(problems, "; ")
	}
	m.JSON = MergedReport{Report: rep, RunID: runID, Complete: len(problems) == 0, Problems: problems, NotSentFails: notSentFails, Shards: rows}
	m.JSON.Protocols, m.JSON.GRPC = bd.report()
	return m, nil
}

// notEvaluated is the verdict of every assertion of a merge that misses
// part of the window (a shard missing or failed).
const notEvaluated = "not evaluated: the merge misses part of the window (a shard failed or never reported)"

// windowOf is the whole window in replayed (part of): its run's window
// for a shard's report, else the report's window; nil when the report
// names none (a file or capture source, or a shard's report of an older
// replayctl).
func windowOf(in *Input) *catalog.Window {
	if in.Shard != nil {
		return in.Shard.Window
	}
	return in.Window
}

// describeWindow names w for the errors of a merge.
func describeWindow(w *catalog.Window) string {
	if w == nil {
		return "no window (a file or capture source)"
	}
	s := fmt.Sprintf("window %q (topic %s", w.Name, w.Topic)
	if w.RecordingID != "" {
		s += ", recording " + w.RecordingID
	}
	return s + ")"
}

// sameWindow checks that in replayed (part of) the window first did: one
// name, topic and recording. (Shards' windows also have one fingerprint,
// checked by Merge.)
func sameWindow(first, in *Input) error {
	a, b := windowOf(first), windowOf(in)
	if first.Shard != nil && (a == nil || b == nil) {
		return nil // an older shard's report: its fingerprint says enough
	}
	if a == nil && b == nil {
		return nil
	}
	if a == nil || b == nil || a.Name != b.Name || a.Topic != b.Topic || a.RecordingID != b.RecordingID {
		return fmt.Errorf("merge: %s replayed %s, %s %s: reports of different windows are not parts of one whole; merge the shards of one run, or disjoint parts of one window",
			first.Name, describeWindow(a), in.Name, describeWindow(b))
	}
	return nil
}

// coverage is what in replayed of its window: a shard's parts, or every
// partition of an unsharded report's window (none without a window).
func coverage(in *Input) []shard.Part {
	if in.Shard != nil {
		return in.Shard.Parts
	}
	if in.Window == nil {
		return nil
	}
	var out []shard.Part
	for _, p := range in.Window.SortedPartitions() {
		if r := in.Window.Partitions[p]; r.Len() > 0 {
			out = append(out, shard.Part{Partition: p, Range: r, Buckets: 1})
		}
	}
	return out
}

// common returns what parts a and b both cover (ok false: nothing): the
// offsets of one partition both ranges hold, unless both keep different
// key buckets of it (into as many buckets).
func common(a, b shard.Part) (shard.Part, bool) {
	start, end := max(a.Range.Start, b.Range.Start), min(a.Range.End, b.Range.End)
	if a.Partition != b.Partition || start >= end {
		return shard.Part{}, false
	}
	c := shard.Part{Partition: a.Partition, Range: catalog.Range{Start: start, End: end}, Buckets: 1}
	if !a.Whole() && !b.Whole() && a.Buckets == b.Buckets {
		if a.Bucket != b.Bucket {
			return shard.Part{}, false
		}
		c.Bucket, c.Buckets = a.Bucket, a.Buckets
	}
	return c, true
}

// checkOverlap refuses reports that replayed some part of the window
// twice: those requests would count twice.
func checkOverlap(kept []*Input) error {
	covers := make([][]shard.Part, len(kept))
	for i, in := range kept {
		covers[i] = coverage(in)
	}
	for i := range kept {
		for j := i + 1; j < len(kept); j++ {
			for _, a := range covers[i] {
				for _, b := range covers[j] {
					if c, ok := common(a, b); ok {
						return fmt.Errorf("merge: %s and %s both replayed %s of %s: parts that overlap would count those requests twice; merge the shards of one run, or disjoint parts of one window, each once",
							kept[i].Name, kept[j].Name, c, describeWindow(windowOf(kept[i])))
					}
				}
			}
		}
	}
	return nil
}

// unionWindow is the window unsharded reports replayed disjoint parts of:
// their windows' partition ranges joined, counts added. A partition whose
// parts leave a gap gets the range spanning them, and a note says which
// offsets no report replayed.
func unionWindow(kept []*Input) (*catalog.Window, []string) {
	if len(kept) == 0 || kept[0].Window == nil {
		return nil, nil
	}
	if len(kept) == 1 {
		return kept[0].Window, nil
	}
	w := *kept[0].Window
	w.Partitions = map[int32]catalog.Range{}
	w.Messages, w.Requests, w.Responses = 0, 0, 0
	ranges := map[int32][]catalog.Range{}
	for _, in := range kept {
		for p, r := range in.Window.Partitions {
			if _, ok := w.Partitions[p]; !ok {
				w.Partitions[p] = r
			}
			if r.Len() > 0 {
				ranges[p] = append(ranges[p], r)
			}
		}
		w.Messages += in.Window.Messages
		w.Requests += in.Window.Requests
		w.Responses += in.Window.Responses
	}
	var notes []string
	for _, p := range slices.Sorted(maps.Keys(ranges)) {
		rs := ranges[p]
		slices.SortFunc(rs, func(a, b catalog.Range) int { return cmp.Compare(a.Start, b.Start) })
		span := rs[0]
		for _, r := range rs[1:] {
			if r.Start > span.End {
				notes = append(notes, fmt.Sprintf("no report replayed offsets [%d,%d) of partition %d: the merged window spans them, its totals do not", span.End, r.Start, p))
			}
			span.End = max(span.End, r.End)
		}
		w.Partitions[p] = span
	}
	return &w, notes
}

// unionLines joins the reports' lines (source_gaps, not_sent): a line
// every report has once, one only some have prefixed with its report's
// label.
func unionLines(kept []*Input, label func(*Input) string, lines func(*Input) []string) []string {
	has := map[string]int{}
	for _, in := range kept {
		for _, l := range slices.Compact(slices.Sorted(slices.Values(lines(in)))) {
			has[l]++
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, in := range kept {
		for _, l := range lines(in) {
			if has[l] < len(kept) {
				l = label(in) + ": " + l
			}
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}

// identity tells one report from another: the job; for a shard's report,
// its run, index and arming instant (one attempt at that shard); and the
// wall-clock instants (ns) of the first request sent, the last one sent and
// the last response, with the count of requests. Two different replays
// never share all of these, so two inputs with one identity are one report
// given twice (the same file, or a copy of it).
type identity struct {
	job, run                  string
	index                     int
	armed                     int64
	first, lastStart, lastEnd int64
	sent                      int64
}

// reportIdentity returns in's identity; ok is false when nothing tells it
// apart from another report: an unsharded report that sent nothing (it adds
// no request to the merge either).
func reportIdentity(in *Input) (id identity, ok bool) {
	id = identity{job: in.Job, index: -1}
	if st := in.State; st != nil {
		id.first, id.lastStart, id.lastEnd, id.sent = unixNano(st.FirstStart), unixNano(st.LastStart), unixNano(st.LastEnd), st.Sent
	}
	if s := in.Shard; s != nil {
		id.run, id.index, id.armed = s.RunID, s.Index, unixNano(s.ArmedAt)
	}
	return id, id.first != 0 || id.armed != 0
}

// unixNano is t in ns since the epoch, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// describe says which report id is, for the error of one given twice.
func (id identity) describe() string {
	var parts []string
	if id.index >= 0 {
		parts = append(parts, fmt.Sprintf("shard %d of run %q", id.index, id.run))
		if id.armed != 0 {
			parts = append(parts, "armed at "+time.Unix(0, id.armed).UTC().Format(time.RFC3339Nano))
		}
	} else {
		parts = append(parts, fmt.Sprintf("job %q", id.job))
	}
	if id.first != 0 {
		parts = append(parts, fmt.Sprintf("%d request(s), the first sent at %s", id.sent, time.Unix(0, id.first).UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(parts, ", ")
}

// firstAssertions returns the assertions of the first report that has any.
func firstAssertions(inputs []*Input) []stats.ReportAssertion {
	for _, in := range inputs {
		if len(in.Assertions) > 0 {
			return in.Assertions
		}
	}
	return nil
}

func partsText(ps []shard.Part) string {
	if len(ps) == 0 {
		return "nothing"
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, " ")
}

// mergeDiff adds b to a. Counts add exactly; an endpoint's top fields add
// the counts each shard listed (a field below one shard's top list is not
// counted there); examples are kept up to compare.MaxExamples.
func mergeDiff(a, b *compare.DiffSummary) *compare.DiffSummary {
	if a == nil {
		a = &compare.DiffSummary{}
	}
	a.Compared += b.Compared
	a.Mismatches += b.Mismatches
	a.NoiseDiffs += b.NoiseDiffs
	a.Rate = ratio(a.Mismatches, a.Compared)
	fields := map[string]bool{}
	for _, f := range append(a.NoiseFields, b.NoiseFields...) {
		fields[f] = true
	}
	a.NoiseFields = slices.Sorted(maps.Keys(fields))
	at := map[string]int{}
	for i, e := range a.Endpoints {
		at[e.Endpoint] = i
	}
	for _, e := range b.Endpoints {
		i, ok := at[e.Endpoint]
		if !ok {
			e.TopFields = slices.Clone(e.TopFields)
			e.Examples = slices.Clone(e.Examples)
			at[e.Endpoint] = len(a.Endpoints)
			a.Endpoints = append(a.Endpoints, e)
			continue
		}
		x := &a.Endpoints[i]
		x.Requests += e.Requests
		x.Mismatches += e.Mismatches
		x.NoiseDiffs += e.NoiseDiffs
		x.Rate = ratio(x.Mismatches, x.Requests)
		counts := map[string]int64{}
		for _, f := range append(x.TopFields, e.TopFields...) {
			counts[f.Field] += f.Count
		}
		x.TopFields = x.TopFields[:0]
		for f, c := range counts {
			x.TopFields = append(x.TopFields, compare.FieldCount{Field: f, Count: c})
		}
		slices.SortFunc(x.TopFields, func(p, q compare.FieldCount) int {
			return cmp.Or(cmp.Compare(q.Count, p.Count), cmp.Compare(p.Field, q.Field))
		})
		x.TopFields = x.TopFields[:min(len(x.TopFields), compare.MaxTopFields)]
		x.Examples = append(x.Examples, e.Examples...)
		x.Examples = x.Examples[:min(len(x.Examples), compare.MaxExamples)]
	}
	slices.SortFunc(a.Endpoints, func(p, q compare.EndpointSummary) int {
		return cmp.Or(cmp.Compare(q.Mismatches, p.Mismatches), cmp.Compare(p.Endpoint, q.Endpoint))
	})
	return a
}

// summaryEnv is the assert environment of a merged summary.
func summaryEnv(s stats.Summary, d *compare.DiffSummary) exprenv.Summary {
	env := exprenv.Summary{
		Requests: exprenv.Requests{Sent: int(s.Sent), OK: int(s.OK), Errors: int(s.Errors)},
		Errors:   exprenv.Errors{Count: int(s.Errors), Rate: ratio(s.Errors, s.Sent)},
		Status:   map[int]int{},
		Latency: exprenv.Latency{P50: s.Latency.P50, P90: s.Latency.P90, P99: s.Latency.P99, P999: s.Latency.P999,
			Max: s.Latency.Max, Mean: s.Latency.Mean},
		Rate:     exprenv.Rates{Scheduled: s.Scheduled, Achieved: s.Achieved},
		Lateness: exprenv.Lateness{P50: s.Lateness.P50, P99: s.Lateness.P99, Max: s.Lateness.Max},
		Duration: s.Duration,
	}
	for k, v := range s.Status {
		env.Status[k] = int(v)
	}
	if d != nil {
		env.Diff = exprenv.Diff{Compared: int(d.Compared), Mismatches: int(d.Mismatches), Rate: d.Rate}
	}
	return env
}

// evalAssert compiles and runs an assert expression on env and says what
// it read, as a run does ("latency.p99 = 312ms, want < 250ms"). An
// expression that reads a member of unmerged (the summary's name → why
// the merge has no exact value of it) is not evaluated and fails, saying
// why: it would read a zero.
func evalAssert(src string, env exprenv.Summary, unmerged map[string]string) (bool, string) {
	p, err := expr.Compile(src, append(exprenv.SummaryOptions(), expr.AsBool())...)
	if err != nil {
		return false, "error: " + err.Error()
	}
	for _, name := range slices.Sorted(maps.Keys(unmerged)) {
		if why := unmerged[name]; why != "" && exprenv.Reads(p, name) {
			return false, fmt.Sprintf("not evaluated: it reads %s[…], which the merge cannot add up exactly: %s", name, why)
		}
	}
	out, err := expr.Run(p, env)
	if err != nil {
		return false, "error: " + err.Error()
	}
	ok, isBool := out.(bool)
	if !isBool {
		return false, fmt.Sprintf("result %v is not a bool", out)
	}
	return ok, exprenv.Explain(p, env)
}

// inParens is an assertion's detail as the summary prints it after the
// expression.
func inParens(detail string) string {
	if detail == "" {
		return ""
	}
	return "  (" + detail + ")"
}

// HTMLData returns the merged report as the HTML report's data.
func (m *Merged) HTMLData() Data {
	j, s := m.JSON, m.Summary
	d := Data{
		Job: j.Job + " (merged)", Scenario: j.Scenario, GeneratedAt: time.Now().UTC(), DurationS: s.Duration.Seconds(),
		RunID: j.RunID, Shards: j.Shards, Problems: j.Problems, Interrupted: j.Interrupted,
		SourceGaps: j.SourceGaps, NotSent: j.NotSent, NotSentFails: j.NotSentFails, Breakdown: BreakdownRows(j.Protocols, j.GRPC),
	}
	d.SetFigures(s)
	if diff, ok := j.Diff.(*compare.DiffSummary); ok {
		d.Diff = diff
	}
	if w, ok := j.Window.(*catalog.Window); ok {
		rw := &Window{Name: w.Name, Topic: w.Topic, Partitions: map[int32]Range{}}
		for p, r := range w.Partitions {
			rw.Partitions[p] = Range{Start: r.Start, End: r.End}
		}
		d.Window = rw
	}
	for _, a := range j.Assertions {
		d.Assertions = append(d.Assertions, Assertion{Expr: a.Expr, OK: a.OK, Detail: a.Detail})
	}
	return d
}

// WriteText prints the merged summary: totals, one line per shard, the
// problems and the assertions.
func (m *Merged) WriteText(w io.Writer) {
	j, s := m.JSON, m.Summary
	state := "complete"
	switch {
	case !j.Complete:
		state = "INCOMPLETE"
	case len(j.SourceGaps) > 0:
		state = "complete (PARTIAL window)"
	}
	if j.Complete && j.NotSentFails {
		state += ", REQUESTS NOT SENT"
	}
	fmt.Fprintf(w, "\njob %s merged from %d shard(s)", j.Job, len(j.Shards))
	if j.RunID != "" {
		fmt.Fprintf(w, " of run %s", j.RunID)
	}
	fmt.Fprintf(w, ": %s\n", state)
	for _, p := range j.Problems {
		fmt.Fprintf(w, "  !! %s\n", p)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, g := range j.SourceGaps {
		fmt.Fprintf(w, "  partial   %s\n", g)
	}
	for _, n := range j.NotSent {
		fmt.Fprintf(w, "  not sent  %s\n", n)
	}
	fmt.Fprintf(w, "  requests  sent %d  ok %d  errors %d\n", s.Sent, s.OK, s.Errors)
	if len(s.Status) > 0 {
		parts := make([]string, 0, len(s.Status))
		for _, c := range slices.Sorted(maps.Keys(s.Status)) {
			parts = append(parts, fmt.Sprintf("%d: %d", c, s.Status[c]))
		}
		fmt.Fprintf(w, "  status    %s\n", strings.Join(parts, "  "))
	}
	if len(s.ErrorClasses) > 0 {
		fmt.Fprintf(w, "  errors    %s\n", ErrorClassesText(s.ErrorClasses))
	}
	l := s.Latency
	fmt.Fprintf(w, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", stats.DurationText(l.P50), stats.DurationText(l.P90),
		stats.DurationText(l.P99), stats.DurationText(l.P999), stats.DurationText(l.Max))
	fmt.Fprintf(w, "  rate      scheduled %.1f/s  achieved %.1f/s\n", s.Scheduled, s.Achieved)
	fmt.Fprintf(w, "  lateness  p50 %s  p99 %s  max %s\n", stats.DurationText(s.Lateness.P50), stats.DurationText(s.Lateness.P99), stats.DurationText(s.Lateness.Max))
	for _, line := range BreakdownLines(j.Protocols, j.GRPC) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	if diff, ok := j.Diff.(*compare.DiffSummary); ok {
		for i, l := range DiffLines(diff) {
			label := ""
			if i == 0 {
				label = "diff"
			}
			fmt.Fprintf(w, "  %-10s%s\n", label, l)
		}
	}
	WriteCounters(w, j.Counters)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  shard\tsent\terrors\trate/s\tp99\tskew\tstate\tpart")
	for _, r := range j.Shards {
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\n", r.Index, r.Sent, r.Errors, r.Rate, stats.DurationText(stats.MSDuration(r.P99)), skewText(r), r.State, r.Parts)
	}
	_ = tw.Flush()
	if len(j.Assertions) > 0 {
		fmt.Fprintln(w, "  assertions (on the merged summary)")
		for _, a := range j.Assertions {
			mark := "ok  "
			switch {
			case a.Detail == notEvaluated:
				mark = "--  "
			case !a.OK:
				mark = "FAIL"
			}
			fmt.Fprintf(w, "    %s %s%s\n", mark, a.Expr, inParens(a.Detail))
		}
	}
}

// skewText writes a shard's start skew as the terminal writes durations.
func skewText(r ShardRow) string {
	if r.SkewMS == nil {
		return "–"
	}
	return stats.DurationText(stats.MSDuration(*r.SkewMS))
}

// postponedNote says, once, why the run did not start at its start-at (it
// had passed when the last shard armed, or came less than the start margin
// after it) and when the shards started instead.
func postponedNote(in []*Input) []string {
	for _, x := range in {
		if sh := x.Shard; sh != nil && !sh.PlannedStart.IsZero() && !sh.Start.IsZero() {
			return []string{fmt.Sprintf("%s: every shard started together at the last armed instant plus the start margin, %s, %s later",
				sh.PostponedWhy(sh.PlannedStart.UTC().Format(time.RFC3339Nano)), sh.Start.UTC().Format(time.RFC3339Nano), sh.Start.Sub(sh.PlannedStart).Round(time.Millisecond))}
		}
	}
	return nil
}
