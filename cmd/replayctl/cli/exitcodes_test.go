package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
)

// TestExitCodes runs every command into each kind of failure and checks
// that the exit codes agree across commands, as the README's table says:
// usage and unknown windows 2, unreachable brokers and busy data dirs 1,
// assertions 3.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	tg := newTarget(t)
	good := write(t, dir, "good.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "errors.rate == 0"))
	failing := write(t, dir, "failing.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "requests.sent > 1000"))
	bad := write(t, dir, "bad.yaml", "version: 1\nname: bad\njobs:\n  x:\n    source: {gor: {path: rec.gor}}\n    speed: fast\n    sink: {stdout: {}}\n")
	empty := filepath.Join(dir, "empty-data") // a data dir with no windows
	saved := filepath.Join(dir, "saved-data") // a data dir where "recent" is saved
	mustRun(t, ExitOK, "run", good, "--job", "record", "--data-dir", saved)

	// A data dir held by another user that does not serve it (as a
	// `replayctl run` holds it while it runs).
	held := filepath.Join(dir, "held-data")
	lock, err := kafkaio.LockDataDir(context.Background(), held, kafkaio.Holder{Command: "replayctl run other.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Release() })

	unreachable := "127.0.0.1:1"
	taken := tg.ln.Addr().String()
	inUse := func(flag string) string {
		return fmt.Sprintf("replayctl: %s %s: address already in use by pid %d (", flag, taken, os.Getpid())
	}
	mustRun(t, ExitOK, "keys", "new", filepath.Join(dir, "keys", "fleet"))
	agent := []string{"agent", "--brokers", unreachable, "--name", "a", "--allow", "record", "--trust", filepath.Join(dir, "keys", "fleet.pub"), "--work-dir", filepath.Join(dir, "work")}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		// Usage.
		{"unknown command", []string{"bogus"}, ExitInvalid, `unknown command "bogus"`},
		{"unknown flag", []string{"run", good, "--bogus"}, ExitInvalid, "unknown flag: --bogus"},
		{"bad flag value", []string{"broker", "--partitions", "many"}, ExitInvalid, `invalid argument "many"`},
		{"run without a file", []string{"run"}, ExitInvalid, "replayctl: run takes 1 argument, got 0 (usage: replayctl run FILE [flags])\n"},
		{"windows show without a name", []string{"windows", "show"}, ExitInvalid, "replayctl: windows show takes 1 argument, got 0 (usage: replayctl windows show NAME [flags])\n"},
		{"windows rm without a name", []string{"windows", "rm"}, ExitInvalid, "replayctl: windows rm takes at least 1 argument, got 0 (usage: replayctl windows rm NAME... [flags])\n"},
		{"validate without a file", []string{"validate"}, ExitInvalid, "replayctl: validate takes at least 1 argument, got 0 (usage: replayctl validate FILE... [flags])\n"},
		{"run with two files", []string{"run", good, good}, ExitInvalid, "replayctl: run takes 1 argument, got 2 (usage: replayctl run FILE [flags])\n"},
		{"schema with an argument", []string{"schema", "x"}, ExitInvalid, "replayctl: schema takes no arguments, got 1 (usage: replayctl schema [flags])\n"},
		{"unknown windows subcommand", []string{"windows", "bogus"}, ExitInvalid, `unknown command "bogus" for "replayctl windows"`},
		{"unknown completion shell", []string{"completion", "tcsh"}, ExitInvalid, `unknown command "tcsh" for "replayctl completion"`},
		{"--overwrite with --keep-history", []string{"run", good, "--overwrite", "--keep-history", "--data-dir", empty}, ExitInvalid, "--overwrite and --keep-history exclude each other"},
		{"bad --progress", []string{"run", good, "--progress", "sometimes"}, ExitInvalid, "--progress"},
		{"bad --output", []string{"windows", "list", "-o", "yaml", "--data-dir", empty}, ExitInvalid, "want table or json"},
		{"bad --listen", []string{"broker", "--listen", "nonsense", "--data-dir", filepath.Join(dir, "b")}, ExitInvalid, "want host:port"},
		{"import gor without arguments", []string{"import", "gor"}, ExitInvalid, "give gor's arguments after --"},
		{"agent --max-concurrent 0", append(agent, "--max-concurrent", "0"), ExitInvalid, "--max-concurrent 0: want 1 or more"},
		{"agent --max-concurrent -1", append(agent, "--max-concurrent", "-1"), ExitInvalid, "--max-concurrent -1: want 1 or more"},
		{"agent --max-spec-ttl over the maximum", append(agent, "--max-spec-ttl", "25h"), ExitInvalid, "--max-spec-ttl 25h0m0s: want 10m0s to 24h0m0s"},
		{"agent --max-spec-ttl under a cancel's", append(agent, "--max-spec-ttl", "5m"), ExitInvalid, "--max-spec-ttl 5m0s: want 10m0s to 24h0m0s (jobs submit signs specs for at most 24h0m0s, jobs cancel its cancels for 10m0s)"},
		{"jobs submit --ttl over the maximum", []string{"jobs", "submit", good, "--job", "replay", "--on", "role=x", "--ttl", "876000h", "--brokers", unreachable}, ExitInvalid,
			"--ttl 876000h0m0s: more than the maximum 24h0m0s (agents refuse a spec valid for longer than their --max-spec-ttl, 24h0m0s by default)"},
		// Invalid scenarios.
		{"validate an invalid scenario", []string{"validate", bad}, ExitInvalid, "bad.yaml:6:"},
		{"run an invalid scenario", []string{"run", bad, "--data-dir", empty}, ExitInvalid, "bad.yaml:6:"},
		{"run a missing scenario", []string{"run", filepath.Join(dir, "none.yaml")}, ExitInvalid, "none.yaml"},
		{"windows -f a missing scenario", []string{"windows", "list", "-f", filepath.Join(dir, "none.yaml")}, ExitInvalid, "none.yaml"},
		// A window that is not there: 2 everywhere.
		{"run replays a missing window", []string{"run", good, "--job", "replay", "--data-dir", empty}, ExitInvalid, `"recent"`},
		{"windows show a missing window", []string{"windows", "show", "nope", "--data-dir", empty}, ExitInvalid, `no window "nope"`},
		{"windows rm a missing window", []string{"windows", "rm", "nope", "--data-dir", saved}, ExitInvalid, "saved windows there: recent"},
		{"save-window on a taken name", []string{"run", good, "--job", "record", "--data-dir", saved}, ExitInvalid, `window "recent" already exists`},
		// Unreachable brokers: 1 everywhere.
		{"run, brokers down", []string{"run", good, "--brokers", unreachable}, ExitRuntime, "do not answer"},
		{"windows list, brokers down", []string{"windows", "list", "--brokers", unreachable}, ExitRuntime, "do not answer"},
		{"windows show, brokers down", []string{"windows", "show", "x", "--brokers", unreachable}, ExitRuntime, "do not answer"},
		{"windows rm, brokers down", []string{"windows", "rm", "x", "--brokers", unreachable}, ExitRuntime, "do not answer"},
		// A data dir in use by another process: 1 everywhere.
		{"run, data dir held", []string{"run", good, "--data-dir", held}, ExitRuntime, "replayctl broker --data-dir " + held},
		{"windows list, data dir held", []string{"windows", "list", "--data-dir", held}, ExitRuntime, "in use by another replayctl process"},
		{"broker, data dir held", []string{"broker", "--listen", freePort(t), "--data-dir", held}, ExitRuntime, "replayctl run other.yaml"},
		// A port in use: 1 everywhere (it is no bad flag: the same
		// command runs once the port is free), naming the process that
		// holds it (this test's, here) and what to do.
		{"broker, port in use", []string{"broker", "--listen", taken, "--data-dir", filepath.Join(dir, "b2")}, ExitRuntime, inUse("--listen")},
		{"serve, port in use", []string{"serve", "--brokers", unreachable, "--scenarios", dir, "--tokens", filepath.Join(dir, "tokens.json"), "--key", filepath.Join(dir, "keys", "fleet.key"), "--listen", taken}, ExitRuntime, inUse("--listen")},
		{"agent, --metrics-listen in use", append(agent, "--metrics-listen", taken), ExitRuntime, inUse("--metrics-listen")},
		// Other runtime failures.
		{"run, input missing", []string{"run", good, "--data-dir", filepath.Join(dir, "d2"), "--set", "jobs.record.source.gor.path=none.gor"}, ExitRuntime, "none.gor"},
		// Assertions.
		{"assertion failed", []string{"run", failing, "--data-dir", filepath.Join(dir, "d3")}, ExitAssertion, "assertion"},
		// Done.
		{"windows show a saved window", []string{"windows", "show", "recent", "--data-dir", saved}, ExitOK, ""},
		{"help of a group", []string{"windows"}, ExitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := replayctl(tc.args...)
			if r.code != tc.code {
				t.Fatalf("replayctl %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), r.code, tc.code, r)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("replayctl %s: stderr lacks %q\n%s", strings.Join(tc.args, " "), tc.want, r)
			}
		})
	}
	// A broker that could not start released its data dir.
	mustRun(t, ExitOK, "windows", "list", "--data-dir", filepath.Join(dir, "b2"))
}

// TestCtrlCInterruptsARecordJob: Ctrl-C during a live capture that other
// jobs need is an interrupted run (130), not the end of the recording; its
// JSON report says interrupted, and the job that needs it does not run.
// (A live capture that is the last job ends with Ctrl-C and exits 0:
// TestCtrlCEndsALiveCapture.)
func TestCtrlCInterruptsARecordJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tg := newTarget(t)
	f := write(t, dir, "live.yaml", fmt.Sprintf(`version: 1
name: live-then-replay
topics:
  traffic: {name: live-http, create: true}
targets:
  app: {url: %q}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%s]}}
    sink: {kafka: {topic: traffic}}
    stop: {after: 60s}
    save-window: live
    report: {json: out/record.json}
  replay:
    needs: [record]
    source: {window: live}
    sink: {http: {target: app}}
`, tg.URL(), strings.Split(freePort(t), ":")[1]))
	p := startCapture(t, "", nil, 0, "run", f, "--data-dir", filepath.Join(dir, "data"))
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s", code, ExitInterrupted, p)
	}
	if out := p.stdout.String(); !strings.Contains(out, "job record: interrupted") || strings.Contains(out, "job replay") {
		t.Errorf("summary:\n%s", p)
	}
	if rep := readJSON(t, filepath.Join(dir, "out", "record.json")); rep["interrupted"] != true {
		t.Errorf("record report interrupted = %v, want true", rep["interrupted"])
	}
}
