package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BuildReplayctl builds the replayctl command found at pkg (a path relative
// to the test's package directory, e.g. "../cmd/replayctl") into a new
// temporary directory, with the race detector when race is set. It returns
// the binary and a function that removes it.
func BuildReplayctl(pkg string, race bool) (bin Bin, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "replayctl-bin-")
	if err != nil {
		return "", nil, err
	}
	bin = Bin(filepath.Join(dir, "replayctl"))
	args := []string{"build", "-o", string(bin)}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, pkg)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building replayctl: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Bin is the path of a built binary.
type Bin string

// Proc is a process running in the background for the length of a test.
type Proc struct {
	Cmd *exec.Cmd
	Out *SyncBuffer // its stdout and stderr
}

// Start starts the binary with args in dir. At the end of the test the process
// gets SIGTERM (SIGKILL 10 s later), a data race it printed fails the test,
// and its output is logged when the test failed.
func (bin Bin) Start(t testing.TB, dir string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(string(bin), args...), Out: &SyncBuffer{}}
	p.Cmd.Dir = dir
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(string(bin)) + " " + strings.Join(args[:min(len(args), 5)], " ")
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Cmd.Process.Kill()
				<-done
			}
		}
		if strings.Contains(p.Out.String(), "DATA RACE") {
			t.Errorf("data race in %s", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Out.String())
		}
	})
	return p
}

// Run runs the binary with args in dir to its end (90 s at most) and returns
// its combined output and exit code.
func (bin Bin) Run(t testing.TB, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, string(bin), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", filepath.Base(string(bin)), args, err)
	}
	return string(out), code
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitListening waits until something accepts TCP connections on addr,
// failing the test after 15 s.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 15s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Main is a TestMain body for tests that run replayctl as a process: it
// builds the command at pkg into *bin (see BuildReplayctl), runs the tests,
// removes the binary and exits with the tests' code.
func Main(m *testing.M, pkg string, race bool, bin *Bin) {
	b, cleanup, err := BuildReplayctl(pkg, race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}
