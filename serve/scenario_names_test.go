package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownScenarioSaysWhatExists: a submission naming a scenario that is
// not there says so and, when the same name exists with the other YAML
// extension (fleet.yml for fleet.yaml), names it; otherwise it says where
// the scenarios are listed.
func TestUnknownScenarioSaysWhatExists(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"fleet.yaml", "sub/rec.yml"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("version: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := openScenarioDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"fleet.yml", `no such scenario "fleet.yml" in the scenarios directory; did you mean "fleet.yaml"?`},
		{"sub/rec.yaml", `no such scenario "sub/rec.yaml" in the scenarios directory; did you mean "sub/rec.yml"?`},
		{"other.yaml", `no such scenario "other.yaml" in the scenarios directory (GET /v1/scenarios lists them)`},
	} {
		if _, err := d.read(tt.name); err == nil || err.Error() != tt.want {
			t.Errorf("read(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
	if got := problemCount(1) + ", " + problemCount(2); got != "1 problem, 2 problems" {
		t.Errorf("problemCount: %q", got)
	}
	if !strings.Contains(problemCount(0), "0 problems") {
		t.Errorf("problemCount(0) = %q", problemCount(0))
	}
}
