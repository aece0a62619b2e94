package engine_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestRewrittenHostReachesTheTarget: a Host set by the rewrite chain
// (set-host, or set-header of Host) is the one the target sees, with the
// default preserve-host: false too; the requests whose Host the chain did
// not set (its if: false) still get the target's. The plan says so.
func TestRewrittenHostReachesTheTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rewrite, plan string
	}{
		{"set-host", `{set-host: '"rewritten.example:8443"', if: 'req.path == "/set"'}`,
			"host rewritten to the target, except where a rewrite sets it (set-host)"},
		{"set-header Host", `{set-header: {name: host, value: '"rewritten.example:8443"'}, if: 'req.path == "/set"'}`,
			"host rewritten to the target, except where a rewrite sets it (set-header host)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", []req{
				{0, get("/set")},
				{time.Millisecond, get("/other")},
				{2 * time.Millisecond, "GET http://orig.example:18101/set?q=1 HTTP/1.1\r\nHost: orig.example:18101\r\n\r\n"},
			})
			tg := newTarget(t)
			yaml := replayYAML(tg.URL(), "speed: max\nrewrite: ["+tc.rewrite+"]\nsink: {http: {target: app, workers: 1}}")
			var plan bytes.Buffer
			compile(t, dir, yaml, &engine.Options{}).Describe(&plan)
			if !strings.Contains(plan.String(), tc.plan) {
				t.Errorf("the plan does not say %q:\n%s", tc.plan, plan.String())
			}
			if res := run(t, dir, yaml, engine.Options{}); res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			got := tg.requests()
			if len(got) != 3 {
				t.Fatalf("target got %d requests, want 3", len(got))
			}
			want := map[string]string{
				"/set":                              "rewritten.example:8443",
				"/other":                            tg.Addr(),
				"http://orig.example:18101/set?q=1": "rewritten.example:8443",
			}
			if tc.name == "set-host" { // set-host moves an absolute-form target's authority too
				delete(want, "http://orig.example:18101/set?q=1")
				want["http://rewritten.example:8443/set?q=1"] = "rewritten.example:8443"
			}
			for _, g := range got {
				w, ok := want[g.Path]
				if !ok {
					t.Errorf("unexpected request target %q", g.Path)
					continue
				}
				if h := hostLine(g.Raw); h != w {
					t.Errorf("%s: Host %q, want %q\n%q", g.Path, h, w, g.Raw)
				}
			}
		})
	}

	// An unconditional set-host: the plan says the target's host is never sent.
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", []req{{0, get("/a")}})
	var plan bytes.Buffer
	compile(t, dir, replayYAML("http://127.0.0.1:9", `rewrite: [{set-host: '"rewritten.example"'}]`), &engine.Options{}).Describe(&plan)
	if want := "host set by the rewrite (set-host), not the target's"; !strings.Contains(plan.String(), want) {
		t.Errorf("the plan does not say %q:\n%s", want, plan.String())
	}
}

// TestAbsoluteFormRetargeted: with the Host rewritten to the target, an
// absolute-form request target (as a proxy receives) names the target too
// (RFC 9112 §3.2.2: the server goes by the request line's authority), with
// the target's scheme; preserve-host: true keeps both as recorded.
func TestAbsoluteFormRetargeted(t *testing.T) {
	t.Parallel()
	const abs = "GET http://orig.example:18101/c60/abs?q=1 HTTP/1.1\r\nHost: orig.example:18101\r\nAccept: */*\r\n\r\n"
	for _, preserve := range []bool{false, true} {
		t.Run(fmt.Sprintf("preserve-host=%t", preserve), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", []req{{0, abs}, {time.Millisecond, get("/origin")}})
			tg := newTarget(t)
			res := run(t, dir, replayYAML(tg.URL(), fmt.Sprintf("speed: max\nsink: {http: {target: app, workers: 1, preserve-host: %t}}", preserve)), engine.Options{})
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			got := tg.requests()
			if len(got) != 2 {
				t.Fatalf("target got %d requests, want 2", len(got))
			}
			want := abs
			if !preserve {
				want = strings.ReplaceAll(abs, "orig.example:18101", tg.Addr())
			}
			if string(got[0].Raw) != want {
				t.Errorf("on the wire\n%q\nwant\n%q", got[0].Raw, want)
			}
		})
	}
}
