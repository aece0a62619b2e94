package gorimport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/scenario"
)

// TestPathsFromScenarioDir: a relative --input-file or --output-file is
// gor's working directory's; the scenario names the same file from the
// directory it is saved in (Options.Dir), absolute for a file it writes
// outside it, and warns only when that directory is not known.
func TestPathsFromScenarioDir(t *testing.T) {
	wd := filepath.Join(t.TempDir(), "gor run")
	t.Chdir(filepath.Dir(wd))
	t.Chdir(mkdir(t, wd))
	tests := []struct {
		name, dir       string
		in, out         string // as gor got them
		wantIn, wantOut string // as the scenario names them
		warn            string
	}{
		{"saved beside", wd, "r.gor", "out/c.gor", "r.gor", "out/c.gor", ""},
		{"relative Dir, the same", ".", "r.gor", "c.gor", "r.gor", "c.gor", ""},
		{"saved in a sibling", filepath.Join(filepath.Dir(wd), "scenarios"), "in/r.gor", "c.gor", "../gor run/in/r.gor", filepath.Join(wd, "c.gor"), "outside the scenario's directory"},
		{"saved below", "sub", "r.gor", "c.gor", "../r.gor", filepath.Join(wd, "c.gor"), "outside the scenario's directory"},
		{"saved above", "..", "r.gor", "out/c.gor", "gor run/r.gor", "gor run/out/c.gor", ""},
		{"saved above, written beside it", "..", "r.gor", "../c.gor", "gor run/r.gor", "c.gor", ""},
		{"absolute paths kept", "sub", "/data/r.gor", "/data/c.gor", "/data/r.gor", "/data/c.gor", "outside the scenario's directory"},
		{"not known", "", "r.gor", "c.gor", "r.gor", "c.gor", "save the scenario in " + wd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ConvertWith([]string{"--input-file", tt.in, "--output-file", tt.out}, Options{Dir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Jobs map[string]struct {
					Source struct{ Gor struct{ Path string } }
					Sink   struct{ Gor struct{ Path string } }
				}
			}
			if err := yaml.Unmarshal(res.YAML, &doc); err != nil || len(doc.Jobs) != 1 {
				t.Fatalf("%v, %d jobs\n%s", err, len(doc.Jobs), res.YAML)
			}
			for _, j := range doc.Jobs {
				if j.Source.Gor.Path != tt.wantIn || j.Sink.Gor.Path != tt.wantOut {
					t.Errorf("paths %q → %q, want %q → %q", j.Source.Gor.Path, j.Sink.Gor.Path, tt.wantIn, tt.wantOut)
				}
			}
			// validate takes it (with the --allow-paths its warnings name).
			if _, err := scenario.LoadBytes(filepath.Join(tt.dir, "paths.yaml"), res.YAML, scenario.Options{Env: noEnv, AllowPaths: res.AllowPaths}); err != nil {
				t.Errorf("%v\n%s", err, res.YAML)
			}
			// Named otherwise than gor gave them, the paths say from where.
			if got, want := strings.Contains(string(res.YAML), "# Relative paths name gor's files"), tt.dir != "" && tt.wantIn != tt.in; got != want {
				t.Errorf("the note of where relative paths are from: %v, want %v\n%s", got, want, res.YAML)
			}
			warns := strings.Join(res.Warnings, "\n")
			if tt.warn != "" && !strings.Contains(warns, tt.warn) {
				t.Errorf("warnings lack %q:\n%s", tt.warn, warns)
			}
			if tt.warn == "" && strings.Contains(warns, "directory") {
				t.Errorf("a warning of directories, where none is due:\n%s", warns)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPathsOddDirectories: gor's working directory reached through a
// symbolic link ($PWD names the link, a redirected stdout's file the
// directory itself) is one directory; a directory whose name holds glob
// characters is not a pattern once put before gor's file name.
func TestPathsOddDirectories(t *testing.T) {
	root := t.TempDir()
	real := mkdir(t, filepath.Join(root, "real"))
	if err := os.Symlink(real, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "link"))
	res, err := ConvertWith([]string{"--input-file", "r.gor", "--output-file", "c.gor"}, Options{Dir: real})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.YAML), "{gor: {path: r.gor}}") || !strings.Contains(string(res.YAML), "{gor: {path: c.gor}}") || len(res.AllowPaths) != 0 {
		t.Errorf("through a link, the scenario saved in gor's own directory names other paths (allow-paths %q):\n%s", res.AllowPaths, res.YAML)
	}

	odd := mkdir(t, filepath.Join(root, "run[1]*?"))
	if err := os.WriteFile(filepath.Join(odd, "r.gor"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(odd)
	scen := mkdir(t, filepath.Join(root, "scenarios"))
	res, err = ConvertWith([]string{"--input-file", "r.gor", "--output-stdout"}, Options{Dir: scen})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Jobs map[string]struct {
			Source struct{ Gor struct{ Path string } }
		}
	}
	if err := yaml.Unmarshal(res.YAML, &doc); err != nil {
		t.Fatal(err)
	}
	for _, j := range doc.Jobs {
		m, err := filepath.Glob(filepath.Join(scen, j.Source.Gor.Path))
		if err != nil || len(m) != 1 || m[0] != filepath.Join(odd, "r.gor") {
			t.Errorf("source path %q matches %q (%v), want gor's file alone", j.Source.Gor.Path, m, err)
		}
	}
}
