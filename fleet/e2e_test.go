package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// bin is the replayctl binary every process of these tests runs.
var bin testutil.Bin

func TestMain(m *testing.M) { testutil.Main(m, "../cmd/replayctl", raceBuild, &bin) }

// counter is a loopback HTTP server that counts what it served, by path.
type counter struct {
	port  int
	mu    sync.Mutex
	paths map[string]int
	total atomic.Int64
	last  atomic.Int64 // unix ns of the last request
}

func newCounter(t *testing.T) *counter {
	t.Helper()
	c := &counter{paths: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.paths[r.URL.Path]++
		c.mu.Unlock()
		c.total.Add(1)
		c.last.Store(time.Now().UnixNano())
		fmt.Fprintf(w, "ok %s\n", r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.paths))
	for k, v := range c.paths {
		out[k] = v
	}
	return out
}

// fleetEnv is a broker and the files the processes share.
type fleetEnv struct {
	dir     string
	brokers string
	key     string // trusted signing key
	other   string // a key agents do not trust
	pub     string
	suffix  string         // makes labels, names and topics unique per run
	broker  *testutil.Proc // the `replayctl broker` subprocess (nil with the real Kafka)
}

func (e *fleetEnv) b() []string { return []string{"--brokers", e.brokers} }

// setup starts a `replayctl broker` subprocess (or uses the real Kafka) and
// writes the keys.
func setup(t *testing.T, real string) *fleetEnv {
	t.Helper()
	e := &fleetEnv{dir: t.TempDir(), suffix: strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)}
	switch real {
	case "none":
	case "":
		port := testutil.FreePort(t)
		e.brokers = fmt.Sprintf("127.0.0.1:%d", port)
		e.broker = bin.Start(t, e.dir, "broker", "--listen", e.brokers, "--data-dir", filepath.Join(e.dir, "broker"), "--partitions", "4")
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, err := net.Dial("tcp", e.brokers)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("broker did not start")
			}
			time.Sleep(100 * time.Millisecond)
		}
	default:
		e.brokers = real
		kafkatest.DropTopicsAfter(t, strings.Split(real, ","), "-"+e.suffix)
	}
	for _, k := range []string{"trusted", "other"} {
		if out, code := bin.Run(t, e.dir, "keys", "new", filepath.Join(e.dir, "keys", k)); code != 0 {
			t.Fatalf("keys new: %s", out)
		}
	}
	e.key, e.other, e.pub = filepath.Join(e.dir, "keys", "trusted.key"), filepath.Join(e.dir, "keys", "other.key"), filepath.Join(e.dir, "keys", "trusted.pub")
	st, err := os.Stat(e.key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", st.Mode(), err)
	}
	return e
}

func (e *fleetEnv) agent(t *testing.T, name, labels, allow string, extra ...string) *testutil.Proc {
	t.Helper()
	args := append([]string{"agent", "--brokers", e.brokers, "--name", name + "-" + e.suffix, "--labels", labels,
		"--allow", allow, "--trust", e.pub, "--work-dir", filepath.Join(e.dir, "work", name)}, extra...)
	return bin.Start(t, e.dir, args...)
}

func (e *fleetEnv) write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "SUFFIX", e.suffix)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls `jobs show` until its output matches re.
func (e *fleetEnv) waitFor(t *testing.T, id string, re string, timeout time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		out, _ := bin.Run(t, e.dir, append([]string{"jobs", "show", id}, e.b()...)...)
		if rx.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: no %q within %s; last show:\n%s", id, re, timeout, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitAgents waits until agents ls shows n live agents with the suffix.
func (e *fleetEnv) waitAgents(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := bin.Run(t, e.dir, append([]string{"agents", "ls"}, e.b()...)...)
		live := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, e.suffix) && strings.Contains(l, " alive ") {
				live++
			}
		}
		if live >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d agents alive, want %d:\n%s", live, n, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

const recordScenario = `version: 1
name: fleet-record
kafka: {brokers: [embedded]}
topics:
  traffic: {name: fleet-http-SUFFIX, partitions: 4, create: true}
jobs:
  record:
    source:
      capture:
        interface: lo
        ports:
          - ${PORT}
        responses: true
    sink: {kafka: {topic: traffic}}
    save-window: fleet-SUFFIX
`

const replayScenario = `version: 1
name: fleet-replay
kafka: {brokers: [embedded]}
windows:
  recorded: {recording: fleet-SUFFIX}
targets:
  target: {url: "${TARGET}"}
jobs:
  replay:
    source: {window: recorded}
    speed: 1
    sink: {http: {target: target, workers: 8}}
    assert:
      - 'errors.rate < 0.01'
`

// TestFleet runs the fleet suite against the embedded broker (a `replayctl
// broker` subprocess shared by every process) and, with
// REPLAYCTL_TEST_KAFKA set, against the real Kafka.
func TestFleet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the fleet suite captures on lo: it needs root (CAP_NET_RAW)")
	}
	t.Run("embedded", func(t *testing.T) { fleetSuite(t, "") })
	if real := os.Getenv("REPLAYCTL_TEST_KAFKA"); real != "" {
		t.Run("kafka", func(t *testing.T) { fleetSuite(t, real) })
	}
}

func fleetSuite(t *testing.T, real string) {
	e := setup(t, real)
	s1, s2, target := newCounter(t), newCounter(t), newCounter(t)
	web, load := "role=web-"+e.suffix, "role=load-"+e.suffix
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	e.agent(t, "web-1", web, "record", "--var", fmt.Sprintf("PORT=%d", s1.port), "--metrics-listen", metricsAddr)
	web2 := e.agent(t, "web-2", web, "record", "--var", fmt.Sprintf("PORT=%d", s2.port))
	targetURL := fmt.Sprintf("TARGET=http://127.0.0.1:%d", target.port)
	loads := map[string]*testutil.Proc{}
	for _, n := range []string{"load-1", "load-2", "load-3"} {
		loads[n] = e.agent(t, n, load, "replay", "--allow-targets", "127.0.0.1:*", "--var", targetURL, "--max-spec-ttl", "1h")
	}
	e.waitAgents(t, 5)
	ls, _ := bin.Run(t, e.dir, append([]string{"agents", "ls"}, e.b()...)...)
	if !regexp.MustCompile(`web-1-` + e.suffix + `\s+role=web-` + e.suffix + `\s+record\s+dev\s+\S+ ago\s+alive\s+-\s+0/4\s+0\s`).MatchString(ls) {
		t.Fatalf("agents ls:\n%s", ls)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "replayctl_agent_heartbeats_total") {
		t.Fatalf("metrics:\n%s", body)
	}
	if out, code := bin.Run(t, e.dir, "agent", "--brokers", e.brokers, "--name", "x", "--allow", "record", "--trust", e.pub, "--work-dir", "w", "--metrics-listen", "0.0.0.0:0"); code != 2 || !strings.Contains(out, "only a loopback address") {
		t.Fatalf("metrics on a non-loopback address: exit %d\n%s", code, out)
	}
	rec := e.write(t, "record.yaml", recordScenario)
	rep := e.write(t, "replay.yaml", replayScenario)

	// One record job on both web agents while a bounded client loop loads
	// both servers: one window whose requests equal what both served. The
	// job records for 20 s: on a loaded machine (make test beside other
	// work on 2 cores) seeing it RUNNING and the 200 requests took more
	// than the 12 s it had, and it stopped in the middle of the loop.
	recID := "rec-" + e.suffix
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", rec, "--job", "record", "--on", web, "--for", "20s", "--key", e.key, "--id", recID}, e.b()...)...)
	if code != 0 {
		t.Fatalf("submit record: %d\n%s", code, out)
	}
	e.waitFor(t, recID, `(?s)agent/web-1.*RUNNING\s+\d+\s+\d+ requests.*agent/web-2.*RUNNING\s+\d+\s+\d+ requests`, 20*time.Second)
	time.Sleep(500 * time.Millisecond) // the capture sockets open as the progress starts
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 100 {
		for _, s := range []*counter{s1, s2} {
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/p%d/%d", s.port, s.port, i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		time.Sleep(25 * time.Millisecond)
	}
	out = e.waitFor(t, recID, `record  (SUCCEEDED|FAILED)`, 40*time.Second)
	if !strings.Contains(out, "record  SUCCEEDED") {
		t.Fatalf("record job:\n%s", out)
	}
	served := s1.total.Load() + s2.total.Load()
	if !strings.Contains(out, fmt.Sprintf("recorded: %d requests", served)) ||
		!strings.Contains(out, fmt.Sprintf("web-1-%s: %d requests", e.suffix, s1.total.Load())) ||
		!strings.Contains(out, fmt.Sprintf("web-2-%s: %d requests", e.suffix, s2.total.Load())) {
		t.Fatalf("served %d+%d; job:\n%s", s1.total.Load(), s2.total.Load(), out)
	}
	win, _ := bin.Run(t, e.dir, "windows", "show", "fleet-"+e.suffix, "--brokers", e.brokers)
	if !strings.Contains(win, fmt.Sprintf("web-1-%s (%d requests), web-2-%s (%d requests)", e.suffix, s1.total.Load(), e.suffix, s2.total.Load())) {
		t.Fatalf("windows show:\n%s", win)
	}
	win, _ = bin.Run(t, e.dir, "windows", "show", "fleet-"+e.suffix, "--brokers", e.brokers, "-o", "json")
	if !strings.Contains(win, fmt.Sprintf(`"requests": %d`, served)) || !strings.Contains(win, "web-1-"+e.suffix) || !strings.Contains(win, "web-2-"+e.suffix) {
		t.Fatalf("window (served %d):\n%s", served, win)
	}

	logs, _ := bin.Run(t, e.dir, append([]string{"jobs", "logs", recID}, e.b()...)...)
	if !strings.Contains(logs, "==> agent/web-1-"+e.suffix) || !strings.Contains(logs, "record") {
		t.Fatalf("jobs logs:\n%s", logs)
	}
	list, _ := bin.Run(t, e.dir, append([]string{"jobs", "ls"}, e.b()...)...)
	if !regexp.MustCompile(recID + `\s+record\s+SUCCEEDED`).MatchString(list) {
		t.Fatalf("jobs ls:\n%s", list)
	}

	// A sharded replay on 2 agents sends every request exactly once. Its
	// assertion holds only on the merged summary (each shard sent a part).
	sentAll := fmt.Sprintf("requests.sent == %d", served)
	out, code = bin.Run(t, e.dir, append([]string{"jobs", "submit", rep, "--job", "replay", "--on", load, "--shards", "2", "--key", e.key, "--wait",
		"--set", "jobs.replay.assert.1=" + sentAll}, e.b()...)...)
	if code != 0 {
		t.Fatalf("sharded replay exit %d:\n%s", code, out)
	}
	got := target.snapshot()
	want := map[string]int{}
	for k, v := range s1.snapshot() {
		want[k] += v
	}
	for k, v := range s2.snapshot() {
		want[k] += v
	}
	if len(got) != len(want) {
		t.Fatalf("target got %d paths, want %d\n%s", len(got), len(want), out)
	}
	for p, n := range want {
		if got[p] != n {
			t.Fatalf("path %s: target got %d, want %d", p, got[p], n)
		}
	}
	if !strings.Contains(out, fmt.Sprintf("merged: sent %d, ok %d, errors 0", served, served)) ||
		!regexp.MustCompile(`latency   p50 \S+  p90 \S+  p99 \S+  p99.9 \S+  max \S+ \(exact, shards merged\)`).MatchString(out) ||
		!strings.Contains(out, "assert ok   "+sentAll) {
		t.Fatalf("merged summary:\n%s", out)
	}

	// --wait exits 3 when an assertion fails.
	out, code = bin.Run(t, e.dir, append([]string{"jobs", "submit", rep, "--job", "replay", "--on", load, "--shards", "2", "--key", e.key, "--wait",
		"--set", "jobs.replay.assert.0=requests.sent < 0", "--set", "jobs.replay.speed=max"}, e.b()...)...)
	if code != 3 || !strings.Contains(out, "ASSERT_FAILED") || !strings.Contains(out, "assert FAIL job replay (merged): requests.sent < 0") {
		t.Fatalf("failed assertion: exit %d, want 3:\n%s", code, out)
	}

	t.Run("idempotent", func(t *testing.T) { idempotent(t, e, rec, rep, recID, load) })
	t.Run("refusals", func(t *testing.T) { refusals(t, e, rec, rep, load, s1.port) })
	t.Run("cancel", func(t *testing.T) { cancelJob(t, e, rep, load, target) })
	parent := t
	t.Run("restart", func(t *testing.T) { restartShard(t, parent, e, rep, load, target, loads, targetURL, want) })
	t.Run("lost", func(t *testing.T) { lostShard(t, e, rep, load, target, loads, want) })
	t.Run("silent", func(t *testing.T) { silentAgent(t, e, web, web2) })
}

// idempotent: a job ID submitted again, a cancel of a finished job and a
// cancel retried with its command ID change nothing; an invalid scenario
// exits 2 with --wait.
func idempotent(t *testing.T, e *fleetEnv, rec, rep, recID, load string) {
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", rec, "--job", "record", "--on", "role=none", "--key", e.key, "--id", recID}, e.b()...)...)
	if code != 2 || !strings.Contains(out, "already submitted (SUCCEEDED) with another spec") {
		t.Fatalf("submit again with another spec: %d, want 2\n%s", code, out)
	}
	for i := range 2 {
		out, code = bin.Run(t, e.dir, append([]string{"jobs", "cancel", recID, "--key", e.key, "--command-id", "c-" + e.suffix}, e.b()...)...)
		want := []string{"is already SUCCEEDED", "command c-" + e.suffix + " already done"}[i]
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("cancel #%d: %d\n%s", i+1, code, out)
		}
	}
	out, code = bin.Run(t, e.dir, append([]string{"jobs", "submit", rep, "--job", "replay", "--on", load, "--key", e.key, "--wait", "--set", "jobs.replay.speed=fast"}, e.b()...)...)
	if code != 2 || !strings.Contains(out, "invalid scenario") {
		t.Fatalf("invalid scenario: exit %d, want 2\n%s", code, out)
	}
}

// silentAgent: an agent stopped (SIGSTOP) while a record job is submitted.
// Given the job, it does not answer within 10 s: it is reported, the
// others go on, and the window covers them; woken up, it does not run the
// job the submitter gave up on.
func silentAgent(t *testing.T, e *fleetEnv, web string, web2 *testutil.Proc) {
	file := e.write(t, "record-silent.yaml", strings.Replace(recordScenario, "save-window: fleet-SUFFIX", "save-window: fleet-SUFFIX-silent", 1))
	id := "silent-" + e.suffix
	if err := web2.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", file, "--job", "record", "--on", web, "--for", "2s", "--key", e.key, "--id", id}, e.b()...)...)
	_ = web2.Cmd.Process.Signal(syscall.SIGCONT)
	// Both brokers stamp the agents topic (LogAppendTime): web-2's latest
	// heartbeat is recent, so it is given the job and does not answer.
	// (An agents topic created CreateTime: TestSkewedClockAgentsListing.)
	silent := "agent web-2-" + e.suffix + " did not answer within 10s; the others go on"
	if code != 0 || !strings.Contains(out, silent) {
		t.Fatalf("submit: %d\n%s", code, out)
	}
	web2Failed := regexp.MustCompile(`agent/web-2-\S+\s+web-2-\S+\s+FAILED\s+0\s+did not answer within 10s`)
	show := e.waitFor(t, id, `record  (FAILED|SUCCEEDED)`, 30*time.Second)
	if !regexp.MustCompile(`agent/web-1-\S+\s+web-1-\S+\s+SUCCEEDED`).MatchString(show) || !web2Failed.MatchString(show) ||
		!strings.Contains(show, `window "fleet-`+e.suffix+`-silent" saved`) {
		t.Fatalf("silent agent:\n%s", show)
	}
	time.Sleep(3 * time.Second) // web-2 reads the spec now: it must not run it
	show, _ = bin.Run(t, e.dir, append([]string{"jobs", "show", id, "--trust", e.pub}, e.b()...)...)
	if !web2Failed.MatchString(show) {
		t.Fatalf("the woken agent ran the job:\n%s", show)
	}
	if !regexp.MustCompile(`\n  submitted by \S.* \(signature verified: key ed25519:[0-9a-f]{16}\)\n`).MatchString(show) {
		t.Errorf("jobs show --trust does not say the spec's signature verified:\n%s", show)
	}
}

func refusals(t *testing.T, e *fleetEnv, rec, rep, load string, capturedPort int) {
	submit := func(id string, args ...string) {
		t.Helper()
		out, code := bin.Run(t, e.dir, append(append([]string{"jobs", "submit", "--id", id}, args...), e.b()...)...)
		if code != 0 {
			t.Fatalf("submit %s: %d\n%s", id, code, out)
		}
	}
	cases := []struct {
		name, reason string
		args         []string
	}{
		{"unsigned", `REFUSED\s+0\s+unsigned spec`, []string{rep, "--job", "replay", "--on", load, "--unsigned"}},
		{"other-key", `signed by a key this agent does not trust`, []string{rep, "--job", "replay", "--on", load, "--key", e.other}},
		{"expired", `expired: the spec expired at`, []string{rep, "--job", "replay", "--on", load, "--key", e.key, "--ttl", "1ns"}},
		{"target", `target "target" \(127\.0\.0\.2:\d+\) is outside this agent's --allow-targets`, []string{rep, "--job", "replay", "--on", load, "--key", e.key,
			"--set", "targets.target.url=http://127.0.0.2:1"}},
		{"production-guard", `production guard or invalid job: .*captured from`, []string{rep, "--job", "replay", "--on", load, "--key", e.key,
			"--set", fmt.Sprintf("targets.target.url=http://127.0.0.1:%d", capturedPort)}},
	}
	for _, c := range cases {
		id := c.name + "-" + e.suffix
		submit(id, c.args...)
		out := e.waitFor(t, id, c.reason, 20*time.Second)
		if !strings.Contains(out, "REFUSED") {
			t.Fatalf("%s:\n%s", c.name, out)
		}
	}
	// A --ttl over the agents' --max-spec-ttl (their heartbeats state it):
	// refused before anything is published, naming the agents' bound.
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", "--id", "ttl-" + e.suffix, rep, "--job", "replay", "--on", load, "--key", e.key, "--ttl", "2h"}, e.b()...)...)
	if code != 2 || !regexp.MustCompile(`ttl 2h0m0s: more than the --max-spec-ttl of agents the job would run on \(load-\d-`+e.suffix+`'s is 1h0m0s\); .*nothing submitted`).MatchString(out) {
		t.Fatalf("submit --ttl 2h: exit %d\n%s", code, out)
	}
	// Replayed: the same signed spec published again is refused.
	id := "replayed-" + e.suffix
	submit(id, rep, "--job", "replay", "--on", load, "--key", e.key, "--set", "jobs.replay.speed=max")
	e.waitFor(t, id, `replay  SUCCEEDED`, 30*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(fleet.JobsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var orig *kgo.Record
	for orig == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("spec not found in the jobs topic")
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "spec/"+id {
				orig = r
			}
		})
	}
	again := &kgo.Record{Topic: fleet.JobsTopic, Key: orig.Key, Value: orig.Value}
	if err := cl.ProduceSync(ctx, again).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, id, `refused/.*REFUSED\s+0\s+replayed`, 20*time.Second)
}

func cancelJob(t *testing.T, e *fleetEnv, rep, load string, target *counter) {
	id := "cancel-" + e.suffix
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", rep, "--job", "replay", "--on", load, "--shards", "2", "--key", e.key, "--id", id,
		"--set", "jobs.replay.loop.for=2m", "--set", "jobs.replay.speed=4"}, e.b()...)...)
	if code != 0 {
		t.Fatalf("submit: %d\n%s", code, out)
	}
	before := target.total.Load()
	e.waitFor(t, id, `shard/1 .*RUNNING`, 20*time.Second)
	for target.total.Load() < before+50 {
		time.Sleep(100 * time.Millisecond)
	}
	out, code = bin.Run(t, e.dir, append([]string{"jobs", "cancel", id, "--key", e.key}, e.b()...)...)
	if code != 0 {
		t.Fatalf("cancel: %d\n%s", code, out)
	}
	// The cancel is on the jobs topic once the command returns (its own
	// start-up, slow on a loaded machine, does not count).
	published := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if last := time.Unix(0, target.last.Load()); last.After(published.Add(time.Second)) {
		t.Fatalf("a request arrived %s after jobs cancel returned", last.Sub(published))
	}
	show := e.waitFor(t, id, `replay  CANCELLED`, 20*time.Second)
	if !strings.Contains(show, "cancelled by ") || strings.Contains(show, "cancelled by jobs cancel") {
		t.Errorf("the cancel's reason does not name who cancelled:\n%s", show)
	}
}

// midShard matches jobs show once shard 0 runs and has answered some of
// its requests (its progress "N/M", N ≥ 1).
const midShard = `shard/0\s+load-\d-\S+\s+RUNNING\s[^\n]*\s[1-9]\d*/\d+`

// restartShard: kill -9 of a replaying agent restarted at once: it resumes
// its own shard from its resume point (before anyone declares it lost).
func restartShard(t, parent *testing.T, e *fleetEnv, rep, load string, target *counter, loads map[string]*testutil.Proc, targetURL string, want map[string]int) {
	id := "restart-" + e.suffix
	before := target.snapshot()
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", rep, "--job", "replay", "--on", load, "--shards", "2", "--key", e.key, "--id", id,
		// Slow enough that the kill below comes mid-shard whatever the
		// recording's span (at 0.5 a short one could finish first). The
		// killed run's results are lost with it: on-loss: warn accepts
		// the partial totals (by default the job fails on them).
		"--set", "jobs.replay.speed=0.25", "--set", "jobs.replay.on-loss=warn"}, e.b()...)...)
	if code != 0 {
		t.Fatalf("submit: %d\n%s", code, out)
	}
	// Killed mid-shard, once it has answered some requests (a progress
	// record with a resume point): a fixed sleep after RUNNING was seen
	// could outlast the shard on a loaded machine.
	show := e.waitFor(t, id, midShard, 30*time.Second)
	m := regexp.MustCompile(`shard/0\s+(load-\d)-`).FindStringSubmatch(show)
	if m == nil {
		t.Fatalf("shard 0's agent:\n%s", show)
	}
	victim := loads[m[1]]
	if err := victim.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = victim.Cmd.Wait()
	loads[m[1]] = e.agent(parent, m[1], load, "replay", "--allow-targets", "127.0.0.1:*", "--var", targetURL)
	show = e.waitFor(t, id, `replay  (SUCCEEDED|FAILED)`, 60*time.Second)
	if !regexp.MustCompile(`shard/0\s+`+m[1]+`-\S+\s+SUCCEEDED\s+1`).MatchString(show) ||
		!regexp.MustCompile(`shard/0/lost/0\s+`+m[1]+`-\S+\s+LOST\s+0\s+agent \S+ restarted; re-run here, resuming at request \d+`).MatchString(show) ||
		!strings.Contains(show, "replay  SUCCEEDED") {
		t.Fatalf("restarted agent did not resume its shard:\n%s", show)
	}
	saysPartial(t, show)
	after := target.snapshot()
	for p, n := range want {
		if got := after[p] - before[p]; got < n {
			t.Fatalf("path %s: %d of %d after the restart\n%s", p, got, n, show)
		}
	}
}

// lastHeartbeat returns the time of an agent's latest heartbeat.
func lastHeartbeat(t *testing.T, e *fleetEnv, name string) time.Time {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(fleet.AgentsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, fleet.AgentsTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(fleet.AgentsTopic, 0)
	var last time.Time
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("agents topic not read to its end")
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == name {
				var h fleet.Heartbeat
				if json.Unmarshal(r.Value, &h) == nil {
					last = h.At
				}
			}
			done = done || r.Offset+1 >= end.Offset
		})
		if done {
			return last
		}
	}
}

// statusRecord reads one record of the status topic.
func statusRecord(t *testing.T, e *fleetEnv, key string) fleet.Status {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(fleet.StatusTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no status %s", key)
		}
		var found *fleet.Status
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == key {
				var s fleet.Status
				if err := json.Unmarshal(r.Value, &s); err == nil {
					found = &s
				}
			}
		})
		if found != nil {
			return *found
		}
	}
}

func lostShard(t *testing.T, e *fleetEnv, rep, load string, target *counter, loads map[string]*testutil.Proc, want map[string]int) {
	id := "lost-" + e.suffix
	before := target.snapshot()
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", rep, "--job", "replay", "--on", load, "--shards", "2", "--key", e.key, "--id", id,
		// Slow enough that the kill below comes mid-shard whatever the
		// recording's span (at 0.5 a short one could finish first). The
		// killed run's results are lost with it: on-loss: warn accepts
		// the partial totals (by default the job fails on them).
		"--set", "jobs.replay.speed=0.25", "--set", "jobs.replay.on-loss=warn"}, e.b()...)...)
	if code != 0 {
		t.Fatalf("submit: %d\n%s", code, out)
	}
	show := e.waitFor(t, id, midShard, 30*time.Second) // mid-shard, as restartShard
	m := regexp.MustCompile(`shard/0\s+(load-\d)-`).FindStringSubmatch(show)
	if m == nil {
		t.Fatalf("shard 0's agent:\n%s", show)
	}
	victim := loads[m[1]]
	if err := victim.Cmd.Process.Kill(); err != nil { // kill -9
		t.Fatal(err)
	}
	_ = victim.Cmd.Wait()
	killed := time.Now()
	show = e.waitFor(t, id, `shard/0/lost/0 .*LOST.*resuming at request \d+`, 20*time.Second)
	// LOST once 3 heartbeats are missed: within LostAfter of the killed
	// agent's last heartbeat (plus the half-second watch tick and some
	// slack for a loaded machine), by the time the LOST record was published.
	lost := statusRecord(t, e, "job/"+id+"/shard/0/lost/0")
	last := lastHeartbeat(t, e, m[1]+"-"+e.suffix)
	if d := lost.At.Sub(last); d < fleet.LostAfter || d > fleet.LostAfter+2*time.Second {
		t.Fatalf("LOST %s after the last heartbeat (%s after the kill)", d, lost.At.Sub(killed))
	}
	t.Logf("LOST %s after the last heartbeat, %s after the kill", lost.At.Sub(last), lost.At.Sub(killed))
	show = e.waitFor(t, id, `replay  (SUCCEEDED|FAILED)`, 60*time.Second)
	if !strings.Contains(show, "replay  SUCCEEDED") || !regexp.MustCompile(`shard/0\s+load-\d-\S+\s+SUCCEEDED\s+1`).MatchString(show) {
		t.Fatalf("lost shard not finished by a spare:\n%s", show)
	}
	saysPartial(t, show)
	after := target.snapshot()
	missing, dups := 0, 0
	for p, n := range want {
		got := after[p] - before[p]
		switch {
		case got < n:
			missing += n - got
		case got > n:
			dups += got - n
		}
	}
	if missing != 0 {
		t.Fatalf("%d requests missing after the re-run (%d duplicates)\n%s", missing, dups, show)
	}
	counted := 0
	if m := regexp.MustCompile(`possible-duplicates: (\d+)`).FindStringSubmatch(show); m != nil {
		counted, _ = strconv.Atoi(m[1])
	}
	if counted < dups {
		t.Fatalf("%d duplicates, %d counted as possible duplicates in the report\n%s", dups, counted, show)
	}
	t.Logf("kill -9: shard re-run on a spare, 0 missing, %d duplicates, %d counted as possible duplicates", dups, counted)
}

// saysPartial checks that jobs show says the job's totals miss what a
// killed run had answered before its resume point, when it had answered
// any.
func saysPartial(t *testing.T, show string) {
	t.Helper()
	m := regexp.MustCompile(`\(the (\d+|one) before it (?:were|was) answered\)`).FindStringSubmatch(show)
	if m == nil {
		return // resumed at its first request: nothing was answered
	}
	if m[1] == "one" {
		m[1] = "1"
	}
	if !regexp.MustCompile(`partial\s+shard 0: the results of ` + m[1] + ` request\(s\) answered by its lost run`).MatchString(show) {
		t.Errorf("jobs show does not say the totals miss the %s requests the killed run answered:\n%s", m[1], show)
	}
}
