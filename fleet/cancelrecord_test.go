package fleet

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/internal/testutil"
)

// TestCancelledRecordingIsNotPartial: a record job its cancel stops on
// every host drains on each and saves the window with what they recorded,
// lacking nothing of it: the window is not partial, and no host is counted
// in hosts-failed. Every host was counted as failed (LOST: hosts-failed 2
// hosts), the window saved PARTIAL, and every replay of it said so.
func TestCancelledRecordingIsNotPartial(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("captures on lo: it needs root (CAP_NET_RAW)")
	}
	f := newIDFleet(t)
	port := testutil.FreePort(t)
	agents := []string{"web-1", "web-2"}
	for _, name := range agents {
		work := filepath.Join(t.TempDir(), "work")
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		f.recordAgent(t, name, work, map[string]string{"PORT": fmt.Sprint(port)})
	}
	text := `version: 1
name: cancelled
topics:
  traffic: {name: cancelled-http, partitions: 1, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: ["${PORT}"]}}
    sink: {kafka: {topic: traffic}}
`
	now := time.Now().UTC()
	f.publishSpec(t, Spec{JobID: "rec-cancelled", Kind: KindRecord, Job: "record", Scenario: text, SHA256: ScenarioHash(text),
		Selector: Selector{"role": "web"}, Agents: agents, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test",
		Recording: &RecordingPlan{ID: "rec-cancelled-1", Window: "cancelled", Topic: "cancelled-http", Start: map[int32]int64{}}})
	waitFor(t, 20*time.Second, "both parts running", func() bool {
		for _, a := range agents {
			if s, ok := f.bus.Status(agentKey("rec-cancelled", a)); !ok || s.State != Running {
				return false
			}
		}
		return true
	})
	// The captures record before the cancel: traffic on the port until the
	// topic holds 8 messages (2 requests and their answers from each agent
	// once both capture). A part cancelled before its capture opened lacks
	// its host's traffic, and counts as failed: the cancel came the moment
	// both were RUNNING, and one was still starting.
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	waitFor(t, 20*time.Second, "both captures recording", func() bool {
		if resp, err := http.Get("http://" + srv.Addr + "/"); err == nil {
			resp.Body.Close()
		}
		ends, err := f.bus.Admin().ListEndOffsets(f.ctx, "cancelled-http")
		if err != nil {
			return false
		}
		o, ok := ends.Lookup("cancelled-http", 0)
		return ok && o.Offset >= 8
	})
	f.cancel(t, "rec-cancelled")
	js := f.finalJob(t, "rec-cancelled", 40*time.Second)
	if js.State != Cancelled || js.Result == nil || js.Result.Window != "cancelled" {
		t.Fatalf("job %s %q, result %+v; want CANCELLED with its window saved", js.State, js.Reason, js.Result)
	}
	if n := js.Result.Lost[catalog.HostsFailed]; n != 0 {
		t.Errorf("job result lost %v: the cancel counted %d host(s) as failed", js.Result.Lost, n)
	}
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cat.Get(f.ctx, "cancelled")
	if err != nil {
		t.Fatal(err)
	}
	if w.Partial || len(w.Lost) > 0 {
		t.Errorf("window partial %v, lost %v; want a whole window of what the hosts recorded until the cancel", w.Partial, w.Lost)
	}
}
