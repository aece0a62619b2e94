package engine_test

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// slowTLSTarget is an HTTPS loopback server whose certificate (httptest's)
// is valid for example.com and trusted only through the CA file it writes;
// it answers after delay and records the server name each request came
// with.
type slowTLSTarget struct {
	srv    *httptest.Server
	caFile string
	mu     sync.Mutex
	snis   []string
}

func newSlowTLSTarget(t *testing.T, delay time.Duration) *slowTLSTarget {
	t.Helper()
	st := &slowTLSTarget{}
	st.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		st.mu.Lock()
		st.snis = append(st.snis, r.TLS.ServerName)
		st.mu.Unlock()
		time.Sleep(delay)
		_, _ = io.WriteString(w, "ok")
	}))
	st.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes (before the fix) are expected
	st.srv.StartTLS()
	t.Cleanup(st.srv.Close)
	st.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(st.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return st
}

func (st *slowTLSTarget) serverNames() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.snis...)
}

// targetsYAML replays rec.gor to two targets: fast (plain HTTP, timeout
// 300ms, no TLS settings) listed first, and slow (HTTPS, its own timeout,
// CA file and server name).
func targetsYAML(fast string, slow *slowTLSTarget, sink string) string {
	return fmt.Sprintf(`version: 1
name: t
targets:
  fast: {url: %q, timeout: 300ms}
  slow: {url: %q, timeout: 5s, ca-file: %q, server-name: example.com}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    report: {json: report.json}
    sink: %s
`, fast, slow.srv.URL, slow.caFile, sink)
}

// TestTargetsOwnSettings: in an http sink with several targets, each
// target's own timeout, ca-file and server-name apply to it: the second
// target, slower than the first one's timeout but within its own, and
// trusted only through its own CA file under its own server name, answers
// every request it gets. (They used to be sent with the first target's
// settings: they timed out or failed TLS verification.)
func TestTargetsOwnSettings(t *testing.T) {
	t.Parallel()
	const n = 6
	for _, tc := range []struct {
		mode string
		sent float64 // requests sent, all targets together
	}{
		{"mirror", 2 * n},
		{"split", n},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", evenly(n, time.Millisecond))
			fast := newTarget(t)
			slow := newSlowTLSTarget(t, 800*time.Millisecond)
			yaml := targetsYAML(fast.URL(), slow, fmt.Sprintf("{http: {targets: [fast, slow], mode: %s, workers: 8}}", tc.mode))
			res := run(t, dir, yaml, engine.Options{})
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			rep := readReport(t, filepath.Join(dir, "report.json"))
			if sent, ok := number(t, rep, "requests", "sent"), number(t, rep, "requests", "ok"); sent != tc.sent || ok != tc.sent {
				t.Errorf("requests sent %v, ok %v; want %v both (errors %v)\n%s", sent, ok, tc.sent, field(t, rep, "error_classes"), res.out)
			}
			snis := slow.serverNames()
			if len(snis) == 0 || (tc.mode == "mirror" && len(snis) != n) {
				t.Errorf("the slow target answered %d requests, want %s", len(snis), map[string]string{"mirror": fmt.Sprint(n), "split": "some"}[tc.mode])
			}
			for _, s := range snis {
				if s != "example.com" {
					t.Errorf("the slow target got server name %q, want its own example.com", s)
					break
				}
			}
			if tc.mode == "split" && fast.count() == 0 {
				t.Errorf("split sent nothing to the fast target")
			}
		})
	}
}

// TestTargetsSinkTimeoutOverrides: sink.http.timeout, when set, is every
// target's timeout: the slow target's own 5s does not apply, its requests
// time out.
func TestTargetsSinkTimeoutOverrides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(2, time.Millisecond))
	fast := newTarget(t)
	slow := newSlowTLSTarget(t, 800*time.Millisecond)
	yaml := targetsYAML(fast.URL(), slow, "{http: {targets: [fast, slow], mode: mirror, timeout: 200ms}}")
	_ = run(t, dir, yaml, engine.Options{}) // fails: the slow target's requests time out
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if ok, errs := number(t, rep, "requests", "ok"), number(t, rep, "requests", "errors"); ok != 2 || errs != 2 {
		t.Errorf("requests ok %v, errors %v; want 2 and 2 (the slow target's timed out)", ok, errs)
	}
}

// TestPlanShowsEachTargetsTimeout: the plan (--dry-run) shows each
// target's own timeout, or the sink's when it overrides them.
func TestPlanShowsEachTargetsTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(1, time.Millisecond))
	slow := newSlowTLSTarget(t, 0)
	for _, tc := range []struct {
		sink string
		want []string
	}{
		{"{http: {targets: [fast, slow], mode: mirror}}", []string{"fast http://127.0.0.1:9 (timeout 300ms)", "slow " + slow.srv.URL + " (timeout 5s)"}},
		{"{http: {targets: [fast, slow], mode: mirror, timeout: 2s}}", []string{"fast http://127.0.0.1:9, slow " + slow.srv.URL + ", mirror", ", timeout 2s"}},
	} {
		var plan bytes.Buffer
		compile(t, dir, targetsYAML("http://127.0.0.1:9", slow, tc.sink), &engine.Options{}).Describe(&plan)
		for _, w := range tc.want {
			if !strings.Contains(plan.String(), w) {
				t.Errorf("sink %s: the plan does not say %q:\n%s", tc.sink, w, plan.String())
			}
		}
	}
}
