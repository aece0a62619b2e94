package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecordToFileWithProgress: a record job into a gor file or stdout,
// with -v or --progress always (and so on an agent, which follows every
// run's progress), stops its progress twice, when its source ends and when
// its sink has closed; the second stop panicked (close of closed channel)
// for every sink but kafka, and took the agent down with its other jobs.
func TestRecordToFileWithProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 5, time.Millisecond)
	f := write(t, dir, "copy.yaml", `version: 1
name: copy
jobs:
  to-gor:
    source: {gor: {path: rec.gor}}
    sink: {gor: {path: out.gor}}
  to-stdout:
    needs: [to-gor]
    source: {gor: {path: rec.gor}}
    sink: {stdout: {format: summary}}
`)
	for _, flag := range []string{"-v", "--progress=always"} {
		cmd := exec.Command(binary, "run", f, flag, "--data-dir", filepath.Join(dir, "data"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "panic") {
			t.Fatalf("replayctl run %s: %v\n%s", flag, err, out)
		}
		if !strings.Contains(string(out), "job to-stdout: done") {
			t.Errorf("replayctl run %s: no summary of the second job\n%s", flag, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "out.gor")); err != nil || fi.Size() == 0 {
		t.Errorf("out.gor: %v", err)
	}
}
