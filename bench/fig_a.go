package main

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// figA: replay throughput at speed: max against a loopback Go server, next
// to wrk on the same server with the same connection count. The reference
// that counts sends the recording's own request (path and headers), so that
// the target does the same work for both; plain `wrk URL/` (a 40-byte
// request the server parses faster) is shown for information.
func figA(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	n := e.scale(150_000, 20_000)
	wrkFor := e.dur(5*time.Second, 2*time.Second)
	const workers = 32

	tg, err := startTarget()
	if err != nil {
		return nil, note, err
	}
	defer tg.close()

	gor := filepath.Join(e.tmp, "a-requests.gor")
	info, err := writeGor(gor, gorSpec{Requests: n, Step: 100 * time.Microsecond, Conns: 2000}, time.Now().Add(-time.Hour))
	if err != nil {
		return nil, note, err
	}

	scenario := func(report string) (string, error) {
		return e.writeScenario(filepath.Base(strings.TrimSuffix(report, ".json")), fmt.Sprintf(`version: 1
name: bench-throughput
targets:
  local: {url: "%s", timeout: 5s}
jobs:
  replay:
    source: {gor: {path: %q}}
    speed: max
    sink: {http: {target: local, workers: %d}}
    report: {json: %q}
`, tg.url(), gor, workers, report))
	}

	// The machine is shared and noisy: wrk with the same request and the
	// replay take turns (wrk, replay, wrk, replay, wrk, replay, wrk) after a
	// warm-up of the server, and the medians are compared.
	path, same := sameRequest()
	if _, err := e.wrk(ctx, tg.url()+path, workers, time.Second, same...); err != nil {
		return nil, note, err
	}
	const rounds = 3
	var wrks []wrkResult
	type replayRun struct {
		rep    replayReport
		run    runResult
		served int64
	}
	var runs []replayRun
	profile := filepath.Join(e.tmp, "a-cpu.prof")
	for i := 0; i <= rounds; i++ {
		w, err := e.wrk(ctx, tg.url()+path, workers, wrkFor, same...)
		if err != nil {
			return nil, note, err
		}
		wrks = append(wrks, w)
		if i == rounds {
			break
		}
		report := filepath.Join(e.tmp, fmt.Sprintf("a-replay-%d.json", i))
		scn, err := scenario(report)
		if err != nil {
			return nil, note, err
		}
		args := []string{"run", scn, "--progress", "never"}
		if i == 0 {
			args = append(args, "--cpuprofile", profile)
		}
		before := tg.count()
		run, err := e.replayctl(ctx, e.dur(3*time.Minute, time.Minute), args...)
		if err != nil {
			return nil, note, err
		}
		rr := replayRun{run: run, served: tg.count() - before}
		if err := readJSON(report, &rr.rep); err != nil {
			return nil, note, err
		}
		runs = append(runs, rr)
	}
	plain, err := e.wrk(ctx, tg.url()+"/", workers, wrkFor)
	if err != nil {
		return nil, note, err
	}
	var wrkRates, ourRates []float64
	var wrkText, ourText []string
	var wrkReqs int64
	var wrkErrs string
	for _, w := range wrks {
		wrkRates = append(wrkRates, w.Rate)
		wrkText = append(wrkText, num(w.Rate))
		wrkReqs += w.Requests
		wrkErrs += w.Errors
	}
	for _, r := range runs {
		ourRates = append(ourRates, r.rep.Rate.Achieved)
		ourText = append(ourText, num(r.rep.Rate.Achieved))
	}
	// The replay with the median rate (rounds is odd) speaks for all.
	byRate := slices.SortedFunc(slices.Values(runs), func(a, b replayRun) int { return cmp.Compare(a.rep.Rate.Achieved, b.rep.Rate.Achieved) })
	rep, run, served := byRate[rounds/2].rep, byRate[rounds/2].run, byRate[rounds/2].served
	ref := median(wrkRates)
	e.aRate = rep.Rate.Achieved

	row := ratioRow("a", fmt.Sprintf("replay %s GETs from a .gor file, speed max, %d workers, vs wrk sending the same request on %d connections (req/s)", num(float64(n)), workers, workers),
		rep.Rate.Achieved, ref, "req/s", 0.9)
	row.Ref = "wrk " + row.Ref
	for _, r := range runs {
		if r.rep.Requests.Errors > 0 || r.rep.Requests.Sent != int64(n) {
			row.Verdict = NotMet
		}
	}
	info2 := ratioRow("a", fmt.Sprintf("same replay vs plain `wrk URL/` (a 40-byte request), %d connections (req/s)", workers),
		rep.Rate.Achieved, plain.Rate, "req/s", 0)
	info2.Ref = "wrk " + info2.Ref
	info2.Ratio = fmt.Sprintf("%.2f", rep.Rate.Achieved/plain.Rate)
	info2.Verdict = Info
	cpuPerReq := float64(run.CPU.Microseconds()) / float64(max(rep.Requests.Sent, 1))
	note.Lines = []string{
		fmt.Sprintf("Target: a net/http server in the harness process on %s answering `200 ok` (3-byte body).", tg.url()),
		fmt.Sprintf("Reference: `%s`, after a 1 s warm-up of the server, taking turns with the replay (wrk, replay, wrk, replay, wrk, replay, wrk): wrk %s req/s (%s%s), replayctl %s req/s; the medians are compared: wrk %s, replayctl %s req/s. "+
			"It sends the recording's first request (path `%s` and its %d headers besides Host, which wrk sets), so the server parses the same bytes as in the replay.",
			wrks[0].Command, strings.Join(wrkText, ", "), num(float64(wrkReqs))+" requests", errSuffix(wrkErrs), strings.Join(ourText, ", "), num(ref), num(median(ourRates)), path, len(same)/2),
		fmt.Sprintf("Plain `%s` → %s req/s (information: a 40-byte request, less work for the server).", plain.Command, num(plain.Rate)),
		fmt.Sprintf("replayctl: `replayctl run --cpuprofile` of a scenario with `source: {gor: {path: requests.gor}}`, `speed: max`, `sink: {http: {target: local, workers: %d}}` (the closed model); "+
			"the file holds %s GET requests (%.0f bytes each on average, 11 realistic headers, generated with gorsink, 2 000 recorded connections).",
			workers, num(float64(n)), float64(info.Bytes)/float64(n)),
		fmt.Sprintf("replayctl report of the median replay: sent %d, ok %d, errors %d, achieved %s req/s, latency p50 %.3f ms p99 %.3f ms; the server counted %d requests; process wall time %s (start-up and file read included), CPU %s (%.1f µs per request), peak RSS %s MiB.",
			rep.Requests.Sent, rep.Requests.OK, rep.Requests.Errors, num(rep.Rate.Achieved), rep.Latency.P50, rep.Latency.P99, served,
			run.Elapsed.Round(10*time.Millisecond), run.CPU.Round(10*time.Millisecond), cpuPerReq, num(float64(run.MaxRSSKiB)/1024)),
		"Flame graph of the first replay (CPU profile, `go tool pprof -top`): " + e.flameSummary(ctx, profile, 8),
		"The .gor format keeps no connection IDs (GoReplay payloads carry type, ID, time and latency only), so a gor source replays with the shared worker queue; `session: true` would matter only for Kafka windows.",
		"GoReplay 2.0 replays a file at about 1 % of wrk on this test (from the brief; GoReplay is not installed here, so it is not re-measured).",
	}
	return []Row{row, info2}, note, nil
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; wrk: " + s
}

// median is the middle of xs (the mean of the two middle ones for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
