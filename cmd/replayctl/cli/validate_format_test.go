package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateFormats: --format json gives one document a CI step can
// read, --format github one workflow command per problem; the exit code is
// that of the text format.
func TestValidateFormats(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", "version: 1\nname: bad\njobs:\n  replay:\n    source: {gor: {path: rec.gor}}\n    speed: fast\n    sink: {http: {url: \"http://127.0.0.1:9\"}}\n")
	good := write(t, dir, "good.yaml", "version: 1\nname: good\njobs:\n  replay:\n    source: {gor: {path: rec.gor}}\n    sink: {http: {url: \"http://127.0.0.1:9\"}}\n")
	missing := filepath.Join(dir, "missing.yaml")

	t.Run("json", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", "--format", "json", bad, good, missing)
		var out struct {
			OK    bool `json:"ok"`
			Files []struct {
				File string `json:"file"`
				OK   bool   `json:"ok"`
			} `json:"files"`
			Problems []struct {
				File     string `json:"file"`
				Line     int    `json:"line"`
				Column   int    `json:"column"`
				Severity string `json:"severity"`
				Message  string `json:"message"`
			} `json:"problems"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, r)
		}
		if out.OK || len(out.Files) != 3 || out.Files[0].OK || !out.Files[1].OK || out.Files[2].OK {
			t.Errorf("files: %+v (ok %t)", out.Files, out.OK)
		}
		var errs, warns, speed, read int
		for _, p := range out.Problems {
			switch p.Severity {
			case "error":
				errs++
			case "warning":
				warns++
			}
			if p.File == bad && p.Line == 6 && p.Column == 12 && strings.Contains(p.Message, "speed") {
				speed++
			}
			if p.File == missing && strings.Contains(p.Message, "no such file") {
				read++
			}
		}
		if speed != 1 || read != 1 || errs != 2 || warns != 1 {
			t.Errorf("problems (errors %d, warnings %d, the speed's %d, the missing file's %d): %+v", errs, warns, speed, read, out.Problems)
		}
	})
	t.Run("github", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", "--format", "github", bad, good)
		want := "::error file=" + bad + ",line=6,col=12::"
		if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "::warning file="+good+",line=5,") {
			t.Errorf("want %q and a warning for rec.gor in:\n%s", want, r)
		}
	})
	t.Run("clean json", func(t *testing.T) {
		r := mustRun(t, ExitOK, "validate", "--format", "json", good)
		if !strings.Contains(r.stdout, `"ok": true`) {
			t.Errorf("got %s", r)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", "--format", "xml", good)
		if !strings.Contains(r.stderr, "want text, json or github") {
			t.Errorf("got %s", r)
		}
	})
	if got := ghProperty("a:b,c%"); got != "a%3Ab%2Cc%25" {
		t.Errorf("ghProperty = %q", got)
	}
	if got := ghData("a\nb%"); got != "a%0Ab%25" {
		t.Errorf("ghData = %q", got)
	}
}
