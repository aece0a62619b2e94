package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
)

func TestRecordRedactsByDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", []req{
		{0, get("/me", "Authorization: Bearer top-secret-token", "X-Keep: visible")},
		{time.Millisecond, get("/other")},
	})
	yaml := `version: 1
name: redact
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {gor: {path: out/redacted.gor}}
`
	res := run(t, dir, yaml, engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	msgs := readGor(t, filepath.Join(dir, "out", "redacted.gor"))
	if len(msgs) != 4 {
		t.Fatalf("the gor sink holds %d messages, want 4 (2 requests, 2 responses)", len(msgs))
	}
	first := string(msgs[0].Raw)
	if strings.Contains(first, "top-secret-token") {
		t.Errorf("the Authorization value was recorded:\n%s", first)
	}
	if !strings.Contains(first, "Authorization: REDACTED\r\n") {
		t.Errorf("want the Authorization header kept with a masked value, got:\n%q", first)
	}
	if !strings.Contains(first, "X-Keep: visible\r\n") {
		t.Errorf("a header not listed was changed:\n%q", first)
	}
	if !strings.Contains(res.out, "redacted-values=1") {
		t.Errorf("the summary does not count the redacted value:\n%s", res.out)
	}
}

func readGor(t *testing.T, path string) []*message.Message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := gorfile.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []*message.Message
	for {
		p, _, err := r.Next()
		if err != nil {
			break
		}
		m, err := message.DecodePayload(append([]byte(nil), p...))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// TestTargetDownFailsWithoutAsserts: a replay in which no request got a
// response fails (exit 1), naming the error classes, unless asserts say
// what the job expects.
func TestTargetDownFailsWithoutAsserts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(6, time.Millisecond))
	url := "http://" + closedAddr(t)
	res := run(t, dir, replayYAML(url, "speed: max"), engine.Options{})
	if res.err == nil || !strings.Contains(res.err.Error(), "none of the 6 requests got a response (connect-refused 6)") {
		t.Fatalf("err = %v, want the job to fail naming connect-refused\n%s", res.err, res.out)
	}
	if errors.Is(res.err, engine.ErrInvalid) || !strings.Contains(res.out, "FAILED") {
		t.Errorf("want a runtime failure shown in the summary:\n%s", res.out)
	}
	if n := number(t, readReport(t, filepath.Join(dir, "report.json")), "requests", "errors"); n != 6 {
		t.Errorf("report requests.errors = %v, want 6", n)
	}

	// The job says a dead target is what it tests: it passes.
	res = run(t, dir, replayYAML(url, "speed: max\nassert: ['errors.rate == 1']"), engine.Options{})
	if res.err != nil {
		t.Fatalf("with assert errors.rate == 1: %v\n%s", res.err, res.out)
	}
}

func TestTargetDownCountsErrorsAndFailsAssert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(6, time.Millisecond))
	url := "http://" + closedAddr(t)
	res := run(t, dir, replayYAML(url, "speed: max\nassert: ['errors.rate < 0.01', 'requests.sent == 6']"), engine.Options{})
	var ae *engine.AssertionError
	if !errors.As(res.err, &ae) {
		t.Fatalf("err = %v, want *engine.AssertionError\n%s", res.err, res.out)
	}
	if len(ae.Failed) != 1 || !strings.Contains(ae.Failed[0], "errors.rate < 0.01") {
		t.Errorf("failed assertions = %q, want only errors.rate < 0.01", ae.Failed)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if n := number(t, rep, "requests", "errors"); n != 6 {
		t.Errorf("requests.errors = %v, want 6", n)
	}
	if n := number(t, rep, "error_classes", "connect-refused"); n != 6 {
		t.Errorf("error_classes.connect-refused = %v, want 6", n)
	}
	if !strings.Contains(res.out, "connect-refused") || !strings.Contains(res.out, "FAIL") {
		t.Errorf("the summary does not show the error class and the failed assertion:\n%s", res.out)
	}
}

func TestDenyTargetsIsACompileError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(3, time.Millisecond))
	tg := newTarget(t)
	yaml := replayYAML(tg.URL(), "speed: max") + "safety: {deny-targets: [127.0.0.0/8]}\n"
	s := loadScenario(t, dir, yaml)
	_, err := engine.Compile(s, engine.Options{DataDir: filepath.Join(dir, "data")})
	var diags scenario.Diagnostics
	if !errors.As(err, &diags) || len(diags) != 1 {
		t.Fatalf("Compile: %v, want one diagnostic", err)
	}
	d := diags[0]
	// targets.app is on line 4, column 8.
	if d.File != filepath.Join(dir, "scenario.yaml") || d.Line != 4 || d.Col < 1 || !strings.Contains(d.Message, "deny-targets") {
		t.Errorf("diagnostic %q, want at scenario.yaml:4 mentioning deny-targets", d.String())
	}
	if tg.count() != 0 {
		t.Errorf("the denied target received %d requests", tg.count())
	}
}

func TestCaptureHostGuard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tg := newTarget(t)
	server := netip.MustParseAddrPort(tg.Addr())
	writePcap(t, filepath.Join(dir, "cap.pcap"), server, evenly(4, 5*time.Millisecond))
	yaml := func(allow bool) string {
		return fmt.Sprintf(`version: 1
name: guard
topics:
  traffic: {name: guard-http, create: true}
targets:
  app: {url: %q}
safety: {allow-capture-hosts: %t}
jobs:
  record:
    source: {pcap: {path: cap.pcap, ports: [%d], responses: true}}
    sink: {kafka: {topic: traffic}}
    save-window: captured
  replay:
    needs: [record]
    source: {window: captured}
    speed: max
    sink: {http: {target: app}}
`, tg.URL(), allow, server.Port())
	}
	res := run(t, dir, yaml(false), engine.Options{})
	if !errors.Is(res.err, engine.ErrInvalid) || !strings.Contains(res.err.Error(), "allow-capture-hosts") {
		t.Fatalf("replay to the capture address: err = %v, want ErrInvalid naming allow-capture-hosts\n%s", res.err, res.out)
	}
	if !strings.Contains(res.out, "recorded  4 requests") && !strings.Contains(res.out, "4 requests") {
		t.Errorf("the record job did not record the pcap's 4 requests:\n%s", res.out)
	}
	if n := tg.count(); n != 0 {
		t.Fatalf("the refused target received %d requests", n)
	}
	res = run(t, dir, yaml(true), engine.Options{Jobs: []string{"replay"}})
	if res.err != nil {
		t.Fatalf("replay with allow-capture-hosts: %v\n%s", res.err, res.out)
	}
	if n := tg.count(); n != 4 {
		t.Errorf("with allow-capture-hosts the target received %d requests, want 4", n)
	}
}

func TestJSONReportFields(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(10, 2*time.Millisecond))
	tg := newTarget(t)
	cat, topic, win := unique(t, "cat"), unique(t, "topic"), unique(t, "win")
	res := run(t, dir, kafkaYAML(cat, topic, win, tg.URL(), ""), engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if j := field(t, rep, "job"); j != "replay" {
		t.Errorf("job = %v, want replay", j)
	}
	for k, want := range map[string]float64{"sent": 10, "ok": 10, "errors": 0} {
		if got := number(t, rep, "requests", k); got != want {
			t.Errorf("requests.%s = %v, want %v", k, got, want)
		}
	}
	if got := number(t, rep, "status", "200"); got != 10 {
		t.Errorf("status.200 = %v, want 10", got)
	}
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if v := number(t, rep, "latency", k); v <= 0 {
			t.Errorf("latency.%s = %v, want > 0 ms", k, v)
		}
	}
	for _, k := range []string{"scheduled", "achieved"} {
		number(t, rep, "rate", k)
	}
	for _, k := range []string{"p50", "p99", "max"} {
		number(t, rep, "lateness", k)
	}
	if got := field(t, rep, "window", "topic"); got != topic {
		t.Errorf("window.topic = %v, want %s", got, topic)
	}
	parts, ok := field(t, rep, "window", "partitions").(map[string]any)
	if !ok || len(parts) == 0 {
		t.Fatalf("window.partitions = %v, want the offset ranges", field(t, rep, "window", "partitions"))
	}
	total := 0.0
	for p := range parts {
		total += number(t, rep, "window", "partitions", p, "end") - number(t, rep, "window", "partitions", p, "start")
	}
	if total != 20 {
		t.Errorf("window offsets cover %v records, want 20", total)
	}
}

func TestInterruptDrainsAndReports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// 10 requests 1 s apart, replayed at speed 0.01: 100 s between sends.
	writeGor(t, dir, "rec.gor", evenly(10, time.Second))
	tg := newTarget(t)
	opts := engine.Options{}
	plan := compile(t, dir, replayYAML(tg.URL(), "speed: 0.01"), &opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- plan.Run(ctx) }()
	waitFor(t, "the first request", func() bool { return tg.count() >= 1 })
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	out := opts.Out.(*syncBuffer).String()
	if !strings.Contains(out, "interrupted") || !strings.Contains(out, "sent 1") {
		t.Errorf("the summary does not report the interrupted job and its one request:\n%s", out)
	}
	if n := tg.count(); n != 1 {
		t.Errorf("target counted %d requests, want 1", n)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if n := number(t, rep, "requests", "sent"); n != 1 {
		t.Errorf("report requests.sent = %v, want 1", n)
	}
	// The scenario is outside the working directory: the summary gives
	// the report's absolute path, not the scenario's relative one.
	if !strings.Contains(out, "report    "+filepath.Join(dir, "report.json")+"\n") {
		t.Errorf("the summary does not say where the report is:\n%s", out)
	}
}

// TestInterruptWhileWaitingForResponses: a signal that comes once every
// request is sent, while the job waits for its responses, still interrupts
// the run: the job says so and the jobs that need it do not run.
func TestInterruptWhileWaitingForResponses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(1, time.Millisecond))
	silent, got := newSilentTarget(t)
	tg := newTarget(t)
	yaml := fmt.Sprintf(`version: 1
name: t
targets:
  silent: {url: "http://%s", timeout: 3s}
  app: {url: %q}
jobs:
  first:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {target: silent}}
    report: {json: first.json}
  second:
    needs: [first]
    source: {gor: {path: rec.gor}}
    sink: {http: {target: app}}
`, silent, tg.URL())
	opts := engine.Options{}
	plan := compile(t, dir, yaml, &opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- plan.Run(ctx) }()
	waitFor(t, "the request at the silent target", func() bool { return got.Load() > 0 })
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	out := opts.Out.(*syncBuffer).String()
	if !strings.Contains(out, "job first: interrupted") {
		t.Errorf("the summary does not say the first job was interrupted:\n%s", out)
	}
	if strings.Contains(out, "job second") || tg.count() != 0 {
		t.Errorf("the job that needs the interrupted one ran (%d requests):\n%s", tg.count(), out)
	}
	if rep := readReport(t, filepath.Join(dir, "first.json")); rep["interrupted"] != true {
		t.Errorf("report interrupted = %v, want true", rep["interrupted"])
	}
}

// TestInterruptDropsQueuedRequests: Ctrl-C while requests wait in the
// sender's queue (one worker, held by a target that never answers) sends
// none of them: only the request on the wire is waited for, up to its
// timeout, and the dropped ones are counted.
func TestInterruptDropsQueuedRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(5, time.Millisecond))
	silent, got := newSilentTarget(t)
	opts := engine.Options{}
	plan := compile(t, dir, replayYAML("http://"+silent, "speed: max\nsink: {http: {target: app, workers: 1, timeout: 2s}}"), &opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- plan.Run(ctx) }()
	waitFor(t, "the first request", func() bool { return got.Load() > 0 })
	time.Sleep(100 * time.Millisecond) // the others are queued
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	out := opts.Out.(*syncBuffer).String()
	if n := got.Load(); n != 1 || !strings.Contains(out, "sink.dropped-on-stop=4") || !strings.Contains(out, "sent 1 ") {
		t.Errorf("the silent target got %d requests, want 1 (4 dropped):\n%s", n, out)
	}
}

// TestInterruptDropsQueuedNoiseRequests: the compare noise target's
// sender stops at Ctrl-C as the main one does.
func TestInterruptDropsQueuedNoiseRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(5, time.Millisecond))
	silent, got := newSilentTarget(t)
	tg := newTarget(t)
	yaml := fmt.Sprintf(`version: 1
name: t
targets:
  candidate: {url: %q}
  reference: {url: "http://%s", timeout: 2s}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {target: candidate, workers: 1}}
    compare: {status: true, noise: {target: reference}}
`, tg.URL(), silent)
	opts := engine.Options{}
	plan := compile(t, dir, yaml, &opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- plan.Run(ctx) }()
	waitFor(t, "the first request at the reference", func() bool { return got.Load() > 0 })
	time.Sleep(100 * time.Millisecond) // the others are queued
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	out := opts.Out.(*syncBuffer).String()
	if n := got.Load(); n != 1 || !strings.Contains(out, "noise.dropped-on-stop=") {
		t.Errorf("the reference got %d requests, want 1 (the queued ones dropped):\n%s", n, out)
	}
}

// newSilentTarget is a loopback server that reads requests and never
// answers; it counts the request lines it received.
func newSilentTarget(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					got.Add(int64(bytes.Count(buf[:n], []byte(" HTTP/1.1\r\n"))))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String(), &got
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEnvUnsetRefused: a run whose job calls env("NAME") for a variable that
// is not set is refused before anything is sent (env() would read "" and
// send "Bearer "); set, even to "", it runs.
func TestEnvUnsetRefused(t *testing.T) {
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(3, time.Millisecond))
	tg := newTarget(t)
	yaml := replayYAML(tg.URL(), "speed: max\nrewrite:\n  - set-header: {name: Authorization, value: '\"Bearer \" + env(\"REPLAYCTL_TEST_UNSET_TOKEN\")'}")
	res := run(t, dir, yaml, engine.Options{})
	if !errors.Is(res.err, engine.ErrInvalid) || !strings.Contains(res.err.Error(), `env("REPLAYCTL_TEST_UNSET_TOKEN"): REPLAYCTL_TEST_UNSET_TOKEN is not set`) {
		t.Fatalf("err = %v, want ErrInvalid naming the unset variable\n%s", res.err, res.out)
	}
	if n := tg.count(); n != 0 {
		t.Fatalf("the target received %d requests from a refused run", n)
	}
	// A condition may read an unset variable: it is not refused.
	cond := replayYAML(tg.URL(), "speed: max\nfilter: 'env(\"REPLAYCTL_TEST_UNSET_DEBUG\") != \"1\"'")
	if res := run(t, dir, cond, engine.Options{}); res.err != nil {
		t.Fatalf("a filter reading an unset variable: %v\n%s", res.err, res.out)
	}
	if n := tg.count(); n != 3 {
		t.Fatalf("the target received %d requests, want 3", n)
	}
	t.Setenv("REPLAYCTL_TEST_UNSET_TOKEN", "")
	if res := run(t, dir, yaml, engine.Options{}); res.err != nil {
		t.Fatalf("with the variable set to \"\": %v\n%s", res.err, res.out)
	}
	if n := tg.count(); n != 6 {
		t.Errorf("the target received %d requests, want 6", n)
	}
}
