package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// figE: wrk against a loopback server alone, then while tcpdump (writing
// nothing, then a pcap file) or replayctl captures the server's port live on
// lo (to a null gor sink, the embedded Kafka broker in process, a `replayctl
// broker` subprocess and the real Kafka when there is one): wrk's rate with
// and without capture, requests captured against requests the server
// counted, packets lost (goal (c) of issue 13), and replayctl's CPU per
// captured request against tcpdump's (goal (d)); then the spool's write and
// drain rates against the capture rate into the subprocess broker (goal (e)).
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

	// tcpdump: what the kernel's packet tap costs anyway (information),
	// writing nothing, then writing a pcap file (the CPU reference of (d)).
	var tdCPUPerReq float64
	for _, file := range []string{"/dev/null", filepath.Join(e.tmp, "e-tcpdump.pcap")} {
		start := tg.count()
		td, err := e.tcpdump(ctx, tg.port(), file, lead, func() (wrkResult, error) { return e.wrk(ctx, tg.url()+"/", conns, load) })
		if err != nil {
			return rows, note, err
		}
		served := tg.count() - start
		if err := baseline(); err != nil {
			return rows, note, err
		}
		tdRow := ratioRow("e", fmt.Sprintf("reference: wrk with `tcpdump -i lo -w %s` running vs without (req/s)", file), td.Rate, ref(), "req/s", 0)
		tdRow.Ratio = fmt.Sprintf("%.1f %% lower", 100*(1-td.Rate/ref()))
		tdRow.Ours, tdRow.Ref, tdRow.Verdict = "wrk "+tdRow.Ours+" (tcpdump)", "wrk "+tdRow.Ref, Info
		rows = append(rows, tdRow)
		perReq := 0.0
		if served > 0 {
			perReq = float64(td.CPU.Microseconds()) / float64(served)
		}
		if file != "/dev/null" {
			tdCPUPerReq = perReq
			_ = os.Remove(file)
		}
		note.Lines = append(note.Lines, fmt.Sprintf("tcpdump (libpcap, C): `tcpdump -i lo -w %s -s 0 tcp port %d` → wrk %s req/s vs %s alone; the server counted %d requests; tcpdump used %.2f CPU-seconds (%.1f µs per request); tcpdump said: %s.",
			file, tg.port(), num(td.Rate), num(ref()), served, td.CPU.Seconds(), perReq, td.Out))
	}

	type variant struct {
		name, kafka, sink string
		lead              time.Duration
		// goalD: the broker runs in another process: wrk's rate and
		// replayctl's CPU per request are goal (d).
		goalD bool
		// broker starts the variant's broker in another process; pid is
		// 0 when it is not known (its CPU is then not measured).
		broker func() (addr string, pid int, stop func(), err error)
		// spool: measure the spool's write and drain rates on this
		// variant's broker, against its capture rate (goal (e)).
		spool bool
	}
	var topics []string // created on the real Kafka; the others go with their data directories
	defer func() {
		if e.kafka != "" {
			dropTopics(e.kafka, topics...)
		}
	}()
	kafkaScn := func(brokers string, dir string) string {
		topic := fmt.Sprintf("bench-capture-%d", time.Now().UnixNano())
		topics = append(topics, topic)
		return fmt.Sprintf("kafka: {brokers: [%s], data-dir: %q}\ntopics:\n  traffic: {name: %s, partitions: 4, create: true}\n", brokers, filepath.Join(e.tmp, dir), topic)
	}
	variants := []variant{
		{name: "null gor sink", sink: `gor: {path: /dev/null}`, lead: lead},
		{name: "Kafka sink (embedded broker, in process)", kafka: kafkaScn("embedded", "e-data"),
			sink: `kafka: {topic: traffic}`, lead: lead + 2*time.Second}, // the broker starts (and creates the topic) before the capture opens its socket
		{name: "Kafka sink (`replayctl broker` subprocess)", sink: `kafka: {topic: traffic}`, lead: lead + time.Second, goalD: true, spool: true,
			broker: func() (string, int, func(), error) { return e.startBroker(ctx, filepath.Join(e.tmp, "e-broker")) }},
	}
	if e.kafka != "" {
		variants = append(variants, variant{name: "Kafka sink (Kafka " + e.kafka + ")", sink: `kafka: {topic: traffic}`, lead: lead + time.Second, goalD: true,
			broker: func() (string, int, func(), error) { return e.kafka, kafkaPID(e.kafka), func() {}, nil }})
	}
	for i, v := range variants {
		report := filepath.Join(e.tmp, fmt.Sprintf("e-%d.json", i))
		kafkaLine := v.kafka
		var stopBroker func()
		var brokerAddr string
		brokerPID := 0
		if v.broker != nil {
			addr, pid, stop, err := v.broker()
			if err != nil {
				return rows, note, err
			}
			stopBroker, brokerPID = stop, pid
			kafkaLine = kafkaScn(addr, fmt.Sprintf("e-data-%d", i))
			brokerAddr = addr
		}
		scn, err := e.writeScenario(fmt.Sprintf("e-capture-%d", i), fmt.Sprintf(`version: 1
name: bench-capture
%sjobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {%s}
    stop: {after: %s}
    on-loss: warn # losses show in the captured/served row, not as a failed run
    report: {json: %q}
`, kafkaLine, tg.port(), v.sink, stopAfter(v.lead), report))
		if err != nil {
			return rows, note, err
		}
		start := tg.count()
		profile := filepath.Join(e.tmp, fmt.Sprintf("e-cpu-%d.prof", i))
		cmd, out, errb := e.replayctlCmd("run", scn, "--progress", "never", "--cpuprofile", profile)
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
		brokerCPU0, brokerKnown := procCPU(brokerPID)
		captureCPU0, captureKnown := procCPU(cmd.Process.Pid)
		w, werr := e.wrk(ctx, tg.url()+"/", conns, load)
		var runErr error
		select {
		case runErr = <-done:
		case <-time.After(stopAfter(v.lead) + 30*time.Second):
			runErr = fmt.Errorf("did not stop within %v after stop.after", 30*time.Second)
			_ = e.procs.stop(cmd, syscall.SIGINT, 10*time.Second)
		}
		res := collect(cmd, out, errb, time.Since(t0))
		brokerCPU1, brokerStill := procCPU(brokerPID)
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

		capRow := Row{Fig: "e", What: "(c) capture on lo → " + v.name + ": requests captured / served, packets lost",
			Ours: fmt.Sprintf("%d captured, %d kernel drops, %d queue overflow", rec.Requests, rec.Counters["source.kernel-drops"], rec.Counters["source.queue-overflow"]),
			Ref:  fmt.Sprintf("%d served", served)}
		if served > 0 {
			capRow.Ratio = fmt.Sprintf("%.4f (goal: all, 0 lost)", float64(rec.Requests)/float64(served))
		}
		capRow.Verdict = verdict(rec.Requests == served && rec.Failed == 0 && rec.Counters["source.kernel-drops"] == 0 && rec.Counters["source.queue-overflow"] == 0)
		rateRow := ratioRow("e", "wrk with capture → "+v.name+" vs without (req/s)", w.Rate, ref(), "req/s", 0.85)
		rateRow.Ours = "wrk " + rateRow.Ours
		rateRow.Ref = "wrk " + rateRow.Ref
		perReq := 0.0
		if rec.Requests > 0 {
			perReq = float64(res.CPU.Microseconds()) / float64(rec.Requests)
		}
		if v.goalD {
			rateRow.What = "(d) " + rateRow.What
			rateRow.Ratio = fmt.Sprintf("%.1f %% lower (goal ≤ 15 %%)", 100*(1-w.Rate/ref()))
			cpuRow := Row{Fig: "e", What: "(d) replayctl CPU per captured request (run with --cpuprofile) → " + v.name + " vs tcpdump writing a pcap (µs/request)",
				Ours: fmt.Sprintf("%.1f µs", perReq), Ref: fmt.Sprintf("%.1f µs (tcpdump -w file)", tdCPUPerReq)}
			if tdCPUPerReq > 0 {
				cpuRow.Ratio = fmt.Sprintf("%.2f (goal ≤ 1)", perReq/tdCPUPerReq)
				cpuRow.Verdict = verdict(perReq <= tdCPUPerReq)
			} else {
				cpuRow.Ratio, cpuRow.Verdict = "—", NotMeasured
			}
			rows = append(rows, capRow, rateRow, cpuRow)
		} else {
			rateRow.Ratio = fmt.Sprintf("%.1f %% lower (information)", 100*(1-w.Rate/ref()))
			rateRow.Verdict = Info
			rows = append(rows, capRow, rateRow)
		}
		note.Lines = append(note.Lines,
			fmt.Sprintf("With capture → %s: `replayctl run --cpuprofile` of `source: {capture: {interface: lo, ports: [%d], responses: true}}`, `sink: {%s}`, `stop: {after: %s}`, started %s before wrk → %s req/s%s (alone: %s); the server counted %d requests, replayctl recorded %d requests and %d responses (%d written, %d failed); replayctl used %.1f CPU-seconds over %s (%.0f %% of one core, %.1f µs per captured request), peak RSS %s MiB.",
				v.name, tg.port(), v.sink, stopAfter(v.lead), v.lead, num(w.Rate), errSuffix(w.Errors), num(ref()), served, rec.Requests, rec.Responses, rec.Written, rec.Failed,
				res.CPU.Seconds(), res.Elapsed.Round(100*time.Millisecond), 100*res.CPU.Seconds()/res.Elapsed.Seconds(), perReq, num(float64(res.MaxRSSKiB)/1024)),
			"Capture counters: "+lossCounters(rec.Counters)+".",
			brokerCPULine(v.broker != nil, brokerPID, brokerKnown && brokerStill && captureKnown, brokerCPU1-brokerCPU0, res.CPU-captureCPU0, rec.Requests),
			"Where its CPU went (`--cpuprofile`, `go tool pprof -top -cum`; shares of the samples, an \"of which\" part is inside the one before it): "+e.cpuShares(ctx, profile, captureParts)+".",
			"Flame graph (the widest frames): "+e.flameSummary(ctx, profile, 8))
		if v.spool {
			// The capture rate of (d): messages recorded per second of load.
			capRate := float64(rec.Requests+rec.Responses) / load.Seconds()
			sr, lines, err := e.spoolThroughput(ctx, v.name, brokerAddr, capRate)
			note.Lines = append(note.Lines, lines...)
			if err != nil {
				stopBroker()
				return rows, note, err
			}
			rows = append(rows, sr...)
		}
		if stopBroker != nil {
			stopBroker()
		}
	}
	parts := make([]string, len(bases))
	for i, b := range bases {
		parts[i] = num(b)
	}
	note.Lines = append(note.Lines, "wrk alone, in order: "+strings.Join(parts, ", ")+" req/s.",
		"GoReplay 2.0 costs about 27 % of wrk's rate on this test (from the brief; not re-measured here).")
	return rows, note, nil
}

// tcpdumpResult is load's result with tcpdump running, tcpdump's counters
// and its CPU time.
type tcpdumpResult struct {
	wrkResult
	Out string
	CPU time.Duration
}

// tcpdump runs tcpdump on lo for port, writing to file, around load
// (started lead before it), stops it with SIGINT and returns load's result,
// tcpdump's counters and its CPU time.
func (e *env) tcpdump(ctx context.Context, port int, file string, lead time.Duration, load func() (wrkResult, error)) (tcpdumpResult, error) {
	cmd := exec.Command("tcpdump", "-i", "lo", "-w", file, "-s", "0", "tcp", "port", strconv.Itoa(port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := e.procs.start(cmd); err != nil {
		return tcpdumpResult{}, err
	}
	select {
	case <-time.After(lead):
	case <-ctx.Done():
		_ = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
		return tcpdumpResult{}, ctx.Err()
	}
	w, err := load()
	_ = e.procs.stop(cmd, syscall.SIGINT, 5*time.Second)
	res := tcpdumpResult{wrkResult: w}
	if cmd.ProcessState != nil {
		res.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return res, err
	}
	var stats []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "packets") {
			stats = append(stats, strings.TrimSpace(l))
		}
	}
	if len(stats) == 0 {
		return res, fmt.Errorf("tcpdump: no statistics in its output:\n%s", out.String())
	}
	res.Out = strings.Join(stats, ", ")
	return res, nil
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

// brokerCPULine tells the CPU the broker process and the capture used from
// the start of the load to the end of the capture: on a shared machine the
// broker's comes out of wrk's rate as much as the capture's own does.
func brokerCPULine(apart bool, pid int, known bool, broker, capture time.Duration, requests int64) string {
	switch {
	case !apart:
		return "Broker CPU: none apart (no broker, or the embedded one in replayctl's process, counted in its CPU)."
	case pid == 0:
		return "Broker CPU: not measured (its pid is unknown: not a broker `make kafka-up` started from this checkout)."
	case !known:
		return fmt.Sprintf("Broker CPU: not measured (/proc/PID/stat of the broker, pid %d, or of the capture could not be read before and after the load).", pid)
	case requests == 0:
		return "Broker CPU: not given per request (no request was captured)."
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(requests) }
	return fmt.Sprintf("Broker CPU (pid %d, /proc/PID/stat, from the start of the load to the capture's end): %.1f CPU-seconds, %.1f µs per captured request; over the same span the capture used %.1f µs per request, together %.1f µs.",
		pid, broker.Seconds(), per(broker), per(capture), per(broker+capture))
}

// kafkaPID is the pid of the real Kafka broker at addr if `make kafka-up`
// started it from this checkout (build/kafka/kafka.pid, and addr in its
// server.properties; the harness runs from the repository root), or 0: a
// broker started some other way is not measured rather than mistaken for
// another process.
func kafkaPID(addr string) int {
	props, err := os.ReadFile(filepath.Join("build", "kafka", "server.properties"))
	if err != nil || !strings.Contains(string(props), "advertised.listeners=PLAINTEXT://"+addr+"\n") {
		return 0
	}
	b, err := os.ReadFile(filepath.Join("build", "kafka", "kafka.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
