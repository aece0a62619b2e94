package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// procs tracks the subprocesses the harness started, so that they are all
// stopped on exit, on error, on panic and on a signal.
type procs struct {
	mu   sync.Mutex
	live map[int]*exec.Cmd
}

func newProcs() *procs { return &procs{live: map[int]*exec.Cmd{}} }

// start starts cmd in its own process group (killed with it) and tracks it.
func (p *procs) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p.mu.Lock()
	p.live[cmd.Process.Pid] = cmd
	p.mu.Unlock()
	watchRSS(cmd.Process.Pid)
	return nil
}

// rssPeaks holds, by process ID, the highest VmHWM (KiB) read from
// /proc/PID/status while the process ran. The child's rusage.ru_maxrss
// cannot be used: Go starts children with vfork, and Linux records the
// parent's peak at exec into the child's ru_maxrss, so every child reported
// at least the harness's own RSS (a replay using 58 MiB showed 738 MiB).
var rssPeaks sync.Map // int → *rssWatch

// rssWatch is one child's VmHWM poller.
type rssWatch struct {
	peak atomic.Int64
	done chan struct{}
	once sync.Once
}

// stop ends the polling (the child was waited for: its PID may be reused).
func (w *rssWatch) stop() { w.once.Do(func() { close(w.done) }) }

// rssPoll is how often a child's VmHWM is read; VmHWM only grows, so the
// last read misses at most what the child grew in its last rssPoll.
const rssPoll = 10 * time.Millisecond

// watchRSS reads pid's VmHWM until the process has ended.
func watchRSS(pid int) {
	w := &rssWatch{done: make(chan struct{})}
	rssPeaks.Store(pid, w)
	path := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		t := time.NewTicker(rssPoll)
		defer t.Stop()
		for {
			kib, ok := readHWM(path)
			if !ok {
				return // ended (a zombie has no Vm lines) or reaped
			}
			w.peak.Store(max(w.peak.Load(), kib))
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
}

// readHWM returns the VmHWM line of a /proc/PID/status file, in KiB.
func readHWM(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	_, rest, ok := bytes.Cut(b, []byte("\nVmHWM:"))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(line)), " kB"), 10, 64)
	return kib, err == nil
}

// peakRSS returns the highest VmHWM read for pid (0 if none was) and forgets it.
func peakRSS(pid int) int64 {
	v, ok := rssPeaks.LoadAndDelete(pid)
	if !ok {
		return 0
	}
	w := v.(*rssWatch)
	w.stop()
	return w.peak.Load()
}

// wait waits for cmd and stops tracking it.
func (p *procs) wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	if v, ok := rssPeaks.Load(cmd.Process.Pid); ok {
		v.(*rssWatch).stop()
	}
	p.mu.Lock()
	delete(p.live, cmd.Process.Pid)
	p.mu.Unlock()
	return err
}

// stop sends sig to cmd's process group and waits up to grace for it to
// end; then it kills the group. It returns cmd's wait error.
func (p *procs) stop(cmd *exec.Cmd, sig syscall.Signal, grace time.Duration) error {
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	done := make(chan error, 1)
	go func() { done <- p.wait(cmd) }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return <-done
	}
}

// killAll stops every tracked process: SIGTERM, then SIGKILL after 3 s.
// Processes are signalled by their own process-group IDs only.
func (p *procs) killAll() {
	p.mu.Lock()
	pids := make([]int, 0, len(p.live))
	for pid := range p.live {
		pids = append(pids, pid)
	}
	p.mu.Unlock()
	for _, pid := range pids {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// runResult is what one replayctl run produced.
type runResult struct {
	Stdout, Stderr string
	Elapsed        time.Duration
	MaxRSSKiB      int64         // peak resident set size of the process (VmHWM), KiB
	CPU            time.Duration // user + system CPU time of the process
}

// replayctl runs `bin/replayctl ARGS...` to its end, bounded by timeout.
func (e *env) replayctl(ctx context.Context, timeout time.Duration, args ...string) (runResult, error) {
	cmd, out, errb := e.replayctlCmd(args...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	if err := e.procs.start(cmd); err != nil {
		return runResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- e.procs.wait(cmd) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-done
		}
		err = fmt.Errorf("replayctl %s: did not finish within %v (stopped): %v", strings.Join(args, " "), timeout, err)
	}
	res := collect(cmd, out, errb, time.Since(t0))
	if err != nil {
		return res, fmt.Errorf("replayctl %s: %w\n%s", strings.Join(args, " "), err, tail(res.Stderr+res.Stdout, 15))
	}
	return res, nil
}

func (e *env) replayctlCmd(args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	if len(args) > 0 && args[0] == "run" {
		// The harness's scenarios write their reports next to their own
		// directories, and the null gor sink to /dev/null.
		args = append(args, "--allow-paths", e.tmp, "--allow-paths", "/dev")
	}
	cmd := exec.Command(e.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Dir = e.tmp
	return cmd, &out, &errb
}

func collect(cmd *exec.Cmd, out, errb *bytes.Buffer, elapsed time.Duration) runResult {
	res := runResult{Stdout: out.String(), Stderr: errb.String(), Elapsed: elapsed}
	if cmd.ProcessState != nil {
		res.MaxRSSKiB = peakRSS(cmd.Process.Pid)
		res.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return res
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeScenario writes a scenario file into a fresh directory under the
// harness's temp dir and returns its path.
func (e *env) writeScenario(name, yaml string) (string, error) {
	dir, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		return "", fmt.Errorf("scenario dir: %w", err)
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return "", fmt.Errorf("scenario: %w", err)
	}
	return path, nil
}

// replayReport is the part of a replay job's JSON report the harness reads.
type replayReport struct {
	Requests struct {
		Sent, OK, Errors int64
	} `json:"requests"`
	Status       map[string]int64 `json:"status"`
	ErrorClasses map[string]int64 `json:"error_classes"`
	Latency      struct {
		P50, P90, P99, Max float64
	} `json:"latency"`
	Rate struct {
		Scheduled, Achieved float64
	} `json:"rate"`
	Lateness struct {
		P50, P99, Max float64
	} `json:"lateness"`
	DurationMS float64          `json:"duration_ms"`
	Counters   map[string]int64 `json:"counters"`
}

// recordReport is the part of a record job's JSON report the harness reads.
type recordReport struct {
	Requests   int64            `json:"requests"`
	Responses  int64            `json:"responses"`
	Written    int64            `json:"written"`
	Failed     int64            `json:"failed"`
	Counters   map[string]int64 `json:"counters"`
	DurationMS float64          `json:"duration_ms"`
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts TCP connections.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not accept connections after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU a running process has used so far,
// from /proc/PID/stat; false if the process or the file is gone.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may hold
// spaces, so the fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}
