package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/shard"
)

// TestSecretAssertNotMergeable: an assertion whose secret reaches the
// summary's values (requests.sent * 3 > len("${API_TOKEN}")) has no form
// without the secret to publish. A `run --shard` refuses it before
// anything runs, saying which assertion and why, without the value (the
// agent refuses such a job too); an unsharded run's JSON report marks it
// unmergeable, and report merge fails it saying why. It was published as
// written and report merge evaluated it with the text "${API_TOKEN}" for
// the value: "ok requests.sent * 3 > len("${API_TOKEN}") (requests.sent *
// 3 = 18, want > 12)" where the run, with the 22-byte value, failed it.
func TestSecretAssertNotMergeable(t *testing.T) {
	const secret = "Zq8vT0kenS3cretValue77"
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	topic := produceShardWindow(t, ctx, br, "unmergeable", n, 2, time.Millisecond)
	tg := newTarget(t)
	yaml := fmt.Sprintf(`version: 1
name: secret-len
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
    report: {json: report.json}
    assert:
      - 'requests.sent * 3 > len("${API_TOKEN}")'
      - 'requests.sent == %d && "${API_TOKEN}" != ""'
`, topic, n/2, n/2, tg.URL(), n)
	env := func(k string) (string, bool) {
		if k == "API_TOKEN" {
			return secret, true
		}
		return "", false
	}
	dir := t.TempDir()
	s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	so := &engine.ShardOptions{Spec: shard.Spec{Index: 0, Count: 2, RunID: "r-len"}, RunTopic: unique(t, "runs")}
	_, err = engine.Compile(s, engine.Options{Brokers: br.Addrs, Shard: so, Out: &out, Err: &out})
	if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), `assert requests.sent * 3 > len("${API_TOKEN}") reads a secret`) || strings.Contains(err.Error(), secret) {
		t.Fatalf("a sharded run with the assertion: %v; want it refused as invalid, naming the assertion as written", err)
	}
	if tg.count() != 0 {
		t.Fatal("the refused run sent requests")
	}

	// Unsharded: the run holds it to its own totals (22 bytes: it fails),
	// its report says a merge cannot, and report merge fails it.
	plan, err := engine.Compile(s, engine.Options{Brokers: br.Addrs, Out: &out, Err: &out})
	if err != nil {
		t.Fatal(err)
	}
	var ae *engine.AssertionError
	if err := plan.Run(ctx); !errors.As(err, &ae) || len(ae.Failed) != 1 {
		t.Fatalf("unsharded run: %v, want the len assertion failed\n%s", err, out.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil || bytes.Contains(data, []byte(secret)) {
		t.Fatalf("report (%v) holds the secret:\n%s", err, data)
	}
	in, err := report.ParseInput("report.json", data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := report.Merge([]*report.Input{in}, "")
	if err != nil {
		t.Fatal(err)
	}
	as := m.JSON.Assertions
	if len(as) != 2 || as[0].OK || !strings.HasPrefix(as[0].Detail, "not evaluated: it reads a secret") || !as[1].OK {
		t.Fatalf("merged assertions %+v; want the first failed, not evaluated, the second held", as)
	}
	if len(m.Failed) != 1 || !strings.Contains(m.Failed[0], `len("${API_TOKEN}")`) || strings.Contains(m.Failed[0], secret) {
		t.Fatalf("merge failed %q", m.Failed)
	}
}
