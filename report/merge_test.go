package report

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/shard"
	"github.com/replayctl/replayctl/stats"
)

// shardInput makes shard i of n's report, with sent results of latency lat,
// through its JSON form.
func shardInput(t *testing.T, run string, i, n, sent int, lat time.Duration, mutate func(*stats.Report)) *Input {
	t.Helper()
	return reportInput(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), run, i, n, sent, lat, mutate)
}

// reportInput is shardInput for a run that started at start.
func reportInput(t *testing.T, start time.Time, run string, i, n, sent int, lat time.Duration, mutate func(*stats.Report)) *Input {
	t.Helper()
	w := catalog.Window{Topic: "t", Partitions: map[int32]catalog.Range{0: {Start: 0, End: 100}, 1: {Start: 0, End: 50}}}
	rec := stats.New(stats.Config{Origin: start})
	for k := range sent {
		at := start.Add(time.Duration(k) * time.Millisecond)
		rec.Record(stats.Result{Scheduled: at, Start: at, Latency: lat, Status: 200})
	}
	rep := rec.Summary().Report("replay")
	st := rec.State()
	rep.State = &st
	rep.Counters = map[string]int64{"source.messages": int64(sent)}
	rep.Assertions = []stats.ReportAssertion{{Expr: "requests.sent >= 30", OK: true}}
	rep.Diff = &compare.DiffSummary{Compared: int64(sent), Mismatches: 1, Endpoints: []compare.EndpointSummary{
		{Endpoint: "GET /a", Requests: int64(sent), Mismatches: 1, TopFields: []compare.FieldCount{{Field: "$.x", Count: 1}}}}}
	skew := 0.5
	rep.Shard = &shard.Info{RunID: run, Index: i, Count: n, Parts: shard.Plan(w, n)[i].Parts, Window: &w, Fingerprint: shard.Fingerprint(w), SkewMS: &skew}
	if mutate != nil {
		mutate(&rep)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInput("shard", data)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestMergeShards(t *testing.T) {
	ins := []*Input{shardInput(t, "r", 1, 3, 20, 2*time.Millisecond, nil), shardInput(t, "r", 0, 3, 10, time.Millisecond, nil),
		shardInput(t, "r", 2, 3, 5, 3*time.Millisecond, nil)}
	m, err := Merge(ins, "")
	if err != nil {
		t.Fatal(err)
	}
	j := m.JSON
	if !j.Complete || j.Requests.Sent != 35 || j.Counters["source.messages"] != 35 || len(j.Shards) != 3 || j.Shards[0].Sent != 10 || j.RunID != "r" {
		t.Fatalf("merged %+v", j)
	}
	if d := j.Diff.(*compare.DiffSummary); d.Compared != 35 || d.Mismatches != 3 || d.Endpoints[0].TopFields[0].Count != 3 {
		t.Fatalf("diff %+v", d)
	}
	if j.Assertions[0].OK != true || len(m.Failed) != 0 {
		t.Fatalf("assertions %+v", j.Assertions)
	}
	var buf bytes.Buffer
	m.WriteText(&buf)
	if err := WriteHTML(&buf, m.HTMLData()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Shards of run") {
		t.Fatal("no shard table")
	}
}

func TestMergeIncompleteAndFailed(t *testing.T) {
	ins := []*Input{
		shardInput(t, "r", 0, 3, 10, time.Millisecond, nil),
		shardInput(t, "r", 2, 3, 10, time.Millisecond, func(r *stats.Report) { r.Interrupted = true }),
	}
	m, err := Merge(ins, "r")
	if err != nil {
		t.Fatal(err)
	}
	j := m.JSON
	if j.Complete || len(j.Problems) != 2 || !strings.Contains(j.Problems[0], "shard 1 never reported: its part of the window (0:[0,100) key bucket 1/2)") ||
		!strings.Contains(j.Problems[1], "shard 2 was interrupted") || j.Shards[1].State != "missing" {
		t.Fatalf("problems %q shards %+v", j.Problems, j.Shards)
	}
	// A shard is missing: the assertion is not evaluated on the 20 requests
	// of the others.
	if len(m.Failed) != 0 || j.Assertions[0].OK || j.Assertions[0].Detail != notEvaluated {
		t.Fatalf("failed %v, assertions %+v", m.Failed, j.Assertions)
	}
	var out strings.Builder
	m.WriteText(&out)
	if !strings.Contains(out.String(), "    --   requests.sent >= 30  ("+notEvaluated+")") {
		t.Errorf("summary:\n%s", out.String())
	}

	// Every shard reported: the assertion fails on the merged 20 requests,
	// and says what it read.
	ins = []*Input{shardInput(t, "r", 0, 2, 10, time.Millisecond, nil), shardInput(t, "r", 1, 2, 10, time.Millisecond, nil)}
	if m, err = Merge(ins, "r"); err != nil {
		t.Fatal(err)
	}
	if len(m.Failed) != 1 || !strings.Contains(m.Failed[0], "(requests.sent = 20, want >= 30)") {
		t.Fatalf("failed %v", m.Failed)
	}
	if d := m.JSON.Assertions[0].Detail; d != "requests.sent = 20, want >= 30" {
		t.Errorf("the merged report's assertion detail is %q", d)
	}
	out.Reset()
	m.WriteText(&out)
	if !strings.Contains(out.String(), "FAIL requests.sent >= 30  (requests.sent = 20, want >= 30)") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestMergeRefusesMixedInputs(t *testing.T) {
	for name, ins := range map[string][]*Input{
		"runs":   {shardInput(t, "r", 0, 2, 1, 1, nil), shardInput(t, "q", 1, 2, 1, 1, nil)},
		"counts": {shardInput(t, "r", 0, 2, 1, 1, nil), shardInput(t, "r", 1, 3, 1, 1, nil)},
		"jobs":   {shardInput(t, "r", 0, 2, 1, 1, nil), shardInput(t, "r", 1, 2, 1, 1, func(r *stats.Report) { r.Job = "other" })},
	} {
		if _, err := Merge(ins, ""); err == nil {
			t.Errorf("%s: merged", name)
		}
	}
	if _, err := ParseInput("x", []byte(`{"job":"replay"}`)); err == nil || !strings.Contains(err.Error(), "no \"state\"") {
		t.Fatalf("a report without state: %v", err)
	}
	dup, err := Merge([]*Input{shardInput(t, "r", 0, 1, 1, 1, nil), shardInput(t, "r", 0, 1, 2, 1, nil)}, "")
	if err != nil || len(dup.Notes) != 1 || dup.JSON.Requests.Sent != 2 {
		t.Fatalf("duplicate: %v %+v", err, dup)
	}
}

// TestMergeNeverCountsAReportTwice: one report given twice (the same file,
// or a copy of it) is refused, naming both inputs, sharded or not; distinct
// reports merge: shards of one run, unsharded reports of one job without a
// window (added as given, with a note), two attempts at one shard (the last
// counts).
func TestMergeNeverCountsAReportTwice(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	unsharded := func(r *stats.Report) { r.Shard = nil }
	named := func(name string, in *Input) *Input {
		c := *in
		c.Name = name
		return &c
	}
	// reparsed is a copy of in's report, read back from its JSON.
	reparsed := func(name string, in *Input) *Input {
		data, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseInput(name, data)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	run := named("r.json", reportInput(t, t0, "", 0, 1, 200, time.Millisecond, unsharded))
	other := named("other.json", reportInput(t, t0.Add(time.Hour), "", 0, 1, 50, time.Millisecond, unsharded))
	s0 := named("shard-0.json", reportInput(t, t0, "r", 0, 2, 30, time.Millisecond, nil))
	s1 := named("shard-1.json", reportInput(t, t0, "r", 1, 2, 20, time.Millisecond, nil))
	armedAt := func(at time.Time) func(*stats.Report) {
		return func(r *stats.Report) { r.Shard.(*shard.Info).ArmedAt = at }
	}
	attempt1 := named("attempt-1.json", reportInput(t, t0, "r", 0, 2, 30, time.Millisecond, armedAt(t0)))
	attempt2 := named("attempt-2.json", reportInput(t, t0, "r", 0, 2, 30, time.Millisecond, armedAt(t0.Add(time.Second))))
	empty := func(name string) *Input { return named(name, reportInput(t, t0, "", 0, 1, 0, 0, unsharded)) }

	for _, tc := range []struct {
		name   string
		inputs []*Input
		// wantErr: the error says all of these; else the merge sent
		// wantSent, complete, with wantNotes notes.
		wantErr   []string
		wantSent  int64
		wantNotes int
	}{
		{name: "same report twice", inputs: []*Input{run, run},
			wantErr: []string{"r.json (input 1) and r.json (input 2) are one report given twice", `job "replay", 200 request(s), the first sent at 2026-01-01T00:00:00Z`, "it would count twice"}},
		{name: "a copy of a report", inputs: []*Input{run, reparsed("copy/r.json", run)},
			wantErr: []string{"r.json (input 1) and copy/r.json (input 2) are one report given twice"}},
		{name: "a report among others given twice", inputs: []*Input{run, other, reparsed("again.json", run)},
			wantErr: []string{"r.json (input 1) and again.json (input 3) are one report given twice"}},
		{name: "same shard's report twice", inputs: []*Input{s0, s1, reparsed("shard-0-copy.json", s0)},
			wantErr: []string{"shard-0.json (input 1) and shard-0-copy.json (input 3) are one report given twice", `shard 0 of run "r"`}},
		{name: "same attempt at a shard twice", inputs: []*Input{attempt1, s1, attempt1},
			wantErr: []string{"attempt-1.json (input 1) and attempt-1.json (input 3)", "armed at 2026-01-01T00:00:00Z"}},
		{name: "two shards of one run", inputs: []*Input{s0, s1}, wantSent: 50},
		{name: "two attempts at one shard: the last counts", inputs: []*Input{attempt1, s1, attempt2}, wantSent: 50, wantNotes: 1},
		{name: "one report", inputs: []*Input{run}, wantSent: 200},
		{name: "unsharded reports of two runs of one job", inputs: []*Input{run, other}, wantSent: 250, wantNotes: 1},
		{name: "reports that sent nothing", inputs: []*Input{empty("a.json"), empty("b.json"), run}, wantSent: 200, wantNotes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Merge(tc.inputs, "")
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("merged: sent %d, complete %t, notes %q", m.JSON.Requests.Sent, m.JSON.Complete, m.Notes)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the error lacks %q: %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j := m.JSON; j.Requests.Sent != tc.wantSent || m.Summary.Sent != tc.wantSent || !j.Complete || len(m.Notes) != tc.wantNotes {
				t.Fatalf("sent %d (summary %d), complete %t, notes %q; want sent %d, complete, %d note(s)", j.Requests.Sent, m.Summary.Sent, j.Complete, m.Notes, tc.wantSent, tc.wantNotes)
			}
		})
	}
}

func FuzzParseInput(f *testing.F) {
	f.Add([]byte(`{"job":"replay","state":{"version":1,"width_ns":1000000000,"latency":{"sub_bits":7},"lateness":{"sub_bits":7}}}`))
	f.Add([]byte(`{"job":"replay","shard":{"index":3,"count":2},"state":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput("fuzz", data)
		if err != nil {
			return
		}
		_, _ = Merge([]*Input{in}, "")
	})
}

func TestAddCounter(t *testing.T) {
	m := map[string]int64{}
	for _, c := range []struct {
		k string
		v int64
	}{{"source.messages", 3}, {"source.messages", 4}, {"source.out-of-order-max-ms", 90}, {"source.out-of-order-max-ms", 40},
		{"sink.connections-peak", 5}, {"sink.connections-peak", 7}, {"sink.max-connections", 100}, {"sink.max-connections", 100}} {
		AddCounter(m, c.k, c.v)
	}
	want := map[string]int64{"source.messages": 7, "source.out-of-order-max-ms": 90, "sink.connections-peak": 7, "sink.max-connections": 100}
	if !maps.Equal(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
}

// windowInput is an unsharded replay's report of window w (its name in
// the merge: name), started at start.
func windowInput(t *testing.T, name string, w *catalog.Window, start time.Time, sent int, mutate func(*stats.Report)) *Input {
	t.Helper()
	in := reportInput(t, start, "", 0, 1, sent, time.Millisecond, func(r *stats.Report) {
		r.Shard = nil
		if w != nil {
			r.Window = w
		}
		if mutate != nil {
			mutate(r)
		}
	})
	in.Name = name
	return in
}

// TestMergeRefusesWhatIsNotOneWhole: reports of different windows, of
// different runs, or whose parts overlap are refused (exit 2 at the CLI),
// naming both inputs; disjoint parts of one window merge.
func TestMergeRefusesWhatIsNotOneWhole(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	win := func(name, topic, rec string, parts map[int32]catalog.Range) *catalog.Window {
		return &catalog.Window{Name: name, Topic: topic, RecordingID: rec, Partitions: parts, Requests: 4000}
	}
	whole := map[int32]catalog.Range{0: {Start: 0, End: 4000}}
	small := win("small", "traffic", "rec-1", whole)
	full1 := win("full1", "traffic", "rec-2", map[int32]catalog.Range{0: {Start: 4000, End: 8000}})
	sharded := func(name, run string, i, n int, mutate func(*shard.Info)) *Input {
		in := reportInput(t, t0.Add(time.Duration(i)*time.Minute), run, i, n, 10, time.Millisecond, func(r *stats.Report) {
			if mutate != nil {
				mutate(r.Shard.(*shard.Info))
			}
		})
		in.Name = name
		return in
	}
	renamed := func(s *shard.Info) { w := *s.Window; w.Name = "other"; s.Window = &w }
	sameParts := func(s *shard.Info) { s.Parts = shard.Plan(*s.Window, s.Count)[0].Parts }

	for _, tc := range []struct {
		name    string
		inputs  []*Input
		wantErr []string
		// else: merged, complete, with this window and these requests
		wantSent   int64
		wantWindow map[int32]catalog.Range
		wantNotes  int
	}{
		{name: "two windows", inputs: []*Input{windowInput(t, "small.json", small, t0, 40, nil), windowInput(t, "full1.json", full1, t0.Add(time.Minute), 20, nil)},
			wantErr: []string{"small.json replayed window \"small\"", "full1.json window \"full1\"", "different windows"}},
		{name: "one window's name, another recording", inputs: []*Input{windowInput(t, "a.json", small, t0, 40, nil),
			windowInput(t, "b.json", win("small", "traffic", "rec-9", whole), t0.Add(time.Minute), 40, nil)},
			wantErr: []string{"a.json", "b.json", "recording rec-9", "different windows"}},
		{name: "one window's name, another topic", inputs: []*Input{windowInput(t, "a.json", small, t0, 40, nil),
			windowInput(t, "b.json", win("small", "other", "rec-1", whole), t0.Add(time.Minute), 40, nil)},
			wantErr: []string{"a.json", "b.json", "topic other", "different windows"}},
		{name: "a window and a file source", inputs: []*Input{windowInput(t, "a.json", small, t0, 40, nil), windowInput(t, "gor.json", nil, t0.Add(time.Minute), 40, nil)},
			wantErr: []string{"a.json", "gor.json", "no window", "different windows"}},
		{name: "one window replayed twice", inputs: []*Input{windowInput(t, "a.json", small, t0, 40, nil), windowInput(t, "c.json", small, t0.Add(time.Minute), 40, nil)},
			wantErr: []string{"a.json and c.json both replayed 0:[0,4000) of window \"small\"", "count those requests twice"}},
		{name: "overlapping ranges", inputs: []*Input{
			windowInput(t, "a.json", win("w", "traffic", "", map[int32]catalog.Range{0: {Start: 0, End: 100}, 1: {Start: 0, End: 100}}), t0, 40, nil),
			windowInput(t, "b.json", win("w", "traffic", "", map[int32]catalog.Range{1: {Start: 99, End: 200}}), t0.Add(time.Minute), 40, nil)},
			wantErr: []string{"a.json and b.json both replayed 1:[99,100)"}},
		{name: "shards of different runs", inputs: []*Input{sharded("s0.json", "r", 0, 2, nil), sharded("s1.json", "q", 1, 2, nil)},
			wantErr: []string{"s1.json", `run "q"`, `run "r"`}},
		{name: "shards of windows of different names", inputs: []*Input{sharded("s0.json", "r", 0, 2, nil), sharded("s1.json", "r", 1, 2, renamed)},
			wantErr: []string{"s0.json", "s1.json", `window "other"`, "different windows"}},
		{name: "shards whose parts overlap", inputs: []*Input{sharded("s0.json", "r", 0, 2, nil), sharded("s1.json", "r", 1, 2, sameParts)},
			wantErr: []string{"s0.json and s1.json both replayed 0:[0,100)"}},
		{name: "disjoint parts of one window", inputs: []*Input{
			windowInput(t, "p0.json", win("w", "traffic", "", map[int32]catalog.Range{0: {Start: 0, End: 100}}), t0, 40, nil),
			windowInput(t, "p1.json", win("w", "traffic", "", map[int32]catalog.Range{1: {Start: 0, End: 100}, 0: {Start: 100, End: 100}}), t0.Add(time.Minute), 20, nil)},
			wantSent: 60, wantWindow: map[int32]catalog.Range{0: {Start: 0, End: 100}, 1: {Start: 0, End: 100}}},
		{name: "one window's report", inputs: []*Input{windowInput(t, "a.json", small, t0, 40, nil)}, wantSent: 40, wantWindow: whole},
		{name: "file sources: not checked, said so", inputs: []*Input{windowInput(t, "a.json", nil, t0, 40, nil), windowInput(t, "b.json", nil, t0.Add(time.Minute), 40, nil)},
			wantSent: 80, wantNotes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Merge(tc.inputs, "")
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("merged: sent %d, complete %t, window %v", m.JSON.Requests.Sent, m.JSON.Complete, m.JSON.Window)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the error lacks %q: %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			j := m.JSON
			if j.Requests.Sent != tc.wantSent || !j.Complete || len(m.Notes) != tc.wantNotes {
				t.Fatalf("sent %d, complete %t, notes %q; want %d, complete, %d note(s)", j.Requests.Sent, j.Complete, m.Notes, tc.wantSent, tc.wantNotes)
			}
			if tc.wantWindow != nil {
				w, ok := j.Window.(*catalog.Window)
				if !ok || !maps.Equal(w.Partitions, tc.wantWindow) {
					t.Fatalf("window %+v, want partitions %v", j.Window, tc.wantWindow)
				}
			}
		})
	}
}

// TestMergeKeepsSourceGapsAndNotSent: the merged report keeps what the
// window lacks (source_gaps) and what was not sent (not_sent): lines every
// shard has once, the others with their shard; the summary prints them.
func TestMergeKeepsSourceGapsAndNotSent(t *testing.T) {
	gap := "saved partial: its recording lost 12 (spool-full 12)"
	ins := []*Input{
		shardInput(t, "r", 0, 2, 10, time.Millisecond, func(r *stats.Report) {
			r.SourceGaps = []string{gap}
			r.NotSent = []string{"3 request(s) not sent: their bodies were cut when recorded"}
		}),
		shardInput(t, "r", 1, 2, 10, time.Millisecond, func(r *stats.Report) { r.SourceGaps = []string{gap} }),
	}
	m, err := Merge(ins, "")
	if err != nil {
		t.Fatal(err)
	}
	j := m.JSON
	if !slices.Equal(j.SourceGaps, []string{gap}) || !slices.Equal(j.NotSent, []string{"shard 0: 3 request(s) not sent: their bodies were cut when recorded"}) {
		t.Fatalf("source_gaps %q, not_sent %q", j.SourceGaps, j.NotSent)
	}
	data, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"source_gaps":["saved partial`) || !strings.Contains(string(data), `"not_sent":["shard 0: 3 request(s)`) {
		t.Fatalf("merged JSON: %s", data)
	}
	var out strings.Builder
	m.WriteText(&out)
	for _, want := range []string{": complete (PARTIAL window), REQUESTS NOT SENT", "  partial   " + gap + "\n", "  not sent  shard 0: 3 request(s) not sent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	// The merged HTML report says it too (report merge --html, and the
	// job report serve and its web UI show).
	var html bytes.Buffer
	if err := WriteHTML(&html, m.HTMLData()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Partial window", "<li>" + gap + "</li>", "<li>shard 0: 3 request(s) not sent: their bodies were cut when recorded</li>"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("the merged HTML report lacks %q", want)
		}
	}
}

// TestMergeVerdictsNeedTheWholeRun: with a shard missing or failed the
// merged totals miss part of the window, so the assertions are not
// evaluated (none fails, none holds), as for one failed job; an
// interrupted shard makes the merged report interrupted.
func TestMergeVerdictsNeedTheWholeRun(t *testing.T) {
	failed := func(r *stats.Report) { r.Error = "shards 1, 2 not armed after 2s" }
	for _, tc := range []struct {
		name            string
		inputs          []*Input
		wantEvaluated   bool
		wantInterrupted bool
	}{
		{name: "a shard missing", inputs: []*Input{shardInput(t, "r", 0, 2, 40, time.Millisecond, nil)}},
		{name: "a shard failed", inputs: []*Input{shardInput(t, "r", 0, 2, 40, time.Millisecond, nil), shardInput(t, "r", 1, 2, 0, 0, failed)}},
		{name: "the only shard that reported failed, having sent nothing", inputs: []*Input{shardInput(t, "r", 0, 3, 0, 0, failed)}},
		{name: "a shard interrupted", inputs: []*Input{shardInput(t, "r", 0, 2, 40, time.Millisecond, nil),
			shardInput(t, "r", 1, 2, 10, time.Millisecond, func(r *stats.Report) { r.Interrupted = true })},
			wantEvaluated: true, wantInterrupted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Merge(tc.inputs, "")
			if err != nil {
				t.Fatal(err)
			}
			j := m.JSON
			if j.Complete || j.Interrupted != tc.wantInterrupted {
				t.Fatalf("complete %t, interrupted %t; want incomplete, interrupted %t", j.Complete, j.Interrupted, tc.wantInterrupted)
			}
			var out strings.Builder
			m.WriteText(&out)
			if len(j.Assertions) != 1 {
				t.Fatalf("assertions %+v", j.Assertions)
			}
			a := j.Assertions[0]
			notEvaluated := !a.OK && strings.HasPrefix(a.Detail, "not evaluated") && len(m.Failed) == 0 &&
				strings.Contains(out.String(), "    --   requests.sent >= 30  (not evaluated")
			if notEvaluated == tc.wantEvaluated {
				t.Fatalf("assertion %+v, failed %q, want evaluated %t; summary:\n%s", a, m.Failed, tc.wantEvaluated, out.String())
			}
			if !tc.wantEvaluated && strings.Contains(out.String(), "ok   requests.sent") {
				t.Fatalf("a verdict on part of the run:\n%s", out.String())
			}
			var h bytes.Buffer
			if err := WriteHTML(&h, m.HTMLData()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMergeSummaryHasStatus: the merged summary has the status line of a
// run's summary (status code: count, by code).
func TestMergeSummaryHasStatus(t *testing.T) {
	ins := []*Input{shardInput(t, "r", 0, 2, 10, time.Millisecond, nil), shardInput(t, "r", 1, 2, 5, time.Millisecond, nil)}
	m, err := Merge(ins, "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	m.WriteText(&out)
	if !strings.Contains(out.String(), "\n  requests  sent 15  ok 15  errors 0\n  status    200: 15\n") {
		t.Fatalf("summary:\n%s", out.String())
	}
	// Several codes, in order, as a run prints them.
	rec := stats.New(stats.Config{})
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, code := range []int{503, 200, 200, 404} {
		rec.Record(stats.Result{Scheduled: at.Add(time.Duration(i)), Start: at.Add(time.Duration(i)), Latency: time.Millisecond, Status: code})
	}
	st := rec.State()
	r := rec.Summary().Report("replay")
	r.State = &st
	data, _ := json.Marshal(r)
	in, err := ParseInput("x.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = Merge([]*Input{in}, ""); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	m.WriteText(&out)
	if !strings.Contains(out.String(), "\n  status    200: 2  404: 1  503: 1\n") {
		t.Fatalf("summary:\n%s", out.String())
	}
}

// TestParseInputRefusesARecordJobsReport: a record job's report is named
// as such, not a raw JSON error.
func TestParseInputRefusesARecordJobsReport(t *testing.T) {
	for name, data := range map[string]string{
		"record":              `{"job":"record","requests":2000,"responses":2000,"written":4000,"failed":0,"sink":"kafka topic t","lost":{"total":0},"window":{"name":"full1","topic":"t","partitions":{"0":{"start":0,"end":4000}}},"counters":{},"duration_ms":12,"interrupted":false}`,
		"record, no requests": `{"job":"record","requests":0,"responses":0,"written":0,"failed":0,"sink":"kafka topic t","lost":{"total":0},"counters":{},"interrupted":false}`,
	} {
		_, err := ParseInput("full1.json", []byte(data))
		if err == nil || err.Error() != "full1.json is a record job's report; report merge takes replay reports" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseInput("x.json", []byte(`[1]`)); err == nil || !strings.Contains(err.Error(), "x.json: not a JSON report") {
		t.Errorf("an array: %v", err)
	}
}

// TestMergeNamesUnshardedProblemsByInput: an unsharded report that failed
// or was interrupted is named by its input, not as a "shard" of a run that
// has none.
func TestMergeNamesUnshardedProblemsByInput(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := func(start, end int64) *catalog.Window {
		return &catalog.Window{Name: "w", Topic: "traffic", RecordingID: "rec", Partitions: map[int32]catalog.Range{0: {Start: start, End: end}}}
	}
	a := windowInput(t, "a.json", w(0, 100), t0, 10, nil)
	b := windowInput(t, "b.json", w(100, 200), t0.Add(time.Minute), 10, func(r *stats.Report) { r.Error = "target down" })
	c := windowInput(t, "c.json", w(200, 300), t0.Add(2*time.Minute), 10, func(r *stats.Report) { r.Interrupted = true })
	m, err := Merge([]*Input{a, b, c}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b.json failed: target down", "c.json was interrupted: it sent only part of its share"}
	if !slices.Equal(m.JSON.Problems, want) {
		t.Fatalf("problems %q, want %q", m.JSON.Problems, want)
	}
}

// TestMergeSummarySaysWhyAndWhatWasLeftOut: the merged summary says what
// each shard's summary says of errors, differences and counters, added up:
// the classes of the errors, the diff figures, and the counters (requests
// filtered, retried), so a merge does not drop the why of its numbers.
func TestMergeSummarySaysWhyAndWhatWasLeftOut(t *testing.T) {
	shardWith := func(i int, classes map[string]int64, filtered, retries int64) *Input {
		return reportInput(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "r", i, 2, 10, time.Millisecond, func(r *stats.Report) {
			var errs int64
			for _, n := range classes {
				errs += n
			}
			r.Requests.Errors += errs
			r.Requests.Sent += errs
			r.ErrorClasses = classes
			r.State.Sent += errs
			r.State.Errors += errs
			r.State.ErrorClasses = classes
			r.Counters["filtered"] = filtered
			r.Counters["sink.retries"] = retries
		})
	}
	ins := []*Input{
		shardWith(0, map[string]int64{"timeout": 3}, 4, 1),
		shardWith(1, map[string]int64{"timeout": 2, "reset": 5}, 6, 0),
	}
	m, err := Merge(ins, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	m.WriteText(&b)
	out := b.String()
	for _, want := range []string{
		"\n  requests  sent 30  ok 20  errors 10\n",
		"\n  errors    reset: 5  timeout: 5\n",
		"\n  diff      compared 20  mismatches 2 (10.00%)  noise fields 0\n",
		"GET /a: 2 of 20 differ: $.x (2)\n",
		" filtered=10 ",
		" sink.retries=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("merged summary lacks %q:\n%s", want, out)
		}
	}
}

// TestMergeFailsOnRequestsNotSent: a part that did not send some of its
// requests, with on-loss fail (the default, and a report without on_loss),
// fails the merge as it failed its run: the state says REQUESTS NOT SENT,
// the shard's row says so, the HTML verdict fails. With on-loss warn it
// does not. The merge said complete and exited 0.
func TestMergeFailsOnRequestsNotSent(t *testing.T) {
	for _, tc := range []struct {
		onLoss string
		fails  bool
	}{{"fail", true}, {"", true}, {"warn", false}} {
		t.Run("on-loss "+tc.onLoss, func(t *testing.T) {
			ins := []*Input{
				shardInput(t, "r", 0, 2, 10, time.Millisecond, func(r *stats.Report) {
					r.NotSent = []string{"2 request(s) not sent: the rewrite failed on them"}
					r.OnLoss = tc.onLoss
				}),
				shardInput(t, "r", 1, 2, 10, time.Millisecond, func(r *stats.Report) { r.OnLoss = tc.onLoss }),
			}
			m, err := Merge(ins, "")
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			m.WriteText(&out)
			said := strings.Contains(out.String(), ": complete, REQUESTS NOT SENT\n")
			var html bytes.Buffer
			if err := WriteHTML(&html, m.HTMLData()); err != nil {
				t.Fatal(err)
			}
			if m.JSON.NotSentFails != tc.fails || said != tc.fails || strings.Contains(html.String(), "Requests not sent") != tc.fails || (m.JSON.Shards[0].State == "requests not sent") != tc.fails {
				t.Errorf("not_sent_fails %t, summary says so %t, HTML %t, shard 0 %q; want %t:\n%s", m.JSON.NotSentFails, said, strings.Contains(html.String(), "Requests not sent"), m.JSON.Shards[0].State, tc.fails, out.String())
			}
			if !m.JSON.Complete {
				t.Errorf("not complete: %v", m.JSON.Problems)
			}
		})
	}
}
