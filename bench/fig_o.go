package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// slowDelay is the slow target's think time: its latency is 15 ms plus the
// machine's, inside the 10–20 ms the goal names.
const slowDelay = 15 * time.Millisecond

// figO: the open model. A recording at half of figure (a)'s speed-max rate
// is replayed on its schedule (speed 1, no workers) to a target that answers
// in about 15 ms: the replay must keep the schedule (achieved/scheduled ≥
// 0.99, lateness p99 ≤ 5 ms) by opening connections as needed. Reference:
// wrk (a closed model) on the same slow target with the same request and
// twice the connections the schedule needs, for the rate the target serves.
func figO(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	rate := e.aRate / 2
	what := "half of (a)"
	if e.oRate > 0 {
		rate, what = e.oRate, "-o-rate"
		note.Lines = append(note.Lines, fmt.Sprintf("Rate set with -o-rate: %s req/s (not half of (a)).", num(rate)))
	}
	if rate <= 0 {
		// Figure (a) did not run: measure its rate with a short replay.
		r, err := e.maxRate(ctx)
		if err != nil {
			return nil, note, err
		}
		rate = r / 2
		note.Lines = append(note.Lines, fmt.Sprintf("Figure (a) was not run: a 20 000-request speed-max replay measured %s req/s first.", num(r)))
	}
	span := e.dur(5*time.Second, 2*time.Second)
	step := time.Duration(float64(time.Second) / rate)
	n := int(span/step) + 1

	tg, err := startSlowTarget(slowDelay)
	if err != nil {
		return nil, note, err
	}
	defer tg.close()

	gor := filepath.Join(e.tmp, "o-recording.gor")
	info, err := writeGor(gor, gorSpec{Requests: n, Step: step, Conns: 2000}, time.Now().Add(-time.Hour))
	if err != nil {
		return nil, note, err
	}
	// The goal's replay opens min-connections ahead: the schedule's rate
	// times the target's latency, with a third more for its spread (what a
	// user sets from the rate and latency they expect, as k6's
	// preAllocatedVUs). The same replay without them (every connection
	// dialed as the first requests fall due) is an information row.
	minConns := int(math.Ceil(1.33 * rate * slowDelay.Seconds()))
	scenarioFor := func(name, sink string) (scn, report string, err error) {
		report = filepath.Join(e.tmp, name+".json")
		scn, err = e.writeScenario(name, fmt.Sprintf(`version: 1
name: bench-open-model
targets:
  slow: {url: "%s", timeout: 5s}
jobs:
  replay:
    source: {gor: {path: %q}}
    speed: 1
    sink: {http: {target: slow%s}}
    report: {json: %q}
`, tg.url(), gor, sink, report))
		return scn, report, err
	}
	scn, report, err := scenarioFor("o-open", fmt.Sprintf(", min-connections: %d", minConns))
	if err != nil {
		return nil, note, err
	}
	coldScn, coldReport, err := scenarioFor("o-open-cold", "")
	if err != nil {
		return nil, note, err
	}
	conns := int(math.Ceil(2 * rate * slowDelay.Seconds()))
	path, same := sameRequest()
	var w wrkResult
	if e.oRef {
		w, err = e.wrk(ctx, tg.url()+path, conns, e.dur(5*time.Second, 2*time.Second), same...)
		if err != nil {
			return nil, note, err
		}
	}
	before := tg.count()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		note.Lines = append(note.Lines, "Load average when the replay started (the machine is shared): "+strings.Join(strings.Fields(string(b))[:3], " ")+".")
	}
	profile := filepath.Join(e.tmp, "o-cpu.prof")
	run, err := e.replayctl(ctx, 2*time.Minute, "run", scn, "--progress", "never", "--cpuprofile", profile)
	if err != nil {
		return nil, note, err
	}
	served := tg.count() - before
	var rep replayReport
	if err := readJSON(report, &rep); err != nil {
		return nil, note, err
	}
	time.Sleep(time.Second) // the target closes the first replay's connections
	if _, err := e.replayctl(ctx, 2*time.Minute, "run", coldScn, "--progress", "never"); err != nil {
		return nil, note, err
	}
	var cold replayReport
	if err := readJSON(coldReport, &cold); err != nil {
		return nil, note, err
	}

	ref := fmt.Sprintf("wrk -c%d %s req/s", conns, num(w.Rate))
	if !e.oRef {
		ref = "not measured (-o-ref=false)"
	}
	ratio := 0.0
	if rep.Rate.Scheduled > 0 {
		ratio = rep.Rate.Achieved / rep.Rate.Scheduled
	}
	rateRow := Row{Fig: "o",
		What:    fmt.Sprintf("open model: %s requests at %s req/s (%s) to a %v target, speed 1: achieved rate", num(float64(n)), num(rate), what, slowDelay),
		Ours:    num(rep.Rate.Achieved) + " req/s",
		Ref:     ref,
		Ratio:   fmt.Sprintf("%.3f of scheduled (goal ≥ 0.99)", ratio),
		Verdict: verdict(ratio >= 0.99 && rep.Requests.Sent == int64(n) && rep.Requests.Errors == 0),
	}
	lateRow := Row{Fig: "o", What: "same replay: lateness p99 (actual − scheduled send)",
		Ours: fmt.Sprintf("%.3f ms", rep.Lateness.P99), Ref: "0 ms (the schedule)",
		Ratio: "goal ≤ 5 ms", Verdict: verdict(rep.Lateness.P99 <= 5)}
	coldRow := Row{Fig: "o", What: "same replay without min-connections (every connection dialed as the first requests fall due): lateness p99",
		Ours: fmt.Sprintf("%.3f ms", cold.Lateness.P99), Ref: "0 ms (the schedule)",
		Ratio: fmt.Sprintf("achieved %.3f of scheduled", cold.Rate.Achieved/max(cold.Rate.Scheduled, 1)), Verdict: Info}
	connRow := Row{Fig: "o", What: "same replay: connections opened (peak) / pool-exhausted",
		Ours:  fmt.Sprintf("%d / %d", rep.Counters["sink.connections-peak"], rep.Counters["sink.pool-exhausted"]),
		Ref:   fmt.Sprintf("%.0f in flight (rate × latency p50)", rate*rep.Latency.P50/1000),
		Ratio: "—", Verdict: Info}
	cpuPerReq := float64(run.CPU.Microseconds()) / float64(max(rep.Requests.Sent, 1))
	note.Lines = append(note.Lines,
		fmt.Sprintf("Target: a small HTTP/1.1 server in the harness process that answers `200 ok` %v after reading each request (a goroutine per connection reads, one goroutine writes the answers as they fall due; net/http with a sleep per request served only 16–38k req/s here even to wrk, below the rates asked).", slowDelay),
		fmt.Sprintf("Recording: a .gor file of %s GET requests %v apart (%s req/s, %.2f s), the same requests as (a).", num(float64(n)), step, num(info.RecordedRate), float64(info.Last-info.First)/1e9),
		fmt.Sprintf("replayctl: `replayctl run --cpuprofile` of `source: {gor: …}`, `speed: 1`, `sink: {http: {target: slow, min-connections: %d}}` (no `workers`: the open model, `max-connections` 10 000; min-connections = 1.33 × rate × the target's %v, opened before the first request, %d opened).", minConns, slowDelay, rep.Counters["sink.connections-preopened"]),
		fmt.Sprintf("Without min-connections (the information row), run right after: lateness p50 %.3f ms, p99 %.3f ms, max %.3f ms; connections peak %d; nearly all of its lateness falls in the first 200 ms, while the first ~%d connections are dialed at once (a dial costs CPU on both sides of this 2-core machine); from then on p99 is about 2 ms.",
			cold.Lateness.P50, cold.Lateness.P99, cold.Lateness.Max, cold.Counters["sink.connections-peak"], int(rate*slowDelay.Seconds())),
		fmt.Sprintf("Replay report: sent %d, ok %d, errors %d; rate scheduled %s/s, achieved %s/s; lateness p50 %.3f ms, p99 %.3f ms, max %.3f ms; latency p50 %.3f ms, p99 %.3f ms; connections peak %d, opened %d, pool-exhausted %d; the server counted %d (a few may be wrk's last); CPU %s (%.1f µs per request), peak RSS %s MiB.",
			rep.Requests.Sent, rep.Requests.OK, rep.Requests.Errors, num(rep.Rate.Scheduled), num(rep.Rate.Achieved),
			rep.Lateness.P50, rep.Lateness.P99, rep.Lateness.Max, rep.Latency.P50, rep.Latency.P99,
			rep.Counters["sink.connections-peak"], rep.Counters["sink.connections-opened"], rep.Counters["sink.pool-exhausted"], served,
			run.CPU.Round(10*time.Millisecond), cpuPerReq, num(float64(run.MaxRSSKiB)/1024)),
		fmt.Sprintf("Reference: `%s` → %s req/s (%s requests%s): a closed model with twice the connections the schedule needs; its rate is what this target serves at that concurrency.",
			w.Command, num(w.Rate), num(float64(w.Requests)), errSuffix(w.Errors)),
		"Flame graph of the replay (CPU profile, `go tool pprof -top`): "+e.flameSummary(ctx, profile, 8),
	)
	return []Row{rateRow, lateRow, coldRow, connRow}, note, nil
}

// maxRate replays 20 000 requests at speed max with 32 workers to a fast
// target and returns the achieved rate.
func (e *env) maxRate(ctx context.Context) (float64, error) {
	tg, err := startTarget()
	if err != nil {
		return 0, err
	}
	defer tg.close()
	gor := filepath.Join(e.tmp, "o-max.gor")
	if _, err := writeGor(gor, gorSpec{Requests: 20_000, Step: 100 * time.Microsecond, Conns: 2000}, time.Now().Add(-time.Hour)); err != nil {
		return 0, err
	}
	report := filepath.Join(e.tmp, "o-max.json")
	scn, err := e.writeScenario("o-max", fmt.Sprintf(`version: 1
name: bench-max
targets:
  local: {url: "%s", timeout: 5s}
jobs:
  replay:
    source: {gor: {path: %q}}
    speed: max
    sink: {http: {target: local, workers: 32}}
    report: {json: %q}
`, tg.url(), gor, report))
	if err != nil {
		return 0, err
	}
	if _, err := e.replayctl(ctx, time.Minute, "run", scn, "--progress", "never"); err != nil {
		return 0, err
	}
	var rep replayReport
	if err := readJSON(report, &rep); err != nil {
		return 0, err
	}
	return rep.Rate.Achieved, nil
}
