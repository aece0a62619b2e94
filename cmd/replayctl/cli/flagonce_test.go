package cli

import (
	"strings"
	"testing"
)

// TestSingleValueFlagsGivenTwice: --env-file and --output-dir take one
// value; given twice they are refused (exit 2) rather than the second
// silently replacing the first, whose variables were lost ("${A} is not
// set" about a variable the first file set).
func TestSingleValueFlagsGivenTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scn := write(t, dir, "s.yaml", "version: 1\nname: s\nvars:\n  a: ${A}\n  b: ${B}\njobs:\n  j:\n    source: {gor: {path: rec.gor}}\n    description: '${a} ${b}'\n    sink: {stdout: {}}\n")
	a := write(t, dir, "a.env", "A=1\n")
	b := write(t, dir, "b.env", "B=2\n")
	ab := write(t, dir, "ab.env", "A=1\nB=2\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"validate, one env file", []string{"validate", scn, "--env-file", ab}, ExitOK, ""},
		{"validate, two env files", []string{"validate", scn, "--env-file", a, "--env-file", b}, ExitInvalid, "--env-file is given twice"},
		{"run, two env files", []string{"run", scn, "--dry-run", "--env-file", a, "--env-file", b}, ExitInvalid, "--env-file is given twice"},
		{"run, two output dirs", []string{"run", scn, "--dry-run", "--env-file", ab, "--output-dir", dir, "--output-dir", dir + "/x"}, ExitInvalid, "--output-dir is given twice"},
		{"windows, two env files", []string{"windows", "list", "-f", scn, "--env-file", a, "--env-file", b}, ExitInvalid, "--env-file is given twice"},
	} {
		r := replayctl(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: want exit %d and %q, got %s", tc.name, tc.code, tc.want, r)
		}
	}
}
