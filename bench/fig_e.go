package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// figE: wrk against a loopback server alone, then while replayctl captures
// the server's port live on lo (to a null gor sink, then to the embedded
// Kafka broker): wrk's rate with and without capture, and requests captured
// against requests the server counted.
func figE(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	load := e.dur(10*time.Second, 3*time.Second)
	lead := time.Second // capture starts this long before wrk
	// The capture must outlive the load by a margin, whatever its head start.
	stopAfter := func(lead time.Duration) time.Duration { return load + lead + 3*time.Second }
	const conns = 32

	tg, err := startTarget()
	if err != nil {
		return nil, note, err
	}
	defer tg.close()

	wrkCmd := ""
	var bases []float64
	baseline := func() error {
		w, err := e.wrk(ctx, tg.url()+"/", conns, load)
		if err != nil {
			return err
		}
		wrkCmd = w.Command
		bases = append(bases, w.Rate)
		return nil
	}
	// ref is the mean of the baselines just before and just after the
	// latest measured variant: the machine is shared and its speed drifts.
	ref := func() float64 { return (bases[len(bases)-2] + bases[len(bases)-1]) / 2 }
	if err := baseline(); err != nil {
		return nil, note, err
	}
	note.Lines = append(note.Lines,
		fmt.Sprintf("Target: a net/http server in the harness process on %s answering `200 ok`; load: `%s`.", tg.url(), wrkCmd),
		"Order: wrk alone, then each variant followed by wrk alone again; a variant's reference is the mean of the wrk-alone runs just before and just after it (the shared machine drifts by ±15 % between runs).")

	var rows []Row

	// tcpdump: what the kernel's packet tap costs anyway (information).
	td, tdOut, err := e.tcpdump(ctx, tg.port(), lead, func() (wrkResult, error) { return e.wrk(ctx, tg.url()+"/", conns, load) })
	if err != nil {
		return rows, note, err
	}
	if err := baseline(); err != nil {
		return rows, note, err
	}
	tdRow := ratioRow("e", "reference: wrk with `tcpdump -i lo -w /dev/null` running vs without (req/s)", td.Rate, ref(), "req/s", 0)
	tdRow.Ratio = fmt.Sprintf("%.1f %% lower", 100*(1-td.Rate/ref()))
	tdRow.Ours, tdRow.Ref, tdRow.Verdict = "wrk "+tdRow.Ours+" (tcpdump)", "wrk "+tdRow.Ref, Info
	rows = append(rows, tdRow)
	note.Lines = append(note.Lines, fmt.Sprintf("tcpdump (libpcap, C, writes nothing): `tcpdump -i lo -w /dev/null -s 0 tcp port %d` → wrk %s req/s vs %s alone; tcpdump said: %s.",
		tg.port(), num(td.Rate), num(ref()), tdOut))

	type variant struct {
		name, kafka, sink string
		lead              time.Duration
	}
	variants := []variant{
		{name: "null gor sink", sink: `gor: {path: /dev/null}`, lead: lead},
		{name: "Kafka sink (embedded broker)", kafka: fmt.Sprintf("kafka: {brokers: [embedded], data-dir: %q}\ntopics:\n  traffic: {name: bench-capture, partitions: 4, create: true}\n", filepath.Join(e.tmp, "e-data")),
			sink: `kafka: {topic: traffic}`, lead: lead + 2*time.Second}, // the broker starts (and creates the topic) before the capture opens its socket
	}
	for i, v := range variants {
		report := filepath.Join(e.tmp, fmt.Sprintf("e-%d.json", i))
		scn, err := e.writeScenario(fmt.Sprintf("e-capture-%d", i), fmt.Sprintf(`version: 1
name: bench-capture
%sjobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {%s}
    stop: {after: %s}
    on-loss: warn # losses show in the captured/served row, not as a failed run
    report: {json: %q}
`, v.kafka, tg.port(), v.sink, stopAfter(v.lead), report))
		if err != nil {
			return rows, note, err
		}
		start := tg.count()
		cmd, out, errb := e.replayctlCmd("run", scn, "--progress", "never")
		t0 := time.Now()
		if err := e.procs.start(cmd); err != nil {
			return rows, note, err
		}
		done := make(chan error, 1)
		go func() { done <- e.procs.wait(cmd) }()
		select {
		case err := <-done:
			res := collect(cmd, out, errb, time.Since(t0))
			return rows, note, fmt.Errorf("capture (%s) ended before the load: %v\n%s", v.name, err, tail(res.Stderr+res.Stdout, 10))
		case <-time.After(v.lead):
		}
		w, werr := e.wrk(ctx, tg.url()+"/", conns, load)
		var runErr error
		select {
		case runErr = <-done:
		case <-time.After(stopAfter(v.lead) + 30*time.Second):
			runErr = fmt.Errorf("did not stop within %v after stop.after", 30*time.Second)
			_ = e.procs.stop(cmd, syscall.SIGINT, 10*time.Second)
		}
		res := collect(cmd, out, errb, time.Since(t0))
		served := tg.count() - start
		if werr != nil {
			return rows, note, werr
		}
		if runErr != nil {
			return rows, note, fmt.Errorf("capture (%s): %v\n%s", v.name, runErr, tail(res.Stderr+res.Stdout, 10))
		}
		var rec recordReport
		if err := readJSON(report, &rec); err != nil {
			return rows, note, err
		}
		if err := baseline(); err != nil {
			return rows, note, err
		}

		capRow := Row{Fig: "e", What: "capture on lo → " + v.name + ": requests captured / served",
			Ours: fmt.Sprintf("%d captured", rec.Requests), Ref: fmt.Sprintf("%d served", served)}
		if served > 0 {
			capRow.Ratio = fmt.Sprintf("%.4f (goal: all)", float64(rec.Requests)/float64(served))
		}
		capRow.Verdict = verdict(rec.Requests == served && rec.Failed == 0)
		rateRow := ratioRow("e", "wrk with capture → "+v.name+" vs without (req/s)", w.Rate, ref(), "req/s", 0.9)
		rateRow.Ratio = fmt.Sprintf("%.1f %% lower (goal ≤ 10 %%)", 100*(1-w.Rate/ref()))
		rateRow.Ours = "wrk " + rateRow.Ours
		rateRow.Ref = "wrk " + rateRow.Ref
		rows = append(rows, capRow, rateRow)
		note.Lines = append(note.Lines,
			fmt.Sprintf("With capture → %s: `replayctl run` of `source: {capture: {interface: lo, ports: [%d], responses: true}}`, `sink: {%s}`, `stop: {after: %s}`, started %s before wrk → %s req/s%s (alone: %s); the server counted %d requests, replayctl recorded %d requests and %d responses (%d written, %d failed); replayctl used %.1f CPU-seconds over %s (%.0f %% of one core), peak RSS %s MiB.",
				v.name, tg.port(), v.sink, stopAfter(v.lead), v.lead, num(w.Rate), errSuffix(w.Errors), num(ref()), served, rec.Requests, rec.Responses, rec.Written, rec.Failed,
				res.CPU.Seconds(), res.Elapsed.Round(100*time.Millisecond), 100*res.CPU.Seconds()/res.Elapsed.Seconds(), num(float64(res.MaxRSSKiB)/1024)),
			"Capture counters: "+lossCounters(rec.Counters)+".")
	}
	parts := make([]string, len(bases))
	for i, b := range bases {
		parts[i] = num(b)
	}
	note.Lines = append(note.Lines, "wrk alone, in order: "+strings.Join(parts, ", ")+" req/s.",
		"GoReplay 2.0 costs about 27 % of wrk's rate on this test (from the brief; not re-measured here).")
	return rows, note, nil
}

// tcpdump runs tcpdump on lo for port around load (started lead before it),
// stops it with SIGINT and returns load's result and tcpdump's counters.
func (e *env) tcpdump(ctx context.Context, port int, lead time.Duration, load func() (wrkResult, error)) (wrkResult, string, error) {
	cmd := exec.Command("tcpdump", "-i", "lo", "-w", "/dev/null", "-s", "0", "tcp", "port", strconv.Itoa(port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := e.procs.start(cmd); err != nil {
		return wrkResult{}, "", err
	}
	select {
	case <-time.After(lead):
	case <-ctx.Done():
		_ = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
		return wrkResult{}, "", ctx.Err()
	}
	w, err := load()
	_ = e.procs.stop(cmd, syscall.SIGINT, 5*time.Second)
	if err != nil {
		return w, "", err
	}
	var stats []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "packets") {
			stats = append(stats, strings.TrimSpace(l))
		}
	}
	if len(stats) == 0 {
		return w, "", fmt.Errorf("tcpdump: no statistics in its output:\n%s", out.String())
	}
	return w, strings.Join(stats, ", "), nil
}

// lossCounters lists the capture counters that tell about losses, zeros
// included, so that "none" is visible.
func lossCounters(c map[string]int64) string {
	keys := []string{"source.kernel-drops", "source.queue-overflow", "source.unparsable", "source.incomplete", "source.gaps", "source.unpaired-responses",
		"source.streams-dropped", "source.buffer-overflow", "source.pending-overflow", "source.decode-errors"}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, "source."), c[k]))
	}
	var other []string
	for k, v := range c {
		if strings.HasPrefix(k, "sink.") && strings.Contains(k, "fail") && v > 0 {
			other = append(other, fmt.Sprintf("%s=%d", k, v))
		}
	}
	sort.Strings(other)
	return strings.Join(append(parts, other...), ", ")
}
