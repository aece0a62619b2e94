package gorimport

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/scenario"
)

// TestSetArgSplitsAsTyped: a --set hint copied into a shell gives --set
// the one argument meant, whatever the job's name holds, and the override
// reaches that job's key (a name with a dot too, next to a job whose name
// is its first segment).
func TestSetArgSplitsAsTyped(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh (a test whose tool is missing fails):", err)
	}
	for _, name := range []string{"replay", "replay-2", "replay.v2", "my job", "it's", "a$b;c", "x)y", `q"*`, "~home"} {
		hint := "--set " + setArg("1h", "jobs", name, "loop", "for")
		out, err := exec.Command(sh, "-c", `printf '%s\n' `+hint).Output()
		if err != nil {
			t.Errorf("sh -c 'printf ... %s': %v", hint, err)
			continue
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		seg := name
		if strings.Contains(name, ".") {
			seg = `"` + name + `"` // one key for --set
		}
		if want := []string{"--set", "jobs." + seg + ".loop.for=1h"}; !slices.Equal(got, want) {
			t.Errorf("%s: a shell splits it into %q, want %q", hint, got, want)
		}
	}

	const doc = `version: 1
name: t
targets: {t: {url: "http://127.0.0.1:1"}}
jobs:
  replay:
    source: {gor: {path: a.gor}}
    sink: {http: {target: t}}
    loop: {for: 24h}
  replay.v2:
    source: {gor: {path: b.gor}}
    sink: {http: {target: t}}
    loop: {for: 24h}
`
	for name, other := range map[string]string{"replay": "replay.v2", "replay.v2": "replay"} {
		// what a shell makes of the hint
		out, err := exec.Command(sh, "-c", `printf '%s' `+setArg("1h", "jobs", name, "loop", "for")).Output()
		if err != nil {
			t.Fatal(err)
		}
		set := string(out)
		s, err := scenario.LoadBytes("s.yaml", []byte(doc), scenario.Options{Set: []string{set}})
		if err != nil {
			t.Fatalf("--set %s: %v", set, err)
		}
		if got, kept := s.Jobs[name].Loop.For.String(), s.Jobs[other].Loop.For.String(); got != "1h0m0s" || kept != "24h0m0s" {
			t.Errorf("--set %s: job %s loops for %s, job %s for %s; want 1h and 24h", set, name, got, other, kept)
		}
	}
}
