package engine_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestReplayInCaptureOrder: two hosts recorded into one topic, the second
// host's messages reaching the broker 100 ms after the first host's of the
// same moment (as measured with two capture processes: up to 81 ms). The
// partition holds them in arrival order; a paced replay of the window sends
// them in capture order, and with reordering off says how many came out of
// order instead of hiding it in the lateness.
func TestReplayInCaptureOrder(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			const n = 40
			reqs := evenly(n, 10*time.Millisecond)
			arrival := func(i int) time.Duration {
				if i%2 == 1 { // host B
					return reqs[i].at + 100*time.Millisecond
				}
				return reqs[i].at
			}
			inArrival := slices.Clone(reqs)
			slices.SortStableFunc(inArrival, func(a, b req) int {
				var ia, ib int
				fmt.Sscanf(a.raw, "GET /r/%d", &ia)
				fmt.Sscanf(b.raw, "GET /r/%d", &ib)
				return int(arrival(ia) - arrival(ib))
			})
			writeGor(t, dir, "rec.gor", inArrival)
			cat, topic := unique(t, "cat"), unique(t, "topic")
			head := fmt.Sprintf(`version: 1
name: rec
kafka: {brokers: [embedded], catalog-topic: %s}
topics:
  traffic: {name: %s, partitions: 1, create: true}
`, cat, topic)
			record := head + `jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
`
			if res := run(t, dir, record, engine.Options{Brokers: bc.brokers}); res.err != nil {
				t.Fatalf("record: %v\n%s", res.err, res.out)
			}
			for _, c := range []struct {
				name, reorder string
				inOrder       bool
			}{
				{"default", "", true},
				{"off", "reorder: 0s", false},
			} {
				t.Run(c.name, func(t *testing.T) {
					tg := newTarget(t)
					replay := head + fmt.Sprintf(`targets:
  app: {url: %q}
windows:
  both:
    topic: traffic
    offsets: {"*": [0, %d]}
    %s
jobs:
  replay:
    source: {window: both}
    speed: 1
    sink: {http: {target: app, workers: 1}}
    report: {json: %s}
`, tg.URL(), 2*n, c.reorder, filepath.Join(dir, c.name+".json"))
					res := run(t, dir, replay, engine.Options{Brokers: bc.brokers})
					if res.err != nil {
						t.Fatalf("replay: %v\n%s", res.err, res.out)
					}
					var paths []string
					for _, r := range tg.requests() {
						paths = append(paths, r.Path)
					}
					var want []string
					for i := range n {
						want = append(want, fmt.Sprintf("/r/%d", i))
					}
					rep := readReport(t, filepath.Join(dir, c.name+".json"))
					late := number(t, rep, "counters", "source.out-of-order")
					if c.inOrder {
						if !slices.Equal(paths, want) || late != 0 || strings.Contains(res.out, "out-of-order") {
							t.Fatalf("arrived %v, out-of-order %v\n%s", paths, late, res.out)
						}
						return
					}
					// Host B's requests 1..37 came out after a later one of host A
					// (39 comes after 38): 19 requests, the worst 1 (10 ms) after
					// 10 (100 ms). Responses are not counted: they are not sent.
					if slices.Equal(paths, want) || late != 19 || number(t, rep, "counters", "source.out-of-order-max-ms") != 90 ||
						!strings.Contains(res.out, "out-of-order 19: requests read after ones captured up to 90ms later") {
						t.Fatalf("arrived %v, out-of-order %v\n%s", paths, late, res.out)
					}
				})
			}
		})
	}
}
