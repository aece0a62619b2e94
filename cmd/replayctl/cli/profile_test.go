package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// --cpuprofile and --memprofile write pprof files (gzipped protobuf) of the
// run; a path that cannot be written is a usage error before anything runs.
func TestRunProfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 50, time.Millisecond)
	tg := newTarget(t)
	f := write(t, dir, "p.yaml", fmt.Sprintf(`version: 1
name: prof
targets:
  app: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {target: app, workers: 4}}
`, tg.URL()))
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	mustRun(t, ExitOK, "run", f, "--progress", "never", "--cpuprofile", cpu, "--memprofile", mem)
	for _, p := range []string{cpu, mem} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
			t.Errorf("%s is not a gzipped pprof profile (%d bytes)", p, len(data))
		}
	}
	if n := tg.count.Load(); n != 50 {
		t.Errorf("target counted %d requests, want 50", n)
	}
	r := mustRun(t, ExitInvalid, "run", f, "--progress", "never", "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "cpu.prof"))
	if n := tg.count.Load(); n != 50 {
		t.Errorf("a bad profile path still ran the replay (%d requests):\n%s", n, r)
	}
}
