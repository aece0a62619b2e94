package engine_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/engine"
)

// TestOffsetsForAllPartitions: a window declared with offsets {"*": [s, e)}
// reads [s, e) of every partition of the topic, as GoReplay's single start
// and end offsets do.
func TestOffsetsForAllPartitions(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			pcap, err := filepath.Abs("../examples/quickstart.pcap")
			if err != nil {
				t.Fatal(err)
			}
			cat, topic, win := unique(t, "cat"), unique(t, "topic"), unique(t, "win")
			// Four recorded connections spread over two partitions by key.
			yaml := fmt.Sprintf(`version: 1
name: rec
kafka: {brokers: [embedded], catalog-topic: %s}
topics:
  traffic: {name: %s, partitions: 2, create: true}
jobs:
  record:
    source: {pcap: {path: %s, ports: [8080], responses: true}}
    sink: {kafka: {topic: traffic}}
    save-window: %s
`, cat, topic, pcap, win)
			if res := run(t, dir, yaml, engine.Options{Brokers: bc.brokers}); res.err != nil {
				t.Fatalf("record: %v\n%s", res.err, res.out)
			}
			_, ends := openWindow(t, engine.Options{Brokers: bc.brokers}, yaml, dir, win)
			if len(ends) != 2 {
				t.Fatalf("end offsets %v, want 2 partitions", ends)
			}
			n := min(ends[0], ends[1])
			if n == 0 {
				t.Fatalf("a partition is empty: %v", ends)
			}
			all := fmt.Sprintf(`version: 1
name: all
kafka: {brokers: [embedded], catalog-topic: %s}
topics:
  traffic: {name: %s}
windows:
  first:
    topic: traffic
    offsets: {"*": [0, %d]}
jobs:
  dump:
    source: {window: first}
    sink: {stdout: {format: summary}}
`, cat, topic, n)
			res := run(t, dir, all, engine.Options{Brokers: bc.brokers})
			if res.err != nil {
				t.Fatalf("dump: %v\n%s", res.err, res.out)
			}
			lines := strings.Count(res.out, " request ") + strings.Count(res.out, " response ")
			if lines != int(2*n) {
				t.Fatalf("read %d messages, want %d (offsets [0,%d) of 2 partitions):\n%s", lines, 2*n, n, res.out)
			}
		})
	}
}
