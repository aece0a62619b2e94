package engine_test

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// replayYAML is a scenario replaying the .gor file rec.gor (in the scenario's
// directory) to url, with extra job keys (YAML lines, unindented).
func replayYAML(url, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: t\ntargets:\n  app: {url: %q, timeout: 5s}\njobs:\n  replay:\n", url)
	b.WriteString("    source: {gor: {path: rec.gor}}\n")
	b.WriteString("    report: {json: report.json}\n")
	hasSink := false
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		hasSink = hasSink || strings.HasPrefix(l, "sink:")
		b.WriteString("    " + l + "\n")
	}
	if !hasSink {
		b.WriteString("    sink: {http: {target: app, workers: 4}}\n")
	}
	return b.String()
}

// rel is approximately-equal within a relative tolerance.
func rel(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*want
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	// 21 requests 12.5 ms apart: a 250 ms recording at 80 req/s.
	const n = 21
	recording := evenly(n, 12500*time.Microsecond)
	// 5 requests, a 10 s idle gap, 5 more: max-gap must shorten the gap.
	gappy := append(evenly(5, 10*time.Millisecond), evenly(5, 10*time.Millisecond)...)
	for i := 5; i < 10; i++ {
		gappy[i].at += 10*time.Second + 40*time.Millisecond
	}
	tests := []struct {
		name      string
		reqs      []req
		extra     string
		wantCount int
		wantRate  float64 // scheduled req/s; 0: not checked
		stopped   string  // the summary's stopped line; "" when none
	}{
		{"speed 0.5", recording, "speed: 0.5", n, 40, ""},
		{"speed 1", recording, "speed: 1", n, 80, ""},
		{"speed 4", recording, "speed: 4", n, 320, ""},
		{"speed max", recording, "speed: max", n, 0, ""},
		// The rate cap spaces sends 20 ms apart whatever the timeline says.
		{"rate cap over max", recording, "speed: max\nrate: 50/s", n, 50, ""},
		{"rate cap over speed 1", recording, "speed: 1\nrate: 50/s", n, 50, ""},
		// 40 ms + 50 ms (the 10 s gap, capped) + 40 ms: 9 intervals in 130 ms.
		{"max-gap", gappy, "speed: 1\nmax-gap: 50ms", 10, 9 / 0.130, ""},
		{"amplify 3", recording, "speed: max\namplify: 3", 3 * n, 0, ""},
		{"loop 2", recording, "speed: max\nloop: 2", 2 * n, 0, ""},
		{"stop after 7 requests", recording, "speed: max\nstop: {requests: 7}", 7, 0, "at stop.requests 7, as the scenario asks: the rest of the input was not replayed"},
		{"stop at the input's end", recording, "speed: max\nstop: {requests: 21}", n, 0, ""},
		{"stop after 100ms", recording, "speed: 1\nstop: {after: 100ms}", 9, 0, "at stop.after 100ms, as the scenario asks: the rest of the input was not replayed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", tc.reqs)
			tg := newTarget(t)
			res := run(t, dir, replayYAML(tg.URL(), tc.extra), engine.Options{})
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			if got := tg.count(); got != tc.wantCount && !strings.Contains(tc.extra, "after") {
				t.Errorf("target counted %d requests, want %d\n%s", got, tc.wantCount, res.out)
			}
			// A stop condition that ended the replay early says so.
			if line := "  stopped   " + tc.stopped + "\n"; tc.stopped != "" && !strings.Contains(res.out, line) || tc.stopped == "" && strings.Contains(res.out, "stopped") {
				t.Errorf("summary: want stopped line %q:\n%s", tc.stopped, res.out)
			}
			if strings.Contains(tc.extra, "after") {
				return // a time: the count depends on the machine
			}
			rep := readReport(t, filepath.Join(dir, "report.json"))
			if got := number(t, rep, "requests", "sent"); int(got) != tc.wantCount {
				t.Errorf("report requests.sent = %v, want %d", got, tc.wantCount)
			}
			if got := number(t, rep, "requests", "ok"); int(got) != tc.wantCount {
				t.Errorf("report requests.ok = %v, want %d", got, tc.wantCount)
			}
			if tc.wantRate > 0 {
				if got := number(t, rep, "rate", "scheduled"); !rel(got, tc.wantRate, 0.01) {
					t.Errorf("scheduled rate = %.2f/s, want %.2f/s", got, tc.wantRate)
				}
			}
		})
	}
}

// TestLoopFor checks that loop: {for: D} repeats passes and ends at D, even
// in the middle of a long pass.
func TestLoopFor(t *testing.T) {
	t.Parallel()
	t.Run("short recording, several passes", func(t *testing.T) {
		t.Parallel()
		const n = 5
		dir := t.TempDir()
		writeGor(t, dir, "rec.gor", evenly(n, 20*time.Millisecond)) // an 80 ms recording
		tg := newTarget(t)
		res := run(t, dir, replayYAML(tg.URL(), "speed: 1\nloop: {for: 300ms}\nsink: {http: {target: app, workers: 1}}"), engine.Options{})
		if res.err != nil {
			t.Fatalf("run: %v\n%s", res.err, res.out)
		}
		reqs := tg.requests()
		if len(reqs) < n {
			t.Fatalf("target counted %d requests, want at least one whole pass of %d", len(reqs), n)
		}
		// Passes repeat the recording in order: /r/0 … /r/4, /r/0 …
		for i, g := range reqs {
			if want := fmt.Sprintf("/r/%d", i%n); g.Path != want {
				t.Errorf("request %d = %s, want %s", i, g.Path, want)
			}
		}
	})
	t.Run("long recording, cut at D", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeGor(t, dir, "rec.gor", evenly(10, 10*time.Second)) // a 90 s recording
		tg := newTarget(t)
		done := make(chan result, 1)
		go func() { done <- run(t, dir, replayYAML(tg.URL(), "speed: 1\nloop: {for: 300ms}"), engine.Options{}) }()
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("loop: {for: 300ms} did not end a 90 s pass")
		}
		if n := tg.count(); n != 1 {
			t.Errorf("target counted %d requests, want 1 (the next is due 10 s later)", n)
		}
	})
}

// TestStopAfterEndsAPacedWait checks that stop.after ends a replay that is
// waiting for its next scheduled send, as a normal end (no error).
func TestStopAfterEndsAPacedWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Speed 0.01: the second request is due 100 s after the first.
	writeGor(t, dir, "rec.gor", evenly(10, time.Second))
	tg := newTarget(t)
	done := make(chan result, 1)
	go func() {
		done <- run(t, dir, replayYAML(tg.URL(), "speed: 0.01\nstop: {after: 300ms}"), engine.Options{})
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stop.after did not end the replay waiting for its next send")
	}
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	if strings.Contains(res.out, "interrupted") {
		t.Errorf("stop.after is a normal end, not an interrupt:\n%s", res.out)
	}
	if n := tg.count(); n != 1 {
		t.Errorf("target counted %d requests, want 1", n)
	}
}
