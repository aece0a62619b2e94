package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/spool"
)

// startBroker starts `replayctl broker` on a free port and returns its
// address, its pid and a function that stops it.
func (e *env) startBroker(ctx context.Context, dataDir string) (string, int, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", 0, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd, out, errb := e.replayctlCmd("broker", "--listen", addr, "--data-dir", dataDir)
	if err := e.procs.start(cmd); err != nil {
		return "", 0, nil, err
	}
	if err := waitTCP(ctx, addr, 20*time.Second); err != nil {
		_ = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
		return "", 0, nil, fmt.Errorf("replayctl broker: %w\n%s%s", err, out, errb)
	}
	return addr, cmd.Process.Pid, func() { _ = e.procs.stop(cmd, syscall.SIGTERM, 10*time.Second) }, nil
}

// spoolThroughput measures goal (e) on the broker at addr: fig d's
// messages written through kafkasink with a spool while its health says the
// broker is down, so that every message goes through the spool; the write
// rate is timed to the last Write, the drain rate to the end of Close
// (every record acknowledged). capRate is the capture rate of (d) in
// messages/s; the goal is twice that.
func (e *env) spoolThroughput(ctx context.Context, name, addr string, capRate float64) ([]Row, []string, error) {
	n := e.scale(200_000, 20_000)
	msgs := dMessages(n)
	conn := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("replayctl-bench")}
	admCl, err := kgo.NewClient(conn...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	topic := "bench-e-spool-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := kafkaio.EnsureTopic(ctx, adm, topic, 4, 1, nil); err != nil {
		return nil, nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topic)
	}()
	popts, err := kafkasink.ProducerOpts(dCompression, 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	h := kafkasink.NewHealth()
	cl, err := kgo.NewClient(append(append(append([]kgo.Opt(nil), conn...), popts...), kgo.WithHooks(h))...)
	if err != nil {
		return nil, nil, fmt.Errorf("producer: %w", err)
	}
	defer cl.Close()
	sp, err := spool.Open(filepath.Join(e.tmp, "e-spool-"+topic), spool.Options{MaxBytes: 4 << 30})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = sp.Close() }()
	// The broker is up, but while the messages are written the sink is told
	// every millisecond that it is not: every record goes through the
	// spool, which the drainer empties meanwhile.
	stop, held := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(held)
		down := errors.New("bench: broker held down")
		for {
			h.OnBrokerConnect(kgo.BrokerMetadata{}, 0, nil, down)
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	sink := kafkasink.New(cl, topic, kafkasink.Options{RecordingID: "rec-bench-e", Host: "bench", DeliveryTimeout: 60 * time.Second, Spool: sp, Health: h})
	bounded, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	for _, m := range msgs {
		if err := sink.Write(bounded, m); err != nil {
			close(stop)
			return nil, nil, err
		}
	}
	writeTime := time.Since(t0)
	close(stop)
	<-held
	err = sink.Close(bounded)
	drainTime := time.Since(t0)
	if err != nil {
		return nil, nil, fmt.Errorf("spooled kafka sink: %w", err)
	}
	st := sink.Stats()
	if st["written"] != int64(n) {
		return nil, nil, fmt.Errorf("spooled kafka sink wrote %d of %d messages", st["written"], n)
	}
	write, drain := float64(n)/writeTime.Seconds(), float64(n)/drainTime.Seconds()
	goal := 2 * capRate
	rows := []Row{
		{Fig: "e", What: "(e) spool write (kafkasink → spool) vs 2× the capture rate of (d) (msgs/s)", Ours: num(write) + " msgs/s",
			Ref: fmt.Sprintf("2 × %s msgs/s captured", num(capRate)), Ratio: fmt.Sprintf("%.2f (goal ≥ 1)", write/goal), Verdict: verdict(write >= goal)},
		{Fig: "e", What: "(e) spool drain into " + name + " vs 2× the capture rate of (d) (msgs/s)", Ours: num(drain) + " msgs/s",
			Ref: fmt.Sprintf("2 × %s msgs/s captured", num(capRate)), Ratio: fmt.Sprintf("%.2f (goal ≥ 1)", drain/goal), Verdict: verdict(drain >= goal)},
	}
	lines := []string{fmt.Sprintf("Spool (e): %d of fig d's request messages written through `kafkasink` (compression %s) with a spool, its health told the broker is down, so that %d of them went through the spool and the drainer into %s (%s); the writes took %s, Close returned (every record acknowledged) %s after the first write. The capture rate of (d) is the messages (requests and responses) recorded per second of wrk's load.",
		n, dCompression, st["spooled"], name, addr, writeTime.Round(time.Millisecond), drainTime.Round(time.Millisecond))}
	return rows, lines, nil
}
