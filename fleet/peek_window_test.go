package fleet

import "testing"

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
		{"replay", []string{"jobs.replay.source.window=recorded"}, "monday"},
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
}
