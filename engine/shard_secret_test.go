package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/runbus"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/shard"
	"github.com/replayctl/replayctl/stats"
)

// TestShardSecretAssertNotPublished: two `run --shard` runs whose
// assertions read a secret variable (${API_TOKEN}) publish their results
// on the run topic (runbus) and write their JSON and HTML reports: no
// record of the run topic (armed, result) and no report holds the secret's
// value, nor does what the runs print; `report merge` of the run topic and
// of the files gives each assertion the verdict it has on the merged
// totals with the secret in it (requests.sent == 6 && "${API_TOKEN}" != ""
// holds only on the merged totals; && "${API_TOKEN}" == "nope" fails), and
// shows the assertion without the secret.
func TestShardSecretAssertNotPublished(t *testing.T) {
	const secret = "Zq8vT0kenS3cretValue77"
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	topic := produceShardWindow(t, ctx, br, "secret", n, 2, time.Millisecond)
	runTopic := unique(t, "runs")
	tg := newTarget(t)
	yaml := fmt.Sprintf(`version: 1
name: secret-shards
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {"0": [0, %d], "1": [0, %d]}}
targets:
  t: {url: %q}
jobs:
  replay:
    source: {window: w}
    speed: max
    sink: {http: {target: t, workers: 2}}
    report: {json: report.json, html: report.html}
    assert:
      - 'requests.sent == %d && "${API_TOKEN}" != ""'
      - 'requests.errors == 0 && "${API_TOKEN}" == "nope"'
`, topic, n/2, n/2, tg.URL(), n)
	env := func(k string) (string, bool) {
		if k == "API_TOKEN" {
			return secret, true
		}
		return "", false
	}
	const runID = "secret-run"
	dirs := []string{t.TempDir(), t.TempDir()}
	outs := make([]*syncBuffer, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		outs[i] = &syncBuffer{}
		wg.Go(func() {
			s, err := scenario.LoadBytes(filepath.Join(dirs[i], "scenario.yaml"), []byte(yaml), scenario.Options{Env: env})
			if err != nil {
				errs[i] = err
				return
			}
			so := &engine.ShardOptions{Spec: shard.Spec{Index: i, Count: 2, RunID: runID}, RunTopic: runTopic, Margin: 100 * time.Millisecond}
			plan, err := engine.Compile(s, engine.Options{Brokers: br.Addrs, Shard: so, Out: outs[i], Err: outs[i]})
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = plan.Run(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		// Each shard holds its own part to the assertions: the first
		// fails on it (it sent 3), the second everywhere.
		var ae *engine.AssertionError
		if !errors.As(err, &ae) || len(ae.Failed) != 2 {
			t.Fatalf("shard %d: %v, want both assertions failed on its part\n%s", i, err, outs[i].String())
		}
		if strings.Contains(outs[i].String(), secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("shard %d printed the secret:\n%s\n%v", i, outs[i].String(), err)
		}
	}
	if got := tg.count(); got != n {
		t.Fatalf("target received %d requests, want %d", got, n)
	}

	// Every record of the run topic, as written and decoded.
	cl := br.Client(t)
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, runTopic)
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[int32]kafkaio.OffsetRange{}
	ends.Each(func(o kadm.ListedOffset) { ranges[o.Partition] = kafkaio.OffsetRange{Start: 0, End: o.Offset} })
	rr, err := kafkaio.NewRangeReaderWith(br.Opts(), runTopic, ranges, kafkaio.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	kinds := map[string]int{}
	for !rr.Done() {
		rs, err := rr.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			var rec shard.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				t.Fatalf("run topic record %d: %v", r.Offset, err)
			}
			kinds[rec.Kind]++
			var hdrs []byte
			for _, h := range r.Headers {
				hdrs = append(append(hdrs, h.Key...), h.Value...)
			}
			if bytes.Contains(r.Value, []byte(secret)) || bytes.Contains(r.Key, []byte(secret)) || bytes.Contains(hdrs, []byte(secret)) || strings.Contains(rec.Reason, secret) {
				t.Errorf("run topic record %d (%s of shard %d) holds the secret:\n%s", r.Offset, rec.Kind, rec.Shard, r.Value)
			}
		}
	}
	if kinds[shard.KindArmed] != 2 || kinds[shard.KindResult] != 2 {
		t.Fatalf("run topic records by kind %v, want 2 armed and 2 results", kinds)
	}
	for i, dir := range dirs {
		for _, f := range []string{"report.json", "report.html"} {
			if data, err := os.ReadFile(filepath.Join(dir, f)); err != nil || bytes.Contains(data, []byte(secret)) {
				t.Errorf("shard %d's %s (%v) holds the secret", i, f, err)
			}
		}
	}

	// report merge: of the run topic (its code: runbus's records, the
	// results parsed) and of the files.
	bus, err := runbus.Open(ctx, br.Opts(), runTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	recs, bad, err := bus.Records(ctx, runID)
	if err != nil || bad != 0 {
		t.Fatalf("run records: %v (%d bad)", err, bad)
	}
	var fromTopic, fromFiles []*report.Input
	for _, r := range recs {
		if r.Kind == shard.KindResult {
			in, err := report.ParseInput(fmt.Sprintf("run %s shard %d", runID, r.Shard), r.Report)
			if err != nil {
				t.Fatal(err)
			}
			fromTopic = append(fromTopic, in)
		}
	}
	for i, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := report.ParseInput(fmt.Sprintf("shard-%d.json", i), data)
		if err != nil {
			t.Fatal(err)
		}
		fromFiles = append(fromFiles, in)
	}
	for name, inputs := range map[string][]*report.Input{"run topic": fromTopic, "files": fromFiles} {
		m, err := report.Merge(inputs, runID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := []stats.ReportAssertion{
			{Expr: fmt.Sprintf(`requests.sent == %d && true`, n), OK: true},
			{Expr: `requests.errors == 0 && false`, OK: false},
		}
		var text bytes.Buffer
		m.WriteText(&text)
		data, _ := json.Marshal(m.JSON)
		if !m.Complete() || m.Summary.Sent != n || len(m.JSON.Assertions) != len(want) {
			t.Fatalf("%s: merged %+v\n%s", name, m.JSON, text.String())
		}
		for i, a := range m.JSON.Assertions {
			if a.Expr != want[i].Expr || a.OK != want[i].OK {
				t.Errorf("%s: assertion %q ok %v (%s), want %q ok %v", name, a.Expr, a.OK, a.Detail, want[i].Expr, want[i].OK)
			}
		}
		if len(m.Failed) != 1 || !strings.Contains(m.Failed[0], "requests.errors == 0 && false") {
			t.Errorf("%s: failed %q, want the second assertion", name, m.Failed)
		}
		if bytes.Contains(data, []byte(secret)) || strings.Contains(text.String(), secret) || strings.Contains(strings.Join(m.Failed, " "), secret) {
			t.Errorf("%s: the merge shows the secret:\n%s\n%s", name, text.String(), data)
		}
	}
}
