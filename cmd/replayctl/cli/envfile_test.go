package cli

import (
	"net"
	"net/http"
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
