package engine_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestFailedJobNamesJobsNotRun: a run stops at the first job that fails;
// its error names the jobs that did not run then and the assertions that
// had failed before it (the run said neither: the later jobs vanished).
func TestFailedJobNamesJobsNotRun(t *testing.T) {
	dir := t.TempDir()
	writePcap(t, filepath.Join(dir, "in.pcap"), netip.MustParseAddrPort("127.0.0.1:8080"), evenly(3, time.Millisecond))
	tg := newTarget(t)
	r := run(t, dir, `version: 1
name: not-run
jobs:
  a:
    source: {pcap: {path: in.pcap, ports: [8080]}}
    sink: {http: {url: "`+tg.URL()+`"}}
    speed: max
    assert: ['requests.sent == 0']
  b:
    source: {pcap: {path: missing.pcap, ports: [8080]}}
    sink: {http: {url: "`+tg.URL()+`"}}
  c:
    source: {pcap: {path: in.pcap, ports: [8080]}}
    sink: {http: {url: "`+tg.URL()+`"}}
  d:
    source: {pcap: {path: in.pcap, ports: [8080]}}
    sink: {http: {url: "`+tg.URL()+`"}}
`, engine.Options{})
	if r.err == nil {
		t.Fatalf("run succeeded\n%s", r.out)
	}
	msg := r.err.Error()
	if !strings.HasPrefix(msg, "job b: ") || !strings.Contains(msg, "; not run after it: c, d") ||
		!strings.Contains(msg, "; assertions that failed before it: ") || !strings.Contains(msg, "job a: requests.sent == 0") {
		t.Errorf("error %q", msg)
	}
	if tg.count() != 3 {
		t.Errorf("%d requests sent, want job a's 3", tg.count())
	}
}
