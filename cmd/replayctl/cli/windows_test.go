package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWindowsRmAllOrNone: `windows rm` with an unknown name among known
// ones removes nothing, names the unknown one and exits 2; with known names
// only it removes each (a name given twice once).
func TestWindowsRmAllOrNone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0"))
	data := filepath.Join(dir, "data")
	mustRun(t, ExitOK, "run", f, "--job", "record", "--data-dir", data)
	mustRun(t, ExitOK, "run", f, "--job", "record", "--data-dir", data, "--set", "jobs.record.save-window=second")

	r := mustRun(t, ExitInvalid, "windows", "rm", "recent", "nosuch", "second", "--data-dir", data)
	if strings.Contains(r.stdout, "removed") || !strings.Contains(r.stderr, `no window "nosuch"`) || !strings.Contains(r.stderr, "saved windows there: recent, second") {
		t.Fatalf("rm with an unknown name:\n%s", r)
	}
	r = mustRun(t, ExitInvalid, "windows", "rm", "gone", "recent", "nosuch", "--data-dir", data)
	if !strings.Contains(r.stderr, `no windows "gone", "nosuch"`) {
		t.Fatalf("rm with two unknown names:\n%s", r)
	}
	mustRun(t, ExitOK, "windows", "show", "recent", "--data-dir", data)
	mustRun(t, ExitOK, "windows", "show", "second", "--data-dir", data)

	r = mustRun(t, ExitOK, "windows", "rm", "recent", "second", "recent", "--data-dir", data)
	if r.stdout != "removed window recent\nremoved window second\n" {
		t.Fatalf("rm of two windows:\n%s", r)
	}
	if r := mustRun(t, ExitOK, "windows", "list", "--data-dir", data); !strings.Contains(r.stdout, "no saved windows") {
		t.Fatalf("windows left after rm:\n%s", r)
	}
}
