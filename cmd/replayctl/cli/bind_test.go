package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPortInUse: a port that another process holds is said alike by
// broker, serve and agent --metrics-listen, with exit 1: which process
// holds it (this test, here), and to stop it or give
// another address. serve says so before it connects to Kafka.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	mustRun(t, ExitOK, "keys", "new", filepath.Join(dir, "fleet"))
	mustRun(t, ExitOK, "tokens", "add", "alice", "--scope", "read", "--tokens", filepath.Join(dir, "tokens.json"))
	for _, c := range []struct {
		flag string
		args []string
	}{
		{"--listen", []string{"broker", "--listen", addr, "--data-dir", filepath.Join(dir, "data")}},
		{"--listen", []string{"serve", "--brokers", "127.0.0.1:1", "--scenarios", dir, "--tokens", filepath.Join(dir, "tokens.json"), "--key", filepath.Join(dir, "fleet.key"), "--listen", addr}},
		{"--metrics-listen", []string{"agent", "--brokers", "127.0.0.1:1", "--name", "a", "--allow", "record", "--trust", filepath.Join(dir, "fleet.pub"), "--work-dir", dir, "--metrics-listen", addr}},
	} {
		r := mustRun(t, ExitRuntime, c.args...)
		want := regexp.MustCompile(fmt.Sprintf(`^replayctl: %s %s: address already in use by pid %d \(\S.*\): stop it, or give another %s HOST:PORT\n$`,
			c.flag, regexp.QuoteMeta(addr), os.Getpid(), c.flag))
		if !want.MatchString(r.stderr) {
			t.Errorf("replayctl %s: stderr\n%s\nwant it to match %s", c.args[0], r.stderr, want)
		}
	}
	// Not this host's address: said, exit 1 too.
	r := mustRun(t, ExitRuntime, "broker", "--listen", "192.0.2.1:9092", "--data-dir", filepath.Join(dir, "data"))
	if want := "replayctl: --listen 192.0.2.1:9092: cannot assign requested address: it is not an address of this host; give one of its own (127.0.0.1:PORT, or 0.0.0.0:PORT for all)\n"; r.stderr != want {
		t.Errorf("broker on another host's address: stderr\n%q\nwant %q", r.stderr, want)
	}
}
