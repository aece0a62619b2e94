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

// TestClosedStdout runs a scenario with its stdout a pipe whose reader is
// gone (replayctl run … | head, a log shipper that died): the summary
// cannot be printed, but the run goes on, writes each job's report, runs
// the later jobs and exits by their results. SIGPIPE used to kill it in the
// first summary (exit 141), before its report was written and the second
// job ran, with nothing said; a stdout sink now fails its job with the error.
func TestClosedStdout(t *testing.T) {
	tests := []struct {
		name     string
		sink     string
		wantCode int
		wantErr  string // on stderr
	}{
		{"gor sink", "{gor: {path: out2.gor}}", 0, ""},
		{"stdout sink", "{stdout: {format: payload}}", 1, "broken pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGor(t, dir, 5, time.Millisecond)
			f := write(t, dir, "copy.yaml", `version: 1
name: copy
jobs:
  first:
    source: {gor: {path: rec.gor}}
    sink: {gor: {path: out.gor}}
    report: {json: first.json}
  second:
    needs: [first]
    source: {gor: {path: rec.gor}}
    sink: `+tt.sink+`
    report: {json: second.json}
`)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close() // nobody reads
			var stderr strings.Builder
			cmd := exec.Command(binary, "run", f, "--progress", "never", "--data-dir", filepath.Join(dir, "data"))
			cmd.Stdout, cmd.Stderr = w, &stderr
			err = cmd.Run()
			w.Close()
			code := cmd.ProcessState.ExitCode()
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d (%v), want %d with %q on stderr:\n%s", code, err, tt.wantCode, tt.wantErr, stderr.String())
			}
			for _, rep := range []string{"first.json", "second.json"} {
				if _, err := os.Stat(filepath.Join(dir, rep)); err != nil {
					t.Errorf("report %s: %v", rep, err)
				}
			}
		})
	}
}
