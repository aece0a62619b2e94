package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
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

// TestWindowsBogusCaptureTimes: a .gor file whose timestamps are in part
// zero, negative or two centuries ahead is recorded whole, the record job
// says how many times are bogus, and windows list and show give the window
// the capture time of the others and say the rest is bogus: no 1970.
func TestWindowsBogusCaptureTimes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	times := []int64{start, 0, start + 1e8, -5e9, start + 2e8, time.Date(2226, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	f, err := os.Create(filepath.Join(dir, "rec.gor"))
	if err != nil {
		t.Fatal(err)
	}
	w := gorfile.NewWriter(f, false)
	for i, at := range times {
		id := fmt.Sprintf("%024x", i+1)
		if err := w.Write(&message.Message{Kind: message.Request, ID: id, Time: at, Raw: []byte("GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	s := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0"))
	data := filepath.Join(dir, "data")
	r := mustRun(t, ExitOK, "run", s, "--job", "record", "--data-dir", data, "--progress", "never")
	if !strings.Contains(r.stdout, "recorded  6 requests") || !strings.Contains(r.stdout, "times     3 message(s) with a bogus capture time") ||
		!strings.Contains(r.stderr, "messages with a bogus capture time recorded as they are") {
		t.Errorf("record of a .gor file with bogus times:\n%s", r)
	}

	r = mustRun(t, ExitOK, "windows", "list", "--data-dir", data)
	if !strings.Contains(r.stdout, "2026-03-01T12:00:00Z +3 bogus  200ms") || strings.Contains(r.stdout, "1969") || strings.Contains(r.stdout, "2226") ||
		!strings.Contains(r.stderr, "note: recent: messages with a bogus capture time (zero, negative, before 2000 or more than a day ahead of the clock)") {
		t.Errorf("windows list:\n%s", r)
	}
	r = mustRun(t, ExitOK, "windows", "show", "recent", "--data-dir", data)
	for _, want := range []string{
		"captured     2026-03-01T12:00:00Z → 2026-03-01T12:00:00Z (200ms)\n",
		"bogus times  3 message(s) with a bogus capture time (zero, negative, before 2000 or more than a day ahead of the clock): in the window and replayed",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("windows show lacks %q:\n%s", want, r)
		}
	}
	if r := mustRun(t, ExitOK, "windows", "show", "recent", "-o", "json", "--data-dir", data); !strings.Contains(r.stdout, `"bogus-times": 3`) {
		t.Errorf("windows show -o json:\n%s", r)
	}
}

// TestCapturedColumns: windows list and show tell a window's capture time
// when it has one, and say it is unknown when its times are bogus, as a
// window saved before they were told apart has them (1969 to 2255), or when
// none was saved for its messages; an empty window is said to be empty, not
// "- → - (-)".
func TestCapturedColumns(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	saved := at.Add(time.Hour)
	tests := []struct {
		name           string
		w              catalog.Window
		captured, span string
		show, noShow   string
	}{
		{"real times", catalog.Window{StartedAt: at, EndedAt: at.Add(time.Second), CreatedAt: saved},
			"2026-03-01T12:00:00Z", "1s", "captured 2026-03-01T12:00:00Z → 2026-03-01T12:00:01Z (1s)", "bogus"},
		{"empty", catalog.Window{CreatedAt: saved, Partitions: map[int32]catalog.Range{0: {Start: 5, End: 5}}},
			"empty", "-", "captured none: the window is empty", "→"},
		{"untimed messages", catalog.Window{CreatedAt: saved, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 6}}, Messages: 6, Requests: 6},
			"unknown (untimed)", "-", "captured unknown: no capture time was saved for its 6 message(s)", "→"},
		{"untimed records", catalog.Window{CreatedAt: saved, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 4}, 1: {Start: 2, End: 3}}},
			"unknown (untimed)", "-", "captured unknown: no capture time was saved for its 5 record(s)", "→"},
		{"some bogus", catalog.Window{StartedAt: at, EndedAt: at.Add(time.Second), CreatedAt: saved, BogusTimes: 4},
			"2026-03-01T12:00:00Z +4 bogus", "1s", "bogus times 4 message(s) with a bogus capture time", "unknown"},
		{"all bogus", catalog.Window{CreatedAt: saved, BogusTimes: 4},
			"unknown (bogus)", "-", "captured unknown: every message's capture time is bogus", "→"},
		{"saved before they were told apart", catalog.Window{StartedAt: time.Unix(-1, 0), EndedAt: time.Unix(0, 9e18), CreatedAt: saved},
			"unknown (bogus)", "-", "captured unknown: the times saved (1969-12-31T23:59:59Z → 2255-03-14T16:00:00Z) are bogus", "(2500000h"},
		{"ahead of its save", catalog.Window{StartedAt: at, EndedAt: saved.Add(48 * time.Hour), CreatedAt: saved},
			"unknown (bogus)", "-", "captured unknown: the times saved", "(49h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			captured, span := capturedColumns(tc.w)
			if captured != tc.captured || span != tc.span {
				t.Errorf("CAPTURED %q SPAN %q, want %q %q", captured, span, tc.captured, tc.span)
			}
			var b strings.Builder
			showWindow(&b, tc.w)
			// The columns' padding aside:
			show := strings.Join(strings.Fields(b.String()), " ")
			if !strings.Contains(show, tc.show) || strings.Contains(show, tc.noShow) {
				t.Errorf("windows show:\n%s\nwant it to contain %q and not %q", b.String(), tc.show, tc.noShow)
			}
		})
	}
}

// TestDataDirHelpSaysTheScenarios: the help of --data-dir says what the
// commands do: with -f and no --data-dir they open the scenario's
// kafka.data-dir, not .replayctl/data.
func TestDataDirHelpSaysTheScenarios(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"windows", "list"}, {"windows", "show"}, {"windows", "rm"}, {"report", "merge"}} {
		help := mustRun(t, ExitOK, append(args, "--help")...).stdout
		line := ""
		for _, l := range strings.Split(help, "\n") {
			if strings.Contains(l, "--data-dir ") {
				line = l
			}
		}
		if !strings.Contains(line, "default: the -f scenario's kafka.data-dir, else .replayctl/data") {
			t.Errorf("%s --help: %q", strings.Join(args, " "), line)
		}
	}
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	f := write(t, dir, "s.yaml", strings.Replace(fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0"),
		"topics:", "kafka: {data-dir: d2}\ntopics:", 1))
	mustRun(t, ExitOK, "run", f, "--job", "record", "--progress", "never")
	if r := mustRun(t, ExitOK, "windows", "list", "-f", f); !strings.Contains(r.stdout, "recent") {
		t.Errorf("windows list -f of a scenario with kafka.data-dir:\n%s", r)
	}
}

// TestWindowsListHelpSaysTheColumns: windows list --help says what its
// columns hold, a capture time that is bogus too.
func TestWindowsListHelpSaysTheColumns(t *testing.T) {
	t.Parallel()
	help := strings.Join(strings.Fields(mustRun(t, ExitOK, "windows", "list", "--help").stdout), " ")
	for _, want := range []string{"RECORDS (the offsets the window spans)", `"+N bogus"`, `"unknown (bogus)"`, `"unknown (untimed)"`, `"empty"`, "SPAN (to the last capture time)", "LOST"} {
		if !strings.Contains(help, want) {
			t.Errorf("windows list --help lacks %q:\n%s", want, help)
		}
	}
}

// TestWindowsEmptyRecording: a record job of a .gor file without messages
// saves an empty window; windows list and show say it is empty instead of
// "- → - (-)".
func TestWindowsEmptyRecording(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 0, time.Millisecond)
	s := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0"))
	data := filepath.Join(dir, "data")
	mustRun(t, ExitOK, "run", s, "--job", "record", "--data-dir", data, "--progress", "never")

	r := mustRun(t, ExitOK, "windows", "list", "--data-dir", data)
	if row := strings.Fields(lineWith(r.stdout, "recent")); len(row) < 7 || row[5] != "empty" || row[6] != "-" {
		t.Errorf("windows list of an empty window: CAPTURED and SPAN are not \"empty -\":\n%s", r)
	}
	r = mustRun(t, ExitOK, "windows", "show", "recent", "--data-dir", data)
	if got := strings.Join(strings.Fields(lineWith(r.stdout, "captured")), " "); got != "captured none: the window is empty" {
		t.Errorf("windows show of an empty window: %q\n%s", got, r)
	}
}

// lineWith returns the first line of text holding s ("" if none).
func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
