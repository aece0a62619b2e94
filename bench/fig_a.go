package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// figA: replay throughput at speed: max against a loopback Go server, next
// to wrk on the same server.
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

	w, err := e.wrk(ctx, tg.url()+"/", workers, wrkFor)
	if err != nil {
		return nil, note, err
	}

	report := filepath.Join(e.tmp, "a-replay.json")
	scn, err := e.writeScenario("a-replay", fmt.Sprintf(`version: 1
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
	if err != nil {
		return nil, note, err
	}
	before := tg.count()
	run, err := e.replayctl(ctx, e.dur(3*time.Minute, time.Minute), "run", scn, "--progress", "never")
	if err != nil {
		return nil, note, err
	}
	var rep replayReport
	if err := readJSON(report, &rep); err != nil {
		return nil, note, err
	}
	served := tg.count() - before

	row := ratioRow("a", fmt.Sprintf("replay %s GETs from a .gor file, speed max, %d workers (req/s)", num(float64(n)), workers),
		rep.Rate.Achieved, w.Rate, "req/s", 0.5)
	row.Ref = "wrk " + row.Ref
	if rep.Requests.Errors > 0 || rep.Requests.Sent != int64(n) {
		row.Verdict = NotMet
	}
	rows := []Row{row}
	note.Lines = []string{
		fmt.Sprintf("Target: a net/http server in the harness process on %s answering `200 ok` (3-byte body).", tg.url()),
		fmt.Sprintf("Reference: `%s` → %s req/s (%s requests%s).", w.Command, num(w.Rate), num(float64(w.Requests)), errSuffix(w.Errors)),
		fmt.Sprintf("replayctl: `replayctl run` of a scenario with `source: {gor: {path: requests.gor}}`, `speed: max`, `sink: {http: {target: local, workers: %d}}`; "+
			"the file holds %s GET requests (%.0f bytes each on average, 11 realistic headers, generated with gorsink, 2 000 recorded connections).",
			workers, num(float64(n)), float64(info.Bytes)/float64(n)),
		fmt.Sprintf("replayctl report: sent %d, ok %d, errors %d, achieved %s req/s, latency p50 %.3f ms p99 %.3f ms; the server counted %d requests; process wall time %s (start-up and file read included), peak RSS %s MiB.",
			rep.Requests.Sent, rep.Requests.OK, rep.Requests.Errors, num(rep.Rate.Achieved), rep.Latency.P50, rep.Latency.P99, served,
			run.Elapsed.Round(10*time.Millisecond), num(float64(run.MaxRSSKiB)/1024)),
		"The .gor format keeps no connection IDs (GoReplay payloads carry type, ID, time and latency only), so a gor source replays with the shared worker queue; `session: true` would matter only for Kafka windows.",
		"GoReplay 2.0 replays a file at about 1 % of wrk on this test (from the brief; GoReplay is not installed here, so it is not re-measured).",
	}
	return rows, note, nil
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; wrk: " + s
}
