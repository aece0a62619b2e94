package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// containDoc is a scenario whose written paths are filled in: a replay with
// JSON and HTML reports (lines 7 and 8) and a copy to a gor file (line 11).
const containDoc = `version: 1
name: contain
jobs:
  replay:
    source: {gor: {path: in.gor}}
    sink: {http: {url: "builtin:echo"}}
    report:
      json: %s
      html: %s
  copy:
    source: {gor: {path: in.gor}}
    sink: {gor: {path: %s}}
`

func loadContain(t *testing.T, dir, json, html, gor string, opts Options) (*Scenario, Diagnostics) {
	t.Helper()
	src := containDoc
	for _, v := range []string{json, html, gor} {
		src = strings.Replace(src, "%s", v, 1)
	}
	s, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(src), opts)
	if err == nil {
		return s, nil
	}
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("error %T: %v", err, err)
	}
	return nil, ds
}

func TestWrittenPathsContained(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "reports"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x.json"), filepath.Join(dir, "reports", "link.json")); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(outside, "r.json")
	for _, tc := range []struct {
		name            string
		json, html, gor string
		opts            Options
		want            map[string]string // "line:col" → message fragment
	}{
		{"inside", "reports/r.json", "reports/sub/../r.html", "out/copy.gor", Options{}, nil},
		{"dot dot", "../r.json", "reports/../../r.html", "../../copy.gor", Options{}, map[string]string{
			"8:13": "../r.json is outside the scenario's directory " + dir, "9:13": "outside", "12:24": "outside"}},
		{"absolute outside", abs, "r.html", "/tmp/copy.gor", Options{}, map[string]string{"8:13": "--allow-paths", "12:24": "outside"}},
		{"allowed", abs, "r.html", filepath.Join(outside, "c.gor"), Options{AllowPaths: []string{outside}}, nil},
		{"symlinked dir", "linked/r.json", "reports/r.html", "linked/deeper/c.gor", Options{}, map[string]string{
			"8:13": filepath.Join(dir, "linked") + " is a symbolic link", "12:24": "symbolic link"}},
		{"symlinked dir even when its target is allowed", "linked/r.json", "reports/r.html", "c.gor", Options{AllowPaths: []string{outside}}, map[string]string{
			"8:13": "symbolic link"}},
		{"symlinked file", "reports/link.json", "reports/r.html", "c.gor", Options{}, map[string]string{"8:13": "symbolic link"}},
		{"output dir", "r.json", "r.html", "c.gor", Options{OutputDir: outside}, nil},
		{"output dir escape", "../r.json", "r.html", filepath.Join(dir, "c.gor"), Options{OutputDir: outside}, map[string]string{
			"8:13": "outside --output-dir " + outside, "12:24": "outside"}},
		{"the directory itself", ".", "r.html", "c.gor", Options{}, map[string]string{"8:13": "outside"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ds := loadContain(t, dir, tc.json, tc.html, tc.gor, tc.opts)
			if len(tc.want) == 0 {
				if ds != nil {
					t.Fatalf("refused:\n%v", ds)
				}
				base := dir
				if tc.opts.OutputDir != "" {
					base = tc.opts.OutputDir
				}
				if p := s.Jobs["replay"].Report.HTML; p.Abs != filepath.Join(base, filepath.Clean(tc.html)) || p.Root == "" {
					t.Fatalf("html path %+v", p)
				}
				return
			}
			if len(ds) != len(tc.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%v", len(ds), len(tc.want), ds)
			}
			for _, d := range ds {
				at := strings.TrimPrefix(d.Pos.String(), filepath.Join(dir, "s.yaml")+":")
				if frag, ok := tc.want[at]; !ok || !strings.Contains(d.Message, frag) {
					t.Errorf("unexpected %s (want at %s: %q)", d, at, frag)
				}
			}
		})
	}
}

// TestWriteThroughRoot: a link put in place after validation does not lead
// the write outside.
func TestWriteThroughRoot(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	s, ds := loadContain(t, dir, "reports/r.json", "r.html", "c.gor", Options{})
	if ds != nil {
		t.Fatal(ds)
	}
	p := s.Jobs["replay"].Report.JSON
	if err := p.WriteFile([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "reports", "r.json")); err != nil || string(b) != "{}" {
		t.Fatalf("written %q %v", b, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "reports")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "reports")); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile([]byte("{}")); err == nil {
		t.Fatal("wrote through a symbolic link made after validation")
	}
	if _, err := os.Stat(filepath.Join(outside, "r.json")); err == nil {
		t.Fatal("file written outside")
	}
	g, err := s.Jobs["copy"].Sink.Gor.Path.Create()
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

func TestRestrictedEnv(t *testing.T) {
	env := envOf(map[string]string{"HOME": "/root", "APP_TARGET": "http://127.0.0.1:9", "SECRET_KEY": "k"})
	dir := t.TempDir()
	envFile := filepath.Join(dir, "agent.env")
	if err := os.WriteFile(envFile, []byte("REDACT_KEY=fromfile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := `version: 1
name: r
vars:
  target: ${APP_TARGET}
jobs:
  record:
    source: {gor: {path: in.gor}}
    redact: {mode: hash, key: "${REDACT_KEY}"}
    filter: %s
    sink: {stdout: {}}
  replay:
    source: {gor: {path: in.gor}}
    sink: {http: {url: "${target}"}}
`
	ok := strings.Replace(doc, "%s", `'env("APP_MODE") != "off"'`, 1)
	if _, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(ok), Options{Env: env, EnvFile: envFile, Restricted: true, EnvAllow: []string{"APP_*"}}); err != nil {
		t.Fatalf("allowed names refused: %v", err)
	}
	// Without the pattern, APP_TARGET and env("APP_MODE") are refused.
	ds := loadErrAt(t, dir, ok, Options{Env: env, EnvFile: envFile, Restricted: true})
	wantDiag(t, ds, "4:11", "${APP_TARGET} cannot be read")
	wantDiag(t, ds, "9:13", `env("APP_MODE") cannot be read`)
	// A refused variable reads as unset: its default applies (HOME's
	// value is not read), and env(...) with a computed name is refused.
	withDefault := strings.Replace(ok, "${APP_TARGET}", "${HOME:-http://127.0.0.1:9}", 1)
	s, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(withDefault), Options{Env: env, EnvFile: envFile, Restricted: true, EnvAllow: []string{"APP_*"}})
	if err != nil {
		t.Fatalf("a refused variable with a default: %v", err)
	}
	if got := s.Vars["target"]; got != "http://127.0.0.1:9" {
		t.Errorf("target = %q, want the default (HOME is refused)", got)
	}
	bad := strings.Replace(strings.Replace(doc, "%s", `'env(req.path) == ""'`, 1), "${APP_TARGET}", "${HOME}", 1)
	ds = loadErrAt(t, dir, bad, Options{Env: env, EnvFile: envFile, Restricted: true, EnvAllow: []string{"APP_*"}})
	wantDiag(t, ds, "4:11", "${HOME} cannot be read")
	wantDiag(t, ds, "9:13", "literal name")
	// The scalar that reads the refused vars: entry is not checked again
	// with its raw ${…} text (no second error about the URL).
	if len(ds) != 2 {
		t.Errorf("want 2 diagnostics, got:\n%v", ds)
	}
	// Not restricted, everything reads as before.
	if _, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(bad), Options{Env: env}); err == nil {
		t.Fatal("REDACT_KEY is not set without the env file: want an error")
	}
}

// TestRestrictedEnvNameInCredentialShown: a credential's value is a secret
// expression whose words errors do not show, but the name in its
// env("NAME") is not a secret (README: env("NAME") names are kept): the
// error that refuses it names it, so that it can be allowed.
func TestRestrictedEnvNameInCredentialShown(t *testing.T) {
	dir := t.TempDir()
	doc := `version: 1
name: r
jobs:
  replay:
    source: {gor: {path: in.gor}}
    rewrite:
      - set-header: {name: Authorization, value: '"Bearer " + env("STAGING_TOKEN")'}
    sink: {http: {url: "http://127.0.0.1:9"}}
`
	ds := loadErrAt(t, dir, doc, Options{Env: envOf(map[string]string{"STAGING_TOKEN": "Hunter2tok"}), Restricted: true})
	wantDiag(t, ds, "7:50", `env("STAGING_TOKEN") cannot be read`)
	if strings.Contains(ds.Error(), "Hunter2") {
		t.Errorf("the error shows the variable's value:\n%v", ds)
	}
}

func loadErrAt(t *testing.T, dir, src string, opts Options) Diagnostics {
	t.Helper()
	_, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(src), opts)
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("want diagnostics, got %v", err)
	}
	for i := range ds {
		ds[i].File = "s.yaml"
	}
	return ds
}

// TestValuesFromTheEnvironmentNotShown: a validation error about a scalar
// that took a value from the environment names the variable, not the value.
func TestValuesFromTheEnvironmentNotShown(t *testing.T) {
	env := envOf(map[string]string{"BROKER": "s3cret-broker", "PORT": "s3cretport", "TARGET": "ftp://s3cretuser@h/", "URL2": "http://u:s3cretpw@h:99999/", "SPEED": "s3cretfast",
		"FILTER": `req.header("X") == "s3cretliteral" &&`})
	doc := `version: 1
name: hidden
kafka: {brokers: ["${BROKER}"]}
topics: {t: {}}
targets:
  a: {url: "${TARGET}"}
  b: {url: "http://u:s3cretpw@h:99999/"}
jobs:
  rec:
    source: {capture: {interface: lo, ports: ["${PORT}"]}}
    filter: ${FILTER}
    sink: {kafka: {topic: t}}
  replay:
    source: {window: w}
    speed: ${SPEED}
    sink: {http: {target: a}}
`
	ds := loadErr(t, doc, Options{Env: env})
	text := ds.Error()
	if strings.Contains(text, "s3cret") {
		t.Fatalf("diagnostics show values from the environment:\n%s", text)
	}
	for _, want := range []string{"3:19", "6:12", "7:12", "10:47", "11:13", "15:12"} {
		found := false
		for _, d := range ds {
			found = found || strings.HasSuffix(d.Pos.String(), want)
		}
		if !found {
			t.Errorf("no diagnostic at %s:\n%s", want, text)
		}
	}
	if !strings.Contains(text, "${BROKER}") || !strings.Contains(text, "${TARGET}") {
		t.Errorf("diagnostics do not name the variables:\n%s", text)
	}
	// The env file's lines are not shown either.
	dir := t.TempDir()
	envFile := filepath.Join(dir, "x.env")
	if err := os.WriteFile(envFile, []byte("PASSWORD s3cretA\nKEY=\"s3cretB\nTOKEN='x' s3cretC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds = loadErr(t, "version: 1\nname: x\njobs: {}\n", Options{Env: env, EnvFile: envFile})
	n := 0
	for _, d := range ds {
		if d.File == envFile {
			n++
		}
	}
	if n != 3 || strings.Contains(ds.Error(), "s3cret") {
		t.Fatalf("env file diagnostics:\n%s", ds.Error())
	}
}

// TestURLFromTheEnvironmentShowsVariable: an error about a URL that came
// from ${VAR} shows ${VAR} (as the README's Safety section says), not the
// URL with its password masked; a password written in the file stays masked.
func TestURLFromTheEnvironmentShowsVariable(t *testing.T) {
	env := envOf(map[string]string{"UNSET_URL": "ftp://tok:S3CRET@x", "PW": "S3CRETPW", "HOST": "h:99999",
		"BAD": "http://admin:S3CRETPW@127.0.0.1:x1", "Q": "S3CRETQ"})
	tests := []struct {
		url, want string
	}{
		{"${UNSET_URL}", `URL "${UNSET_URL}": scheme "ftp" is not supported`},
		{"${BAD}", `invalid URL "${BAD}": invalid port ":x1" after host`},
		{"http://a:${PW}@h:99999/", `URL "http://a:${PW}@h:99999/" has an invalid port`},
		{"http://a:${PW}@${HOST}/", `URL "http://a:${PW}@${HOST}/" has an invalid port`},
		{"http://a:S3CRETLIT@${HOST}/", `URL "http://a:xxxxx@${HOST}/" has an invalid port`},
		{"http://a:x${PW}@${HOST}/", `URL "http://a:xxxxx@${HOST}/" has an invalid port`},
		{"http://${HOST}/?token=${Q}", `URL "http://${HOST}/?token=${Q}" has an invalid port`},
		{"http://${HOST}/?token=S3CRETLIT&u=${Q}", `URL "http://${HOST}/?token=xxxxx&u=${Q}" has an invalid port`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			doc := fmt.Sprintf("version: 1\nname: u\ntargets:\n  a: {url: %q}\njobs: {}\n", tt.url)
			ds := loadErr(t, doc, Options{Env: env})
			if strings.Contains(ds.Error(), "S3CRET") {
				t.Errorf("the error shows a secret:\n%s", ds.Error())
			}
			wantDiag(t, ds, "4:12", "targets.a.url: "+tt.want)
		})
	}
}

// TestRestrictedReads: a restricted scenario also reads only under its
// directory (or the allowed ones), never through a symbolic link.
func TestRestrictedReads(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	doc := "version: 1\nname: r\njobs:\n  copy:\n    source: {gor: {path: %s}}\n    sink: {stdout: {}}\n"
	for _, tc := range []struct {
		path string
		opts Options
		want string
	}{
		{"in.gor", Options{Restricted: true}, ""},
		{"/etc/passwd", Options{Restricted: true}, "a restricted scenario reads only there"},
		{"../x.gor", Options{Restricted: true}, "outside"},
		{"linked/x.gor", Options{Restricted: true}, "symbolic link"},
		{filepath.Join(outside, "x.gor"), Options{Restricted: true, AllowPaths: []string{outside}}, ""},
		{"/etc/passwd", Options{}, ""},
	} {
		src := strings.Replace(doc, "%s", tc.path, 1)
		_, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(src), tc.opts)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "s.yaml:5:26: jobs.copy.source.gor.path: ") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q at 5:26", tc.path, err, tc.want)
		}
	}
}

// TestSpoolDirContained: a kafka sink's spool.dir is written, so it is
// contained like the other written paths: refused at its node when it
// leaves the scenario's directory or goes through a symbolic link.
// Unset, it is the engine's default (under the data dir), not checked here.
func TestSpoolDirContained(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	doc := "version: 1\nname: spool\ntopics: {t: {}}\njobs:\n  rec:\n    source: {gor: {path: in.gor}}\n    sink: {kafka: {topic: t, spool: {dir: %s}}}\n"
	for _, tc := range []struct {
		name, dir string
		opts      Options
		want      string // message fragment at 7:43; "" for accepted
		abs, root string // accepted: the resolved Path
	}{
		{"inside", "spool", Options{}, "", filepath.Join(dir, "spool"), dir},
		{"the directory itself", ".", Options{}, "", dir, dir},
		{"restricted", "spool/sub", Options{Restricted: true}, "", filepath.Join(dir, "spool", "sub"), dir},
		{"unset", "", Options{Restricted: true}, "", "", ""},
		{"dot dot", "../escaped-spool", Options{}, "../escaped-spool is outside the scenario's directory " + dir + "; a scenario writes only there", "", ""},
		{"absolute outside", "/etc/cron.d", Options{}, "/etc/cron.d is outside the scenario's directory " + dir, "", ""},
		{"symlinked dir", "linked", Options{}, filepath.Join(dir, "linked") + " is a symbolic link", "", ""},
		{"under a symlinked dir", "linked/spool", Options{}, filepath.Join(dir, "linked") + " is a symbolic link", "", ""},
		{"symlinked even when allowed", "linked", Options{AllowPaths: []string{outside}}, "symbolic link", "", ""},
		{"allowed", filepath.Join(outside, "spool"), Options{AllowPaths: []string{outside}}, "", filepath.Join(outside, "spool"), outside},
		{"output dir", "spool", Options{OutputDir: outside}, "", filepath.Join(outside, "spool"), outside},
		{"output dir escape", "../spool", Options{OutputDir: outside}, "outside --output-dir " + outside, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(doc, "%s", tc.dir, 1)
			if tc.dir == "" {
				src = strings.Replace(doc, ", spool: {dir: %s}", "", 1)
			}
			s, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(src), tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				p := s.Jobs["rec"].Sink.Kafka.Spool.Dir
				if p.Abs != tc.abs || p.Root != tc.root {
					t.Fatalf("spool dir %+v, want Abs %s, Root %s", p, tc.abs, tc.root)
				}
				return
			}
			var ds Diagnostics
			if !errors.As(err, &ds) || len(ds) != 1 {
				t.Fatalf("want one diagnostic, got %v", err)
			}
			if want := filepath.Join(dir, "s.yaml") + ":7:43: jobs.rec.sink.kafka.spool.dir: "; !strings.HasPrefix(ds[0].String(), want) || !strings.Contains(ds[0].Message, tc.want) {
				t.Fatalf("got %s\nwant %s… %q", ds[0], want, tc.want)
			}
		})
	}
}

// TestRestrictedGlobs: in a restricted scenario every file a glob matches
// is checked like a literal path: a match that is a symbolic link, or lies
// under one, is refused at the path's node, naming the matched file.
func TestRestrictedGlobs(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret.gor")
	for _, f := range []string{secret, filepath.Join(dir, "r", "ok.gor")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(dir, "r", "in.gor")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "ln1")); err != nil {
		t.Fatal(err)
	}
	doc := "version: 1\nname: r\njobs:\n  copy:\n    source: {gor: {path: %s}}\n    sink: {stdout: {}}\n"
	restricted := Options{Restricted: true}
	for _, tc := range []struct {
		name, path string
		opts       Options
		want       string // at 5:26; "" for accepted
	}{
		{"symlinked file", `"r/*.gor"`, restricted, "r/*.gor matches " + filepath.Join(dir, "r", "in.gor") + ": " + filepath.Join(dir, "r", "in.gor") + " is a symbolic link"},
		{"symlinked directory", `"ln?/secret.gor"`, restricted, "ln?/secret.gor matches " + filepath.Join(dir, "ln1", "secret.gor") + ": " + filepath.Join(dir, "ln1") + " is a symbolic link"},
		{"any directory", `"*/secret.gor"`, restricted, "symbolic link"},
		{"symlinked file, absolute pattern", `"` + filepath.Join(dir, "r", "[i]n.gor") + `"`, restricted, "symbolic link"},
		{"plain files only", `"r/ok*.gor"`, restricted, ""},
		{"no match yet", `"later-*.gor"`, restricted, ""},
		{"not restricted", `"r/*.gor"`, Options{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(strings.Replace(doc, "%s", tc.path, 1)), tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p := s.Jobs["copy"].Source.Gor.Path; tc.opts.Restricted != (p.Root == dir) {
					t.Fatalf("path %+v: Root must be the scenario's directory when restricted", p)
				}
				return
			}
			var ds Diagnostics
			if !errors.As(err, &ds) || len(ds) != 1 {
				t.Fatalf("want one diagnostic, got %v", err)
			}
			if want := filepath.Join(dir, "s.yaml") + ":5:26: jobs.copy.source.gor.path: "; !strings.HasPrefix(ds[0].String(), want) || !strings.Contains(ds[0].Message, tc.want) {
				t.Fatalf("got %s\nwant %s… %q", ds[0], want, tc.want)
			}
		})
	}
}

// TestRestrictedEnvIndirect: a restricted scenario reaches env() only as
// env("NAME") with an allowed literal name: not through a variable holding
// the function, nor through $env.
func TestRestrictedEnvIndirect(t *testing.T) {
	env := envOf(map[string]string{})
	dir := t.TempDir()
	doc := `version: 1
name: r
jobs:
  record:
    source: {gor: {path: in.gor}}
    filter: %s
    sink: {stdout: {}}
`
	for _, expr := range []string{
		`'let f = env; f("SECRET_KEY") != ""'`,
		`'$env.env("SECRET_KEY") != ""'`,
		`'let e = $env; e.env("SECRET_KEY") != ""'`,
		`'let f = get($env, "e" + "nv"); f("SECRET_KEY") != ""'`,
	} {
		ds := loadErrAt(t, dir, strings.Replace(doc, "%s", expr, 1), Options{Env: env, Restricted: true, EnvAllow: []string{"APP_*"}})
		if !strings.Contains(ds.Error(), "env") {
			t.Errorf("%s: %v", expr, ds)
		}
	}
	// An allowed call still compiles.
	if _, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(strings.Replace(doc, "%s", `'env("APP_MODE") != "off"'`, 1)), Options{Env: env, Restricted: true, EnvAllow: []string{"APP_*"}}); err != nil {
		t.Fatalf("allowed call refused: %v", err)
	}
	// A name of --env-file is allowed too (${NAME} reads it), and env()
	// reads its value; another name stays refused.
	envFile := filepath.Join(dir, "vars.env")
	if err := os.WriteFile(envFile, []byte("FILE_TOKEN=from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(strings.Replace(doc, "%s", `'env("FILE_TOKEN") != ""'`, 1)), Options{Env: env, EnvFile: envFile, Restricted: true, EnvAllow: []string{"APP_*"}})
	if err != nil {
		t.Fatalf("env() of an --env-file name refused: %v", err)
	}
	if v, ok := s.LookupEnv("FILE_TOKEN"); !ok || v != "from-file" {
		t.Errorf(`LookupEnv("FILE_TOKEN") = %q, %v; want the file's value`, v, ok)
	}
	ds := loadErrAt(t, dir, strings.Replace(doc, "%s", `'env("SECRET_KEY") != ""'`, 1), Options{Env: env, EnvFile: envFile, Restricted: true, EnvAllow: []string{"APP_*"}})
	if !strings.Contains(ds.Error(), `env("SECRET_KEY") cannot be read`) {
		t.Errorf("a name neither in the file nor allowed: %v", ds)
	}
}

// TestRestrictedReadDotDotThroughLink: containment judges a read path
// cleaned ("/dir/linked/../x" is "/dir/x"), so the path a reader opens is the cleaned
// one too: the kernel would follow the link first and "linked/.." would be
// the link's parent, outside the directory.
func TestRestrictedReadDotDotThroughLink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "sub"), filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	doc := `version: 1
name: r
targets:
  t: {url: "https://127.0.0.1:9", ca-file: DIR/linked/../ca.pem}
jobs:
  replay:
    source: {gor: {path: DIR/linked/../in.gor}}
    sink: {http: {target: t}}
    compare: {grpc: {descriptors: DIR/linked/../d.pb}}
`
	doc = strings.ReplaceAll(doc, "DIR", dir)
	s, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(doc), Options{Restricted: true})
	if err != nil {
		t.Fatal(err)
	}
	j := s.Jobs["replay"]
	for what, p := range map[string]Path{"gor": j.Source.Gor.Path, "ca-file": s.Targets["t"].CAFile, "descriptors": j.Compare.GRPCDescriptors} {
		if p.Abs != filepath.Join(dir, filepath.Base(p.Raw)) {
			t.Errorf("%s: Abs %q, want %q (as judged)", what, p.Abs, filepath.Join(dir, filepath.Base(p.Raw)))
		}
	}
}

// TestOutsideNamesTheDirectoryToAllow: a path the scenario writes outside
// its directory is refused with the --allow-paths that allows it, absolute
// (the flag reads a relative directory from the working directory) and
// shell-quoted; with it, the scenario loads.
func TestOutsideNamesTheDirectoryToAllow(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "scen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, allow, hint string }{
		{"../out/r.json", filepath.Join(base, "out"), filepath.Join(base, "out")},
		{"../my out/r.json", filepath.Join(base, "my out"), "'" + filepath.Join(base, "my out") + "'"},
	} {
		src := "version: 1\nname: c\njobs:\n  r:\n    source: {gor: {path: a.gor}}\n    sink: {stdout: {}}\n    report: {json: \"" + tt.path + "\"}\n"
		ds := loadErrAt(t, dir, src, Options{Env: envOf(nil)})
		if len(ds) != 1 || !strings.HasSuffix(ds[0].Message, "or under a directory the command line allows: --allow-paths "+tt.hint) {
			t.Errorf("%s: got %v, want it to end with --allow-paths %s", tt.path, ds, tt.hint)
		}
		if _, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(src), Options{Env: envOf(nil), AllowPaths: []string{tt.allow}}); err != nil {
			t.Errorf("%s with --allow-paths %s: %v", tt.path, tt.allow, err)
		}
	}
}

// TestWriteFileWhole: processes writing the same report (shards on one
// host given one path) leave one writer's file whole, never a mix or a
// torn one, and no temporary file; a reader meanwhile sees each whole.
func TestWriteFileWhole(t *testing.T) {
	for _, contained := range []bool{false, true} {
		t.Run(fmt.Sprint("contained=", contained), func(t *testing.T) {
			dir := t.TempDir()
			p := Path{Raw: "reports/r.html", Abs: filepath.Join(dir, "reports", "r.html")}
			if contained {
				p.Root = dir
			}
			contents := map[string]bool{}
			for w := range 4 {
				contents[strings.Repeat(fmt.Sprintf("writer %d\n", w), 20000+w*5000)] = true
			}
			var wg sync.WaitGroup
			for c := range contents {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 10 {
						if err := p.WriteFile([]byte(c)); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for reading := true; reading; {
				select {
				case <-done:
					reading = false
				default:
				}
				if b, err := os.ReadFile(p.Abs); err == nil && !contents[string(b)] {
					t.Fatalf("read a file no writer wrote whole (%d bytes)", len(b))
				}
			}
			entries, err := os.ReadDir(filepath.Dir(p.Abs))
			if err != nil || len(entries) != 1 {
				t.Fatalf("the report's directory holds %v (%v), want the report alone", entries, err)
			}
		})
	}
}

// TestWriteFileKeepsModeAndLink: a report written again keeps the mode
// its owner gave it (0600), and an uncontained report path that is a
// symbolic link is written where it leads, the link kept (a review found
// both lost to the rename).
func TestWriteFileKeepsModeAndLink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	if err := os.WriteFile(real, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Path{{Raw: "real.json", Abs: real, Root: dir}, {Raw: "link.json", Abs: link}} {
		if err := p.WriteFile([]byte("new " + p.Raw)); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(real); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("after writing %s: mode %v (%v), want 0600", p.Raw, fi.Mode(), err)
		}
		if b, _ := os.ReadFile(real); string(b) != "new "+p.Raw {
			t.Errorf("after writing %s: %s holds %q", p.Raw, real, b)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
}

// TestControlCharactersInPaths: a path the scenario reads or writes with a
// control character in it (a newline would forge a line of the job's log,
// where paths are written as they are) is refused at its place.
func TestControlCharactersInPaths(t *testing.T) {
	const doc = `version: 1
name: ctl
topics: {t: {}}
jobs:
  replay:
    source: {gor: {path: %s}}
    sink: {http: {url: "builtin:echo"}}
    report:
      json: %s
      html: %s
  rec:
    source: {gor: {path: in.gor}}
    sink: {kafka: {topic: t, spool: {dir: %s}}}
  copy:
    source: {gor: {path: in.gor}}
    sink: {gor: {path: %s}}
`
	fields := []struct{ at, path string }{ // where each %s's value starts
		{"6:26", "replay.source.gor.path"},
		{"9:13", "replay.report.json"},
		{"10:13", "replay.report.html"},
		{"13:43", "rec.sink.kafka.spool.dir"},
		{"16:24", "copy.sink.gor.path"},
	}
	good := []string{"in.gor", "r.json", "r.html", "spool", "c.gor"}
	for _, tc := range []struct {
		name, value, shown string
	}{
		{"newline", `"reports/x\ntime=2026 level=ERROR msg=\"forged\"\n.json"`, `"\n" at byte 10`},
		{"tab", `"reports/x\t.json"`, `"\t" at byte 10`},
		{"NUL", `"reports/x\0.json"`, `"\x00" at byte 10`},
		{"ESC", `"reports/\e[31mx.json"`, `"\x1b" at byte 9`},
		{"DEL", `"reports/x\x7f.json"`, `"\x7f" at byte 10`},
	} {
		for i, f := range fields {
			t.Run(tc.name+" in "+f.path, func(t *testing.T) {
				vals := make([]any, len(good))
				for j := range good {
					vals[j] = good[j]
				}
				vals[i] = tc.value
				ds := loadErrAt(t, t.TempDir(), fmt.Sprintf(doc, vals...), Options{})
				wantDiag(t, ds, f.at, "jobs."+f.path+": a path may not hold control characters (newlines, tabs, NUL, escapes…); this one has "+tc.shown)
				if len(ds) != 1 {
					t.Errorf("want one diagnostic, got:\n%v", ds)
				}
				if strings.Contains(ds.Error(), "forged") {
					t.Errorf("the diagnostic repeats the path: %v", ds)
				}
			})
		}
	}
	// The same paths, printable, load.
	vals := make([]any, len(good))
	for j := range good {
		vals[j] = good[j]
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.gor"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBytes(filepath.Join(dir, "s.yaml"), []byte(fmt.Sprintf(doc, vals...)), Options{}); err != nil {
		t.Fatal(err)
	}
}
