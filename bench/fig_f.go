package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/spool"
)

// fOutage is how long figure f keeps the broker down (-outage); the issue's
// scenario is 60 s, the default run uses 20 s to stay short.
var fOutage = 20 * time.Second

// fRate is the load's request rate during figure f.
const fRate = 2000

// figF: a live capture on lo into a `replayctl broker` process that is
// stopped for fOutage under a fixed-rate load: requests lost (served but not
// in the window; goal 0). Then the spool alone: its write rate to disk next
// to a plain buffered file write of the same bytes, and its drain rate into
// the embedded broker after an outage next to the sink writing the same
// messages with the broker up.
func figF(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	outage := fOutage
	if e.quick {
		outage = min(outage, 5*time.Second)
	}
	rows, err := e.outageRow(ctx, outage, &note)
	if err != nil {
		return rows, note, err
	}
	spoolRows, err := e.spoolRows(ctx, &note)
	return append(rows, spoolRows...), note, err
}

func (e *env) outageRow(ctx context.Context, outage time.Duration, note *Note) ([]Row, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dataDir := filepath.Join(e.tmp, "f-broker")
	startBroker := func() (*brokerProc, error) {
		cmd, out, errb := e.replayctlCmd("broker", "--listen", addr, "--data-dir", dataDir)
		if err := e.procs.start(cmd); err != nil {
			return nil, err
		}
		if err := waitTCP(ctx, addr, 20*time.Second); err != nil {
			_ = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
			return nil, fmt.Errorf("replayctl broker: %w\n%s%s", err, out, errb)
		}
		return &brokerProc{cmd: cmd}, nil
	}
	b, err := startBroker()
	if err != nil {
		return nil, err
	}
	defer func() { _ = e.procs.stop(b.cmd, syscall.SIGTERM, 10*time.Second) }()

	tg, err := startTarget()
	if err != nil {
		return nil, err
	}
	defer tg.close()
	report := filepath.Join(e.tmp, "f-record.json")
	scn, err := e.writeScenario("f-outage", fmt.Sprintf(`version: 1
name: bench-outage
kafka: {brokers: [%s], delivery-timeout: 60s}
topics:
  traffic: {name: bench-outage, partitions: 4, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {kafka: {topic: traffic, spool: {dir: %q}}}
    stop: {after: 10m}
    save-window: bench-outage
    report: {json: %q}
`, addr, tg.port(), filepath.Join(e.tmp, "f-spool"), report))
	if err != nil {
		return nil, err
	}
	cmd, out, errb := e.replayctlCmd("run", scn, "--progress", "never")
	t0 := time.Now()
	if err := e.procs.start(cmd); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- e.procs.wait(cmd) }()
	select {
	case err := <-done:
		res := collect(cmd, out, errb, time.Since(t0))
		return nil, fmt.Errorf("capture ended before the load: %v\n%s", err, tail(res.Stderr+res.Stdout, 10))
	case <-time.After(3 * time.Second): // connect, create the topic, open the packet socket
	}

	stopLoad := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	const workers = 4
	every := workers * time.Second / fRate
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			next := time.Now()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(every)
				resp, err := client.Get(fmt.Sprintf("%s/outage/%d", tg.url(), i))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}()
	}
	before, after := 3*time.Second, 5*time.Second
	time.Sleep(before)
	if err := e.procs.stop(b.cmd, syscall.SIGTERM, 15*time.Second); err != nil {
		e.log.Warn("broker stop", "err", err)
	}
	time.Sleep(outage)
	if b, err = startBroker(); err != nil {
		close(stopLoad)
		wg.Wait()
		return nil, err
	}
	time.Sleep(after)
	close(stopLoad)
	wg.Wait()
	time.Sleep(1500 * time.Millisecond) // the capture's ordering window
	stopAt := time.Now()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		runErr = fmt.Errorf("did not end within 90 s of SIGINT")
	}
	drainTime := time.Since(stopAt)
	res := collect(cmd, out, errb, time.Since(t0))
	served := tg.count()
	var rec struct {
		recordReport
		Lost map[string]int64 `json:"lost"`
	}
	if err := readJSON(report, &rec); err != nil {
		return nil, fmt.Errorf("%v (run: %v)\n%s", err, runErr, tail(res.Stderr+res.Stdout, 10))
	}
	lost := served - rec.Requests
	row := Row{Fig: "f", What: fmt.Sprintf("requests lost during a %s broker outage at %d req/s (live capture on lo → Kafka; the issue's case is 60 s: `-outage 60s`)", outage, fRate),
		Ours: fmt.Sprintf("%d lost (%d recorded)", lost, rec.Requests), Ref: fmt.Sprintf("%d served", served),
		Ratio: fmt.Sprintf("%d lost (goal 0)", lost)}
	row.Verdict = verdict(lost == 0 && rec.Lost["total"] == 0 && runErr == nil)
	note.Lines = append(note.Lines,
		fmt.Sprintf("Outage: a `replayctl broker` process on %s, stopped (SIGTERM) %s after a paced load of %d req/s (4 keep-alive clients) started, restarted on the same data directory %s later, load for %s more; `replayctl run` of a live capture of lo:%d into it (spool in the temp dir), stopped with SIGINT 1.5 s after the load.", addr, before, fRate, outage, after, tg.port()),
		fmt.Sprintf("The server answered %d requests (client errors %d); the window holds %d requests and %d responses; report lost %v; exit: %v; the end (drain and acknowledgements) took %s after SIGINT; replayctl used %.1f CPU-seconds, peak RSS %s MiB.",
			served, failed.Load(), rec.Requests, rec.Responses, rec.Lost, errText(runErr), drainTime.Round(100*time.Millisecond), res.CPU.Seconds(), num(float64(res.MaxRSSKiB)/1024)),
		fmt.Sprintf("Spool during the outage: %d messages spooled, peak %s MiB on disk; capture counters: %s.",
			rec.Counters["sink.spooled"], num(float64(rec.Counters["sink.spool-peak-bytes"])/(1<<20)), lossCounters(rec.Counters)))
	return []Row{row}, nil
}

type brokerProc struct{ cmd *exec.Cmd }

func errText(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// spoolRows measures the spool's write rate to disk and its drain rate into
// the embedded broker.
func (e *env) spoolRows(ctx context.Context, note *Note) ([]Row, error) {
	n := e.scale(200_000, 20_000)
	msgs := dMessages(n)
	recs := make([][]byte, n)
	var total int64
	for i, m := range msgs {
		recs[i] = m.Payload()
		total += int64(len(recs[i]))
	}

	// Write: spool.Append vs a buffered file write of the same bytes.
	dir := filepath.Join(e.tmp, "f-spool-bench")
	sp, err := spool.Open(dir, spool.Options{MaxBytes: 4 << 30})
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	for _, r := range recs {
		if err := sp.Append(r); err != nil {
			_ = sp.Close()
			return nil, err
		}
	}
	write := time.Since(t0)
	t0 = time.Now()
	for range n {
		if _, err := sp.Next(); err != nil {
			_ = sp.Close()
			return nil, err
		}
	}
	read := time.Since(t0)
	_ = sp.Close()
	rawWrite, rawRead, err := plainFile(filepath.Join(e.tmp, "f-plain"), recs)
	if err != nil {
		return nil, err
	}
	rate := func(d time.Duration) (float64, float64) {
		return float64(n) / d.Seconds(), float64(total) / d.Seconds() / 1e6
	}
	sw, swb := rate(write)
	rw, rwb := rate(rawWrite)
	sr, srb := rate(read)
	rr, rrb := rate(rawRead)
	rows := []Row{
		{Fig: "f", What: "spool write to disk (msgs/s, MB/s)", Ours: fmt.Sprintf("%s/s, %.0f MB/s", num(sw), swb), Ref: fmt.Sprintf("%s/s, %.0f MB/s (buffered file write)", num(rw), rwb),
			Ratio: fmt.Sprintf("%.2f", sw/rw), Verdict: Info},
		{Fig: "f", What: "spool read back (msgs/s, MB/s)", Ours: fmt.Sprintf("%s/s, %.0f MB/s", num(sr), srb), Ref: fmt.Sprintf("%s/s, %.0f MB/s (buffered file read)", num(rr), rrb),
			Ratio: fmt.Sprintf("%.2f", sr/rr), Verdict: Info},
	}
	note.Lines = append(note.Lines, fmt.Sprintf("Spool: %d request payloads of %d bytes on average (fig d's messages), appended then read back (CRC-32C checked) in 16 MiB segments in the temp dir; the reference writes and reads the same bytes with a 256 KiB bufio on one file.", n, total/int64(n)))

	// Drain: the sink with the broker down (everything spooled), then the
	// broker back, until Close; the reference writes the same messages
	// with the broker up (nothing spooled).
	drain, direct, st, err := e.drainRun(ctx, msgs)
	if err != nil {
		return rows, err
	}
	dr, drb := rate(drain)
	di, dib := rate(direct)
	rows = append(rows, Row{Fig: "f", What: "spool drain into Kafka after an outage (embedded broker; msgs/s, MB/s)",
		Ours: fmt.Sprintf("%s/s, %.0f MB/s", num(dr), drb), Ref: fmt.Sprintf("%s/s, %.0f MB/s (sink with the broker up)", num(di), dib),
		Ratio: fmt.Sprintf("%.2f", dr/di), Verdict: Info})
	note.Lines = append(note.Lines, fmt.Sprintf("Drain: kafkasink with a spool (compression %s), the embedded broker stopped while the %d messages were written (%d spooled, %d held in memory by the producer), then started again on the same port and data directory; time from the restart to Close returning. Reference: the same messages through the same sink with the broker up from the start, from the first Write to Close.", dCompression, n, st["spooled"], int64(n)-st["spooled"]))
	return rows, nil
}

// plainFile writes recs to path through a bufio.Writer, then reads them back.
func plainFile(path string, recs [][]byte) (w, r time.Duration, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	bw := bufio.NewWriterSize(f, 256<<10)
	for _, b := range recs {
		if _, err := bw.Write(b); err != nil {
			f.Close()
			return 0, 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return 0, 0, err
	}
	w = time.Since(t0)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return 0, 0, err
	}
	t0 = time.Now()
	br := bufio.NewReaderSize(f, 256<<10)
	for _, b := range recs {
		if _, err := io.ReadFull(br, b[:len(b):len(b)]); err != nil {
			f.Close()
			return 0, 0, err
		}
	}
	r = time.Since(t0)
	f.Close()
	return w, r, os.Remove(path)
}

// drainRun measures the drain after an outage and the direct write.
func (e *env) drainRun(ctx context.Context, msgs []*message.Message) (drain, direct time.Duration, st map[string]int64, err error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dataDir := filepath.Join(e.tmp, "f-drain-broker")
	start := func() (*kafkaio.Embedded, error) {
		return kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{Listen: addr, DataDir: dataDir, Partitions: 4})
	}
	b, err := start()
	if err != nil {
		return 0, 0, nil, err
	}
	defer func() { _ = b.Close() }()
	sink := func(topic string) (*kafkasink.Sink, *kgo.Client, *spool.Spool, error) {
		popts, err := kafkasink.ProducerOpts(dCompression, time.Minute)
		if err != nil {
			return nil, nil, nil, err
		}
		h := kafkasink.NewHealth()
		cl, err := kgo.NewClient(append(popts, kgo.SeedBrokers(addr), kgo.WithHooks(h))...)
		if err != nil {
			return nil, nil, nil, err
		}
		sp, err := spool.Open(filepath.Join(e.tmp, "f-drain-spool-"+topic), spool.Options{MaxBytes: 4 << 30})
		if err != nil {
			cl.Close()
			return nil, nil, nil, err
		}
		s := kafkasink.New(cl, topic, kafkasink.Options{DeliveryTimeout: 5 * time.Minute, Spool: sp, Health: h, Logger: e.log})
		return s, cl, sp, nil
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, 0, nil, err
	}
	for _, topic := range []string{"f-direct", "f-drain"} {
		if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(admCl), topic, 4, 1, nil); err != nil {
			admCl.Close()
			return 0, 0, nil, err
		}
	}
	admCl.Close()

	// Reference: the broker up.
	s, cl, sp, err := sink("f-direct")
	if err != nil {
		return 0, 0, nil, err
	}
	t0 := time.Now()
	for _, m := range msgs {
		if err := s.Write(ctx, m); err != nil {
			return 0, 0, nil, err
		}
	}
	err = s.Close(ctx)
	direct = time.Since(t0)
	cl.Close()
	_ = sp.Close()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("direct write: %w", err)
	}

	// Outage: everything written while the broker is down.
	s, cl, sp, err = sink("f-drain")
	if err != nil {
		return 0, 0, nil, err
	}
	defer cl.Close()
	defer sp.Close()
	// A first record connects the client, so that the outage is seen.
	if err := s.Write(ctx, msgs[0]); err != nil {
		return 0, 0, nil, err
	}
	time.Sleep(500 * time.Millisecond)
	_ = b.Close()
	time.Sleep(time.Second)
	for _, m := range msgs[1:] {
		if err := s.Write(ctx, m); err != nil {
			return 0, 0, nil, err
		}
	}
	st = s.Stats()
	if b, err = start(); err != nil {
		return 0, 0, nil, err
	}
	t0 = time.Now()
	err = s.Close(ctx)
	drain = time.Since(t0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("drain: %w", err)
	}
	if got := s.Stats()["written"]; got != int64(len(msgs)) {
		return 0, 0, nil, fmt.Errorf("drain: %d of %d messages written", got, len(msgs))
	}
	return drain, direct, st, nil
}
