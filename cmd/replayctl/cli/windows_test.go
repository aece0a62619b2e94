package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
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

// TestWindowsScenarioFlags: the windows commands show the flags that say
// how -f's scenario is read as such (not run's "the scenario writes"), and
// refuse them without -f; with -f they load a scenario as run does (one
// writing outside its directory needs --allow-paths).
func TestWindowsScenarioFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	data := filepath.Join(dir, "data")
	elsewhere := t.TempDir()
	f := write(t, dir, "s.yaml", strings.Replace(fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0"),
		"out/report.json", filepath.Join(elsewhere, "report.json"), 1))
	mustRun(t, ExitOK, "run", f, "--job", "record", "--data-dir", data, "--allow-paths", elsewhere)

	for _, sub := range []string{"list", "show", "rm"} {
		help := mustRun(t, ExitOK, "windows", sub, "--help").stdout
		for _, flag := range []string{"set", "env-file", "restricted", "env-allow", "output-dir", "allow-paths"} {
			line := ""
			for _, l := range strings.Split(help, "\n") {
				if strings.Contains(l, "--"+flag+" ") {
					line = l
				}
			}
			if !strings.Contains(line, "with -f") {
				t.Errorf("windows %s --help: --%s is not shown as a flag of -f's scenario: %q", sub, flag, line)
			}
		}
		for _, bad := range []string{"let the scenario write", "the paths the scenario writes"} {
			if strings.Contains(help, bad) {
				t.Errorf("windows %s --help says %q:\n%s", sub, bad, help)
			}
		}
	}

	for _, args := range [][]string{
		{"windows", "list", "--allow-paths", elsewhere},
		{"windows", "show", "recent", "--output-dir", dir},
		{"windows", "rm", "recent", "--restricted"},
		{"windows", "list", "--set", "kafka.brokers=[x]"},
	} {
		r := mustRun(t, ExitInvalid, append(args, "--data-dir", data)...)
		if !strings.Contains(r.stderr, "how the scenario of -f is read: give -f FILE") {
			t.Errorf("replayctl %s:\n%s", strings.Join(args, " "), r)
		}
	}
	mustRun(t, ExitOK, "windows", "show", "recent", "--data-dir", data)

	if r := mustRun(t, ExitInvalid, "windows", "list", "-f", f, "--data-dir", data); !strings.Contains(r.stderr, "--allow-paths") {
		t.Errorf("windows list -f of a scenario writing outside its directory:\n%s", r)
	}
	if r := mustRun(t, ExitOK, "windows", "list", "-f", f, "--data-dir", data, "--allow-paths", elsewhere); !strings.Contains(r.stdout, "recent") {
		t.Errorf("windows list -f --allow-paths:\n%s", r)
	}
}

// TestLostColumn: a partial window's losses are told in their units, never
// as one total adding packets to messages.
func TestLostColumn(t *testing.T) {
	tests := []struct {
		name         string
		w            catalog.Window
		column, show string
	}{
		{"complete", catalog.Window{}, "-", ""},
		{"messages and packets", catalog.Window{Partial: true, Lost: map[string]int64{"spool-full": 10, "too-large": 2, "kernel-drops": 3, "total": 15}},
			"12 messages, 3 packets (partial)", "lost kernel-drops 3 packets, spool-full 10 messages, too-large 2 messages"},
		{"causes not recorded", catalog.Window{Partial: true}, "partial", "lost (causes not recorded)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lostColumn(tc.w); got != tc.column {
				t.Errorf("LOST column %q, want %q", got, tc.column)
			}
			if tc.w.Partial {
				if got := lostDetail(tc.w.Lost); got != tc.show {
					t.Errorf("windows show: %q, want %q", got, tc.show)
				}
			}
		})
	}
}
