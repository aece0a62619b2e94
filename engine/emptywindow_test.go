package engine_test

import (
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestEmptyTimeWindowWarns: a time window (last: 15m) over a topic whose
// records were written a moment ago from an old pcap selects none of them,
// as it goes by capture time; the run warns with what the topic holds and
// why, where it replayed nothing without a word (a walk of import gor's
// --input-kafka mapping found it).
func TestEmptyTimeWindowWarns(t *testing.T) {
	dir := t.TempDir()
	writePcap(t, filepath.Join(dir, "old.pcap"), netip.MustParseAddrPort("127.0.0.1:8080"), evenly(10, time.Millisecond))
	tg := newTarget(t)
	var logs syncBuffer
	r := run(t, dir, `version: 1
name: empty-window
topics:
  traffic: {name: old-http, create: true}
windows:
  recent: {topic: traffic, last: 15m}
jobs:
  record:
    source: {pcap: {path: old.pcap, ports: [8080]}}
    sink: {kafka: {topic: traffic}}
  replay:
    needs: [record]
    source: {window: recent}
    sink: {http: {url: "`+tg.URL()+`"}}
`, engine.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	const want = `window \"recent\" selects no record: topic old-http holds 20 records, none captured between `
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "a time window goes by capture time") {
		t.Errorf("no warning that the window selects none of the topic's records:\n%s", logs.String())
	}
	if tg.count() != 0 {
		t.Errorf("%d requests sent", tg.count())
	}
}
