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

// TestValidateWarnsAboutMissingInputs: validate names input files that do
// not exist and capture interfaces this host does not have, each at its
// position, as warnings: they may exist only where the scenario runs, so
// the exit code stays 0.
func TestValidateWarnsAboutMissingInputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 1, time.Millisecond)
	write(t, dir, "ca.pem", "not checked here")
	f := write(t, dir, "inputs.yaml", `version: 1
name: inputs
kafka:
  brokers: ["k1:9092"]
  tls: {ca-file: ca.pem, cert-file: missing-cert.pem, key-file: missing-key.pem}
topics: {t: {}}
jobs:
  live:
    source: {capture: {interface: nosuch0, ports: [80]}}
    sink: {kafka: {topic: t}}
  lo:
    source: {capture: {interface: lo, ports: [80]}}
    sink: {kafka: {topic: t}}
  file:
    source: {pcap: {path: captures/missing.pcap}}
    sink: {kafka: {topic: t}}
  rotated:
    source: {gor: {path: "requests_*.gor"}}
    sink: {kafka: {topic: t}}
  present:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: t}}
  all:
    source: {capture: {interface: any, ports: [80]}}
    sink: {kafka: {topic: t}}
  folder:
    source: {pcap: {path: captures}}
    sink: {kafka: {topic: t}}
  spooled:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: t, spool: {dir: captures}}}
  spooled-new:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: t, spool: {dir: spool-not-yet}}}
`)
	if err := os.Mkdir(filepath.Join(dir, "captures"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, ExitOK, "validate", f)
	want := []string{
		f + ":5:37: warning: kafka.tls.cert-file: missing-cert.pem: no such file or directory",
		f + ":5:65: warning: kafka.tls.key-file: missing-key.pem: no such file or directory",
		f + ":9:35: warning: jobs.live.source.capture.interface: interface nosuch0 does not exist on this host",
		f + ":15:27: warning: jobs.file.source.pcap.path: captures/missing.pcap: no such file or directory",
		f + ":18:26: warning: jobs.rotated.source.gor.path: no file matches requests_*.gor",
		f + ":27:27: warning: jobs.folder.source.pcap.path: captures is a directory, not a file",
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r)
		}
	}
	if n := strings.Count(r.stderr, "warning:"); n != len(want) || !strings.Contains(r.stdout, f+": ok") {
		t.Errorf("want exactly %d warnings and ok:\n%s", len(want), r)
	}
}

// TestContainedSpoolAndGlobs: validate and run refuse, at file:line:col with
// exit 2 and before anything is created or read, a spool.dir outside the
// scenario's directory or through a symbolic link, and, with --restricted,
// a gor glob that matches a symbolic link or goes through a symlinked
// directory.
func TestContainedSpoolAndGlobs(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	writeGor(t, dir, 2, time.Millisecond)
	secret := writeGor(t, outside, 2, time.Millisecond)
	if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "r"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "r", "in.gor")); err != nil {
		t.Fatal(err)
	}
	const doc = "version: 1\nname: c\ntopics: {t: {}}\njobs:\n  record:\n    source: {gor: {path: %q}}\n    sink: {kafka: {topic: t, spool: {dir: %s}}}\n"
	for _, tc := range []struct {
		name, source, spool string
		flags               []string
		at, want            string
	}{
		{"spool dot dot", "rec.gor", "../escaped-spool", nil, ":7:43: jobs.record.sink.kafka.spool.dir: ", "../escaped-spool is outside the scenario's directory"},
		{"spool absolute", "rec.gor", filepath.Join(outside, "spool"), nil, ":7:43: jobs.record.sink.kafka.spool.dir: ", "is outside the scenario's directory"},
		{"spool symlinked", "rec.gor", "linked", nil, ":7:43: jobs.record.sink.kafka.spool.dir: ", filepath.Join(dir, "linked") + " is a symbolic link"},
		{"glob matches a link", "r/*.gor", "spool", []string{"--restricted"}, ":6:26: jobs.record.source.gor.path: ", "r/*.gor matches " + filepath.Join(dir, "r", "in.gor")},
		{"glob through a linked dir", "linke?/rec.gor", "spool", []string{"--restricted"}, ":6:26: jobs.record.source.gor.path: ", filepath.Join(dir, "linked") + " is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := write(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", fmt.Sprintf(doc, tc.source, tc.spool))
			for _, args := range [][]string{{"validate", f}, {"run", f, "--data-dir", filepath.Join(dir, "data")}} {
				r := mustRun(t, ExitInvalid, append(args, tc.flags...)...)
				if !strings.Contains(r.stderr, f+tc.at) || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%s: want %s%s… %q:\n%s", args[0], f, tc.at, tc.want, r)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escaped-spool")); err == nil {
				t.Fatal("escaped-spool created")
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Fatalf("%d entries outside, want only rec.gor", len(ents))
			}
		})
	}
}

// TestEnvAllowNeedsRestricted: --env-allow only narrows what a restricted
// scenario reads; without --restricted it would change nothing (the whole
// environment stays readable), so it is refused as a usage error (exit 2)
// by every command that takes it, rather than ignored.
func TestEnvAllowNeedsRestricted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:9", "errors.rate == 0"))
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"validate", f, "--env-allow", "APP_*"},
		{"run", f, "--dry-run", "--env-allow", "APP_*"},
		{"windows", "list", "-f", f, "--env-allow", "APP_*", "--data-dir", data},
		{"report", "merge", "--run", "r1", "-f", f, "--env-allow", "APP_*", "--data-dir", data},
	} {
		r := mustRun(t, ExitInvalid, args...)
		if !strings.Contains(r.stderr, "--env-allow applies only with --restricted") {
			t.Errorf("replayctl %s: stderr does not say why:\n%s", strings.Join(args, " "), r)
		}
	}
	mustRun(t, ExitOK, "validate", f, "--restricted", "--env-allow", "APP_*")
}
