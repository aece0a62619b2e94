package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/stats"
)

// shardBroker is a broker the shard processes share.
type shardBroker struct {
	name  string
	addrs string
}

// shardBrokers returns a `replayctl broker` subprocess (the embedded
// broker, reachable by every process) and, with REPLAYCTL_TEST_KAFKA, the
// real Kafka.
func shardBrokers(t *testing.T) []shardBroker {
	t.Helper()
	addr := freePort(t)
	var stdout syncBuffer
	cmd := exec.Command(binary, "broker", "--listen", addr, "--data-dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, cmd, 20*time.Second)
	})
	waitFor(t, "the broker to listen", func() bool { return strings.Contains(stdout.String(), "listening on") })
	out := []shardBroker{{"embedded-process", addr}}
	if real := realKafka(t); real != nil {
		out = append(out, shardBroker{"kafka", strings.Join(real, ",")})
	}
	return out
}

// windowSpec describes a synthetic recording: conns connections of perConn
// requests each, connection c in partition c % partitions, requests
// spaced by every on the recorded timeline.
type windowSpec struct {
	partitions, conns, perConn int
	every                      time.Duration
}

// produceWindow writes the recording into a new topic and returns the
// topic and its end offsets (the window is [0, end) of each partition).
func produceWindow(t *testing.T, addrs string, ws windowSpec) (string, map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := unique(t, "shards")
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addrs, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(cl), topic, int32(ws.partitions), -1, nil); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).UnixNano()
	seq := 0
	var recs []*kgo.Record
	// Requests interleave across connections on the timeline, as captured.
	for k := range ws.perConn {
		for c := range ws.conns {
			conn := fmt.Sprintf("conn-%05d", c)
			m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%024x", seq+1), Time: base + int64(seq)*int64(ws.every),
				Raw: []byte(fmt.Sprintf("GET /c/%s/%d HTTP/1.1\r\nHost: shop.example\r\n\r\n", conn, k))}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(c % ws.partitions), Key: []byte(conn), Value: m.Payload(),
				Timestamp: time.Unix(0, m.Time)})
			seq++
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return topic, out
}

// idTarget is a loopback server that logs the X-Replay-Id header of every
// request, and the order of each connection's requests.
type idTarget struct {
	*target
	mu    sync.Mutex
	ids   map[string]int
	order map[string][]int // conn → request numbers, in arrival order
	delay time.Duration
}

func newIDTarget(t *testing.T, delay time.Duration) *idTarget {
	tg := &idTarget{target: newTarget(t), ids: map[string]int{}, order: map[string][]int{}, delay: delay}
	tg.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if tg.delay > 0 {
			time.Sleep(tg.delay)
		}
		parts := strings.Split(r.URL.Path, "/") // "", "c", conn, k
		tg.mu.Lock()
		tg.ids[r.Header.Get("X-Replay-Id")]++
		if len(parts) == 4 {
			k, _ := strconv.Atoi(parts[3])
			tg.order[parts[2]] = append(tg.order[parts[2]], k)
		}
		tg.mu.Unlock()
		tg.count.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	return tg
}

// checkExactlyOnce checks that every recorded request ID arrived once.
func (tg *idTarget) checkExactlyOnce(t *testing.T, n int) {
	t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	missing, dup := 0, 0
	for i := 1; i <= n; i++ {
		switch c := tg.ids[fmt.Sprintf("%024x", i)]; {
		case c == 0:
			missing++
		case c > 1:
			dup += c - 1
		}
	}
	if missing > 0 || dup > 0 || len(tg.ids) != n {
		t.Fatalf("target saw %d distinct IDs for %d recorded requests: %d missing, %d duplicated", len(tg.ids), n, missing, dup)
	}
}

// shardScenario writes a scenario replaying [0, end) of every partition.
func shardScenario(t *testing.T, dir, brokers, topic string, ends map[int32]int64, url, pacing string, session bool) string {
	var offs []string
	for p, e := range ends {
		offs = append(offs, fmt.Sprintf("%q: [0, %d]", strconv.Itoa(int(p)), e))
	}
	slices.Sort(offs)
	return write(t, dir, "scenario.yaml", fmt.Sprintf(`version: 1
name: shards
kafka: {brokers: [%q]}
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {%s}}
targets:
  t: {url: %q, timeout: 10s}
jobs:
  replay:
    source: {window: w}
    %s
    rewrite:
      - set-header: {name: X-Replay-Id, value: 'req.id'}
    sink: {http: {target: t, workers: 8, session: %t}}
    report: {json: reports/one.json}
    assert:
      - 'errors.rate < 0.01'
      - 'requests.sent > 0'
`, brokers, topic, strings.Join(offs, ", "), url, pacing, session))
}

// shardProc is one `replayctl run --shard` process.
type shardProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
}

func startShards(t *testing.T, scn, brokers, runID string, n int, extra ...string) []*shardProc {
	t.Helper()
	procs := make([]*shardProc, n)
	for i := range n {
		p := &shardProc{}
		args := append([]string{"run", scn, "--job", "replay", "--shard", fmt.Sprintf("%d/%d", i, n), "--run-id", runID,
			"--brokers", brokers, "--progress", "never", "--arm-timeout", "90s",
			"--set", fmt.Sprintf("jobs.replay.report.json=reports/shard-%d.json", i),
			"--set", fmt.Sprintf("jobs.replay.report.html=reports/shard-%d.html", i)}, extra...)
		p.cmd = exec.Command(binary, args...)
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	return procs
}

func waitShards(t *testing.T, procs []*shardProc) {
	t.Helper()
	for i, p := range procs {
		if code := waitExit(t, p.cmd, 4*time.Minute); code != 0 {
			t.Fatalf("shard %d exited %d\nstdout:\n%s\nstderr:\n%s", i, code, p.stdout.String(), p.stderr.String())
		}
	}
}

func readMerged(t *testing.T, path string) report.MergedReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m report.MergedReport
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func readState(t *testing.T, path string) stats.State {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		State stats.State `json:"state"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r.State
}

// TestShardsReplayEveryRequestOnce: 4 shard processes replay a 20 000
// request window of 6 partitions: every request arrives exactly once, the
// merge from the run topic and from the files agree, the merged histogram
// is the bucket sum of the shards', and it agrees with one process.
func TestShardsReplayEveryRequestOnce(t *testing.T) {
	for _, br := range shardBrokers(t) {
		t.Run(br.name, func(t *testing.T) {
			dir := t.TempDir()
			const n = 20000
			topic, ends := produceWindow(t, br.addrs, windowSpec{partitions: 6, conns: 500, perConn: n / 500, every: 10 * time.Microsecond})
			total := int64(0)
			for _, e := range ends {
				total += e
			}
			if total != n {
				t.Fatalf("window holds %d records", total)
			}
			tg := newIDTarget(t, 0)
			scn := shardScenario(t, dir, br.addrs, topic, ends, tg.URL(), "speed: max", false)
			runID := unique(t, "run")

			dry := mustRun(t, ExitOK, "run", scn, "--job", "replay", "--shard", "2/4", "--run-id", runID, "--brokers", br.addrs, "--dry-run")
			if !strings.Contains(dry.stdout, "→ shard 2/4:") || strings.Count(dry.stdout, "shard ") < 4 {
				t.Fatalf("dry run does not show the shard's part:\n%s", dry)
			}
			if tg.count.Load() != 0 {
				t.Fatal("the dry run sent requests")
			}

			waitShards(t, startShards(t, scn, br.addrs, runID, 4))
			tg.checkExactlyOnce(t, int(total))

			merged := filepath.Join(dir, "merged.json")
			r := mustRun(t, ExitOK, "report", "merge", "--run", runID, "--brokers", br.addrs, "--json", merged, "--html", filepath.Join(dir, "merged.html"))
			m := readMerged(t, merged)
			if m.Requests.Sent != total || m.Requests.Errors != 0 || !m.Complete || len(m.Shards) != 4 {
				t.Fatalf("merged: sent %d errors %d complete %t shards %d\n%s", m.Requests.Sent, m.Requests.Errors, m.Complete, len(m.Shards), r)
			}
			maxSkew := 0.0
			for _, s := range m.Shards {
				if s.SkewMS == nil {
					t.Fatalf("shard %d has no skew", s.Index)
				}
				maxSkew = max(maxSkew, *s.SkewMS)
			}
			t.Logf("%s: start skew of 4 shards (first send − start instant), max %.3f ms\n%s", br.name, maxSkew, r.stdout)
			if maxSkew > 250 {
				t.Errorf("start skew %.1f ms: the shards did not start together", maxSkew)
			}
			html, _ := os.ReadFile(filepath.Join(dir, "merged.html"))
			if !bytes.Contains(html, []byte("Shards of run")) {
				t.Error("the merged HTML report has no shard table")
			}
			if own := mustRead(t, filepath.Join(dir, "reports", "shard-3.html")); !strings.Contains(own, "Shards of run") || !strings.Contains(own, runID) {
				t.Error("a shard's own HTML report does not say which shard of which run it is")
			}

			// A second attempt at shard 1 of the started run fails and
			// sends nothing; the run's merge is unchanged.
			late := mustRun(t, ExitRuntime, "run", scn, "--job", "replay", "--shard", "1/4", "--run-id", runID, "--brokers", br.addrs,
				"--progress", "never", "--set", "jobs.replay.report.json=late/late.json")
			if !strings.Contains(late.stderr, "a run ID is used once") || tg.count.Load() != total {
				t.Fatalf("a late shard: sent %d more\n%s", tg.count.Load()-total, late)
			}
			mustRun(t, ExitOK, "report", "merge", "--run", runID, "--brokers", br.addrs)

			// From the files: the same totals and state.
			files, _ := filepath.Glob(filepath.Join(dir, "reports", "shard-*.json"))
			fromFiles := filepath.Join(dir, "files.json")
			mustRun(t, ExitOK, append([]string{"report", "merge", "--json", fromFiles}, files...)...)
			f := readMerged(t, fromFiles)
			if f.Requests != m.Requests || f.Latency != m.Latency || f.Lateness != m.Lateness {
				t.Fatalf("merge of the files differs from the merge of the topic:\n%+v\n%+v", f.Report.Requests, m.Report.Requests)
			}
			// The assertions hold or fail on the merged summary: exit 3.
			var failing []string
			for i, p := range files {
				text := strings.ReplaceAll(mustRead(t, p), `"requests.sent \u003e 0"`, `"requests.sent \u003c 20000"`)
				failing = append(failing, write(t, dir, fmt.Sprintf("failing/shard-%d.json", i), text))
			}
			if r3 := mustRun(t, ExitAssertion, append([]string{"report", "merge"}, failing...)...); !strings.Contains(r3.stdout, "FAIL requests.sent < 20000") {
				t.Fatalf("the failing assertion is not shown:\n%s", r3)
			}
			// The merged latency histogram is the bucket sum of the shards'.
			sum := map[uint64]uint64{}
			for _, p := range files {
				for _, b := range readState(t, p).Latency.Buckets {
					sum[b[0]] += b[1]
				}
			}
			got := map[uint64]uint64{}
			for _, b := range m.State.Latency.Buckets {
				got[b[0]] = b[1]
			}
			if fmt.Sprint(got) != fmt.Sprint(sum) {
				t.Fatal("the merged latency histogram is not the bucket sum of the shards' histograms")
			}

			// One process on the same window: same counts; quantiles of
			// another live run agree loosely (each is exact for its run).
			tg.mu.Lock()
			clear(tg.ids)
			tg.mu.Unlock()
			mustRun(t, ExitOK, "run", scn, "--job", "replay", "--brokers", br.addrs, "--progress", "never")
			tg.checkExactlyOnce(t, int(total))
			var one stats.Report
			data, _ := os.ReadFile(filepath.Join(dir, "reports", "one.json"))
			if err := json.Unmarshal(data, &one); err != nil {
				t.Fatal(err)
			}
			if one.Requests != m.Requests || fmt.Sprint(one.Status) != fmt.Sprint(m.Status) {
				t.Fatalf("one process: %+v %v; 4 shards: %+v %v", one.Requests, one.Status, m.Requests, m.Status)
			}
			t.Logf("%s: latency p50/p99: one process %.3f/%.3f ms, 4 shards merged %.3f/%.3f ms", br.name, one.Latency.P50, one.Latency.P99, m.Latency.P50, m.Latency.P99)
		})
	}
}

// TestShardsSplitPartitionsByKey: 2 partitions and 4 shards split each
// partition by connection key; with session: true each connection's
// requests arrive in their recorded order.
func TestShardsSplitPartitionsByKey(t *testing.T) {
	for _, br := range shardBrokers(t) {
		t.Run(br.name, func(t *testing.T) {
			for _, session := range []bool{false, true} {
				t.Run(fmt.Sprintf("session=%t", session), func(t *testing.T) {
					dir := t.TempDir()
					const conns, per = 80, 50
					topic, ends := produceWindow(t, br.addrs, windowSpec{partitions: 2, conns: conns, perConn: per, every: 20 * time.Microsecond})
					tg := newIDTarget(t, 0)
					scn := shardScenario(t, dir, br.addrs, topic, ends, tg.URL(), "speed: max", session)
					runID := unique(t, "run")
					dry := mustRun(t, ExitOK, "run", scn, "--job", "replay", "--shard", "1/4", "--run-id", runID, "--brokers", br.addrs, "--dry-run")
					if !strings.Contains(dry.stdout, "key bucket 1/2") {
						t.Fatalf("dry run does not show the key split:\n%s", dry)
					}
					procs := startShards(t, scn, br.addrs, runID, 4)
					waitShards(t, procs)
					tg.checkExactlyOnce(t, conns*per)
					// A connection's requests went to one shard only.
					for i, p := range procs {
						data, err := os.ReadFile(filepath.Join(dir, "reports", fmt.Sprintf("shard-%d.json", i)))
						if err != nil {
							t.Fatal(err)
						}
						var rep stats.Report
						_ = json.Unmarshal(data, &rep)
						if rep.Counters["source.other-shard"] == 0 || rep.Requests.Sent == 0 {
							t.Fatalf("shard %d: sent %d, other-shard %d: the partition was not split\n%s", i, rep.Requests.Sent, rep.Counters["source.other-shard"], p.stdout.String())
						}
					}
					if session {
						tg.mu.Lock()
						defer tg.mu.Unlock()
						for conn, ks := range tg.order {
							if !slices.IsSorted(ks) || len(ks) != per {
								t.Fatalf("connection %s arrived in order %v", conn, ks)
							}
						}
					}
					mustRun(t, ExitOK, "report", "merge", "--run", runID, "--brokers", br.addrs)
				})
			}
		})
	}
}

// TestShardKilledMidRun: a shard killed during the run never reports;
// `report merge` names it and exits 1.
func TestShardKilledMidRun(t *testing.T) {
	for _, br := range shardBrokers(t) {
		t.Run(br.name, func(t *testing.T) {
			dir := t.TempDir()
			// 3 000 requests over 6 s of recorded time, replayed at speed 1.
			topic, ends := produceWindow(t, br.addrs, windowSpec{partitions: 3, conns: 30, perConn: 100, every: 2 * time.Millisecond})
			tg := newIDTarget(t, 0)
			scn := shardScenario(t, dir, br.addrs, topic, ends, tg.URL(), "speed: 1", false)
			runID := unique(t, "run")
			procs := startShards(t, scn, br.addrs, runID, 3)
			waitFor(t, "the run to start", func() bool { return tg.count.Load() > 300 })
			if err := procs[2].cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			// Shard 1 is interrupted: it drains, reports what it did, and says so.
			if err := procs[1].cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, procs[0].cmd, 2*time.Minute); code != 0 {
				t.Fatalf("shard 0 exited %d:\n%s\n%s", code, procs[0].stdout.String(), procs[0].stderr.String())
			}
			if code := waitExit(t, procs[1].cmd, time.Minute); code == 0 {
				t.Fatalf("the interrupted shard exited 0:\n%s", procs[1].stdout.String())
			}
			_ = procs[2].cmd.Wait()
			r := mustRun(t, ExitRuntime, "report", "merge", "--run", runID, "--brokers", br.addrs, "--json", filepath.Join(dir, "merged.json"))
			t.Logf("report merge of a run with a killed and an interrupted shard:\n%s", r)
			for _, want := range []string{"INCOMPLETE", "shard 2 never reported", "missing", "shard 1 was interrupted"} {
				if !strings.Contains(r.stdout+r.stderr, want) {
					t.Fatalf("merge output lacks %q:\n%s", want, r)
				}
			}
			if m := readMerged(t, filepath.Join(dir, "merged.json")); m.Complete || len(m.Problems) == 0 || !m.Interrupted {
				t.Fatalf("merged report says complete or not interrupted: interrupted %t, problems %+v", m.Interrupted, m.Problems)
			}
		})
	}
}

// TestShardUsageErrors: bad --shard command lines exit 2 with a clear message.
func TestShardUsageErrors(t *testing.T) {
	dir := t.TempDir()
	remote := shardScenario(t, dir, "127.0.0.1:1", "topic", map[int32]int64{0: 10}, "http://127.0.0.1:1", "speed: max", false)
	embedded := write(t, dir, "embedded.yaml", strings.Replace(mustRead(t, remote), `kafka: {brokers: ["127.0.0.1:1"]}`, "kafka: {brokers: [embedded]}", 1))
	pipeline := write(t, dir, "pipeline.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0"))
	t.Setenv("REPLAYCTL_RUN_ID", "")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no run id", []string{"run", remote, "--shard", "1/2"}, nil, "needs a run ID (--run-id or REPLAYCTL_RUN_ID)"},
		{"1-based index", []string{"run", remote, "--shard", "2/2", "--run-id", "r"}, nil, "indexes are 0-based, 0 to 1"},
		{"run id alone", []string{"run", remote, "--run-id", "r"}, nil, "it goes with --shard"},
		{"bad run id", []string{"run", remote, "--shard", "0/2", "--run-id", "a b"}, nil, "only letters"},
		{"embedded broker", []string{"run", embedded, "--shard", "0/2", "--run-id", "r"}, nil, "the embedded broker is private"},
		{"a record job", []string{"run", pipeline, "--job", "record", "--shard", "0/2", "--run-id", "x"}, nil,
			`--shard needs a replay job whose source is a window; job "record" records (it has no window to cut into shards)`},
		{"two jobs", []string{"run", pipeline, "--shard", "0/2", "--run-id", "x"}, nil, "this run has jobs [record replay]: name the replay job with --job"},
		{"two jobs named", []string{"run", pipeline, "--job", "record", "--job", "replay", "--shard", "0/2", "--run-id", "x"}, nil, "--job selects jobs [record replay]: name only the replay job"},
		{"auto without env", []string{"run", remote, "--shard", "auto", "--run-id", "r"}, nil, "JOB_COMPLETION_INDEX"},
		{"auto", []string{"run", embedded, "--shard", "auto"}, map[string]string{"JOB_COMPLETION_INDEX": "1", "REPLAYCTL_SHARDS": "3", "REPLAYCTL_RUN_ID": "r"}, "--shard 1/3: the shards"},
		{"merge both", []string{"report", "merge", "--run", "r", "x.json"}, nil, "not both"},
		{"merge nothing", []string{"report", "merge"}, nil, "name the run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r := mustRun(t, ExitInvalid, tc.args...)
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want %q in:\n%s", tc.want, r)
			}
		})
	}
}

// TestShardsMeetOnAServedDataDir: shards on the host of a `replayctl
// broker` reach it through its data dir, as run and windows do, instead of
// being refused as if the embedded broker were private to each.
func TestShardsMeetOnAServedDataDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(t.TempDir(), "data")
	_, addr := startBroker(t, data)
	topic, ends := produceWindow(t, addr, windowSpec{partitions: 2, conns: 4, perConn: 5, every: time.Millisecond})
	tg := newIDTarget(t, 0)
	scn := write(t, dir, "served.yaml", strings.Replace(mustRead(t, shardScenario(t, dir, addr, topic, ends, tg.URL(), "speed: max", false)),
		fmt.Sprintf("kafka: {brokers: [%q]}", addr), "kafka: {brokers: [embedded]}", 1))
	runID := unique(t, "run")
	procs := make([]*proc, 2)
	for i := range procs {
		procs[i] = start(t, "run", scn, "--job", "replay", "--shard", fmt.Sprintf("%d/2", i), "--run-id", runID,
			"--data-dir", data, "--progress", "never", "--arm-timeout", "60s", "--set", fmt.Sprintf("jobs.replay.report.json=reports/shard-%d.json", i))
	}
	for i, p := range procs {
		if code := p.wait(t); code != ExitOK {
			t.Fatalf("shard %d exited %d\n%s", i, code, p)
		}
		if !strings.Contains(p.stderr.String(), "is served by `replayctl broker`") {
			t.Errorf("shard %d does not say it uses the data dir's broker:\n%s", i, p)
		}
	}
	tg.checkExactlyOnce(t, 20)
}

// TestMergeWaitInterrupted: Ctrl-C during report merge --wait says what it
// was waiting for and exits 130.
func TestMergeWaitInterrupted(t *testing.T) {
	_, addr := startBroker(t, filepath.Join(t.TempDir(), "data"))
	p := start(t, "report", "merge", "--run", unique(t, "run"), "--brokers", addr, "--wait", "1m")
	time.Sleep(2 * time.Second) // it polls the run topic
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != ExitInterrupted || !strings.Contains(p.stderr.String(), "interrupted while waiting for the shards' results (no shard armed yet)") {
		t.Fatalf("exit %d\n%s", code, p)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestShardArmTimeout: a shard whose peers never arm fails after
// --arm-timeout, naming them, and tells the merge why.
func TestShardArmTimeout(t *testing.T) {
	for _, br := range shardBrokers(t) {
		t.Run(br.name, func(t *testing.T) {
			dir := t.TempDir()
			topic, ends := produceWindow(t, br.addrs, windowSpec{partitions: 2, conns: 4, perConn: 5, every: time.Millisecond})
			tg := newIDTarget(t, 0)
			scn := shardScenario(t, dir, br.addrs, topic, ends, tg.URL(), "speed: max", false)
			runID := unique(t, "run")
			r := mustRun(t, ExitRuntime, "run", scn, "--job", "replay", "--shard", "0/3", "--run-id", runID, "--brokers", br.addrs, "--arm-timeout", "2s", "--progress", "never")
			if !strings.Contains(r.stderr, "shards 1, 2 not armed after 2s") || tg.count.Load() != 0 {
				t.Fatalf("want the missing shards named and nothing sent (sent %d):\n%s", tg.count.Load(), r)
			}
			m := mustRun(t, ExitRuntime, "report", "merge", "--run", runID, "--brokers", br.addrs)
			for _, want := range []string{"shard 0 failed", "shards 1, 2 not armed", "shard 1 never reported", "shard 2 never reported",
				// No verdict on a run that sent nothing.
				"    --   errors.rate < 0.01  (not evaluated: ", "    --   requests.sent > 0  (not evaluated: "} {
				if !strings.Contains(m.stdout, want) {
					t.Fatalf("merge output lacks %q:\n%s", want, m)
				}
			}
			if strings.Contains(m.stdout, "ok   errors.rate") {
				t.Fatalf("a verdict on nothing:\n%s", m)
			}
		})
	}
}

// TestShardFlagsNeedShard: --arm-timeout, --start-margin and --run-topic
// tune a sharded run; without --shard they would be ignored, so they are
// refused (exit 2), as --run-id is.
func TestShardFlagsNeedShard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:9", "errors.rate == 0"))
	for _, args := range [][]string{
		{"--run-id", "r1"},
		{"--arm-timeout", "5s"},
		{"--start-margin", "2s"},
		{"--run-topic", "t"},
	} {
		r := mustRun(t, ExitInvalid, append([]string{"run", f, "--dry-run"}, args...)...)
		if want := args[0] + " "; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "goes with --shard") {
			t.Errorf("%v: want %q and \"goes with --shard\" in:\n%s", args, want, r)
		}
	}
}

// TestDryRunRefusesProfiles: a dry run runs nothing, so a profile asked of
// it would silently not be written: --cpuprofile and --memprofile with
// --dry-run are refused (exit 2), and no file appears.
func TestDryRunRefusesProfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:9", "errors.rate == 0"))
	for _, flag := range []string{"--cpuprofile", "--memprofile"} {
		prof := filepath.Join(dir, flag[2:]+".prof")
		r := mustRun(t, ExitInvalid, "run", f, "--dry-run", flag, prof)
		if !strings.Contains(r.stderr, "--dry-run runs nothing") {
			t.Errorf("%s with --dry-run: want the refusal in:\n%s", flag, r)
		}
		if _, err := os.Stat(prof); err == nil {
			t.Errorf("%s with --dry-run wrote %s", flag, prof)
		}
	}
}
