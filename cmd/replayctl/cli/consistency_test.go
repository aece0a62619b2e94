package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
)

// proc is a replayctl subprocess.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
}

// start runs the built binary with args; the process is killed at the end
// of the test if it still runs.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startIn(t, "", nil, args...)
}

// startIn is start in dir (empty: the test's working directory), with
// stdout, when not nil, taking the process's standard output instead of
// p.stdout.
func startIn(t *testing.T, dir string, stdout io.Writer, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...)}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// startCapture is startIn for a run whose job captures live: it returns
// once the capture's packet ring is mapped (captureReady) and settle has
// passed (its BPF filter is attached a moment later; packets before it are
// classified by port).
func startCapture(t *testing.T, dir string, stdout io.Writer, settle time.Duration, args ...string) *proc {
	t.Helper()
	p := startIn(t, dir, stdout, args...)
	waitFor(t, "the capture's packet ring", func() bool { return captureReady(p.cmd.Process.Pid) })
	time.Sleep(settle)
	return p
}

func (p *proc) String() string {
	return fmt.Sprintf("%s\nstdout:\n%s\nstderr:\n%s", p.cmd, p.stdout.String(), p.stderr.String())
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	return waitExit(t, p.cmd, 90*time.Second)
}

// startBroker starts `replayctl broker` on dataDir and returns its address.
func startBroker(t *testing.T, dataDir string) (*proc, string) {
	t.Helper()
	addr := freePort(t)
	b := start(t, "broker", "--listen", addr, "--data-dir", dataDir)
	waitFor(t, "the broker to listen", func() bool { return strings.Contains(b.stdout.String(), "listening on") })
	return b, addr
}

// writeGorPaths writes n GETs of prefix/0.. (each with a response) to path.
func writeGorPaths(t *testing.T, path, prefix string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gorfile.NewWriter(f, false)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	for i := range n {
		id := message.NewID()
		raw := fmt.Sprintf("GET %s/%d HTTP/1.1\r\nHost: shop.example\r\n\r\n", prefix, i)
		at += int64(time.Millisecond)
		if err := w.Write(&message.Message{Kind: message.Request, ID: id, Time: at, Raw: []byte(raw)}); err != nil {
			t.Fatal(err)
		}
		resp := &message.Message{Kind: message.Response, ID: id, Time: at + 1e5, Latency: 1e5, Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")}
		if err := w.Write(resp); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// recordYAML records GOR into topic TOPIC and saves window WINDOW; its
// replay job sends the window to TARGET at full speed.
const recordYAML = `version: 1
name: %[1]s
topics:
  traffic: {name: %[2]s, create: true}
targets:
  app: {url: "%[5]s"}
jobs:
  record:
    source: {gor: {path: %[3]s}}
    sink: {kafka: {topic: traffic}}
    save-window: %[4]s
  replay:
    source: {window: %[4]s}
    speed: max
    sink: {http: {target: app}}
`

// TestTwoRecordJobsOnOneDataDir: two `replayctl run` on one data dir at
// once used to open the same files with two in-process brokers, which wrote
// different records at the same offsets and lost a saved window. Now the
// data dir is locked: with a `replayctl broker` holding it, both runs
// connect to that broker by themselves and both recordings are intact
// (also after the broker restarts); with a run holding it, the other is
// refused with a clear error (exit 1) and nothing is touched.
func TestTwoRecordJobsOnOneDataDir(t *testing.T) {
	t.Parallel()
	t.Run("a broker holds the data dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		broker, addr := startBroker(t, data)
		lockText, err := os.ReadFile(filepath.Join(data, kafkaio.LockFile))
		if err != nil || !strings.Contains(string(lockText), addr) {
			t.Fatalf("the lock file does not name the broker's address %s: %q, %v", addr, lockText, err)
		}
		tg := newTarget(t)
		const n = 300
		jobs := map[string]string{} // window → scenario file
		for _, name := range []string{"a", "b"} {
			writeGorPaths(t, filepath.Join(dir, name+".gor"), "/"+name, n)
			jobs[name] = write(t, dir, name+".yaml", fmt.Sprintf(recordYAML, "rec-"+name, "traffic-"+name, name+".gor", "win-"+name, tg.URL()))
		}
		var procs []*proc
		for _, name := range []string{"a", "b"} {
			procs = append(procs, start(t, "run", jobs[name], "--job", "record", "--data-dir", data))
		}
		for _, p := range procs {
			if code := p.wait(t); code != ExitOK {
				t.Fatalf("record job: exit %d\n%s", code, p)
			}
			if want := fmt.Sprintf("is served by `replayctl broker` (pid %d) at %s: connecting to it", broker.cmd.Process.Pid, addr); !strings.Contains(p.stderr.String(), want) {
				t.Errorf("the run does not say it uses the broker (%q):\n%s", want, p)
			}
		}
		check := func(when string) {
			t.Helper()
			r := mustRun(t, ExitOK, "windows", "list", "-o", "json", "--data-dir", data)
			var ws []map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
				t.Fatalf("%s: windows list: %v\n%s", when, err, r)
			}
			if len(ws) != 2 {
				t.Fatalf("%s: %d windows saved, want 2:\n%s", when, len(ws), r.stdout)
			}
			for _, name := range []string{"a", "b"} {
				before := tg.count.Load()
				tg.mu.Lock()
				tg.paths = nil
				tg.mu.Unlock()
				r := mustRun(t, ExitOK, "run", jobs[name], "--job", "replay", "--data-dir", data)
				if got := tg.count.Load() - before; got != n {
					t.Fatalf("%s: replaying win-%s sent %d requests, want %d\n%s", when, name, got, n, r)
				}
				tg.mu.Lock()
				paths := slices.Clone(tg.paths)
				tg.mu.Unlock()
				for _, p := range paths {
					if !strings.HasPrefix(p, "/"+name+"/") {
						t.Fatalf("%s: replaying win-%s sent %s, a request of another recording", when, name, p)
					}
				}
			}
		}
		check("with the broker")
		if err := broker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := broker.wait(t); code != ExitOK {
			t.Fatalf("broker exit %d\n%s", code, broker)
		}
		// The broker is gone: the runs open the data dir themselves, and it
		// holds both recordings intact.
		check("after the broker stopped")
	})

	t.Run("no broker: two runs at once", func(t *testing.T) {
		t.Parallel()
		// The case of the bug report: two record jobs started together on
		// one data dir. Each either records or is refused (exit 1), and
		// every recording reported saved is there, intact.
		dir := t.TempDir()
		tg := newTarget(t)
		const n = 300
		jobs := map[string]string{}
		for _, name := range []string{"a", "b"} {
			writeGorPaths(t, filepath.Join(dir, name+".gor"), "/"+name, n)
			jobs[name] = write(t, dir, name+".yaml", fmt.Sprintf(recordYAML, "rec-"+name, "traffic-"+name, name+".gor", "win-"+name, tg.URL()))
		}
		for round := range 3 {
			data := filepath.Join(dir, fmt.Sprintf("data-%d", round))
			procs := map[string]*proc{}
			for _, name := range []string{"a", "b"} {
				procs[name] = start(t, "run", jobs[name], "--job", "record", "--data-dir", data)
			}
			var saved []string
			for name, p := range procs {
				switch code := p.wait(t); code {
				case ExitOK:
					saved = append(saved, name)
				case ExitRuntime:
					if !strings.Contains(p.stderr.String(), "is in use by another replayctl process") {
						t.Fatalf("round %d: %s refused without saying why:\n%s", round, name, p)
					}
				default:
					t.Fatalf("round %d: %s exited %d\n%s", round, name, code, p)
				}
			}
			if len(saved) == 0 {
				t.Fatalf("round %d: neither run recorded", round)
			}
			for _, name := range saved {
				before := tg.count.Load()
				r := mustRun(t, ExitOK, "run", jobs[name], "--job", "replay", "--data-dir", data)
				if got := tg.count.Load() - before; got != n {
					t.Fatalf("round %d: win-%s, reported saved, replays %d requests, want %d\n%s", round, name, got, n, r)
				}
			}
		}
	})

	t.Run("a killed broker leaves no lock behind", func(t *testing.T) {
		t.Parallel()
		data := filepath.Join(t.TempDir(), "data")
		broker, _ := startBroker(t, data)
		if err := broker.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = broker.cmd.Wait()
		// The kernel released its flock: the stale address in the lock file
		// is not used, the data dir opens in-process.
		r := mustRun(t, ExitOK, "windows", "list", "--data-dir", data)
		if strings.Contains(r.stderr, "served by") {
			t.Errorf("connected to a dead broker:\n%s", r)
		}
	})

	t.Run("a run holds the data dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		// A live capture that runs until Ctrl-C holds the data dir.
		live := write(t, dir, "live.yaml", fmt.Sprintf(`version: 1
name: live
topics:
  traffic: {name: live-http, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%s]}}
    sink: {kafka: {topic: traffic}}
    stop: {after: 60s}
`, strings.Split(freePort(t), ":")[1]))
		first := start(t, "run", live, "--data-dir", data)
		lockFile := filepath.Join(data, kafkaio.LockFile)
		waitFor(t, "the first run to lock the data dir", func() bool {
			b, _ := os.ReadFile(lockFile)
			return strings.Contains(string(b), `"replayctl run"`)
		})
		writeGorPaths(t, filepath.Join(dir, "b.gor"), "/b", 10)
		second := write(t, dir, "b.yaml", fmt.Sprintf(recordYAML, "rec-b", "traffic-b", "b.gor", "win-b", "http://127.0.0.1:9"))
		r := mustRun(t, ExitRuntime, "run", second, "--job", "record", "--data-dir", data)
		for _, want := range []string{
			fmt.Sprintf("data dir %s is in use by another replayctl process (pid %d, replayctl run", data, first.cmd.Process.Pid),
			"start `replayctl broker --data-dir " + data + "`", "--brokers",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the refused run's message lacks %q:\n%s", want, r)
			}
		}
		mustRun(t, ExitRuntime, "windows", "list", "--data-dir", data)
		waitFor(t, "the first run's capture", func() bool { return captureReady(first.cmd.Process.Pid) })
		if err := first.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := first.wait(t); code != ExitOK {
			t.Fatalf("the live capture ended by Ctrl-C: exit %d\n%s", code, first)
		}
		// Released: the second run now works.
		mustRun(t, ExitOK, "run", second, "--job", "record", "--data-dir", data)
		if b, _ := os.ReadFile(lockFile); len(b) != 0 {
			t.Errorf("the lock file still names a holder after every run ended: %q", b)
		}
	})
}

// TestConcurrentSaveWindowCLI runs two record jobs that save the same window
// name at the same time, on a broker holding a data dir and on the real
// Kafka: each round exactly one exits 0, the other exits 2 saying it
// replaced nothing, and the catalog holds the winner's recording.
func TestConcurrentSaveWindowCLI(t *testing.T) {
	t.Parallel()
	type setup struct {
		name string
		conn func(t *testing.T) []string
	}
	setups := []setup{{"embedded", func(t *testing.T) []string {
		data := filepath.Join(t.TempDir(), "data")
		startBroker(t, data)
		return []string{"--data-dir", data}
	}}}
	if brokers := realKafka(t); brokers != nil {
		setups = append(setups, setup{"kafka", func(t *testing.T) []string {
			return []string{"--brokers", strings.Join(brokers, ","), "--set", "kafka.catalog-topic=" + unique(t, "cat")}
		}})
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			conn := s.conn(t)
			topic := unique(t, "race")
			// Saves that replace (--overwrite) may also run one after the
			// other, and then both rightly win: the catalog test makes them
			// overlap. Here both jobs want a new name.
			for round := range 5 {
				win := fmt.Sprintf("race-%d", round)
				files := []string{}
				for i := range 2 {
					gor := fmt.Sprintf("r%d.gor", i)
					writeGorPaths(t, filepath.Join(dir, gor), fmt.Sprintf("/%d", i), 20)
					files = append(files, write(t, dir, fmt.Sprintf("r%d.yaml", i),
						fmt.Sprintf(recordYAML, fmt.Sprintf("job-%d", i), topic, gor, win, "http://127.0.0.1:9")))
				}
				var wg sync.WaitGroup
				var results [2]result
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p := start(t, append([]string{"run", files[i], "--job", "record"}, conn...)...)
						code := p.wait(t)
						results[i] = result{code: code, stdout: p.stdout.String(), stderr: p.stderr.String()}
					}()
				}
				wg.Wait()
				winner := -1
				for i, r := range results {
					switch r.code {
					case ExitOK:
						if winner >= 0 {
							t.Fatalf("%s: both saves exited 0:\n%s\n%s", win, results[0], results[1])
						}
						winner = i
					case ExitInvalid:
						if !strings.Contains(r.stderr, "already exists") && !strings.Contains(r.stderr, "nothing replaced") {
							t.Errorf("%s: the loser does not say why:\n%s", win, r)
						}
					default:
						t.Fatalf("%s: save %d exited %d:\n%s", win, i, r.code, r)
					}
				}
				if winner < 0 {
					t.Fatalf("%s: no save won:\n%s\n%s", win, results[0], results[1])
				}
				r := mustRun(t, ExitOK, append([]string{"windows", "show", win, "-o", "json", "-f", files[0]}, conn...)...)
				var w map[string]any
				if err := json.Unmarshal([]byte(r.stdout), &w); err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("job-%d", winner); w["scenario"] != want {
					t.Fatalf("%s: the catalog holds the recording of %v, want the winner's %s", win, w["scenario"], want)
				}
				// The loser may replace it when told to, keeping the old one.
				loser := files[1-winner]
				mustRun(t, ExitOK, append([]string{"run", loser, "--job", "record", "--keep-history"}, conn...)...)
				r = mustRun(t, ExitOK, append([]string{"windows", "list", "-f", loser}, conn...)...)
				if !strings.Contains(r.stdout, win+"@") {
					t.Errorf("--keep-history did not keep the replaced %s:\n%s", win, r.stdout)
				}
			}
		})
	}
}
