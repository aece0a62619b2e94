package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containYAML replays rec.gor to a target and writes a JSON report at the
// path given (line 9, column 20).
const containYAML = `version: 1
name: contained
targets:
  app: {url: "%s"}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    sink: {http: {target: app}}
    report: {json: %s}
`

// TestContainedScenario: a scenario whose report escapes its directory with
// ../ or through a symbolic link is refused at file:line:col with exit 2
// before anything is sent, by validate and by run; --allow-paths lets the
// first one through.
func TestContainedScenario(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outside := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	if err := os.Symlink(outside, filepath.Join(dir, "reports")); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t)
	for _, tc := range []struct{ name, report, want string }{
		{"dot dot", "../escape.json", "is outside the scenario's directory"},
		{"symlinked dir", "reports/escape.json", "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := write(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", fmt.Sprintf(containYAML, tg.URL(), tc.report))
			for _, args := range [][]string{{"validate", f}, {"run", f, "--data-dir", filepath.Join(dir, "data")}} {
				r := mustRun(t, ExitInvalid, args...)
				if !strings.Contains(r.stderr, f+":9:20: jobs.replay.report.json: ") || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%s: want %s:9:20 and %q:\n%s", args[0], f, tc.want, r)
				}
			}
			if n := tg.count.Load(); n != 0 {
				t.Fatalf("target received %d requests", n)
			}
			for _, p := range []string{filepath.Join(filepath.Dir(dir), "escape.json"), filepath.Join(outside, "escape.json")} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s written", p)
				}
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		f := write(t, dir, "allowed.yaml", fmt.Sprintf(containYAML, tg.URL(), filepath.Join(outside, "ok.json")))
		mustRun(t, ExitInvalid, "validate", f)
		mustRun(t, ExitOK, "run", f, "--allow-paths", outside, "--data-dir", filepath.Join(dir, "data"))
		if n := tg.count.Load(); n != 3 {
			t.Fatalf("target received %d requests, want 3", n)
		}
		if _, err := os.Stat(filepath.Join(outside, "ok.json")); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRestrictedRun: --restricted refuses a ${VAR} not named by vars:,
// --env-file or --env-allow (exit 2, nothing sent) and accepts it when allowed.
func TestRestrictedRun(t *testing.T) {
	dir := t.TempDir()
	writeGor(t, dir, 2, time.Millisecond)
	tg := newTarget(t)
	t.Setenv("REPLAYCTL_TEST_TARGET", tg.URL())
	f := write(t, dir, "r.yaml", fmt.Sprintf(containYAML, "${REPLAYCTL_TEST_TARGET}", "out/r.json"))
	r := mustRun(t, ExitInvalid, "run", f, "--restricted")
	if !strings.Contains(r.stderr, f+":4:14: ${REPLAYCTL_TEST_TARGET} cannot be read") {
		t.Errorf("want the refused variable at 4:14:\n%s", r)
	}
	if n := tg.count.Load(); n != 0 {
		t.Fatalf("target received %d requests", n)
	}
	mustRun(t, ExitOK, "run", f, "--restricted", "--env-allow", "REPLAYCTL_TEST_*")
	if n := tg.count.Load(); n != 2 {
		t.Fatalf("target received %d requests, want 2", n)
	}
}
