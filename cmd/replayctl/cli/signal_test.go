package cli

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestBrokerSubprocess runs `replayctl broker` as a process, lists it with
// kcat and stops it with SIGTERM.
func TestBrokerSubprocess(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr syncBuffer
	cmd := exec.Command(binary, "broker", "--listen", addr, "--data-dir", dataDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	waitFor(t, "the broker to listen", func() bool { return strings.Contains(stdout.String(), "listening on") })
	if !strings.Contains(stdout.String(), addr) {
		t.Errorf("the broker does not say it listens on %s:\n%s", addr, stdout.String())
	}

	// A replayctl run against it, as another process would use it.
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	tg := newTarget(t)
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "errors.rate == 0"))
	if r := replayctl("run", f, "--brokers", addr); r.code != ExitOK {
		t.Fatalf("run against the broker process: %s", r)
	}
	if n := tg.count.Load(); n != 3 {
		t.Errorf("target counted %d requests, want 3", n)
	}

	if kcat := kafkatest.RequireTool(t, "kcat"); kcat != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, kcat, "-L", "-b", addr).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("kcat -L -b %s: %v\n%s", addr, err, out)
		}
		for _, want := range []string{"1 brokers", addr, "pipeline-http", "replayctl.windows"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("kcat -L lacks %q:\n%s", want, out)
			}
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 15*time.Second); code != 0 {
		t.Errorf("broker exit code after SIGTERM = %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "stopping") {
		t.Errorf("the broker did not say it stops:\n%s", stdout.String())
	}
}

// TestCtrlCStopsARun interrupts a slow replay with SIGINT.
func TestCtrlCStopsARun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// 20 requests 1 s apart at speed 0.01: the second is due 100 s after the first.
	writeGor(t, dir, 20, time.Second)
	tg := newTarget(t)
	f := write(t, dir, "slow.yaml", fmt.Sprintf(`version: 1
name: slow
targets:
  app: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: 0.01
    sink: {http: {target: app}}
    report: {json: out/report.json}
`, tg.URL()))
	var stdout, stderr syncBuffer
	cmd := exec.Command(binary, "run", f, "--data-dir", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	waitFor(t, "the first request", func() bool { return tg.count.Load() >= 1 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd, 15*time.Second)
	if code != ExitRuntime {
		t.Errorf("exit code after SIGINT = %d, want %d", code, ExitRuntime)
	}
	out := stdout.String()
	if !strings.Contains(out, "job replay: interrupted") || !strings.Contains(out, "sent 1") {
		t.Errorf("the summary does not report the interrupted job:\nstdout:\n%s\nstderr:\n%s", out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", stderr.String())
	}
	if n := tg.count.Load(); n != 1 {
		t.Errorf("target counted %d requests, want 1", n)
	}
	readJSON(t, filepath.Join(dir, "out", "report.json"))
}
