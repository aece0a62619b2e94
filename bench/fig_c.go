package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// figC: replay a small and a large window at speed max and compare the
// replay process's peak RSS. The windows live in a standalone broker
// subprocess so that its memory is not counted.
func figC(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	small := e.scale(100_000, 20_000)
	large := e.scale(1_000_000, 100_000)
	const budget = 90 * time.Second // longest acceptable large replay

	tg, err := startTarget()
	if err != nil {
		return nil, note, err
	}
	defer tg.close()

	port, err := freePort()
	if err != nil {
		return nil, note, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	broker := exec.Command(e.bin, "broker", "--listen", addr, "--data-dir", filepath.Join(e.tmp, "c-broker"))
	var brokerOut strings.Builder
	broker.Stdout, broker.Stderr = &brokerOut, &brokerOut
	broker.Dir = e.tmp
	if err := e.procs.start(broker); err != nil {
		return nil, note, err
	}
	defer func() { _ = e.procs.stop(broker, syscall.SIGTERM, 10*time.Second) }()
	if err := waitTCP(ctx, addr, 15*time.Second); err != nil {
		return nil, note, fmt.Errorf("standalone broker: %w\n%s", err, brokerOut.String())
	}

	scenario := func(name string, n int) (string, error) {
		return e.writeScenario("c-"+name, fmt.Sprintf(`version: 1
name: bench-memory-%[1]s
kafka: {brokers: [%[2]s]}
topics:
  traffic: {name: bench-memory-%[1]s, partitions: 4, create: true}
targets:
  local: {url: "%[3]s", timeout: 5s}
jobs:
  record:
    source: {gor: {path: %[4]q}}
    sink: {kafka: {topic: traffic}}
    save-window: mem-%[1]s
    report: {json: %[5]q}
  replay:
    needs: [record]
    source: {window: mem-%[1]s}
    speed: max
    sink: {http: {target: local, workers: 32}}
    report: {json: %[6]q}
`, name, addr, tg.url(), filepath.Join(e.tmp, "c-"+name+".gor"),
			filepath.Join(e.tmp, "c-"+name+"-record.json"), filepath.Join(e.tmp, "c-"+name+"-replay.json")))
	}

	type result struct {
		n            int
		rec          recordReport
		rep          replayReport
		recRun, run  runResult
		recordedWith time.Duration
		// the replay's profiles (--cpuprofile, --memprofile)
		cpuProfile, memProfile string
	}
	measure := func(name string, n int) (result, error) {
		r := result{n: n}
		gor := filepath.Join(e.tmp, "c-"+name+".gor")
		if _, err := writeGor(gor, gorSpec{Requests: n, Step: 100 * time.Microsecond, Conns: 2000}, time.Now().Add(-2*time.Hour)); err != nil {
			return r, err
		}
		scn, err := scenario(name, n)
		if err != nil {
			return r, err
		}
		if r.recRun, err = e.replayctl(ctx, 5*time.Minute, "run", scn, "--job", "record", "--progress", "never"); err != nil {
			return r, err
		}
		if err := readJSON(filepath.Join(e.tmp, "c-"+name+"-record.json"), &r.rec); err != nil {
			return r, err
		}
		r.cpuProfile, r.memProfile = filepath.Join(e.tmp, "c-"+name+"-cpu.prof"), filepath.Join(e.tmp, "c-"+name+"-mem.prof")
		if r.run, err = e.replayctl(ctx, 5*time.Minute, "run", scn, "--job", "replay", "--progress", "never",
			"--cpuprofile", r.cpuProfile, "--memprofile", r.memProfile); err != nil {
			return r, err
		}
		if err := readJSON(filepath.Join(e.tmp, "c-"+name+"-replay.json"), &r.rep); err != nil {
			return r, err
		}
		return r, nil
	}

	s, err := measure("small", small)
	if err != nil {
		return nil, note, err
	}
	// Shrink the large window when the small one says it would take too long.
	reason := ""
	if per := s.run.Elapsed / time.Duration(s.n); per*time.Duration(large) > budget && !e.quick {
		est := per * time.Duration(large)
		large = 500_000
		reason = fmt.Sprintf("1M would take about %s to replay here (estimated from the small window), over the ~%s budget: the large window is 500k requests instead.",
			est.Round(time.Second), budget)
	}
	l, err := measure("large", large)
	if err != nil {
		return nil, note, err
	}

	if l.run.MaxRSSKiB == 0 || s.run.MaxRSSKiB == 0 {
		return nil, note, fmt.Errorf("no peak RSS read for a replay (large %d KiB, small %d KiB): it ended before /proc was read", l.run.MaxRSSKiB, s.run.MaxRSSKiB)
	}
	ratio := float64(l.run.MaxRSSKiB) / float64(s.run.MaxRSSKiB)
	row := Row{Fig: "c", What: fmt.Sprintf("replay process peak RSS, window of %s vs %s requests (speed max)", num(float64(large)), num(float64(small))),
		Ours:  fmt.Sprintf("%s MiB (%s req)", num(float64(l.run.MaxRSSKiB)/1024), num(float64(large))),
		Ref:   fmt.Sprintf("%s MiB (%s req)", num(float64(s.run.MaxRSSKiB)/1024), num(float64(small))),
		Ratio: fmt.Sprintf("%.2fx (goal ≤ 1.5x)", ratio), Verdict: verdict(ratio <= 1.5)}
	for _, r := range []result{s, l} {
		if r.rep.Requests.Sent != int64(r.n) || r.rep.Requests.Errors > 0 {
			row.Verdict = NotMet
		}
	}
	rateRow := Row{Fig: "c", What: "same replays: achieved rate, large vs small window (req/s)",
		Ours: num(l.rep.Rate.Achieved) + " req/s", Ref: num(s.rep.Rate.Achieved) + " req/s",
		Ratio: fmt.Sprintf("%.2f", l.rep.Rate.Achieved/s.rep.Rate.Achieved), Verdict: Info}

	note.Lines = []string{
		fmt.Sprintf("Broker: `replayctl broker --listen %s --data-dir TMP` as a subprocess (its memory is not counted).", addr),
		"Each window: a .gor file of N GET requests recorded by `replayctl run --job record` (gor → kafka, topic of 4 partitions, `save-window`), then replayed by a separate `replayctl run --job replay` (`source: {window: …}`, `speed: max`, 32 workers) to a loopback net/http server; peak RSS is the replay process's VmHWM, read from `/proc/PID/status` every 10 ms while it runs (its `rusage.ru_maxrss` would include the harness's own RSS: Linux records the parent's peak at the exec of a vforked child).",
	}
	if reason != "" {
		note.Lines = append(note.Lines, reason)
	}
	for _, r := range []result{s, l} {
		note.Lines = append(note.Lines, fmt.Sprintf("%s requests: recorded in %s (%d written, %d failed); replay sent %d, ok %d, errors %d, achieved %s req/s, wall time %s, peak RSS %s MiB (record process: %s MiB).",
			num(float64(r.n)), r.recRun.Elapsed.Round(100*time.Millisecond), r.rec.Written, r.rec.Failed,
			r.rep.Requests.Sent, r.rep.Requests.OK, r.rep.Requests.Errors, num(r.rep.Rate.Achieved),
			r.run.Elapsed.Round(100*time.Millisecond), num(float64(r.run.MaxRSSKiB)/1024), num(float64(r.recRun.MaxRSSKiB)/1024)),
			fmt.Sprintf("%s-request replay, heap profile (`--memprofile`, `go tool pprof -sample_index=alloc_space -top`): %s", num(float64(r.n)), e.allocSummary(ctx, r.memProfile, 6)),
			fmt.Sprintf("%s-request replay, flame graph (`--cpuprofile`): %s", num(float64(r.n)), e.flameSummary(ctx, r.cpuProfile, 6)))
	}
	return []Row{row, rateRow}, note, nil
}
