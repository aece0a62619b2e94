package fleet_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// submitScenario records a pcap (the agent's ${PCAP}) and replays a window
// to the built-in echo target at SPEED.
const submitScenario = `version: 1
name: submit-checks
kafka: {brokers: [embedded]}
topics:
  traffic: {name: submit-checks-SUFFIX, partitions: 1, create: true}
windows:
  recorded: {recording: submit-checks-SUFFIX}
targets:
  echo: {url: "builtin:echo", timeout: 2s}
jobs:
  record:
    source: {pcap: {path: "${PCAP}", ports: [8080], responses: true}}
    sink: {kafka: {topic: traffic}}
  replay:
    source: {window: recorded}
    speed: SPEED
    sink: {http: {target: echo, workers: 2}}
`

// TestSubmitChecks: jobs submit refuses, with exit 2 and before it
// publishes anything, what the agents would refuse every time or what
// cannot run: an invalid scenario or override (FILE:LINE:COL), a --ttl,
// --for or --shards out of range, a job no live agent matching --on allows,
// more shards than such agents, an --id taken by another spec. The same
// spec under the same --id again is not submitted again (exit 0).
func TestSubmitChecks(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { submitChecks(t, "") })
	if real := os.Getenv("REPLAYCTL_TEST_KAFKA"); real != "" {
		t.Run("kafka", func(t *testing.T) { submitChecks(t, real) })
	}
}

func submitChecks(t *testing.T, real string) {
	e := setup(t, real)
	work := filepath.Join(e.dir, "work", "rec")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	pcap, err := os.ReadFile("../examples/quickstart.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "quickstart.pcap"), pcap, 0o600); err != nil {
		t.Fatal(err)
	}
	rec, load := "role=rec-"+e.suffix, "role=load-"+e.suffix
	e.agent(t, "rec", rec, "record", "--var", "PCAP="+filepath.Join(work, "quickstart.pcap"))
	e.agent(t, "load", load, "replay", "--allow-targets", "127.0.0.1:*")
	e.waitAgents(t, 2)
	good := e.write(t, "submit.yaml", strings.Replace(submitScenario, "SPEED", "1", 1))
	fast := e.write(t, "submit-fast.yaml", strings.Replace(submitScenario, "SPEED", "fast", 1))

	submit := func(args ...string) (string, int) {
		t.Helper()
		return bin.Run(t, e.dir, append(append([]string{"jobs", "submit"}, args...), append(e.b(), "--key", e.key)...)...)
	}
	// notPublished: no job of that ID is on the status topic.
	notPublished := func(id string) {
		t.Helper()
		if out, code := bin.Run(t, e.dir, append([]string{"jobs", "show", id}, e.b()...)...); code != 2 || !strings.Contains(out, "no job") {
			t.Fatalf("job %s was published: jobs show exit %d\n%s", id, code, out)
		}
	}
	loadAgent, recAgent := "load-"+e.suffix, "rec-"+e.suffix
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"speed-fast", []string{fast, "--job", "replay", "--on", load},
			[]string{"invalid scenario " + fast + " (1 problem); nothing submitted", fast + `:16:12: jobs.replay.speed: must be a number between 0.01 and 1000 or "max"`}},
		{"set-unknown-key", []string{good, "--job", "replay", "--on", load, "--set", "jobs.replay.speedd=2"},
			[]string{"invalid scenario " + good + " (1 problem); nothing submitted", good + `: --set "jobs.replay.speedd": unknown key "speedd" (did you mean "speed"?)`}},
		{"set-bad-value", []string{good, "--job", "replay", "--on", load, "--set", "jobs.replay.speed=fast"},
			[]string{"invalid scenario " + good, good + ":16:12: jobs.replay.speed: must be a number"}},
		{"ttl-negative", []string{good, "--job", "replay", "--on", load, "--ttl", "-5m"},
			[]string{"--ttl -5m0s: want a positive duration"}},
		{"ttl-zero", []string{good, "--job", "replay", "--on", load, "--ttl", "0"},
			[]string{"--ttl 0s: want a positive duration"}},
		{"for-negative", []string{good, "--job", "record", "--on", rec, "--for", "-5s"},
			[]string{"--for -5s: want a positive duration"}},
		{"for-zero", []string{good, "--job", "record", "--on", rec, "--for", "0s"},
			[]string{"--for 0s: want a positive duration"}},
		{"shards-zero", []string{good, "--job", "replay", "--on", load, "--shards", "0"},
			[]string{"--shards 0: want 1 to 256"}},
		{"shards-too-many", []string{good, "--job", "replay", "--on", load, "--shards", "257"},
			[]string{"--shards 257: want 1 to 256"}},
		{"kind-not-allowed", []string{good, "--job", "record", "--on", load, "--for", "2s"},
			[]string{"no live agent matching " + load + " allows record; matching: " + loadAgent + " (alive, allows replay)", "nothing submitted"}},
		{"no-agent", []string{good, "--job", "record", "--on", "role=nobody-" + e.suffix},
			[]string{"no agent matches role=nobody-" + e.suffix + " (replayctl agents ls); nothing submitted"}},
		{"shards-more-than-agents", []string{good, "--job", "replay", "--on", load, "--shards", "2"},
			[]string{"2 shards need 2 live agents matching " + load + " that allow replay; 1 do: " + loadAgent + "; nothing submitted"}},
	} {
		id := c.name + "-" + e.suffix
		out, code := submit(append(c.args, "--id", id)...)
		if code != 2 || strings.Contains(out, "submitted "+id) {
			t.Fatalf("%s: exit %d, want 2 and nothing submitted\n%s", c.name, code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: no %q in\n%s", c.name, w, out)
			}
		}
		notPublished(id)
	}

	// A job ID again: the same spec is not submitted again; another spec
	// is refused, naming the difference, and the job is left as it was.
	id := "rec-" + e.suffix
	out, code := submit(good, "--job", "record", "--on", rec, "--id", id, "--wait")
	if code != 0 || !strings.Contains(out, "submitted "+id) || !strings.Contains(out, "record  SUCCEEDED") {
		t.Fatalf("record: exit %d\n%s", code, out)
	}
	out, code = submit(good, "--job", "record", "--on", rec, "--id", id)
	if code != 0 || !strings.Contains(out, "job "+id+" was already submitted (SUCCEEDED); not submitted again") || strings.Contains(out, "submitted "+id) {
		t.Fatalf("the same spec again: exit %d, want 0\n%s", code, out)
	}
	out, code = submit(good, "--job", "record", "--on", rec, "--id", id, "--wait")
	if code != 0 || !strings.Contains(out, "not submitted again") || !strings.Contains(out, "job "+id+"  record  SUCCEEDED") {
		t.Fatalf("the same spec again with --wait: exit %d, want 0 and the job\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		diff string
	}{
		{[]string{"--on", "role=none"}, "(selector " + rec + ", now role=none)"},
		{[]string{"--on", rec, "--for", "5s"}, "(for none, now 5s)"},
		{[]string{"--on", rec, "--set", "name=other"}, "(--set [], now [name=other])"},
	} {
		out, code = submit(append([]string{good, "--job", "record", "--id", id}, c.args...)...)
		want := "job " + id + " was already submitted (SUCCEEDED) with another spec " + c.diff + "; another job needs another ID; nothing submitted"
		if code != 2 || !strings.Contains(out, want) || strings.Contains(out, "submitted "+id+"\n") {
			t.Fatalf("another spec under %s: exit %d, want 2 and %q\n%s", c.args, code, want, out)
		}
	}
	other := e.write(t, "submit-other.yaml", strings.Replace(submitScenario, "SPEED", "1", 1)+"# edited\n")
	out, code = submit(other, "--job", "record", "--on", rec, "--id", id)
	if code != 2 || !regexp.MustCompile(`with another spec \(scenario text sha256 [0-9a-f]{12}…, now [0-9a-f]{12}…\)`).MatchString(out) {
		t.Fatalf("another scenario text under %s: exit %d, want 2\n%s", id, code, out)
	}
	show, _ := bin.Run(t, e.dir, append([]string{"jobs", "show", id}, e.b()...)...)
	if !strings.Contains(show, `job "record" on `+rec) || !regexp.MustCompile(`agent/`+recAgent+`\s+`+recAgent+`\s+SUCCEEDED`).MatchString(show) {
		t.Fatalf("the job changed:\n%s", show)
	}
}
