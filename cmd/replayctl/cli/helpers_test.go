package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
)

// binary is the replayctl binary TestMain builds, for the signal tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replayctl-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "replayctl")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, ".")
	build.Dir = filepath.Join(repoRoot(), "cmd", "replayctl")
	if out, err := build.CombinedOutput(); err != nil {
		cancel()
		fmt.Fprintf(os.Stderr, "go build ./cmd/replayctl: %v\n%s", err, out)
		os.Exit(1)
	}
	cancel()
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the repository root (this file is in cmd/replayctl/cli).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// result is one in-process replayctl invocation.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// replayctl runs cli.Main in-process.
func replayctl(args ...string) result {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustRun runs replayctl and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := replayctl(args...)
	if r.code != want {
		t.Fatalf("replayctl %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// write writes a file in dir and returns its path.
func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyExample copies examples/NAME into dir.
func copyExample(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return write(t, dir, name, string(data))
}

// writeGor writes n GETs /r/0.. spaced every `every` (each with a
// response) to dir/rec.gor.
func writeGor(t *testing.T, dir string, n int, every time.Duration) string {
	t.Helper()
	path := filepath.Join(dir, "rec.gor")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gorfile.NewWriter(f, false)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("%024x", i+1)
		at := start.Add(time.Duration(i) * every).UnixNano()
		raw := fmt.Sprintf("GET /r/%d HTTP/1.1\r\nHost: shop.example\r\n\r\n", i)
		if err := w.Write(&message.Message{Kind: message.Request, ID: id, Time: at, Raw: []byte(raw)}); err != nil {
			t.Fatal(err)
		}
		resp := &message.Message{Kind: message.Response, ID: id, Time: at + 1e6, Latency: 1e6, Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")}
		if err := w.Write(resp); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// target is a loopback HTTP server that counts and records requests.
type target struct {
	srv   *http.Server
	ln    net.Listener
	count atomic.Int64
	mu    sync.Mutex
	paths []string
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln}
	tg.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		tg.mu.Lock()
		tg.paths = append(tg.paths, r.URL.Path)
		tg.mu.Unlock()
		tg.count.Add(1)
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = tg.srv.Serve(ln) }()
	t.Cleanup(func() { _ = tg.srv.Close() })
	return tg
}

func (tg *target) URL() string { return "http://" + tg.ln.Addr().String() }

// realKafka returns the real broker's addresses when REPLAYCTL_TEST_KAFKA
// is set (failing the test when it does not answer), else nil.
func realKafka(t *testing.T) []string {
	t.Helper()
	if os.Getenv(kafkatest.EnvKafka) == "" {
		return nil
	}
	for _, b := range kafkatest.Brokers(t) {
		if b.Name != "embedded" {
			return b.Addrs
		}
	}
	return nil
}

// unique returns a Kafka-safe name no other test uses.
func unique(t *testing.T, prefix string) string {
	name := strings.ToLower(strings.TrimPrefix(kafkatest.UniqueTopic(t), "replayctl-test-"))
	return prefix + "-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

// freePort returns a loopback address nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer = testutil.SyncBuffer

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExit waits up to d for cmd to end and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit within %s", cmd, d)
	}
	return -1
}
