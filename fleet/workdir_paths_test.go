package fleet

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRelativePathsResolveInWorkDir: a scenario's relative paths resolve
// against the agent's --work-dir, where its files are: a record job whose
// pcap is "in.pcap" reads --work-dir/in.pcap (before, it looked for it in
// an empty per-job directory under --work-dir and always failed), and its
// report lands under --work-dir.
func TestRelativePathsResolveInWorkDir(t *testing.T) {
	f := newIDFleet(t)
	fixture, err := os.ReadFile(filepath.Join("..", "capture", "testdata", "keepalive.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "in.pcap"), fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	f.recordAgent(t, "web-1", work, nil)
	text := `version: 1
name: relative
topics:
  traffic: {name: relative-http, create: true}
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [18084]}}
    sink: {kafka: {topic: traffic}}
    report: {json: reports/record.json}
`
	now := time.Now().UTC()
	f.publishSpec(t, Spec{JobID: "rec-relative", Kind: KindRecord, Job: "record", Scenario: text, SHA256: ScenarioHash(text),
		Selector: Selector{"role": "web"}, Agents: []string{"web-1"}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test",
		Recording: &RecordingPlan{ID: "rec-relative-1", Window: "relative", Topic: "relative-http", Start: map[int32]int64{}}})
	js := f.finalJob(t, "rec-relative", 40*time.Second)
	if js.State != Succeeded {
		t.Fatalf("job %s %q; want SUCCEEDED: in.pcap is in the agent's --work-dir", js.State, js.Reason)
	}
	if _, err := os.Stat(filepath.Join(work, "reports", "record.json")); err != nil {
		t.Errorf("report not under --work-dir: %v", err)
	}
}
