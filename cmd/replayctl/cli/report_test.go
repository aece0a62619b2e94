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
// instead of counting it twice; reports of two runs of one job merge as
// parts of one whole (documented), and one report alone is itself.
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
		{"two runs of one job", []string{a, b}, ExitOK, []string{"merged from 2 shard(s): complete", "sent 40 "}},
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
