package cli

import (
	"bytes"
	be "encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondCtrlCLeavesTheSpool: a second Ctrl-C during a live capture
// whose broker went down quits at once (130) and says how many records,
// of how many bytes, stay in the spool and in which directory (they are
// there), and how many the producer held without an acknowledgement. The next record job spooling beside it does not send them: it
// warns that they are there and leaves them.
func TestSecondCtrlCLeavesTheSpool(t *testing.T) {
	b := startBrokerProc(t)
	tg := newTarget(t)
	port := tg.ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	f := write(t, dir, "live.yaml", fmt.Sprintf(`version: 1
name: quit
kafka: {brokers: [%s], delivery-timeout: 120s}
topics:
  traffic: {name: quit-http, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {kafka: {topic: traffic, spool: {dir: spool}}}
    stop: {after: 90s}
  again:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic, spool: {dir: spool}}}
`, b.addr, port))
	p := startCapture(t, dir, nil, 500*time.Millisecond, "run", f, "--job", "record", "-v")
	cmd, stderr := p.cmd, &p.stderr
	b.stop()
	// More messages than the drainer keeps in flight while the broker is
	// down (1 000): the rest waits in the spool.
	stopLoad := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		load(tg.URL(), 1500, stopLoad)
	}()
	time.Sleep(3 * time.Second)
	close(stopLoad)
	<-loaded
	time.Sleep(1500 * time.Millisecond) // past the capture's 1 s ordering window
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first Ctrl-C to be told", func() bool { return strings.Contains(stderr.String(), "interrupt again to quit at once") })
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 30*time.Second); code != ExitInterrupted {
		t.Fatalf("exit %d after two SIGINTs, want %d\nstderr:\n%s", code, ExitInterrupted, stderr.String())
	}
	m := regexp.MustCompile(`replayctl: (\d+) records \(([0-9.]+ [KMG]?i?B)\) stay in the spool (\S+), not sent to Kafka; no later run sends them \(a record job spooling in (\S+) warns that they are there\)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("the second Ctrl-C does not say what stays in the spool, and where:\n%s", stderr.String())
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	left, spoolDir := m[3], m[4]
	if want := filepath.Join(dir, "spool"); spoolDir != want || filepath.Dir(left) != want {
		t.Errorf("spool directory %s in %s, want one in %s", left, spoolDir, want)
	}
	frames := countFrames(t, left)
	t.Logf("%s; %d records in the segment files", m[0], frames)
	if n == 0 || frames < n {
		t.Fatalf("%d records said to stay in %s, %d there", n, left, frames)
	}
	// The records the drainer had handed to the producer (up to 1 000
	// while the broker is down) are in no spool: they are told apart.
	u := regexp.MustCompile(`replayctl: (\d+) records \([0-9.]+ [KMG]?i?B\) handed to Kafka for the topic quit-http had no acknowledgement: some may be in the topic, the others are lost`).FindStringSubmatch(stderr.String())
	if u == nil {
		t.Fatalf("the second Ctrl-C does not say what the producer held unacknowledged:\n%s", stderr.String())
	}
	t.Log(u[0])
	if inFlight, _ := strconv.ParseInt(u[1], 10, 64); inFlight == 0 {
		t.Errorf("0 records said to be unacknowledged, want the drainer's in flight:\n%s", stderr.String())
	}

	// The next record job with that spool: it warns, sends nothing of them.
	b.start()
	r := mustRun(t, ExitOK, "run", f, "--job", "again")
	if !strings.Contains(r.stderr, "spool segments left by an earlier recording") || !strings.Contains(r.stderr, left) {
		t.Errorf("the next run does not warn about the segments left:\n%s", r)
	}
	if got := countFrames(t, left); got != frames {
		t.Errorf("the next run changed the segments left: %d records, was %d", got, frames)
	}
}

// countFrames counts the records in the spool segment files of dir.
func countFrames(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "spool-*.seg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segment files in %s (%v)", dir, err)
	}
	var n int64
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) >= 8 {
			size := int(be.BigEndian.Uint32(data[:4]))
			if 8+size > len(data) {
				t.Fatalf("%s: a record cut short", f)
			}
			data = data[8+size:]
			n++
		}
	}
	return n
}

// TestSecondCtrlCTellsTheCapturesLoss: a record job writing to stdout
// whose reader stopped reading blocks in the sink's Write; the capture then
// holds parsed messages, and packets read but not parsed as traffic goes
// on. A second Ctrl-C quits at once (130) and says how many it loses.
func TestSecondCtrlCTellsTheCapturesLoss(t *testing.T) {
	tg := newTarget(t)
	port := tg.ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	f := write(t, dir, "live.yaml", fmt.Sprintf(`version: 1
name: quit-capture
jobs:
  record:
    source: {capture: {interface: lo, ports: [%d], responses: true}}
    sink: {stdout: {}}
    stop: {after: 90s}
`, port))
	// stdout is a pipe nobody reads: the sink blocks once its 64 KiB are full.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p := startCapture(t, dir, pw, 300*time.Millisecond, "run", f, "--job", "record")
	pw.Close()
	cmd, stderr := p.cmd, &p.stderr
	// 100 POSTs of 64 KiB: 6.4 MiB of messages, a hundred times the pipe's room.
	body := bytes.Repeat([]byte("x"), 64<<10)
	const posts = 100
	for i := range posts {
		resp, err := http.Post(fmt.Sprintf("%s/upload/%d", tg.URL(), i), "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	time.Sleep(1500 * time.Millisecond) // past the capture's 1 s ordering window: the capture waits on the sink
	// What comes now is read from the ring and queued, not parsed.
	const gets = 20
	for i := range gets {
		resp, err := http.Get(fmt.Sprintf("%s/after/%d", tg.URL(), i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	time.Sleep(300 * time.Millisecond) // the reader hands over a batch within liveBatchAge
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first Ctrl-C to be told", func() bool { return strings.Contains(stderr.String(), "interrupt again to quit at once") })
	time.Sleep(1500 * time.Millisecond) // the ring drained
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 30*time.Second); code != ExitInterrupted {
		t.Fatalf("exit %d after two SIGINTs, want %d\nstderr:\n%s", code, ExitInterrupted, stderr.String())
	}
	m := regexp.MustCompile(`replayctl: the capture on lo loses (\d+) requests and (\d+) responses \(([0-9.]+ [KMG]?i?B)\) parsed but not yet handed to the sink, and (\d+) packets read but not yet parsed \(no count below includes them\)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("the second Ctrl-C does not say what the capture loses:\n%s", stderr.String())
	}
	t.Log(m[0])
	reqs, _ := strconv.Atoi(m[1])
	resps, _ := strconv.Atoi(m[2])
	pkts, _ := strconv.Atoi(m[4])
	// The pipe took at most its 64 KiB, one message: the others are in the
	// capture, parsed or not.
	if reqs+resps == 0 || reqs > posts || resps > posts {
		t.Errorf("%d requests and %d responses said lost by the capture, want most of the %d exchanges", reqs, resps, posts)
	}
	// The GETs' packets (2 or more each on the kept-alive connection: the
	// request, the response) wait behind the blocked sink.
	if pkts < 2*gets || reqs > posts+gets {
		t.Errorf("%d packets said read and not parsed, want at least %d (the %d GETs after the sink blocked)", pkts, 2*gets, gets)
	}
	if strings.Count(stderr.String(), "the capture on") != 1 {
		t.Errorf("the capture's loss told more than once:\n%s", stderr.String())
	}
}
