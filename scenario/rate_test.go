package scenario

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/replayctl/replayctl/schemas"
)

// TestRateAgreesWithSchema: every rate the schema's pattern takes, ParseRate
// takes, and the reverse, so that an editor checking the schema and
// validate agree. ".5/s" passed the schema and failed validate.
func TestRateAgreesWithSchema(t *testing.T) {
	var doc struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Pattern string `json:"pattern"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.ScenarioJSON, &doc); err != nil {
		t.Fatal(err)
	}
	pat := doc.Defs["job"].Properties["rate"].Pattern
	if pat == "" {
		t.Fatal("no rate pattern in the schema")
	}
	re := regexp.MustCompile(pat)
	for _, tc := range []struct {
		in   string
		want float64 // 0: refused
	}{
		{"500/s", 500},
		{"120/m", 2},
		{" 1.5 / s ", 1.5},
		{".5/s", 0.5},
		{"0.5/s", 0.5},
		{"00.25/s", 0.25},
		{"007/s", 7},
		{".0/s", 0},
		{"0/s", 0},
		{"0.0/s", 0},
		{"5./s", 0},
		{".", 0},
		{"./s", 0},
		{"1e3/s", 0},
		{"5/h", 0},
		{"x/s", 0},
		{"500", 0},
	} {
		got, err := ParseRate(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("ParseRate(%q) = %v, want an error", tc.in, got)
			}
		} else if err != nil || got.PerSecond != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %g", tc.in, got, err, tc.want)
		}
		if schemaOK := re.MatchString(tc.in); schemaOK != (tc.want != 0) {
			t.Errorf("schema pattern on %q: %v, ParseRate: %v", tc.in, schemaOK, err == nil)
		}
	}
}
