package scenario

import (
	"strings"
	"testing"
)

// TestAmbiguousNumbers: a plain number that YAML 1.1 (gopkg.in/yaml.v3)
// and YAML 1.2 (editors, ajv) read differently is refused at its place:
// workers: 010 ran 8 workers while the editor showed 10.
func TestAmbiguousNumbers(t *testing.T) {
	for _, tc := range []struct {
		workers string
		env     map[string]string
		want    string // "" when valid
	}{
		{"10", nil, ""},
		{"0x10", nil, ""},
		{"0o10", nil, ""},
		{"1e1", nil, ""},

		{"010", nil, "7:39: 010 reads as 8 here (YAML 1.1) but not in YAML 1.2, as editors read it: write 8, or quote it for a string"},
		{"1_000", nil, "7:39: 1_000 reads as 1000 here"},
		{"0b101", nil, "7:39: 0b101 reads as 5 here"},
		{`"${W}"`, map[string]string{"W": "010"}, "7:39: the value of ${W} is a number YAML 1.1 and YAML 1.2 read differently"},
		{`"${W}"`, map[string]string{"W": "12"}, ""},
	} {
		src := "version: 1\nname: s\ntargets:\n  a: {url: 'http://127.0.0.1:9'}\njobs:\n  j:\n    sink: {http: {target: a, workers: " + tc.workers + "}}\n    source: {gor: {path: in.gor}}\n"
		_, err := LoadBytes("s.yaml", []byte(src), Options{Env: envOf(tc.env)})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("workers %s: %v", tc.workers, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 0):
			t.Errorf("workers %s: got %v, want one error %q", tc.workers, err, tc.want)
		}
	}
}

// TestCollectionKeys: a key that is a collection (? [a, b]) is an error at
// its own place; it was "unknown key """ at 1:1.
func TestCollectionKeys(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"version: 1\nname: s\n? [a, b]\n: 1\njobs: {}\n", "s.yaml:3:3: a key must be a name, not a [ ] or { } collection"},
		{"version: 1\nname: s\njobs:\n  ? {a: 1}\n  : {}\n", "s.yaml:4:5: a key must be a name, not a [ ] or { } collection"},
	} {
		_, err := LoadBytes("s.yaml", []byte(tc.src), Options{Env: envOf(nil)})
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
