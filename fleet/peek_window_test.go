package fleet

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/scenario"
)

// A submission may choose the window a job reads or saves with --set (serve's
// New replay and New recording pages do); the agents apply the same --set.
func TestShapeOfWindowSet(t *testing.T) {
	text := []byte(`version: 1
topics:
  traffic: {name: http-traffic}
windows:
  recorded: {recording: monday}
jobs:
  record:
    source: {pcap: {path: a.pcap}}
    sink: {kafka: {topic: traffic}}
    save-window: default-name
  replay:
    source: {window: recorded}
    sink: {http: {url: "http://127.0.0.1:1"}}
`)
	for _, c := range []struct {
		job  string
		set  []string
		want string
	}{
		{"replay", nil, "monday"},
		{"replay", []string{"jobs.replay.source.window=tuesday"}, "tuesday"},
		{"replay", []string{`jobs."replay".source.window=tuesday`}, "tuesday"},
		{"replay", []string{"jobs.replay.source.window=recorded"}, "monday"},
		// The windows: entry's recording, as the agents read it: the
		// shards are planned on the window they replay.
		{"replay", []string{"windows.recorded.recording=tuesday"}, "tuesday"},
		{"replay", []string{`windows."recorded".recording=tuesday`}, "tuesday"},
		{"replay", []string{"windows.other.recording=tuesday"}, "monday"},
		{"record", nil, "default-name"},
		{"record", []string{"jobs.record.save-window=peak"}, "peak"},
	} {
		sh, err := shapeOf(text, c.job, c.set)
		if err != nil || sh.Window != c.want {
			t.Errorf("%s %v: %+v %v, want window %q", c.job, c.set, sh, err, c.want)
		}
	}
	if _, err := shapeOf(text, "replay", []string{"jobs.replay.sink.http.url=http://x"}); err == nil {
		t.Error("--set of a sink accepted")
	}
	// Nor by replacing what holds it: a job, every job, every topic, the
	// kafka mapping (the agents would apply it; the spec's topic and window
	// would not be those the job writes), nor with a space before the path
	// (the agents trim it).
	for _, c := range []struct{ job, set string }{
		{"record", "jobs.record={source: {capture: {interface: any, ports: [22]}}, sink: {kafka: {topic: traffic}}}"},
		{"record", "jobs={record: {source: {pcap: {path: b.pcap}}, sink: {kafka: {topic: traffic}}}}"},
		{"record", "topics={traffic: {name: replayctl.jobs}}"},
		{"record", "topics.traffic={name: replayctl.jobs}"},
		{"record", "kafka={catalog-topic: other}"},
		{"record", " jobs.record.sink.kafka.topic=other"},
		{"record", "jobs.record.source ={pcap: {path: b.pcap}}"},
		{"replay", "jobs.replay={source: {window: recorded}, sink: {http: {url: 'http://x'}}}"},
		{"replay", "\tjobs.replay.sink.http.url=http://x"},
		// the windows: entry as a whole, or its topic
		{"replay", "windows={recorded: {recording: tuesday}}"},
		{"replay", "windows.recorded={recording: tuesday}"},
		{"replay", "windows.recorded.topic=other"},
		// a quoted key names the same key
		{"record", `jobs."record".sink.kafka.topic=other`},
		{"record", `"topics".traffic.name=other`},
		{"replay", `jobs.replay."sink".http.url=http://x`},
	} {
		if _, err := shapeOf(text, c.job, []string{c.set}); err == nil {
			t.Errorf("%s: --set %q accepted: it replaces the job's source, sink or topics", c.job, c.set)
		}
	}
	// What serve's forms set stays accepted.
	for _, set := range []string{"jobs.replay.speed=2", "jobs.replay.stop.after=30s", "vars.target=http://x", "kafka.brokers=[k:9092]"} {
		if _, err := shapeOf(text, "replay", []string{set}); err != nil {
			t.Errorf("--set %q: %v", set, err)
		}
	}
}

// TestShapeOfCatalogTopicWrittenOut: the submitter and the agent that saves
// a recording's window open the catalog by the name in the scenario text;
// a kafka.catalog-topic of ${VAR} would be a topic named "${VAR}" to them
// and another to the engine, so a fleet job refuses it, record and replay
// alike.
func TestShapeOfCatalogTopicWrittenOut(t *testing.T) {
	for _, job := range []string{"record", "replay"} {
		text := []byte(`version: 1
kafka: {catalog-topic: "${CATALOG}"}
topics:
  traffic: {name: http-traffic}
jobs:
  record:
    source: {pcap: {path: a.pcap}}
    sink: {kafka: {topic: traffic}}
    save-window: peak
  replay:
    source: {window: peak}
    sink: {http: {url: "http://127.0.0.1:1"}}
`)
		_, err := shapeOf(text, job, nil)
		if err == nil || !strings.Contains(err.Error(), `kafka.catalog-topic "${CATALOG}" depends on agent vars or the environment`) {
			t.Errorf("%s: %v, want the catalog topic refused", job, err)
		}
	}
}

// TestReadsWindowAsAgentsLoad: the window an agent's replay reads, under
// the submission's --set, is the one the submitter planned its shards on
// (shapeOf); an agent refuses a shard whose plan names another window
// rather than read the plan's offsets in it.
func TestReadsWindowAsAgentsLoad(t *testing.T) {
	text := []byte(`version: 1
name: w
kafka: {brokers: [embedded]}
topics:
  traffic: {name: http-traffic}
windows:
  recorded: {topic: traffic, recording: monday}
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {window: recorded}
    sink: {http: {target: t}}
  direct:
    source: {window: sunday}
    sink: {http: {target: t}}
`)
	for _, set := range [][]string{nil, {"windows.recorded.recording=tuesday"}, {"jobs.replay.source.window=wednesday"}} {
		for _, job := range []string{"replay", "direct"} {
			sh, err := shapeOf(text, job, set)
			if err != nil {
				t.Fatal(err)
			}
			s, err := scenario.LoadBytes(filepath.Join(t.TempDir(), "s.yaml"), text, scenario.Options{Set: set, Env: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatalf("load with %q: %v", set, err)
			}
			if got := readsWindow(s.Jobs[job].Source); got != sh.Window {
				t.Errorf("%s %q: the agent reads window %q, the submitter plans %q", job, set, got, sh.Window)
			}
		}
	}
}
