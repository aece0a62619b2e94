package fleet

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRecordSpoolUnderWorkDir: an agent's record job into Kafka spools
// (what a broker outage holds back) under its --work-dir, as every file of
// its jobs, not in .replayctl/spool of the agent's working directory: two
// agents started from one directory (or on one host) opened one spool
// directory per recording there, and a broker outage failed every recording
// but one with "spool: openat spool-00000000.seg: file exists"; an agent
// whose working directory it may not write (/ under systemd) could not
// record at all. Here that directory cannot be created: the job must not
// need it.
func TestRecordSpoolUnderWorkDir(t *testing.T) {
	f := newIDFleet(t)
	fixture, err := os.ReadFile(filepath.Join("..", "capture", "testdata", "keepalive.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	if err := os.WriteFile(filepath.Join(cwd, ".replayctl"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	pcap := filepath.Join(work, "in.pcap")
	if err := os.WriteFile(pcap, fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	f.recordAgent(t, "web-1", work, map[string]string{"PCAP": pcap})
	text := `version: 1
name: spooled
topics:
  traffic: {name: spooled-http, partitions: 1, create: true}
jobs:
  record:
    source: {pcap: {path: "${PCAP}", ports: [18084]}}
    sink: {kafka: {topic: traffic}}
`
	now := time.Now().UTC()
	f.publishSpec(t, Spec{JobID: "rec-spooled", Kind: KindRecord, Job: "record", Scenario: text, SHA256: ScenarioHash(text),
		Selector: Selector{"role": "web"}, Agents: []string{"web-1"}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test",
		Recording: &RecordingPlan{ID: "rec-spooled-1", Window: "spooled", Topic: "spooled-http", Start: map[int32]int64{}}})
	js := f.finalJob(t, "rec-spooled", 40*time.Second)
	if js.State != Succeeded {
		t.Fatalf("job %s %q; want SUCCEEDED, its spool under the work dir", js.State, js.Reason)
	}
	if fi, err := os.Stat(filepath.Join(work, "data", "spool")); err != nil || !fi.IsDir() {
		t.Errorf("no spool directory under the work dir: %v", err)
	}
}
