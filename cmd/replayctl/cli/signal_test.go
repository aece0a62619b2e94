package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	p := start(t, "broker", "--listen", addr, "--data-dir", dataDir)
	cmd, stdout, stderr := p.cmd, &p.stdout, &p.stderr
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

// TestCtrlCStopsARun interrupts a slow replay with SIGINT: it exits 130,
// and its summary, JSON and HTML reports say it was interrupted.
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
    report: {json: out/report.json, html: out/report.html}
    assert: ['requests.sent >= 0']
`, tg.URL()))
	p := start(t, "run", f, "--data-dir", filepath.Join(dir, "data"))
	cmd, stdout, stderr := p.cmd, &p.stdout, &p.stderr
	waitFor(t, "the first request", func() bool { return tg.count.Load() >= 1 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd, 15*time.Second)
	if code != ExitInterrupted {
		t.Errorf("exit code after SIGINT = %d, want %d", code, ExitInterrupted)
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
	if rep := readJSON(t, filepath.Join(dir, "out", "report.json")); rep["interrupted"] != true {
		t.Errorf("the JSON report has interrupted = %v, want true", rep["interrupted"])
	}
	html, err := os.ReadFile(filepath.Join(dir, "out", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), `class="verdict interrupted"`) || !strings.Contains(string(html), "stopped by a signal") {
		t.Errorf("the HTML report's verdict does not say the run was interrupted")
	}
}

// TestCtrlCEndsALiveCapture records live traffic on lo into Kafka and stops
// with SIGINT shortly after the last request: every request and response
// captured is in the saved window (the capture's held messages are drained
// into the sink, whose writes outlive the interrupt), the summary is
// printed and the run exits 0.
func TestCtrlCEndsALiveCapture(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	port := tg.ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	f := write(t, dir, "live.yaml", fmt.Sprintf(`version: 1
name: live
topics:
  traffic: {name: live-http, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {kafka: {topic: traffic}}
    stop: {after: 60s}
    save-window: live
`, port))
	p := startCapture(t, "", nil, 300*time.Millisecond, "run", f, "-v", "--data-dir", data)
	cmd, stdout, stderr := p.cmd, &p.stdout, &p.stderr
	const n = 7
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		resp, err := client.Get(fmt.Sprintf("%s/live/%d", tg.URL(), i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(300 * time.Millisecond) // less than the capture's 1 s ordering window
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	w := readWindow(t, data, "live")
	if w["messages"] != float64(2*n) || w["requests"] != float64(n) {
		t.Fatalf("saved window %v, want %d messages and %d requests\nstdout:\n%s\nstderr:\n%s", w, 2*n, n, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("%d requests  %d responses", n, n)) || !strings.Contains(stdout.String(), "interrupted") {
		t.Errorf("summary:\n%s", stdout.String())
	}
}

// readWindow returns a saved window as `windows show -o json` prints it.
func readWindow(t *testing.T, dataDir, name string) map[string]any {
	t.Helper()
	r := mustRun(t, ExitOK, "windows", "show", name, "-o", "json", "--data-dir", dataDir)
	var w map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &w); err != nil {
		t.Fatalf("windows show -o json: %v\n%s", err, r)
	}
	return w
}

// captureReady reports whether process pid holds an AF_PACKET socket
// (listed in /proc/net/packet by inode) whose ring is mapped (a
// socket:[inode] line in /proc/PID/maps): gopacket binds the socket and
// sets up the ring before it maps it, so from then on the ring receives
// every packet. The socket alone appears earlier: on a loaded machine the
// ring's allocation took long enough for a whole load to pass unseen.
func captureReady(pid int) bool {
	table, err := os.ReadFile("/proc/net/packet")
	if err != nil {
		return false
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			inodes["socket:["+f[len(f)-1]+"]"] = true
		}
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) > 0 && inodes[f[len(f)-1]] {
			return true
		}
	}
	return false
}

// TestLiveMirrorSendsWhatItCaptured mirrors live traffic on lo to a
// second target and stops it both ways a mirror ends: stop.after while
// requests keep coming, and SIGINT shortly after the last one. The capture
// holds each request up to 1 s to sort them by capture time; those it held
// at the stop are sent too (they were dropped without a word, "done" and
// exit 0: with stop.after the last second of traffic, with SIGINT all of
// it). Every request captured reaches the mirror, and the run exits 0.
func TestLiveMirrorSendsWhatItCaptured(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"stop-after", "sigint"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			prod, mirror := newTarget(t), newTarget(t)
			port := prod.ln.Addr().(*net.TCPAddr).Port
			after := "60s"
			if stop == "stop-after" {
				after = "3s"
			}
			dir := t.TempDir()
			f := write(t, dir, "mirror.yaml", fmt.Sprintf(`version: 1
name: mirror
jobs:
  mirror:
    source: {capture: {interface: lo, ports: [%d]}}
    sink: {http: {url: "%s"}}
    stop: {after: %s}
`, port, mirror.URL(), after))
			p := startCapture(t, "", nil, 100*time.Millisecond, "run", f)
			exited := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(exited) }()
			client := &http.Client{Timeout: 5 * time.Second}
			get := func(i int) {
				resp, err := client.Get(fmt.Sprintf("%s/m/%d", prod.URL(), i))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			sent := 0
			if stop == "sigint" {
				for ; sent < 7; sent++ {
					get(sent)
				}
				time.Sleep(300 * time.Millisecond) // less than the capture's 1 s ordering window
				if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			} else {
				// Requests every 50 ms until the capture stops (bounded):
				// those of its last second are held when it stops.
			loop:
				for deadline := time.Now().Add(10 * time.Second); sent < 200 && time.Now().Before(deadline); sent++ {
					select {
					case <-exited:
						break loop
					case <-time.After(50 * time.Millisecond):
						get(sent)
					}
				}
			}
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-exited
				t.Fatalf("the mirror did not end\n%s", p)
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit %d, want 0\n%s", code, p)
			}
			m := regexp.MustCompile(`source\.requests=(\d+)`).FindStringSubmatch(p.stdout.String())
			if m == nil {
				t.Fatalf("no source.requests in the summary\n%s", p)
			}
			captured, _ := strconv.Atoi(m[1])
			if stop == "sigint" && captured != sent || stop == "stop-after" && captured < 20 {
				t.Fatalf("captured %d of %d requests\n%s", captured, sent, p)
			}
			if got := int(mirror.count.Load()); got != captured || !strings.Contains(p.stdout.String(), fmt.Sprintf("sent %d  ok %d", captured, captured)) {
				t.Errorf("the mirror received %d requests, the capture took %d\n%s", got, captured, p)
			}
		})
	}
}
