package fleet

import (
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/internal/testutil"
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
		log := &testutil.SyncBuffer{}
		a, err := NewAgent(AgentConfig{
			Name: name, Labels: Labels{"role": "web"}, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{f.pub},
			Vars: map[string]string{"PCAP": pcap}, WorkDir: work, Kafka: f.cfg, Logger: slog.New(slog.NewTextHandler(log, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		f.run(t, name, a, log)
		f.waitAlive(t, name)
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
	var js Status
	waitFor(t, 40*time.Second, "the job's final status", func() bool {
		var ok bool
		js, ok = f.bus.Status(jobKey("rec-lossy"))
		return ok && js.State.Final()
	})
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
