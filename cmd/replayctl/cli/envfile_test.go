package cli

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEnvFileReadByEnvFunc: env("NAME") in a rewrite reads a variable of
// --env-file, as ${NAME} does (README: a staging token kept in
// staging.env), so the run is not refused as "not set" and the target
// receives the value; validate says nothing of it; without the file the
// run is refused before anything is sent.
func TestEnvFileReadByEnvFunc(t *testing.T) {
	t.Parallel()
	const name = "REPLAYCTL_CLI_TEST_FILE_TOKEN"
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		auth []string
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	f := write(t, dir, "s.yaml", `version: 1
name: envfile
targets:
  app: {url: "http://`+ln.Addr().String()+`"}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    rewrite:
      - set-header: {name: Authorization, value: '"Bearer " + env("`+name+`")'}
    sink: {http: {target: app}}
`)
	env := write(t, dir, "staging.env", name+"=file-t0ken\n")

	r := mustRun(t, ExitInvalid, "run", f, "--data-dir", dir+"/data", "--progress", "never")
	if !strings.Contains(r.stderr, name+" is not set") {
		t.Errorf("without the env file, want the run refused naming %s:\n%s", name, r)
	}
	r = mustRun(t, ExitOK, "validate", f, "--env-file", env)
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("validate --env-file warns of a variable env() reads from it:\n%s", r)
	}
	r = mustRun(t, ExitOK, "run", f, "--env-file", env, "--data-dir", dir+"/data", "--progress", "never")
	if strings.Contains(r.stderr, "file-t0ken") || strings.Contains(r.stdout, "file-t0ken") {
		t.Errorf("the run shows the env file's value:\n%s", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 3 {
		t.Fatalf("the target received %d requests, want 3 (after the refused run, none)", len(auth))
	}
	for _, a := range auth {
		if a != "Bearer file-t0ken" {
			t.Errorf("Authorization = %q, want the env file's token", a)
		}
	}
}

// TestEnvFileHelpSaysEnvCalls: the help of --env-file says it feeds env("VAR")
// in expressions too, and that a KEY env("KEY") reads is not warned of, as
// the README says; it said ${VAR} alone, so a user keeping a token for a
// rewrite's env("TOKEN") could not tell from --help that the file serves it.
func TestEnvFileHelpSaysEnvCalls(t *testing.T) {
	for _, args := range [][]string{{"validate"}, {"run"}, {"report", "merge"}, {"windows", "list"}} {
		help := mustRun(t, ExitOK, append(args, "--help")...).stdout
		for _, l := range strings.Split(help, "\n") {
			if strings.Contains(l, "--env-file string") && (!strings.Contains(l, `env("VAR")`) || !strings.Contains(l, `env("KEY")`)) {
				t.Errorf("%s --help: --env-file does not name env(): %q", strings.Join(args, " "), l)
			}
		}
	}
	for _, cmd := range []string{"validate", "run"} {
		help := strings.Join(strings.Fields(mustRun(t, ExitOK, cmd, "--help").stdout), " ")
		if !strings.Contains(help, `of --env-file that no ${VAR} or env("VAR")`) && !strings.Contains(help, `of --env-file no ${VAR} or env("VAR") reads`) {
			t.Errorf("%s --help: the warning about --env-file variables does not name env():\n%s", cmd, help)
		}
	}
}

// TestSecretVarInTargetURLNotShown: a token of --env-file (a secret's name,
// API_TOKEN) put in a target's URL elsewhere than a password or a secret
// query parameter (?x=${API_TOKEN}) is shown as ${API_TOKEN} by the plan,
// the summary and the reports, as validation errors show it, never its
// value: the plan printed it, and an http sink's url: named the target with it.
func TestSecretVarInTargetURLNotShown(t *testing.T) {
	t.Parallel()
	const secret = "Zq8vT0kenValue77"
	dir := t.TempDir()
	writeGor(t, dir, 2, time.Millisecond)
	port := freePort(t) // nothing listens there: the replay fails fast
	f := write(t, dir, "s.yaml", `version: 1
name: urltoken
targets:
  app: {url: "http://`+port+`/?x=${API_TOKEN}", timeout: 1s}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {target: app}}
    report: {json: r/a.json, html: r/a.html}
  inline:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {url: "http://`+port+`/p/${API_TOKEN}", timeout: 1s}}
    report: {json: r/b.json, html: r/b.html}
`)
	env := write(t, dir, "staging.env", "API_TOKEN="+secret+"\n")
	var out []string
	r := mustRun(t, ExitOK, "run", f, "--env-file", env, "--dry-run")
	if !strings.Contains(r.stdout, "?x=${API_TOKEN}") || !strings.Contains(r.stdout, "/p/${API_TOKEN}") {
		t.Errorf("the plan does not show the URLs as written:\n%s", r)
	}
	out = append(out, r.String())
	for _, job := range []string{"replay", "inline"} {
		r = replayctl("run", f, "--env-file", env, "--job", job, "--data-dir", dir+"/data", "--progress", "never")
		if r.code == ExitOK {
			t.Errorf("job %s against nothing: exit 0:\n%s", job, r)
		}
		out = append(out, r.String())
	}
	for _, name := range []string{"a.json", "a.html", "b.json", "b.html"} {
		data, err := os.ReadFile(filepath.Join(dir, "r", name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, name+":\n"+string(data))
	}
	for _, o := range out {
		if strings.Contains(o, secret) {
			t.Errorf("the token's value is shown:\n%s", o)
		}
	}
}
