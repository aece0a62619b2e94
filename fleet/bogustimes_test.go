package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/gorfile"
)

// TestMultiHostRecordingCountsBogusTimes: the one window of a multi-host
// recording counts the messages whose capture time could not be real (a
// .gor file's zero times) as `replayctl run` does (catalog.Window's
// BogusTimes, which windows list shows as "+N bogus"): the agents' counts
// added up. It was 0, and a window of only such messages read "unknown
// (untimed)" instead of "unknown (bogus)".
func TestMultiHostRecordingCountsBogusTimes(t *testing.T) {
	f := newIDFleet(t)
	agents := []string{"web-1", "web-2"}
	for _, name := range agents {
		work := filepath.Join(t.TempDir(), "work")
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		// Two requests each, captured at 0 (bogus), answered.
		var gor string
		for i := range 2 {
			gor += fmt.Sprintf("1 %s%d 0 0\nGET /%d HTTP/1.1\r\nHost: x\r\n\r\n%s", name, i, i, gorfile.Separator)
			gor += fmt.Sprintf("2 %s%d 0 0\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n%s", name, i, gorfile.Separator)
		}
		if err := os.WriteFile(filepath.Join(work, "in.gor"), []byte(gor), 0o600); err != nil {
			t.Fatal(err)
		}
		f.recordAgent(t, name, work, map[string]string{"GOR": filepath.Join(work, "in.gor")})
	}
	text := `version: 1
name: bogus
topics:
  traffic: {name: bogus-http, partitions: 1, create: true}
jobs:
  record:
    source: {gor: {path: "${GOR}"}}
    sink: {kafka: {topic: traffic}}
`
	now := time.Now().UTC()
	f.publishSpec(t, Spec{JobID: "rec-bogus", Kind: KindRecord, Job: "record", Scenario: text, SHA256: ScenarioHash(text),
		Selector: Selector{"role": "web"}, Agents: agents, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test",
		Recording: &RecordingPlan{ID: "rec-bogus-1", Window: "bogus", Topic: "bogus-http", Start: map[int32]int64{}}})
	js := f.finalJob(t, "rec-bogus", 40*time.Second)
	if js.State != Succeeded || js.Result == nil || js.Result.Window != "bogus" {
		t.Fatalf("job %s %q, result %+v; want SUCCEEDED with window bogus", js.State, js.Reason, js.Result)
	}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cat.Get(f.ctx, "bogus")
	if err != nil {
		t.Fatal(err)
	}
	if want := js.Result.Counters["bogus-capture-times"]; want != 8 || w.BogusTimes != want || !w.StartedAt.IsZero() {
		t.Errorf("window bogus-times %d, started %v; want the agents' %d (8: 4 messages each), no start", w.BogusTimes, w.StartedAt, want)
	}
}
