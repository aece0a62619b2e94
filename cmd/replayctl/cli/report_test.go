package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportMergeRefusesAReportGivenTwice: `report merge` of one replay's
// report given twice (the same file, or a copy) exits 2 naming both inputs
// instead of counting it twice; reports of two runs of one job from a file
// source (no window to check) merge as given, with a note; one report
// alone is itself.
func TestReportMergeRefusesAReportGivenTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 20, time.Millisecond)
	tg := newTarget(t)
	f := write(t, dir, "s.yaml", fmt.Sprintf(`version: 1
name: merge-twice
targets:
  app: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {target: app, workers: 2}}
    report: {json: out/r.json}
`, tg.URL()))
	a, b := filepath.Join(dir, "out", "a.json"), filepath.Join(dir, "out", "b.json")
	for _, out := range []string{a, b} {
		mustRun(t, ExitOK, "run", f, "--progress", "never", "--data-dir", filepath.Join(dir, "data"), "--set", "jobs.replay.report.json="+out)
	}
	if n := tg.count.Load(); n != 40 {
		t.Fatalf("the target got %d requests, want 40", n)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	cp := write(t, dir, "copy/a.json", string(data))

	for _, tc := range []struct {
		name  string
		files []string
		want  int
		// out: in stderr when the merge is refused, else in stdout.
		out []string
	}{
		{"same file twice", []string{a, a}, ExitInvalid, []string{a + " (input 1) and " + a + " (input 2) are one report given twice", "20 request(s)", "it would count twice"}},
		{"a copy", []string{a, cp}, ExitInvalid, []string{a + " (input 1) and " + cp + " (input 2) are one report given twice"}},
		{"a copy among others", []string{a, b, cp}, ExitInvalid, []string{a + " (input 1) and " + cp + " (input 3)"}},
		{"one report", []string{a}, ExitOK, []string{"merged from 1 shard(s): complete", "sent 20 "}},
		{"two runs of one job", []string{a, b}, ExitOK, []string{"merged from 2 shard(s): complete", "note: these reports name no window", "sent 40 "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRun(t, tc.want, append([]string{"report", "merge"}, tc.files...)...)
			got := r.stdout
			if tc.want != ExitOK {
				got = r.stderr
			}
			for _, w := range tc.out {
				if !strings.Contains(got, w) {
					t.Errorf("want %q in:\n%s", w, r)
				}
			}
		})
	}
}

// TestReportMergeTakesPartsOfOneWhole: real reports of replays of two
// windows, of one window replayed twice, and a record job's report are
// refused (exit 2, naming the files); one replay's report merges, with its
// status line.
func TestReportMergeTakesPartsOfOneWhole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 20, time.Millisecond)
	tg := newTarget(t)
	f := write(t, dir, "s.yaml", fmt.Sprintf(`version: 1
name: merge-whole
topics:
  traffic: {name: merge-whole-http, partitions: 1, create: true}
targets:
  app: {url: %q}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
    save-window: small
    report: {json: out/record.json}
  replay:
    source: {window: small}
    speed: max
    sink: {http: {target: app, workers: 2}}
    report: {json: out/a.json}
    assert: ['errors.rate < 0.01']
`, tg.URL()))
	data := filepath.Join(dir, "data")
	run := func(args ...string) {
		t.Helper()
		mustRun(t, ExitOK, append([]string{"run", f, "--progress", "never", "--data-dir", data}, args...)...)
	}
	run("--job", "record")
	run("--job", "record", "--set", "jobs.record.save-window=other", "--set", "jobs.record.report.json=out/record-2.json")
	run("--job", "replay")
	run("--job", "replay", "--set", "jobs.replay.report.json=out/c.json")
	run("--job", "replay", "--set", "jobs.replay.source.window=other", "--set", "jobs.replay.report.json=out/b.json")
	if n := tg.count.Load(); n != 60 {
		t.Fatalf("the target got %d requests, want 60", n)
	}
	out := func(name string) string { return filepath.Join(dir, "out", name) }
	a, b, c, rec := out("a.json"), out("b.json"), out("c.json"), out("record.json")

	for _, tc := range []struct {
		name  string
		files []string
		want  int
		// out: in stderr when the merge is refused, else in stdout.
		out []string
	}{
		{"two windows", []string{a, b}, ExitInvalid, []string{a + ` replayed window "small"`, b + ` window "other"`, "reports of different windows are not parts of one whole"}},
		{"one window twice", []string{a, c}, ExitInvalid, []string{a + " and " + c + " both replayed 0:[0,40) of window \"small\"", "count those requests twice"}},
		{"a record job's report", []string{a, rec}, ExitInvalid, []string{rec + " is a record job's report; report merge takes replay reports"}},
		{"one replay", []string{b}, ExitOK, []string{"merged from 1 shard(s): complete", "  requests  sent 20  ok 20  errors 0\n  status    200: 20\n", "0:[40,80)", "ok   errors.rate < 0.01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRun(t, tc.want, append([]string{"report", "merge"}, tc.files...)...)
			got := r.stdout
			if tc.want != ExitOK {
				got = r.stderr
			}
			for _, w := range tc.out {
				if !strings.Contains(got, w) {
					t.Errorf("want %q in:\n%s", w, r)
				}
			}
		})
	}
}

// TestReportMergeRefusesFlagsThatChangeNothing: with FILE... the flags that
// say how --run reads the run topic, and without -f those that say how the
// scenario of -f is read, would be ignored: they are usage errors (exit 2)
// that say so, as windows refuses its scenario flags without -f.
func TestReportMergeRefusesFlagsThatChangeNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:9", "errors.rate == 0"))
	files := []string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", f}, "--file says how --run reads the run topic"},
		{[]string{"--brokers", "127.0.0.1:1"}, "--brokers says how --run reads the run topic"},
		{[]string{"--data-dir", dir}, "--data-dir says how --run reads the run topic"},
		{[]string{"--wait", "5s"}, "--wait says how --run reads the run topic"},
		{[]string{"--run-topic", "t"}, "--run-topic says how --run reads the run topic"},
		{[]string{"--set", "a.b=c"}, "--set says how the scenario of -f is read"},
		{[]string{"--output-dir", dir}, "--output-dir says how the scenario of -f is read"},
		{[]string{"--restricted"}, "--restricted says how the scenario of -f is read"},
	} {
		r := mustRun(t, ExitInvalid, append(append([]string{"report", "merge"}, files...), tc.args...)...)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: want %q in:\n%s", tc.args, tc.want, r)
		}
	}
	r := mustRun(t, ExitInvalid, "report", "merge", "--run", "r1", "--data-dir", filepath.Join(dir, "data"), "--env-file", filepath.Join(dir, "x.env"))
	if !strings.Contains(r.stderr, "--env-file says how the scenario of -f is read") {
		t.Errorf("--run without -f, with --env-file:\n%s", r)
	}
}

// TestReportMergeFailsOnRequestsNotSent: a replay whose rewrite failed on
// some requests exits 1 (on-loss: fail); report merge of its report exits
// 1 too, saying why, where it said complete and exited 0. With on-loss:
// warn both exit 0.
func TestReportMergeFailsOnRequestsNotSent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 20, time.Millisecond)
	tg := newTarget(t)
	f := write(t, dir, "s.yaml", fmt.Sprintf(`version: 1
name: merge-not-sent
targets:
  app: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    rewrite:
      - set-method: 'req.path == "/0" ? "GET" : string(int("x"))'
    sink: {http: {target: app, workers: 2}}
    report: {json: out/r.json}
`, tg.URL()))
	for _, tc := range []struct {
		onLoss string
		want   int
	}{{"fail", ExitRuntime}, {"warn", ExitOK}} {
		out := filepath.Join(dir, "out", tc.onLoss+".json")
		mustRun(t, tc.want, "run", f, "--progress", "never", "--data-dir", filepath.Join(dir, "data"), "--set", "jobs.replay.report.json="+out, "--set", "jobs.replay.on-loss="+tc.onLoss)
		r := mustRun(t, tc.want, "report", "merge", out)
		said := strings.Contains(r.stdout, ": complete, REQUESTS NOT SENT") && strings.Contains(r.stderr, "requests of the window were not sent")
		if said != (tc.want != ExitOK) {
			t.Errorf("on-loss %s: merge output:\n%s", tc.onLoss, r)
		}
	}
}
