package cli

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// mute is a loopback target that reads requests and never answers: every
// request a replay sends stays in flight. It counts the requests (heads)
// it received.
type mute struct {
	ln       net.Listener
	received atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newMute(t *testing.T) *mute {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mute{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.conns = append(m.conns, c)
			m.mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if l == "\r\n" { // end of a request head (the GETs have no body)
						m.received.Add(1)
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		m.mu.Lock()
		for _, c := range m.conns {
			_ = c.Close()
		}
		m.mu.Unlock()
	})
	return m
}

// Ctrl-C during a replay to a target that never answers: no request is
// sent after the signal (what was queued is dropped and counted), and the
// run ends once the requests on the wire reach their timeout (2 s here),
// not after draining the queue request by request. Both models: speed max
// with 4 workers (4 on the wire, the queue full behind them), and a paced
// replay in the open model capped at 3 connections (3 on the wire, the
// next request waiting for a connection).
func TestCtrlCSendsNothingMore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pacing, sink string
		inFlight           int64
	}{
		{"closed", "speed: max", "workers: 4", 4},
		{"open", "speed: 1", "max-connections: 3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeGor(t, dir, 500, 5*time.Millisecond)
			tg := newMute(t)
			f := write(t, dir, "mute.yaml", fmt.Sprintf(`version: 1
name: mute
targets:
  app: {url: "http://%s", timeout: 2s}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    %s
    sink: {http: {target: app, %s}}
    report: {json: out/report.json}
`, tg.ln.Addr(), tc.pacing, tc.sink))
			var stdout, stderr syncBuffer
			cmd := exec.Command(binary, "run", f, "--progress", "never", "--data-dir", filepath.Join(dir, "data"))
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
			waitFor(t, "every connection busy", func() bool { return tg.received.Load() == tc.inFlight })
			time.Sleep(200 * time.Millisecond) // nothing more can be sent while all are busy
			before := tg.received.Load()
			signaled := time.Now()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			code := waitExit(t, cmd, 20*time.Second)
			took := time.Since(signaled)
			if code == ExitOK {
				t.Errorf("exit code 0 after an interrupt")
			}
			if n := tg.received.Load() - before; n != 0 {
				t.Errorf("%d requests received after the signal, want 0", n)
			}
			// The requests on the wire time out after 2 s; the exit must not
			// wait for more than that (generous bound for a loaded machine).
			if took > 10*time.Second {
				t.Errorf("exit took %v after the signal; the request timeout is 2s", took)
			}
			rep := readJSON(t, filepath.Join(dir, "out", "report.json"))
			counters, _ := rep["counters"].(map[string]any)
			if to, _ := counters["sink.errors-timeout"].(float64); int64(to) != tc.inFlight {
				t.Errorf("sink.errors-timeout = %v, want %d (the requests on the wire)\n%s", counters["sink.errors-timeout"], tc.inFlight, stdout.String())
			}
			if reqs, _ := rep["requests"].(map[string]any); reqs["sent"] != float64(tc.inFlight) {
				t.Errorf("requests %v, want sent %d (only what went on the wire)", reqs, tc.inFlight)
			}
			if !strings.Contains(stdout.String(), "interrupted") {
				t.Errorf("the summary does not say interrupted:\n%s", stdout.String())
			}
			t.Logf("exit %d after %v; counters %v", code, took.Round(time.Millisecond), counters)
		})
	}
}

// TestStopRequestsTrafficEndsAtTheLimit: a live capture with stop.requests
// 3 sees exactly 3 exchanges and then no traffic: it stops once their
// responses are recorded, without waiting for a fourth request to tell it
// the limit was reached (stop.after, 60 s, is only the test's bound).
func TestStopRequestsTrafficEndsAtTheLimit(t *testing.T) {
	tg := newTarget(t)
	port := tg.ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	f := write(t, dir, "three.yaml", fmt.Sprintf(`version: 1
name: three
jobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {gor: {path: out.gor}}
    stop: {requests: 3, after: 60s}
`, port))
	p := startCapture(t, dir, nil, 300*time.Millisecond, "run", f, "--progress", "never")
	cmd, stdout, stderr := p.cmd, &p.stdout, &p.stderr
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		resp, err := client.Get(fmt.Sprintf("%s/three/%d", tg.URL(), i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	sent := time.Now()
	if code := waitExit(t, cmd, 45*time.Second); code != ExitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("ended %v after the third exchange", time.Since(sent).Round(time.Millisecond))
	out := stdout.String()
	if !strings.Contains(out, "recorded  3 requests  3 responses") || !strings.Contains(out, "stopped   at stop.requests 3\n") {
		t.Errorf("the summary does not say 3 exchanges were recorded and the job stopped at the limit:\n%s", out)
	}
}
