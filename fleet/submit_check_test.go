package fleet

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const checkRecord = `version: 1
name: check
kafka: {brokers: [embedded]}
topics:
  traffic: {name: check-http, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: ["${PORT}"]}}
    sink: {kafka: {topic: traffic}}
`

const checkReplay = `version: 1
name: check
kafka: {brokers: [embedded]}
targets:
  app: {url: "URL"}
jobs:
  replay:
    source: {window: w}
    speed: SPEED
    sink: {http: {target: app}}
`

func replayText(url, speed string) []byte {
	return []byte(strings.NewReplacer("URL", url, "SPEED", speed).Replace(checkReplay))
}

// TestCheckSubmit: what a submitter refuses before publishing, as the API
// and jobs submit see it (exit 2, 400): every error is a usage error, an
// invalid scenario is every problem at its FILE:LINE:COL. A ${VAR} without
// a default is the agents' --var, not a problem.
func TestCheckSubmit(t *testing.T) {
	dir := t.TempDir()
	sel := Selector{"role": "x"}
	rec := SubmitRequest{File: dir + "/rec.yaml", Text: []byte(checkRecord), Job: "record", Selector: sel}
	rep := SubmitRequest{File: dir + "/rep.yaml", Text: replayText("${TARGET}", "1"), Job: "replay", Selector: sel}

	chk, err := CheckSubmit(rec)
	if err != nil || chk.Kind != KindRecord || !slices.Equal(chk.Vars, []string{"PORT"}) {
		t.Fatalf("record: %+v %v", chk, err)
	}
	r := rec
	r.For = 30 * time.Second
	if chk, err := CheckSubmit(r); err != nil || !slices.Equal(chk.Set, []string{"jobs.record.stop.after=30s"}) {
		t.Fatalf("record --for: %+v %v", chk, err)
	}
	if chk, err := CheckSubmit(rep); err != nil || chk.Kind != KindReplay || !slices.Equal(chk.Vars, []string{"TARGET"}) {
		t.Fatalf("replay: %+v %v", chk, err)
	}
	r = rep
	r.TTL = MaxTTL
	if _, err := CheckSubmit(r); err != nil {
		t.Fatalf("replay with the longest TTL: %v", err)
	}
	// Every form of a variable the agents supply: a name with '.' or '-',
	// and ${NAME:?message}, whose diagnostic is the message.
	for _, ref := range []string{"${app.target}", "${APP-TARGET}", "${TARGET:?give the agents --var TARGET}"} {
		r := rep
		r.Text = replayText(ref, "1")
		if chk, err := CheckSubmit(r); err != nil || len(chk.Vars) != 1 {
			t.Errorf("replay to %s: %+v %v", ref, chk, err)
		}
	}
	with := func(base SubmitRequest, f func(*SubmitRequest)) SubmitRequest { f(&base); return base }
	for _, c := range []struct {
		name string
		req  SubmitRequest
		want string
	}{
		{"no job", with(rep, func(r *SubmitRequest) { r.Job = "" }), "a job is required"},
		{"unknown job", with(rep, func(r *SubmitRequest) { r.Job = "nope" }), `scenario has no job "nope" (jobs: replay)`},
		{"no selector", with(rep, func(r *SubmitRequest) { r.Selector = nil }), "a selector (agent labels: role=web) or agent names are required"},
		{"bad id", with(rep, func(r *SubmitRequest) { r.JobID = "a b" }), `job ID "a b": letters`},
		{"negative shards", with(rep, func(r *SubmitRequest) { r.Shards = -1 }), "shards -1: want 1 to 256"},
		{"too many shards", with(rep, func(r *SubmitRequest) { r.Shards = 257 }), "shards 257: want 1 to 256"},
		{"negative for", with(rec, func(r *SubmitRequest) { r.For = -time.Second }), "for -1s: want a positive duration"},
		{"negative ttl", with(rep, func(r *SubmitRequest) { r.TTL = -time.Minute }), "ttl -1m0s: want a positive duration"},
		{"ttl over the maximum", with(rep, func(r *SubmitRequest) { r.TTL = MaxTTL + time.Second }),
			"ttl 24h0m1s: more than the maximum 24h0m0s (agents refuse a spec valid for longer than their --max-spec-ttl, 24h0m0s by default)"},
		{"a century's ttl", with(rep, func(r *SubmitRequest) { r.TTL = 100 * 365 * 24 * time.Hour }), "ttl 876000h0m0s: more than the maximum 24h0m0s"},
		{"set without =", with(rep, func(r *SubmitRequest) { r.Set = []string{"jobs.replay.speed"} }), `--set "jobs.replay.speed": want PATH=VALUE`},
		{"shards of a record", with(rec, func(r *SubmitRequest) { r.Shards = 2 }), "--shards applies to replay jobs"},
		{"for of a replay", with(rep, func(r *SubmitRequest) { r.For = time.Second }), "--for applies to record jobs"},
		{"speed fast", with(rep, func(r *SubmitRequest) { r.Text = replayText("${TARGET}", "fast") }),
			"invalid scenario " + dir + "/rep.yaml (1 problem):\n" + dir + `/rep.yaml:9:12: jobs.replay.speed: must be a number between 0.01 and 1000 or "max"`},
		{"set unknown key", with(rep, func(r *SubmitRequest) { r.Set = []string{"jobs.replay.speedd=2"} }),
			dir + `/rep.yaml: --set "jobs.replay.speedd": unknown key "speedd" (did you mean "speed"?)`},
		{"set bad value", with(rep, func(r *SubmitRequest) { r.Set = []string{"jobs.replay.speed=fast"} }), dir + "/rep.yaml:9:12: jobs.replay.speed: must be a number"},
		{"compiled", with(rep, func(r *SubmitRequest) {
			r.Text = []byte(strings.Replace(string(replayText("http://127.0.0.1:1", "max")), "target: app}", "target: app, max-connections: 4}", 1))
		}), dir + "/rep.yaml:10:11: job \"replay\": max-connections caps the open model"},
		{"env()", with(rep, func(r *SubmitRequest) {
			r.Text = []byte(strings.Replace(string(replayText("${TARGET}", "1")), "speed: 1", "speed: 1\n    assert: ['env(\"X\") == \"\"']", 1))
		}), dir + "/rep.yaml:10:15: env() in an expression reads the agent's environment"},
		{"env() in a --set", with(rep, func(r *SubmitRequest) {
			r.Text = replayText("http://127.0.0.1:1", "1")
			r.Set = []string{`jobs.replay.filter=env("X") != ""`}
		}), dir + `/rep.yaml: env("X") in an expression reads the agent's environment`},
	} {
		_, err := CheckSubmit(c.req)
		if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a usage error with %q", c.name, err, c.want)
		}
		var inv *InvalidScenarioError
		if strings.Contains(c.want, ".yaml") != errors.As(err, &inv) {
			t.Errorf("%s: %T, want an *InvalidScenarioError for a scenario's problem", c.name, err)
		}
	}
}

// TestSpecDiff: the same spec again is no difference (For's stop.after
// included); another names what changed.
func TestSpecDiff(t *testing.T) {
	req := SubmitRequest{Text: []byte(checkRecord), Job: "record", Selector: Selector{"role": "web"}, For: 30 * time.Second, Set: []string{"name=a"}}
	chk, err := checkRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	old := Spec{Kind: KindRecord, Job: "record", SHA256: ScenarioHash(checkRecord), Selector: Selector{"role": "web"}, For: Duration(30 * time.Second),
		Set: []string{"name=a", "jobs.record.stop.after=30s"}}
	if d := specDiff(old, req, chk); d != "" {
		t.Fatalf("the same spec: %s", d)
	}
	req.Selector, req.For, req.Set = Selector{"role": "db"}, 0, nil
	chk, _ = checkRequest(req)
	want := "selector role=web, now role=db; for 30s, now none; --set [name=a], now []"
	if d := specDiff(old, req, chk); d != want {
		t.Fatalf("diff %q, want %q", d, want)
	}
}
