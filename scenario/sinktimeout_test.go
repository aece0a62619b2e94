package scenario

import (
	"strings"
	"testing"
)

// TestHTTPSinkTimeoutPositive: an http sink's timeout of 0 is refused at
// its place, as a target's is; it was taken as not set, so each target's
// own timeout (default 10s) applied without a word.
func TestHTTPSinkTimeoutPositive(t *testing.T) {
	for _, tc := range []struct {
		timeout string
		want    string // "" when valid
	}{
		{"2s", ""},
		{"250ms", ""},
		{"0s", "7:51: jobs.j.sink.http.timeout: must be a duration greater than 0"},
		{"0", "7:51: jobs.j.sink.http.timeout: must be a duration greater than 0"},
		{"'0'", "7:51: jobs.j.sink.http.timeout: must be a duration greater than 0"},
		{"0ms", "7:51: jobs.j.sink.http.timeout: must be a duration greater than 0"},
		{"-1s", "7:51: jobs.j.sink.http.timeout: must be a duration"},
	} {
		src := "version: 1\nname: s\ntargets:\n  a: {url: 'http://127.0.0.1:9'}\njobs:\n  j:\n    sink: {http: {target: a, workers: 4, timeout: " + tc.timeout + "}}\n    source: {gor: {path: in.gor}}\n"
		_, err := LoadBytes("s.yaml", []byte(src), Options{Env: envOf(nil)})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("timeout %s: %v", tc.timeout, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 0):
			t.Errorf("timeout %s: got %v, want one error %q", tc.timeout, err, tc.want)
		}
	}
}
