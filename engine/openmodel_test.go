package engine_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// A recording replayed on its schedule to a slow target (15 ms per answer):
// 600 requests 2.5 ms apart (400 req/s, about 6 answers pending at any
// time). A paced replay without `workers` uses the open model: every
// request is sent at its instant on whatever connection is free or a new
// one, none is lost, and the lateness is recorded. With `workers: 2` (the
// closed model) the same replay cannot keep up: 2 connections of 15 ms are
// 133 req/s, 4.5 s for a 1.5 s schedule, so its lateness p99 is about 3 s
// on any machine. The open model's bound (p99 < 2 s) only separates the
// two, far above the `make bench` goal (5 ms) on purpose: with -race on the
// shared 2-core machine it measured 1.3 ms when quiet, 129 ms at a load
// average of 15 and 904 ms at 28 (another process fuzzing), when any
// goroutine, the pacing one included, waits that long for a CPU. The real
// figure is a `make bench` row.
func TestSlowTargetOnSchedule(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(15 * time.Millisecond)
		served.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	const n = 600
	for _, tc := range []struct {
		name, sink string
		open       bool
	}{
		{"open", "sink: {http: {target: app}}", true},
		{"open, connections opened ahead", "sink: {http: {target: app, min-connections: 8}}", true},
		{"closed", "sink: {http: {target: app, workers: 2}}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", evenly(n, 2500*time.Microsecond))
			before := served.Load()
			res := run(t, dir, replayYAML(srv.URL, "speed: 1\n"+tc.sink), engine.Options{})
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			rep := readReport(t, filepath.Join(dir, "report.json"))
			sent, ok := number(t, rep, "requests", "sent"), number(t, rep, "requests", "ok")
			p99 := number(t, rep, "lateness", "p99")
			t.Logf("%s: sent %v ok %v served %d; lateness p50 %.3f ms p99 %.3f ms; rate scheduled %.0f achieved %.0f; counters %v",
				tc.name, sent, ok, served.Load()-before, number(t, rep, "lateness", "p50"), p99,
				number(t, rep, "rate", "scheduled"), number(t, rep, "rate", "achieved"), field(t, rep, "counters"))
			if sent != n || ok != n || served.Load()-before != n {
				t.Errorf("sent %v ok %v served %d, want %d each", sent, ok, served.Load()-before, n)
			}
			if !tc.open {
				// 600 requests through 2 connections of 15 ms take 4.5 s
				// for a 1.5 s schedule: the last ones are seconds late.
				if p99 < 2500 {
					t.Errorf("closed model with 2 workers: lateness p99 %.1f ms, expected it to fall behind", p99)
				}
				return
			}
			if p99 >= 2000 {
				t.Errorf("lateness p99 %.1f ms, want < 2 s", p99)
			}
			if x := number(t, rep, "counters", "sink.pool-exhausted"); x != 0 {
				t.Errorf("pool-exhausted %v, want 0", x)
			}
			if c := number(t, rep, "counters", "sink.connections-peak"); c < 3 {
				t.Errorf("connections peak %v: the open model should have opened several", c)
			}
			if strings.Contains(tc.sink, "min-connections") {
				if c := number(t, rep, "counters", "sink.connections-preopened"); c != 8 {
					t.Errorf("connections opened ahead: %v, want 8", c)
				}
			}
		})
	}
}
