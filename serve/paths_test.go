package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scenarioWithReport replays with its JSON report written to REPORT.
const scenarioWithReport = `version: 1
name: paths
jobs:
  replay:
    source: {gor: {path: in.gor}}
    sink: {http: {url: "http://127.0.0.1:9"}}
    report: {json: REPORT}
`

// TestValidateInScenarioDir: serve checks a scenario's paths against the
// scenario file's own directory under --scenarios (not serve's working
// directory), and its problems name paths relative to --scenarios, never
// where serve's files are.
func TestValidateInScenarioDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "scenarios")
	if err := os.MkdirAll(filepath.Join(dir, "team", "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(dir, "team", "up")); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	for _, c := range []struct {
		file, report string
		want         []string // fragments of the one problem; none: valid
	}{
		{"s.yaml", filepath.Join(dir, "reports", "r.json"), nil},
		{"s.yaml", "reports/r.json", nil},
		{"team/s.yaml", filepath.Join(dir, "team", "r.json"), nil},
		{"team/s.yaml", "out/r.json", nil},
		{"s.yaml", "../r.json", []string{"s.yaml:7:", "../r.json is outside the scenario's directory .;"}},
		{"team/s.yaml", "../../r.json", []string{"team/s.yaml:7:", "../../r.json is outside the scenario's directory team;"}},
		{"team/s.yaml", filepath.Join(dir, "r.json"), []string{"team/s.yaml:7:", "outside the scenario's directory team;"}},
		{"team/s.yaml", "up/r.json", []string{"team/s.yaml:7:", "team/up is a symbolic link"}},
		{"compat-gor.yaml", "../r.json", []string{"compat-gor.yaml:7:", "outside the scenario's directory ."}},
	} {
		text := strings.Replace(scenarioWithReport, "REPORT", c.report, 1)
		_, problems, _ := validate(dir, c.file, []byte(text), nil)
		all := strings.Join(problems, "\n")
		if len(c.want) == 0 {
			if len(problems) > 0 {
				t.Errorf("%s with report %s: %s", c.file, c.report, all)
			}
			continue
		}
		if len(problems) != 1 {
			t.Errorf("%s with report %s: %d problems, want 1: %s", c.file, c.report, len(problems), all)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s with report %s: %q, want %q", c.file, c.report, all, w)
			}
		}
		for _, p := range []string{base, cwd} {
			if strings.Contains(all, p) {
				t.Errorf("%s with report %s: the problem shows %s: %q", c.file, c.report, p, all)
			}
		}
	}
}

func TestShownPaths(t *testing.T) {
	dir := "/srv/rc/scenarios"
	for in, want := range map[string]string{
		"/srv/rc/scenarios/team/r.json is outside the scenario's directory /srv/rc/scenarios/team; x": "team/r.json is outside the scenario's directory team; x",
		"outside the scenario's directory /srv/rc/scenarios":                                          "outside the scenario's directory .",
		"outside the scenario's directory /srv/rc/scenarios; a scenario":                              "outside the scenario's directory .; a scenario",
		`"/srv/rc/scenarios/a b.json"`:                                                                `"a b.json"`,
		"/srv/rc/scenarios2/x and /srv/rc/scenarios/x":                                                "/srv/rc/scenarios2/x and x",
		"/other/srv/rc/scenarios/x":                                                                   "/other/srv/rc/scenarios/x",
		"/srv/rc/scenarios/":                                                                          "./",
		"no path":                                                                                     "no path",
	} {
		if got := shownPaths(in, dir); got != want {
			t.Errorf("shownPaths(%q) = %q, want %q", in, got, want)
		}
	}
}
