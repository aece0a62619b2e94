package engine_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/engine"
)

// TestGorSourceMissing: a .gor source whose file is not there, or whose
// glob matches nothing, fails its job before it starts, at the scenario's
// line (as a pcap's does), without a summary of a job that did nothing.
func TestGorSourceMissing(t *testing.T) {
	for _, tc := range []struct {
		name, path, sink, want string
	}{
		{"record, file", "missing.gor", "stdout: {format: summary}", `scenario.yaml:5:13: gor source: gorfile: stat %s: no such file or directory`},
		{"record, glob", "'missing_*.gor'", "stdout: {format: summary}", `scenario.yaml:5:13: gor source: gorfile: no file matches "%s"`},
		{"replay, file", "missing.gor", "http: {url: 'http://127.0.0.1:1'}", `scenario.yaml:5:13: gor source: gorfile: stat %s: no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yaml := fmt.Sprintf("version: 1\nname: missing\njobs:\n  j:\n    source: {gor: {path: %s}}\n    sink: {%s}\n", tc.path, tc.sink)
			r := run(t, dir, yaml, engine.Options{})
			want := fmt.Sprintf(tc.want, filepath.Join(dir, strings.Trim(tc.path, "'")))
			if r.err == nil || !strings.Contains(r.err.Error(), want) {
				t.Errorf("error %v, want it to contain %q", r.err, want)
			}
			if r.out != "" {
				t.Errorf("a summary of a job that did not start:\n%s", r.out)
			}
		})
	}
}
