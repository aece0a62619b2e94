package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
)

// figG: one window replayed by 2 shard processes (one start instant, one
// merged report) next to 1 process replaying the same window, and the
// shards' start skew. On a 2-core machine this is information, not a
// scaling claim: the shards share the cores with the target.
func figG(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	n := e.scale(100_000, 20_000)
	const parts, workers = 8, 32

	brokers := e.kafka
	where := "Kafka " + e.kafka
	if brokers == "" {
		port, err := freePort()
		if err != nil {
			return nil, note, err
		}
		brokers = fmt.Sprintf("127.0.0.1:%d", port)
		cmd, _, _ := e.replayctlCmd("broker", "--listen", brokers, "--data-dir", filepath.Join(e.tmp, "f-broker"))
		if err := e.procs.start(cmd); err != nil {
			return nil, note, err
		}
		defer func() { _ = e.procs.stop(cmd, syscall.SIGTERM, 10*time.Second) }()
		if err := waitTCP(ctx, brokers, 20*time.Second); err != nil {
			return nil, note, err
		}
		where = "a `replayctl broker` process"
	}
	topic := fmt.Sprintf("bench-f-%d", time.Now().UnixNano())
	if e.kafka != "" {
		defer dropTopics(e.kafka, topic)
	}
	ends, err := fWindow(ctx, brokers, topic, n, parts)
	if err != nil {
		return nil, note, err
	}
	tg, err := startTarget()
	if err != nil {
		return nil, note, err
	}
	defer tg.close()

	var offs []string
	for p := range int32(parts) {
		offs = append(offs, fmt.Sprintf("%q: [0, %d]", strconv.Itoa(int(p)), ends[p]))
	}
	scn, err := e.writeScenario("f-shards", fmt.Sprintf(`version: 1
name: bench-shards
kafka: {brokers: [%q]}
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {%s}}
targets:
  local: {url: %q, timeout: 5s}
jobs:
  replay:
    source: {window: w}
    speed: max
    sink: {http: {target: local, workers: %d}}
    report: {json: one.json}
`, brokers, topic, strings.Join(offs, ", "), tg.url(), workers))
	if err != nil {
		return nil, note, err
	}
	dir := filepath.Dir(scn)
	timeout := e.dur(3*time.Minute, time.Minute)

	one, err := e.replayctl(ctx, timeout, "run", scn, "--progress", "never")
	if err != nil {
		return nil, note, err
	}
	var oneRep replayReport
	if err := readJSON(filepath.Join(dir, "one.json"), &oneRep); err != nil {
		return nil, note, err
	}

	runID := "bench-f-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = e.replayctl(ctx, timeout, "run", scn, "--shard", fmt.Sprintf("%d/2", i), "--run-id", runID, "--progress", "never",
				"--set", fmt.Sprintf("jobs.replay.report.json=shard-%d.json", i))
		})
	}
	wg.Wait()
	wall := time.Since(t0)
	for i, err := range errs {
		if err != nil {
			return nil, note, fmt.Errorf("shard %d: %w", i, err)
		}
	}
	merged := filepath.Join(dir, "merged.json")
	if _, err := e.replayctl(ctx, time.Minute, "report", "merge", "--run", runID, "--brokers", brokers, "--json", merged); err != nil {
		return nil, note, err
	}
	var m struct {
		replayReport
		Shards []struct {
			Index  int      `json:"index"`
			Sent   int64    `json:"sent"`
			Rate   float64  `json:"rate"`
			SkewMS *float64 `json:"skew_ms"`
		} `json:"shards"`
	}
	if err := readJSON(merged, &m); err != nil {
		return nil, note, err
	}
	var skews []string
	maxSkew := 0.0
	for _, s := range m.Shards {
		if s.SkewMS != nil {
			maxSkew = max(maxSkew, *s.SkewMS)
			skews = append(skews, fmt.Sprintf("shard %d: %.3f ms", s.Index, *s.SkewMS))
		}
	}
	row := ratioRow("g", fmt.Sprintf("replay %s GETs of one window: 2 shard processes (merged) vs 1 process (req/s)", num(float64(n))),
		m.Rate.Achieved, oneRep.Rate.Achieved, "req/s", 0)
	row.Ref = "1 process " + row.Ref
	row.Ratio = fmt.Sprintf("%.2f (information: 2 cores)", m.Rate.Achieved/max(oneRep.Rate.Achieved, 1e-9))
	row.Verdict = Info
	if m.Requests.Sent != int64(n) || oneRep.Requests.Sent != int64(n) || m.Requests.Errors > 0 {
		row.Verdict = NotMet
		row.Ratio += fmt.Sprintf("; sent %d and %d of %d", m.Requests.Sent, oneRep.Requests.Sent, n)
	}
	skewRow := Row{Fig: "g", What: "start skew of 2 shards: first send − start instant (max, ms)", Ours: fmt.Sprintf("%.3f ms", maxSkew),
		Ref: "—", Ratio: "information (issue: ≤ 5 ms)", Verdict: Info}
	note.Lines = []string{
		fmt.Sprintf("Window: %s GET requests (2 000 recorded connections) written to %d partitions of a topic on %s; `speed: max`, %d workers per process, target a net/http server in the harness on %s.",
			num(float64(n)), parts, where, workers, tg.url()),
		fmt.Sprintf("1 process: `replayctl run` of the window: sent %d, achieved %s req/s, latency p50 %.3f ms p99 %.3f ms, wall time %s.",
			oneRep.Requests.Sent, num(oneRep.Rate.Achieved), oneRep.Latency.P50, oneRep.Latency.P99, one.Elapsed.Round(10*time.Millisecond)),
		fmt.Sprintf("2 shards: `replayctl run --shard 0/2` and `1/2` started together (`--run-id`), each bin-packed 4 partitions; merged by `replayctl report merge --run`: sent %d, achieved %s req/s, latency p50 %.3f ms p99 %.3f ms; wall time of both processes %s (the barrier's 1 s start margin included).",
			m.Requests.Sent, num(m.Rate.Achieved), m.Latency.P50, m.Latency.P99, wall.Round(10*time.Millisecond)),
		"Start skew per shard (its first send minus the instant it was due on the shared timeline): " + strings.Join(skews, ", ") + ".",
		"This machine has 2 cores shared by the target, the broker and both shards: the ratio says what sharding costs or gains here, not how it scales on N load hosts.",
	}
	return []Row{row, skewRow}, note, nil
}

// fWindow writes n GET requests (key = connection ID) over parts
// partitions and returns the end offsets.
func fWindow(ctx context.Context, brokers, topic string, n, parts int) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := kafkaio.EnsureTopic(ctx, adm, topic, int32(parts), -1, nil); err != nil {
		return nil, err
	}
	base := time.Now().Add(-time.Hour).UnixNano()
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		conn := fmt.Sprintf("conn-%04d", i%2000)
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%024x", i+1), Time: base + int64(i)*int64(10*time.Microsecond),
			Raw: []byte(fmt.Sprintf("GET /items/%d?page=2 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n", i))}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32((i % 2000) % parts), Key: []byte(conn), Value: m.Payload()})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("writing the window: %w", err)
	}
	l, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) != parts || slices.Contains(slicesValues(ends), 0) {
		return nil, fmt.Errorf("window: end offsets %v", ends)
	}
	return ends, nil
}

func slicesValues(m map[int32]int64) []int64 {
	out := make([]int64, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// dropTopics deletes topics the bench created on the shared Kafka at brokers,
// so that runs do not pile them up there; a failure is told, not fatal.
func dropTopics(brokers string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafkaio.DeleteTopics(ctx, strings.Split(brokers, ","), topics...); err != nil {
		fmt.Fprintf(os.Stderr, "bench: the topics %s stay on %s: %v\n", strings.Join(topics, ", "), brokers, err)
	}
}
