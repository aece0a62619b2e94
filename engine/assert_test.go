package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestFailedAssertionShowsValues: a failed assertion prints the values it
// read, in the summary, the error, the JSON report and the HTML report.
func TestFailedAssertionShowsValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(4, time.Millisecond))
	tg := newTarget(t)
	extra := `speed: max
report: {json: report.json, html: report.html}
assert:
  - 'requests.sent > 1000'
  - 'errors.rate < 0.5 && status[200] >= 4'
  - 'latency.p99 < duration("1ms") * 0'`
	y := strings.Replace(replayYAML(tg.URL(), extra), "    report: {json: report.json}\n", "", 1)
	res := run(t, dir, y, engine.Options{})
	var ae *engine.AssertionError
	if !errors.As(res.err, &ae) || len(ae.Failed) != 2 {
		t.Fatalf("err = %v, want 2 failed assertions\n%s", res.err, res.out)
	}
	for _, want := range []string{
		"FAIL requests.sent > 1000  (requests.sent = 4, want > 1000)",
		"ok   errors.rate < 0.5 && status[200] >= 4  (errors.rate = 0, want < 0.5; status[200] = 4, want >= 4)",
		"FAIL latency.p99 < duration(\"1ms\") * 0  (latency.p99 = ",
		", want < 0s)",
	} {
		if !strings.Contains(res.out, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.out)
		}
	}
	if !strings.Contains(res.err.Error(), "(requests.sent = 4, want > 1000)") {
		t.Errorf("error lacks the values: %v", res.err)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	as, _ := rep["assertions"].([]any)
	if len(as) != 3 {
		t.Fatalf("report assertions = %v", rep["assertions"])
	}
	first := as[0].(map[string]any)
	if first["expr"] != "requests.sent > 1000" || first["ok"] != false || first["detail"] != "requests.sent = 4, want > 1000" {
		t.Errorf("report assertion = %v", first)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "requests.sent = 4, want &gt; 1000") {
		t.Errorf("HTML report lacks the values in the detail column")
	}
}
