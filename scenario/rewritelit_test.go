package scenario

import (
	"strings"
	"testing"
)

// TestRewriteLiteralChecked: a constant rewrite value that every request
// would refuse at run time is an error at its place; validate passed it,
// and the replay then counted a rewrite error for each request.
func TestRewriteLiteralChecked(t *testing.T) {
	for _, tc := range []struct {
		step string
		want string // "" when valid
	}{
		{`{set-method: '"PURGE"'}`, ""},
		{`{set-method: '"BAD METHOD"'}`, "7:28: jobs.j.rewrite[0].set-method: every request would refuse this value: invalid method (10 bytes): want a token"},
		{`{set-method: 'req.method + "X"'}`, ""},
		{`{set-path: '"/a/b"'}`, ""},
		{`{set-path: '"a/b"'}`, "every request would refuse this value: invalid path"},
		{`{set-url: '"/a?b=1"'}`, ""},
		{`{set-url: '"/a b"'}`, "every request would refuse this value"},
		{`{set-query-string: '""'}`, ""},
		{`{set-query-string: '"a b"'}`, "every request would refuse this value: invalid query"},
		{`{set-host: '"api.internal:8080"'}`, ""},
		{`{set-host: '"h/x"'}`, "every request would refuse this value: invalid host"},
	} {
		src := "version: 1\nname: s\ntargets:\n  a: {url: 'http://127.0.0.1:9'}\njobs:\n  j:\n    rewrite: [" + tc.step + "]\n    sink: {http: {target: a}}\n    source: {gor: {path: in.gor}}\n"
		_, err := LoadBytes("s.yaml", []byte(src), Options{Env: envOf(nil)})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.step, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 0):
			t.Errorf("%s: got %v, want one error %q", tc.step, err, tc.want)
		}
	}
}
