package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// target is the loopback HTTP server every replay and wrk run hits: a plain
// net/http server answering 200 with a short body, counting requests.
type target struct {
	srv      *http.Server
	ln       net.Listener
	requests atomic.Int64
}

var okBody = []byte("ok\n")

func startTarget() (*target, error) { return startTargetDelay(0) }

// startTargetDelay starts a target that sleeps d before each answer (a
// slow application: its latency is d plus the machine's).
func startTargetDelay(d time.Duration) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	t := &target{ln: ln}
	t.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if d > 0 {
				time.Sleep(d)
			}
			t.requests.Add(1)
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "3")
			_, _ = w.Write(okBody)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

func (t *target) url() string  { return "http://" + t.ln.Addr().String() }
func (t *target) port() int    { return t.ln.Addr().(*net.TCPAddr).Port }
func (t *target) count() int64 { return t.requests.Load() }

func (t *target) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = t.srv.Shutdown(ctx)
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
var wrkTotal = regexp.MustCompile(`(\d+) requests in`)
var wrkErrors = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)

// wrkResult is what wrk reported.
type wrkResult struct {
	Rate     float64
	Requests int64
	Errors   string // wrk's error lines, if any
	Command  string
}

// wrk runs `wrk -t2 -cC -dD [extra...] URL` and parses its output.
func (e *env) wrk(ctx context.Context, url string, conns int, d time.Duration, extra ...string) (wrkResult, error) {
	args := append([]string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s"}, extra...)
	args = append(args, url)
	res := wrkResult{Command: "wrk " + strings.Join(args, " ")}
	if len(extra) > 0 {
		res.Command = fmt.Sprintf("wrk -t2 -c%d -d%ds -H… (the recording's %d headers) %s", conns, int(d.Seconds()), len(extra)/2, url)
	}
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	cmd := exec.Command("wrk", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := e.procs.start(cmd); err != nil {
		return res, err
	}
	done := make(chan error, 1)
	go func() { done <- e.procs.wait(cmd) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w\n%s", res.Command, err, out.String())
	}
	m := wrkRate.FindStringSubmatch(out.String())
	if m == nil {
		return res, fmt.Errorf("%s: no Requests/sec in its output:\n%s", res.Command, out.String())
	}
	res.Rate, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(out.String()); m != nil {
		res.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	res.Errors = strings.Join(wrkErrors.FindAllString(out.String(), -1), "; ")
	if res.Rate <= 0 {
		return res, errors.New(res.Command + ": zero requests/s")
	}
	return res, nil
}

// sameRequest returns wrk arguments that send the generated recording's
// first request (its path and every header but Host, which wrk sets) and
// that path: the reference then costs the target what a replay costs it.
func sameRequest() (path string, args []string) {
	raw := string(request(0, "0123456789abcdef01234567"))
	lines := strings.Split(strings.TrimSuffix(raw, "\r\n\r\n"), "\r\n")
	path = strings.Fields(lines[0])[1]
	for _, l := range lines[1:] {
		if strings.HasPrefix(strings.ToLower(l), "host:") {
			continue
		}
		args = append(args, "-H", l)
	}
	return path, args
}
