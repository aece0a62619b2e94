package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/stats"
)

// ms writes a latency as every terminal summary does.
func ms(d time.Duration) string { return stats.DurationText(d) }

// windowText renders a window's ranges: "topic 0:[0,120) 1:[0,80)".
func windowText(w *catalog.Window) string {
	var b strings.Builder
	b.WriteString(w.Topic)
	for _, p := range w.SortedPartitions() {
		r := w.Partitions[p]
		fmt.Fprintf(&b, " %d:[%d,%d)", p, r.Start, r.End)
	}
	return b.String()
}

// printSummary writes a job's summary table.
func printSummary(out io.Writer, res *jobResult) {
	row := func(label, format string, args ...any) {
		fmt.Fprintf(out, "  %-10s"+format, append([]any{label}, args...)...)
	}
	defer printCounters(out, res.counters)
	j := res.job
	state := "done"
	switch {
	case res.failed:
		state = "FAILED"
	case res.interrupted:
		state = "interrupted"
	case res.lost["total"] > 0:
		state = "done, MESSAGES LOST"
	case res.replay && (droppedOnError(res.counters) > 0 || len(res.captureLost) > 0):
		state = "done, REQUESTS NOT SENT"
	case len(res.windowNotes) > 0:
		state = "done (PARTIAL window)"
	}
	if res.replay {
		s := res.summary
		fmt.Fprintf(out, "\njob %s: %s in %s\n", j.Name, state, res.elapsed.Round(time.Millisecond))
		if res.window != nil {
			row("window", "%s  %s\n", res.window.Name, windowText(res.window))
		}
		for _, n := range res.windowNotes {
			row("partial", "%s\n", n)
		}
		for _, n := range res.notSent {
			row("not sent", "%s\n", n)
		}
		if res.stoppedBy != "" {
			row("stopped", "at %s, as the scenario asks: the rest of the input was not replayed\n", res.stoppedBy)
		}
		if sh := res.shard; sh != nil {
			skew := "–"
			if sh.SkewMS != nil {
				skew = ms(stats.MSDuration(*sh.SkewMS))
			}
			start := "the run never started"
			if !sh.Start.IsZero() {
				start = "start " + sh.Start.UTC().Format("15:04:05.000")
			}
			if !sh.PlannedStart.IsZero() && !sh.Start.IsZero() {
				start += fmt.Sprintf(" (postponed %s: %s)",
					sh.Start.Sub(sh.PlannedStart).Round(time.Millisecond), sh.PostponedWhy(sh.PlannedStart.UTC().Format("15:04:05.000")))
			}
			row("shard", "%d/%d of run %s  %s  start skew %s\n", sh.Index, sh.Count, sh.RunID, start, skew)
			if sh.T0Note != "" {
				row("timeline", "%s\n", sh.T0Note)
			}
		}
		row("requests", "sent %d  ok %d  errors %d\n", s.Sent, s.OK, s.Errors)
		if s.Sent == 0 {
			// The scenario's own choices can leave nothing to send: say
			// which, where a counter alone would be the only trace.
			var why []string
			for _, c := range []struct{ key, what string }{{"filtered", "the filter dropped"}, {"sampled-out", "the sample left out"}, {"dropped", "a drop step dropped"}} {
				if n := res.counters[c.key]; n > 0 {
					why = append(why, fmt.Sprintf("%s %d", c.what, n))
				}
			}
			if len(why) > 0 {
				row("note", "no request sent: %s\n", strings.Join(why, ", "))
			}
		}
		if len(s.Status) > 0 {
			codes := make([]int, 0, len(s.Status))
			for c := range s.Status {
				codes = append(codes, c)
			}
			sort.Ints(codes)
			parts := make([]string, len(codes))
			for i, c := range codes {
				parts[i] = fmt.Sprintf("%d: %d", c, s.Status[c])
			}
			row("status", "%s\n", strings.Join(parts, "  "))
		}
		if len(s.ErrorClasses) > 0 {
			row("errors", "%s\n", report.ErrorClassesText(s.ErrorClasses))
		}
		l := s.Latency
		row("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
		row("rate", "scheduled %.1f/s  achieved %.1f/s\n", s.Scheduled, s.Achieved)
		row("lateness", "p50 %s  p99 %s  max %s\n", ms(s.Lateness.P50), ms(s.Lateness.P99), ms(s.Lateness.Max))
		for _, l := range breakdownLines(res) {
			row(l[0], "%s\n", l[1])
		}
		if n := res.counters["source.out-of-order"]; n > 0 {
			by := "under 1ms"
			if d := res.counters["source.out-of-order-max-ms"]; d > 0 {
				by = fmt.Sprintf("up to %dms", d)
			}
			row("", "out-of-order %d: requests read after ones captured %s later than them, sent late (another host's late delivery, a spool drained after an outage); a larger reorder on the window holds more\n", n, by)
		}
		if n := res.counters["untimed-requests"]; n > 0 {
			row("", "untimed %d: requests with a bogus capture time (%s) were sent right after the request before them: their time gives them no place in the timeline\n", n, message.BogusTimeRule)
		}
		if n := res.counters["sink.pool-exhausted"]; n > 0 {
			row("", "pool-exhausted %d: requests that waited for a connection (all %d busy); raise max-connections or the file limit\n", n, res.counters["sink.max-connections"])
		}
		if n := res.counters["sink.connections-bounded"]; n > 0 {
			row("", "connections-bounded %d: requests that waited for a busy connection rather than dial one more (the pool holds about twice what the schedule needs at the target's latency); their wait is in the lateness\n", n)
		}
		for i, l := range report.DiffLines(res.diff) {
			label := ""
			if i == 0 {
				label = "diff"
			}
			row(label, "%s\n", l)
		}
	} else {
		fmt.Fprintf(out, "\njob %s: %s in %s\n", j.Name, state, res.elapsed.Round(time.Millisecond))
		row("recorded", "%d requests  %d responses  → %s\n", res.requests, res.responses, res.sinkDesc)
		if res.notWritten > 0 || res.written < res.requests+res.responses {
			row("written", "%d of %d messages  (%d not delivered; see the log for why)\n", res.written, res.requests+res.responses, res.requests+res.responses-res.written)
		}
		if n := res.lost["total"]; n > 0 {
			note := "no window saved"
			if res.window != nil {
				note = "the window is marked partial"
			} else if res.job.SaveWindow == "" {
				note = "what the sink holds lacks them"
			}
			row("lost", "%s  (%s)\n", lostText(res.lost), note)
		}
		if n := res.counters["sink.spooled"]; n > 0 {
			line := fmt.Sprintf("%d record(s) waited in the disk spool (peak %.1f MiB) while the brokers were unreachable or could not keep up", n, float64(res.counters["sink.spool-peak-bytes"])/(1<<20))
			switch undelivered := res.lost["undeliverable"]; {
			case res.counters["sink.spool-records"] > 0:
				// The drain stopped at a record it could not read back
				// (the log says why); the job's end removed the spool,
				// and those after it are counted undeliverable.
				line += fmt.Sprintf("; %d could not be read back from it (damaged: see the log) and were not sent (undeliverable)", res.counters["sink.spool-records"])
			case undelivered > 0:
				// What was still spooled at the delivery timeout was
				// taken out and counted undeliverable: the spool is
				// empty, and not all of it reached Kafka.
				line += fmt.Sprintf("; not all reached Kafka: %d record(s) undeliverable (see lost)", undelivered)
			default:
				line += "; all were delivered"
			}
			row("spooled", "%s\n", line)
		}
		if n := res.counters["requests-after-stop"]; n > 0 || res.atLimit {
			line := fmt.Sprintf("at stop.requests %d", res.job.Stop.Requests)
			if n > 0 {
				line += fmt.Sprintf("; %d request(s) seen after it not recorded", n)
			}
			if m := res.counters["stop-responses-missing"]; m > 0 {
				line += fmt.Sprintf("; %d response(s) of the recorded ones did not come within %s", m, stopGrace)
			}
			row("stopped", "%s\n", line)
		}
		if n := res.counters["source.unparsable"]; n > 0 {
			line := fmt.Sprintf("unparsable %d: runs of bytes that are not HTTP (TLS, another protocol) were skipped; a source's ports: reads only the HTTP ones", n)
			var refused []string
			for _, r := range []struct{ counter, what string }{
				{"source.refused-content-length", "two different or malformed Content-Lengths"},
				{"source.refused-transfer-encoding", "a request transfer coding other than chunked"},
				{"source.refused-header-line", "a header line that is not a field"},
			} {
				if m := res.counters[r.counter]; m > 0 {
					refused = append(refused, fmt.Sprintf("%s %d (%s)", strings.TrimPrefix(r.counter, "source."), m, r.what))
				}
			}
			if len(refused) > 0 {
				line += "; of them, messages refused because framing them would desync the stream (not recorded): " + strings.Join(refused, ", ")
			}
			row("", "%s\n", line)
		}
		if n := res.counters["bogus-capture-times"]; n > 0 {
			row("times", "%d message(s) with a bogus capture time (%s), as a .gor file can have them: recorded as they are and replayed, but the window's capture time leaves them out; a paced replay sends each right after the request before it\n", n, message.BogusTimeRule)
		}
		if n := res.counters["requests-body-cut"]; n > 0 {
			why := "max-body, or bytes the capture lost"
			if res.counters["source.buffer-cut"] > 0 || res.counters["source.holes"] > 0 {
				why += ": see lost"
			}
			row("cut", "%d request(s) recorded with their body cut (%s): a replay does not send them; a larger max-body keeps whole those that max-body cut\n", n, why)
		}
		if res.window != nil {
			mark := ""
			if res.window.Partial {
				mark = " (partial)"
			}
			row("window", "%s saved%s  %s\n", res.window.Name, mark, windowText(res.window))
			if res.keptAs != "" {
				row("kept", "the window it replaced, as %s\n", res.keptAs)
			}
		}
	}
}

// printCounters lists the non-zero counters that tell about losses and
// changes; plain throughput counters are left to the report.
func printCounters(w io.Writer, c map[string]int64) { report.WriteCounters(w, c) }

// assertEnv fills the assert environment from a job's results.
func assertEnv(res *jobResult) exprenv.Summary {
	var env exprenv.Summary
	if res.replay {
		s := res.summary
		env.Requests = exprenv.Requests{Sent: int(s.Sent), OK: int(s.OK), Errors: int(s.Errors)}
		env.Errors = exprenv.Errors{Count: int(s.Errors)}
		if s.Sent > 0 {
			env.Errors.Rate = float64(s.Errors) / float64(s.Sent)
		}
		env.Status = map[int]int{}
		for k, v := range s.Status {
			env.Status[k] = int(v)
		}
		env.Latency = exprenv.Latency{P50: s.Latency.P50, P90: s.Latency.P90, P99: s.Latency.P99, P999: s.Latency.P999, Max: s.Latency.Max, Mean: s.Latency.Mean}
		env.Rate = exprenv.Rates{Scheduled: s.Scheduled, Achieved: s.Achieved}
		env.Lateness = exprenv.Lateness{P50: s.Lateness.P50, P99: s.Lateness.P99, Max: s.Lateness.Max}
		if d := res.diff; d != nil {
			env.Diff = exprenv.Diff{Compared: int(d.Compared), Mismatches: int(d.Mismatches), Rate: d.Rate}
		}
		addBreakdownEnv(&env, res)
	} else {
		sent := int(res.requests + res.responses)
		lost := sent - int(res.written)
		env.Requests = exprenv.Requests{Sent: sent, OK: int(res.written), Errors: lost}
		env.Errors = exprenv.Errors{Count: lost}
		if sent > 0 {
			env.Errors.Rate = float64(lost) / float64(sent)
		}
		env.Status = map[int]int{}
	}
	env.Duration = res.elapsed
	return env
}

// checkAssertions evaluates a job's asserts, prints each verdict and returns
// the failures.
func checkAssertions(out io.Writer, res *jobResult) []string {
	if len(res.job.Assert) == 0 {
		return nil
	}
	fmt.Fprintf(out, "  assertions\n")
	if res.failed {
		// The figures are of a job that did not do its work: a verdict on
		// them would mislead ("ok errors.rate == 0" of a refused replay).
		for _, a := range res.job.Assert {
			fmt.Fprintf(out, "    --   %s  (%s)\n", a.Shown(), notEvaluated)
		}
		return nil
	}
	env := assertEnv(res)
	var failed []string
	for _, a := range res.job.Assert {
		ok, detail := evalAssert(a, env)
		if detail != "" {
			detail = "  (" + detail + ")"
		}
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, fmt.Sprintf("%s: job %s: %s%s", a.Pos, res.job.Name, a.Shown(), detail))
		}
		fmt.Fprintf(out, "    %s %s%s\n", mark, a.Shown(), detail)
	}
	return failed
}

// notEvaluated is the verdict of every assert of a job that failed.
const notEvaluated = "not evaluated: the job failed"

// evalJobAssert is evalAssert for res's job: a failed job's asserts are not
// evaluated (false, notEvaluated).
func evalJobAssert(res *jobResult, a *scenario.Expr, env exprenv.Summary) (bool, string) {
	if res.failed {
		return false, notEvaluated
	}
	return evalAssert(a, env)
}

// evalAssert evaluates an assert and says what it read: the actual values
// ("latency.p99 = 312ms, want < 250ms"), or why it could not be evaluated.
func evalAssert(a *scenario.Expr, env exprenv.Summary) (bool, string) {
	out, err := expr.Run(a.Program, env)
	if err != nil {
		return false, "error: " + assertError(a, err, env)
	}
	ok, isBool := out.(bool)
	if !isBool {
		return false, fmt.Sprintf("result %v is not a bool", out)
	}
	p := a.Program
	if a.Written != "" {
		// Explain quotes the constants it compares: the secret's value.
		// The expression with its secret's parts evaluated says the same
		// of the summary without it.
		p = nil
		if src, err := a.Published(); err == nil {
			p, _ = expr.Compile(src, append(exprenv.SummaryOptions(), expr.AsBool())...)
		}
	}
	return ok, exprenv.Explain(p, env)
}

// assertError is why assert a could not be evaluated. expr-lang's error
// quotes the expression's source line, and its message may quote a value
// the expression computed: where a secret went in (Written), both may hold
// its value. The error of the published form (Expr.Published, which holds
// none) is said then, or that there was one.
func assertError(a *scenario.Expr, err error, env exprenv.Summary) string {
	if a.Written == "" {
		return err.Error()
	}
	if src, perr := a.Published(); perr == nil {
		if p, cerr := expr.Compile(src, append(exprenv.SummaryOptions(), expr.AsBool())...); cerr == nil {
			if _, rerr := expr.Run(p, env); rerr != nil {
				return rerr.Error()
			}
		}
	}
	return "the expression could not be evaluated (the error is not shown: it quotes the value of a secret that went into it)"
}

// publishedExpr is an assert expression as a JSON report (which report
// merge and a sharded run's merge evaluate again) holds it: with no
// secret's value (scenario.Expr.Published), as written when it has no such
// form (a sharded run refuses such an assertion, checkPublishable; an
// unsharded report marks it unmergeable, and the merge fails it saying
// why).
func publishedExpr(a *scenario.Expr) string {
	if src, err := a.Published(); err == nil {
		return src
	}
	return a.Shown()
}

// assertionResults evaluates a job's asserts for its reports.
func assertionResults(res *jobResult) []report.Assertion {
	var out []report.Assertion
	env := assertEnv(res)
	for _, a := range res.job.Assert {
		ok, detail := evalJobAssert(res, a, env)
		out = append(out, report.Assertion{Expr: a.Shown(), OK: ok, Detail: detail})
	}
	return out
}

// jobReport is the JSON report of a job.
func jobReport(s *scenario.Scenario, res *jobResult) any {
	if res.replay {
		rep := res.summary.Report(res.job.Name)
		if res.window != nil {
			rep.Window = res.window
		}
		rep.SourceGaps = res.windowNotes
		rep.NotSent = res.notSent
		rep.OnLoss = cmp.Or(res.job.OnLoss, "fail")
		if res.diff != nil {
			rep.Diff = res.diff
		}
		rep.Counters = res.counters
		rep.Scenario = s.Name
		rep.Error, rep.Interrupted = res.errText, res.interrupted
		env := assertEnv(res)
		for _, a := range res.job.Assert {
			ok, detail := evalJobAssert(res, a, env)
			ra := stats.ReportAssertion{Expr: publishedExpr(a), OK: ok, Detail: detail}
			if _, err := a.Published(); err != nil {
				ra.Unmergeable = "it reads a secret, and " + err.Error()
			}
			rep.Assertions = append(rep.Assertions, ra)
		}
		if res.shard != nil {
			rep.Shard = res.shard
		}
		rep.State = res.state
		return withBreakdown(rep, res)
	}
	return struct {
		Job       string           `json:"job"`
		Requests  int64            `json:"requests"`
		Responses int64            `json:"responses"`
		Written   int64            `json:"written"`
		Failed    int64            `json:"failed"`
		Sink      string           `json:"sink"`
		Lost      map[string]int64 `json:"lost"`
		Window    *catalog.Window  `json:"window,omitempty"`
		Counters  map[string]int64 `json:"counters"`
		Duration  float64          `json:"duration_ms"`
		// Interrupted: a signal stopped the job before its end.
		Interrupted bool `json:"interrupted"`
		// Error is why the job failed: what it read, wrote and lost is
		// then only what it did before (its source was not read to its
		// end, say).
		Error string `json:"error,omitempty"`
		// Assertions are the job's asserts with the values they read.
		Assertions []report.Assertion `json:"assertions,omitempty"`
	}{res.job.Name, res.requests, res.responses, res.written, res.requests + res.responses - res.written, res.sinkDesc, lostOrZero(res.lost), res.window, res.counters, stats.MS(res.elapsed), res.interrupted, res.errText, assertionResults(res)}
}

// displayPath is where a file written by the run is, as its user opens
// it: relative to the working directory when under it, else absolute
// (a report path in the scenario is relative to the scenario's directory).
func displayPath(abs string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return rel
		}
	}
	return abs
}

// writeReports writes the job's report files.
func writeReports(out io.Writer, s *scenario.Scenario, res *jobResult) (err error) {
	rp := res.job.Report
	defer func() {
		if err != nil {
			return
		}
		for _, p := range []scenario.Path{rp.JSON, rp.HTML} {
			if p.IsSet() {
				fmt.Fprintf(out, "  %-10s%s\n", "report", displayPath(p.Abs))
			}
		}
	}()
	if rp.JSON.IsSet() {
		data, err := json.MarshalIndent(jobReport(s, res), "", "  ")
		if err != nil {
			return fmt.Errorf("report %s: %w", rp.JSON.Raw, err)
		}
		if err := writeFile(rp.JSON, append(data, '\n')); err != nil {
			return err
		}
	}
	if rp.HTML.IsSet() {
		if err := writeHTMLReport(s, res, rp.HTML); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a report file, contained as the scenario checked it.
func writeFile(p scenario.Path, data []byte) error {
	if err := p.WriteFile(data); err != nil {
		return fmt.Errorf("report %s: %w", p.Raw, err)
	}
	return nil
}

// lostOrZero is a record job's losses for the JSON report: {"total": 0}
// when nothing was lost.
func lostOrZero(lost map[string]int64) map[string]int64 {
	if lost == nil {
		return map[string]int64{"total": 0}
	}
	return lost
}
