package fleet

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/message"
)

// TestMultiHostRecordingLossMarksWindowPartial: a record job on two agents,
// one of which loses a packet (its pcap is cut in the middle of its last
// one) under on-loss: warn, succeeds, and the one window saved for both
// hosts is partial with that host's losses, as `replayctl run` saves it:
// windows list, windows show, a replay of it and the web UI all read
// Partial and Lost from the catalog. The job's result says what was lost.
func TestMultiHostRecordingLossMarksWindowPartial(t *testing.T) {
	f := newIDFleet(t)
	fixture, err := os.ReadFile(filepath.Join("..", "capture", "testdata", "keepalive.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	agents := []string{"web-1", "web-2"}
	for i, name := range agents {
		work := filepath.Join(t.TempDir(), "work")
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		pcap, data := filepath.Join(work, "in.pcap"), fixture
		if i == 1 {
			data = fixture[:len(fixture)-5] // file-cut-short: 1 packet
		}
		if err := os.WriteFile(pcap, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f.recordAgent(t, name, work, map[string]string{"PCAP": pcap})
	}
	text := `version: 1
name: lossy
topics:
  traffic: {name: lossy-http, partitions: 2, create: true}
jobs:
  record:
    source: {pcap: {path: "${PCAP}", ports: [18084]}}
    sink: {kafka: {topic: traffic}}
    on-loss: warn
`
	now := time.Now().UTC()
	f.publishSpec(t, Spec{JobID: "rec-lossy", Kind: KindRecord, Job: "record", Scenario: text, SHA256: ScenarioHash(text),
		Selector: Selector{"role": "web"}, Agents: agents, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test",
		Recording: &RecordingPlan{ID: "rec-lossy-1", Window: "lossy", Topic: "lossy-http", Start: map[int32]int64{}}})
	js := f.finalJob(t, "rec-lossy", 40*time.Second)
	if js.State != Succeeded || js.Result == nil || js.Result.Window != "lossy" {
		t.Fatalf("job %s %q, result %+v; want SUCCEEDED (on-loss: warn) with window lossy", js.State, js.Reason, js.Result)
	}
	if got := js.Result.Lost; got["file-cut-short"] != 1 || got[catalog.LostTotal] != 1 {
		t.Errorf("job result lost %v, want file-cut-short 1, total 1", got)
	}
	var show strings.Builder
	(&Client{bus: f.bus, Out: &show}).printJob("rec-lossy")
	for _, want := range []string{
		"agent/web-2  web-2  SUCCEEDED  0        requests 3 responses 3 written 6 not-written 0 LOST file-cut-short 1 packet",
		"  LOST: file-cut-short 1 packet\n",
		`window "lossy" saved PARTIAL`,
	} {
		if !strings.Contains(show.String(), want) {
			t.Errorf("jobs show has no %q:\n%s", want, show.String())
		}
	}
	var ls strings.Builder
	(&Client{bus: f.bus, Out: &ls}).List()
	if !strings.Contains(ls.String(), "LOST file-cut-short 1 packet") {
		t.Errorf("jobs ls does not say the recording lost anything:\n%s", ls.String())
	}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cat.Get(f.ctx, "lossy")
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != 6 || len(w.Hosts) != 2 {
		t.Errorf("window requests %d, hosts %v; want 3 from each of 2 hosts", w.Requests, w.Hosts)
	}
	if !w.Partial || w.Lost["file-cut-short"] != 1 || w.Lost[catalog.LostTotal] != 1 {
		t.Errorf("window partial %v, lost %v; want partial with file-cut-short 1 (web-2's)", w.Partial, w.Lost)
	}
}

// TestReplayOfPartialWindowSaysSo: a fleet replay of a window saved partial
// says so in the job's merged result (its source gaps, as a run's JSON
// report has them) and in jobs show, as `replayctl run` and `report merge`
// do ("done (PARTIAL window)", partial lines): the shards' own logs were
// the only place it was said.
func TestReplayOfPartialWindowSaysSo(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	if _, err := f.bus.Admin().CreateTopic(f.ctx, 1, 1, nil, "partial-http"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	for i := range 2 {
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("r%d", i), Time: now + int64(i)*int64(time.Millisecond),
			Raw: []byte(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i))}
		if err := f.bus.Plain().ProduceSync(f.ctx, &kgo.Record{Topic: "partial-http", Value: m.Payload()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(f.ctx, catalog.Window{Name: "part", Topic: "partial-http", Partitions: map[int32]catalog.Range{0: {Start: 0, End: 2}},
		Requests: 2, Messages: 2, Partial: true, Lost: map[string]int64{"spool-full": 3, catalog.LostTotal: 3}}, false); err != nil {
		t.Fatal(err)
	}
	text := "version: 1\nname: part\ntargets:\n  t: {url: \"" + srv.URL + "\"}\njobs:\n  replay:\n    source: {window: part}\n    speed: max\n    sink: {http: {target: t}}\n"
	f.publishReplay(t, "j-part", "load-1", text)
	js := f.finalJob(t, "j-part", 30*time.Second)
	if js.State != Succeeded || js.Result == nil || js.Result.Sent != 2 {
		t.Fatalf("job %s %q, result %+v; want SUCCEEDED, 2 sent", js.State, js.Reason, js.Result)
	}
	gap := "saved partial: its recording lost spool-full 3 messages"
	res, _ := json.Marshal(js.Result)
	if !strings.Contains(string(res), gap) {
		t.Errorf("the job's result does not say the window is partial (%q):\n%s", gap, res)
	}
	var show strings.Builder
	(&Client{bus: f.bus, Out: &show}).printJob("j-part")
	if !strings.Contains(show.String(), "  partial   "+gap+"\n") {
		t.Errorf("jobs show has no partial line:\n%s", show.String())
	}
}

// TestJobsShowAssertionsOnlyOnAWholeRun: a replay job that did not run to
// its end (a shard failed or was cancelled) has merged totals that miss
// part of its window: jobs show does not print its assertions as holding
// on them ("assert ok"), as report merge and serve's report do not.
func TestJobsShowAssertionsOnlyOnAWholeRun(t *testing.T) {
	f := newIDFleet(t)
	zero, one := 0, 1
	for key, st := range map[string]Status{
		jobKey("j-half"): {JobID: "j-half", Kind: KindReplay, State: Failed, Agents: []string{"load-1", "load-2"}, Reason: "shard 1 on load-2: target unreachable",
			Result: &Result{Sent: 10, OK: 10, Asserts: []string{"errors.rate < 0.01", "latency.p99 < duration(\"250ms\")"}}},
		shardKey("j-half", 0): {JobID: "j-half", Kind: KindReplay, Agent: "load-1", Shard: &zero, State: Succeeded, Result: &Result{Sent: 10, OK: 10}},
		shardKey("j-half", 1): {JobID: "j-half", Kind: KindReplay, Agent: "load-2", Shard: &one, State: Failed, Reason: "target unreachable"},
	} {
		if err := f.bus.PublishStatus(f.ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var show strings.Builder
	(&Client{bus: f.bus, Out: &show}).printJob("j-half")
	if strings.Contains(show.String(), "assert ok") || !strings.Contains(show.String(), "  assert --   errors.rate < 0.01  (not evaluated: the job failed)\n") {
		t.Errorf("jobs show of a FAILED job prints its assertions as evaluated:\n%s", show.String())
	}
}

// TestJobsShowDroppedOnStop: a replay job cancelled with requests still
// queued says how many it did not send (sink.dropped-on-stop), not only
// that it was cancelled.
func TestJobsShowDroppedOnStop(t *testing.T) {
	f := newIDFleet(t)
	if err := f.bus.PublishStatus(f.ctx, jobKey("j-stopped"), Status{JobID: "j-stopped", Kind: KindReplay, State: Cancelled, Agents: []string{"load-1"},
		Reason: "cancelled by alice", Result: &Result{Sent: 40, OK: 40, Counters: map[string]int64{"sink.dropped-on-stop": 960}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var show strings.Builder
	(&Client{bus: f.bus, Out: &show}).printJob("j-stopped")
	if !strings.Contains(show.String(), "  not sent  960 request(s) queued when the run was stopped (sink.dropped-on-stop)\n") {
		t.Errorf("jobs show of a cancelled replay does not say what it did not send:\n%s", show.String())
	}
}

// recordAgent starts a running, alive agent name labelled role=web that
// allows record jobs, with its work dir and --var values.
func (f *idFleet) recordAgent(t *testing.T, name, work string, vars map[string]string) {
	t.Helper()
	log := &testutil.SyncBuffer{}
	a, err := NewAgent(AgentConfig{
		Name: name, Labels: Labels{"role": "web"}, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{f.pub},
		Vars: vars, WorkDir: work, Kafka: f.cfg, Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, name, a, log)
	f.waitAlive(t, name)
}
