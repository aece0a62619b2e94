package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/replayctl/replayctl/gorfile"
)

// gorRequest is one request of a .gor file written the way GoReplay
// writes it: "1 <id> <ns> <latency>\n" + raw HTTP + separator.
type gorRequest struct {
	method, uri string
	headers     []string // "Name: value"
	body        string
}

// writeGoReplayFile writes reqs 100 ms apart, each with its response, as
// GoReplay's file output does, and returns the file's bytes.
func writeGoReplayFile(t *testing.T, path string, reqs []gorRequest) []byte {
	t.Helper()
	var b strings.Builder
	const t0 = int64(1772366400000000000)
	for i, r := range reqs {
		at := t0 + int64(i)*100e6
		fmt.Fprintf(&b, "1 %024x %d 0\n%s %s HTTP/1.1\r\nHost: prod.shop.example\r\n", i+1, at, r.method, r.uri)
		for _, h := range r.headers {
			b.WriteString(h + "\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
		b.WriteString(gorfile.Separator)
		fmt.Fprintf(&b, "2 %024x %d 1000000\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", i+1, at+1e6)
		b.WriteString(gorfile.Separator)
	}
	data := []byte(b.String())
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// recorder is a loopback HTTP server that keeps "METHOD URI" of each
// request, and the headers and bodies asked for.
type recorder struct {
	mu   sync.Mutex
	got  []string
	hdrs map[string]http.Header
	body map[string]string
}

func newRecorder(t *testing.T) (*recorder, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &recorder{hdrs: map[string]http.Header{}, body: map[string]string{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Method + " " + r.RequestURI
		rc.mu.Lock()
		rc.got = append(rc.got, key)
		rc.hdrs[key] = r.Header.Clone()
		rc.body[key] = string(body)
		rc.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rc, "http://" + ln.Addr().String()
}

// TestImportGorRuns converts gor command lines over a .gor file written
// as GoReplay writes it, validates and runs the scenario against a
// loopback server, and checks that the server sees what gor would send.
func TestImportGorRuns(t *testing.T) {
	const (
		customer = "Basic Y3VzdG9tZXIxOnB3" // customer1:pw
		admin    = "Basic YWRtaW46cHc="     // admin:pw
	)
	// A binary body with the separator's bytes (not on a line of their
	// own) and CRLFs.
	binBody := "\x00\x01\r\n🐵🙈🙉\r\n\n🐵🙈🙉x\xff\r\n"
	reqs := []gorRequest{
		{"GET", "/users", nil, ""},
		{"GET", "/internal/x", []string{"Authorization: Bearer t0ken"}, ""},
		{"POST", "/api/upload", []string{"Authorization: " + customer, "X-Tenant: a"}, binBody},
		{"GET", "/api/admin", []string{"Authorization: " + admin}, ""},
		{"GET", "/old", []string{"X-Tenant: b"}, ""},
		{"GET", "/old?x=1", nil, ""},
	}
	tests := []struct {
		name string
		args []string
		want []string
		warn string // in the import's stderr
	}{
		{"no filter", nil, []string{"GET /users", "GET /internal/x", "POST /api/upload", "GET /api/admin", "GET /old", "GET /old?x=1"}, ""},
		{"basic-auth filter checks Basic credentials only", []string{"--http-basic-auth-filter", "^customer"},
			[]string{"GET /users", "GET /internal/x", "POST /api/upload", "GET /old", "GET /old?x=1"}, ""},
		{"allow-header drops requests without the header", []string{"--http-allow-header", "X-Tenant: .*"},
			[]string{"POST /api/upload", "GET /old"}, ""},
		{"disallow-url matches the URI, not the host", []string{"--http-disallow-url", "internal|shop"},
			[]string{"GET /users", "POST /api/upload", "GET /api/admin", "GET /old", "GET /old?x=1"}, ""},
		{"allow-url anchored on a host matches nothing", []string{"--http-allow-url", `^prod\.`}, nil, "matches no request"},
		{"anchored url rewrite leaves a URI with a query alone", []string{"--http-rewrite-url", "^/old$:/new", "--http-allow-url", "^/(old|new)"},
			[]string{"GET /new", "GET /old?x=1"}, ""},
		{"rewrite with a group reference, first matching rule", []string{"--http-rewrite-url", "^/api/([a-z]+)$:/v2/$1/x", "--http-rewrite-url", "^/v2/(.*):/never/$1", "--http-rewrite-url", "x=1:y=2"},
			[]string{"GET /users", "GET /internal/x", "POST /v2/upload/x", "GET /v2/admin/x", "GET /old", "GET /old?y=2"}, ""},
		{"speed, set-header", []string{"--http-set-header", "X-Replay: 1", "--http-allow-method", "POST"},
			[]string{"POST /api/upload"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGoReplayFile(t, filepath.Join(dir, "requests.gor"), reqs)
			rc, url := newRecorder(t)
			args := append([]string{"import", "gor", "--", "--input-file", "requests.gor|400%", "--output-http", url}, tt.args...)
			imp := mustRun(t, ExitOK, args...)
			if tt.warn != "" && !strings.Contains(imp.stderr, tt.warn) {
				t.Errorf("import warnings lack %q:\n%s", tt.warn, imp.stderr)
			}
			scen := write(t, dir, "imported.yaml", imp.stdout)
			mustRun(t, ExitOK, "validate", scen)
			r := replayctl("run", scen)
			if r.code != ExitOK && len(tt.want) > 0 {
				t.Fatalf("run: %s\n%s", r, imp.stdout)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if !reflect.DeepEqual(rc.got, tt.want) {
				t.Fatalf("target saw %q, want %q\nscenario:\n%s", rc.got, tt.want, imp.stdout)
			}
			if h, ok := rc.hdrs["POST /api/upload"]; ok {
				if b := rc.body["POST /api/upload"]; b != binBody {
					t.Errorf("body %q, want %q", b, binBody)
				}
				if h.Get("Authorization") != customer {
					t.Errorf("Authorization %q, want %q", h.Get("Authorization"), customer)
				}
				if strings.Contains(strings.Join(tt.args, " "), "X-Replay") && h.Get("X-Replay") != "1" {
					t.Errorf("X-Replay %q, want 1", h.Get("X-Replay"))
				}
			}
		})
	}
}

// TestGorFileCutBeforeFinalNewline reads a .gor file copied while gor
// was writing it: its last separator lacks the final newline. Replayed,
// the last request reaches the target with its body; copied to a .gor
// file, it is kept byte for byte (not dropped as a body longer than its
// Content-Length).
func TestGorFileCutBeforeFinalNewline(t *testing.T) {
	dir := t.TempDir()
	body := "a=1\r\nx🐵🙈🙉"
	last := "1 " + strings.Repeat("0", 23) + "2 1772366400100000000 0\nPOST /last HTTP/1.1\r\nHost: prod.shop.example\r\nContent-Length: " +
		fmt.Sprint(len(body)) + "\r\n\r\n" + body
	data := "1 " + strings.Repeat("0", 23) + "1 1772366400000000000 0\nGET /first HTTP/1.1\r\nHost: prod.shop.example\r\n\r\n" + gorfile.Separator +
		last + strings.TrimSuffix(gorfile.Separator, "\n")
	write(t, dir, "requests.gor", data)

	rc, url := newRecorder(t)
	imp := mustRun(t, ExitOK, "import", "gor", "--", "--input-file", "requests.gor", "--output-http", url)
	mustRun(t, ExitOK, "run", write(t, dir, "replay.yaml", imp.stdout))
	rc.mu.Lock()
	if want := []string{"GET /first", "POST /last"}; !reflect.DeepEqual(rc.got, want) {
		t.Errorf("target saw %q, want %q", rc.got, want)
	}
	if got := rc.body["POST /last"]; got != body {
		t.Errorf("last body %q, want %q", got, body)
	}
	rc.mu.Unlock()

	imp = mustRun(t, ExitOK, "import", "gor", "--", "--input-file", "requests.gor", "--output-file", "copy.gor")
	r := mustRun(t, ExitOK, "run", write(t, dir, "copy.yaml", imp.stdout))
	out, err := os.ReadFile(filepath.Join(dir, "copy.gor"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), last+gorfile.Separator) {
		t.Errorf("copy.gor does not end with the last request:\n%q\nrun:\n%s", out, r)
	}
}

// TestImportGorSetHintPastes: the --set hint of import gor's warning,
// copied into a shell as printed, gives run the override meant: the job it
// names loops for 1h, the other job as imported.
func TestImportGorSetHintPastes(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh (a test whose tool is missing fails):", err)
	}
	dir := t.TempDir()
	imp := mustRun(t, ExitOK, "import", "gor", "--", "--input-file", "a.gor", "--input-file-loop", "--input-file", "b.gor", "--input-file-loop", "--output-http", "http://127.0.0.1:1")
	scen := write(t, dir, "imported.yaml", imp.stdout)
	write(t, dir, "a.gor", "")
	write(t, dir, "b.gor", "")
	var hints []string
	for _, l := range strings.Split(imp.stderr, "\n") {
		if _, h, ok := strings.Cut(l, "or --set "); ok && strings.HasPrefix(l, "warning: --input-file-loop") {
			hints = append(hints, "--set "+strings.TrimSuffix(h, ")"))
		}
	}
	if len(hints) != 2 {
		t.Fatalf("want a --set hint for each of the two looped inputs:\n%s", imp)
	}
	for i, hint := range hints {
		out, err := exec.Command(sh, "-c", `printf '%s\n' `+hint).Output()
		if err != nil {
			t.Fatalf("sh -c 'printf ... %s': %v", hint, err)
		}
		args := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		r := mustRun(t, ExitOK, append([]string{"run", scen, "--dry-run"}, args...)...)
		var loops []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.Contains(l, "pace ") {
				loops = append(loops, strings.Join(strings.Fields(l), " "))
			}
		}
		want := []string{"pace speed 1x, loop for 24h", "pace speed 1x, loop for 24h"}
		want[i] = "pace speed 1x, loop for 1h"
		if !reflect.DeepEqual(loops, want) {
			t.Errorf("run --dry-run %s: paces %q, want %q\n%s", strings.Join(args, " "), loops, want, r)
		}
	}
}

// TestImportGorAllowPathsHintPastes: the --allow-paths an --output-file
// outside the scenario's directory needs is printed so that, pasted after
// 'replayctl validate FILE' from any directory, with the scenario written
// into any other, it is what the scenario needs: a relative gor path
// (from gor's working directory) was hinted as --allow-paths .., which
// the flag reads from the working directory, not the scenario's.
func TestImportGorAllowPathsHintPastes(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh (a test whose tool is missing fails):", err)
	}
	root := t.TempDir()
	gorWD := filepath.Join(root, "gor work", "run")
	runWD := filepath.Join(root, "elsewhere")
	for _, d := range []string{gorWD, runWD} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, out := range []string{"../my out/requests.gor", "../../requests.gor", filepath.Join(root, "abs out", "requests.gor")} {
		imp := exec.Command(binary, "import", "gor", "--", "--input-file", filepath.Join(root, "in.gor"), "--output-file", out)
		imp.Dir = gorWD
		var stdout, stderr strings.Builder
		imp.Stdout, imp.Stderr = &stdout, &stderr
		if err := imp.Run(); err != nil {
			t.Fatalf("import gor --output-file %s: %v\n%s", out, err, stderr.String())
		}
		scen := write(t, filepath.Join(root, fmt.Sprintf("scenarios %d", i)), "s.yaml", stdout.String())
		var hint string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if _, h, ok := strings.Cut(l, "run the scenario with "); ok {
				hint, _, _ = strings.Cut(h, ", or write the file beside it")
			}
		}
		if !strings.HasPrefix(hint, "--allow-paths ") {
			t.Fatalf("--output-file %s: no --allow-paths hint:\n%s", out, stderr.String())
		}
		validate := func(extra string) (string, error) {
			c := exec.Command(sh, "-c", `"$0" validate "$1" `+extra, binary, scen)
			c.Dir = runWD
			b, err := c.CombinedOutput()
			return string(b), err
		}
		if b, err := validate(""); err == nil {
			t.Fatalf("--output-file %s: the scenario validates without --allow-paths:\n%s", out, b)
		}
		if b, err := validate(hint); err != nil {
			t.Errorf("--output-file %s: validate FILE %s (from another directory): %v\n%s", out, hint, err, b)
		}
		// the file is the one gor wrote, from its working directory
		want := out
		if !filepath.IsAbs(out) {
			want = filepath.Join(gorWD, out)
		}
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--output-file %s: the scenario does not write %s:\n%s", out, want, stdout.String())
		}
	}
}

// TestImportGorRelativePaths: gor reads a relative --input-file (and
// writes a relative --output-file) from its working directory; a scenario
// resolves its paths from its own. Imported where gor ran and saved
// elsewhere, with -o FILE or by redirecting stdout into FILE, the
// scenario names the same files from FILE's directory: validated and run
// from a third directory, it replays the file gor would have read, and
// writes where gor would have written. Printed to a pipe, where the
// scenario goes is not known: a warning says where to save it.
func TestImportGorRelativePaths(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh (a test whose tool is missing fails):", err)
	}
	root := t.TempDir()
	gorWD, runWD := filepath.Join(root, "gor run"), filepath.Join(root, "elsewhere")
	for _, d := range []string{gorWD, runWD, filepath.Join(gorWD, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeGoReplayFile(t, filepath.Join(gorWD, "requests.gor"), []gorRequest{{"GET", "/a", nil, ""}, {"POST", "/b", nil, "x=1"}})
	command := func(dir string, args ...string) (string, string, error) {
		c := exec.Command(args[0], args[1:]...)
		c.Dir = dir
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		return stdout.String(), stderr.String(), err
	}
	tests := []struct {
		name, scenario string
		importCmd      func(url string) []string
		gorOut         string // the --output-file gor wrote, from gorWD ("" for none)
	}{
		{"-o into another directory", filepath.Join(root, "scenarios", "a.yaml"), func(url string) []string {
			return []string{binary, "import", "gor", "-o", "../scenarios/a.yaml", "--", "--input-file", "requests.gor|400%", "--output-http", url}
		}, ""},
		{"redirected into another directory", filepath.Join(root, "scenarios", "b.yaml"), func(url string) []string {
			return []string{sh, "-c", `"$0" import gor -- --input-file 'requests.gor|400%' --output-http "$1" > ../scenarios/b.yaml`, binary, url}
		}, ""},
		{"--output=FILE beside gor's files, writing one", filepath.Join(gorWD, "c.yaml"), func(url string) []string {
			return []string{binary, "import", "gor", "--output=c.yaml", "--", "--input-file", "requests.gor|400%", "--output-http", url, "--output-file", "out/copy.gor"}
		}, "out/copy.gor"},
	}
	if err := os.MkdirAll(filepath.Join(root, "scenarios"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		rc, url := newRecorder(t)
		stdout, stderr, err := command(gorWD, tt.importCmd(url)...)
		if err != nil {
			t.Fatalf("%s: import: %v\n%s", tt.name, err, stderr)
		}
		if stdout != "" {
			t.Errorf("%s: import wrote to stdout too:\n%s", tt.name, stdout)
		}
		if strings.Contains(stderr, "working directory") {
			t.Errorf("%s: import warns of gor's working directory, knowing where the scenario goes:\n%s", tt.name, stderr)
		}
		for _, args := range [][]string{{binary, "validate", tt.scenario}, {binary, "run", tt.scenario}} {
			if out, errOut, err := command(runWD, args...); err != nil {
				scen, _ := os.ReadFile(tt.scenario)
				t.Fatalf("%s: %s: %v\n%s%s\nscenario:\n%s", tt.name, args[1], err, out, errOut, scen)
			}
		}
		rc.mu.Lock()
		got := slices.Clone(rc.got)
		rc.mu.Unlock()
		if want := []string{"GET /a", "POST /b"}; !slices.Equal(got, want) {
			t.Errorf("%s: the target saw %q, want %q", tt.name, got, want)
		}
		if tt.gorOut != "" {
			if b, err := os.ReadFile(filepath.Join(gorWD, tt.gorOut)); err != nil || !strings.Contains(string(b), "POST /b") {
				t.Errorf("%s: %s, where gor writes, holds %q (%v)", tt.name, tt.gorOut, b, err)
			}
		}
	}

	// To a pipe: the path stays as gor gave it, and a warning says where
	// to save the scenario.
	_, stderr, err := command(gorWD, binary, "import", "gor", "--", "--input-file", "requests.gor", "--output-http", "http://127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	if want := "save the scenario in " + gorWD; !strings.Contains(stderr, want) {
		t.Errorf("import to a pipe does not warn %q:\n%s", want, stderr)
	}
	// Its own flags come before "--"; a mistake there is a usage error,
	// before any conversion.
	gor := []string{"--input-file", "r.gor", "--output-stdout"}
	for _, c := range []struct {
		own  []string
		want string
	}{
		{[]string{"-x", "--"}, `unknown flag "-x" before "--"`},
		{[]string{"-o", "x.yaml"}, `-o is import gor's own flag: put -- between it and gor's flags`},
		{[]string{"--output=x.yaml"}, `--output is import gor's own flag: put -- between it and gor's flags`},
		{[]string{"-o", "a.yaml", "-o", "b.yaml", "--"}, "-o given twice"},
		{[]string{"-o", root, "--"}, "is a directory: name the scenario's file"},
		{[]string{"-o", filepath.Join(root, "missing", "x.yaml"), "--"}, "does not exist"},
		{[]string{"-o", "--"}, "-o needs a file"},
	} {
		_, stderr, err := command(gorWD, append(append([]string{binary, "import", "gor"}, c.own...), gor...)...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != ExitInvalid || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "warning:") {
			t.Errorf("import gor %s: %v, want exit %d and %q alone:\n%s", strings.Join(c.own, " "), err, ExitInvalid, c.want, stderr)
		}
	}
}

// TestImportGorOutputPath: gor 1.x sends every request to the path and
// query of an --output-http URL that has them (its http client replaces
// each request's URL). Imported, run against a real server, the requests
// arrive there, methods and bodies as recorded; validate says nothing of
// the target's URL (the path became rewrite steps).
func TestImportGorOutputPath(t *testing.T) {
	dir := t.TempDir()
	writeGoReplayFile(t, filepath.Join(dir, "requests.gor"), []gorRequest{{"GET", "/users?id=7", nil, ""}, {"POST", "/api/upload", nil, "x=1"}})
	rc, url := newRecorder(t)
	imp := mustRun(t, ExitOK, "import", "gor", "--", "--input-file", "requests.gor|400%", "--output-http", url+"/shadow?from=gor")
	if !strings.Contains(imp.stderr, "gor 1.x sends every request to /shadow?from=gor") {
		t.Errorf("import does not say where gor sends the requests:\n%s", imp.stderr)
	}
	scen := write(t, dir, "imported.yaml", imp.stdout)
	if v := mustRun(t, ExitOK, "validate", scen); strings.Contains(v.stderr+v.stdout, "warning") {
		t.Errorf("validate warns:\n%s%s", v.stdout, v.stderr)
	}
	mustRun(t, ExitOK, "run", scen)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if want := []string{"GET /shadow?from=gor", "POST /shadow?from=gor"}; !slices.Equal(rc.got, want) {
		t.Errorf("target saw %q, want %q\n%s", rc.got, want, imp.stdout)
	}
	if b := rc.body["POST /shadow?from=gor"]; b != "x=1" {
		t.Errorf("POST body %q, want x=1", b)
	}
}
