package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio"
)

// TestBrokerGoneAtTheEnd captures live traffic on lo into a broker the test
// stops before the capture ends: the end of the job says what it waits for
// and how long it may still wait (kafka.delivery-timeout), then counts what
// was not acknowledged as lost (undeliverable), and fails. Its window cannot
// be saved either: the run's error says both, and is still a LossError (exit
// 1, also when Ctrl-C ended the capture).
func TestBrokerGoneAtTheEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dataDir := filepath.Join(t.TempDir(), "broker")
	b, err := kafkaio.StartEmbedded(context.Background(), kafkaio.EmbeddedOptions{Listen: addr, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(sl) }()
	defer srv.Close()
	port := sl.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	yaml := fmt.Sprintf(`version: 1
name: gone
kafka: {brokers: [%s], delivery-timeout: 3s}
topics:
  traffic: {name: gone-http, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%d]}}
    sink: {kafka: {topic: traffic, spool: {dir: spool}}}
    stop: {after: 6s}
    save-window: gone
    report: {json: out/record.json}
`, addr, port)
	var progress testutil.SyncBuffer
	opts := engine.Options{Brokers: []string{addr}, Progress: engine.ProgressAlways, Err: &progress}
	plan := compile(t, dir, yaml, &opts)
	done := make(chan error, 1)
	go func() { done <- plan.Run(context.Background()) }()

	time.Sleep(1500 * time.Millisecond) // the capture is open
	// Five exchanges reach the broker before it goes: the error says where
	// they lie.
	getAll(t, port, "/before", 5, 0)
	time.Sleep(2500 * time.Millisecond) // held for ordering, then acknowledged
	_ = b.Close()
	getAll(t, port, "/r", 20, 0)
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end within 30 s")
	}
	out := opts.Out.(*testutil.SyncBuffer).String()
	var loss *engine.LossError
	if !errors.As(runErr, &loss) || !strings.Contains(runErr.Error(), "window end offsets") {
		t.Fatalf("run = %v, want a loss and the window not saved\n%s", runErr, out)
	}
	// The entry keeps only this recording's records: the ranges hold
	// whatever else was written to the topic meanwhile.
	entry := regexp.MustCompile(`record\(s\) written are in topic gone-http; this windows: entry replays them: (\{topic: traffic, offsets: \{"0": \[0, 10\]\}, only-recording: rec-[0-9TZ]+-[0-9a-f]{8}\})`).FindStringSubmatch(runErr.Error())
	if entry == nil {
		t.Errorf("the error does not say where the 10 records written lie, as a windows: entry of this recording: %v", runErr)
	} else {
		// The entry, pasted into the scenario, is a window that replays them.
		s := loadScenario(t, dir, yaml+"windows:\n  written: "+entry[1]+"\n")
		if w := s.Windows["written"]; w == nil || w.OnlyRecording == "" || w.Topic == nil || w.Topic.Name != "gone-http" {
			t.Errorf("the entry %s pasted into a scenario: %+v", entry[1], w)
		}
	}
	if !strings.Contains(out, "FAILED") || !strings.Contains(out, "(no window saved)") {
		t.Errorf("the summary does not say the job failed and saved no window:\n%s", out)
	}
	p := progress.String()
	if !strings.Contains(p, "records to be acknowledged") || !strings.Contains(p, "s left") || !strings.Contains(p, "broker unreachable") {
		t.Errorf("the progress does not say what the end waits for:\n%q", p)
	}
	if !strings.Contains(out, "lost") || !strings.Contains(out, "undeliverable") {
		t.Errorf("summary lacks the undeliverable messages:\n%s", out)
	}
	rep := readReport(t, filepath.Join(dir, "out", "record.json"))
	if number(t, rep, "lost", "undeliverable") == 0 || number(t, rep, "written") != 10 {
		t.Errorf("report: lost %v, written %v", field(t, rep, "lost"), field(t, rep, "written"))
	}
}
