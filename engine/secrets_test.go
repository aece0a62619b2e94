package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/gorsink"
)

// defaultNameTraffic writes a .gor file whose secrets are only in places the
// default names cover (a query parameter, a form field, JSON members, a
// chunked trailer) and returns the path and the secrets.
func defaultNameTraffic(t *testing.T, dir string) (string, []string) {
	t.Helper()
	secrets := []string{"qtoken-AAAA", "formpw-BBBB", "jsonrt-CCCC", "jsonsig-DDDD", "trailer-EEEE", "apikey-FFFF"}
	form := "user=bob&passwd=formpw-BBBB"
	js := `{"grant":"refresh","Refresh_Token":"jsonrt-CCCC","meta":[{"signature":"jsonsig-DDDD"}]}`
	reqs := []string{
		"GET /account?access_token=qtoken-AAAA&page=2&Api-Key=apikey-FFFF HTTP/1.1\r\nHost: shop.local\r\n\r\n",
		"POST /login HTTP/1.1\r\nHost: shop.local\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + fmt.Sprint(len(form)) + "\r\n\r\n" + form,
		"POST /oauth HTTP/1.1\r\nHost: shop.local\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(js)) + "\r\n\r\n" + js,
		"POST /upload HTTP/1.1\r\nHost: shop.local\r\nTransfer-Encoding: chunked\r\nTrailer: Authorization\r\n\r\n3\r\nabc\r\n0\r\nAuthorization: Bearer trailer-EEEE\r\n\r\n",
	}
	path := filepath.Join(dir, "defaults.gor")
	s, err := gorsink.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		id := fmt.Sprintf("d%d", i)
		t0 := int64(1_700_000_000_000_000_000 + i*1_000_000)
		for _, m := range []*message.Message{
			{Kind: message.Request, ID: id, Time: t0, Raw: []byte(r)},
			{Kind: message.Response, ID: id, Time: t0 + 500_000, Latency: 500_000, Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")},
		} {
			if err := s.Write(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path, secrets
}

// TestDefaultRedactionNeverReachesKafka records, with no redact: block, a
// query-string token, a form password, JSON members and a trailer, dumps the
// topic with kcat (embedded broker and real Kafka) and finds none of them;
// with redact: {defaults: false} all of them are there, so the dump does
// show what was recorded.
func TestDefaultRedactionNeverReachesKafka(t *testing.T) {
	kcat := kafkatest.RequireTool(t, "kcat")
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			dir := t.TempDir()
			gorPath, secrets := defaultNameTraffic(t, dir)
			topic := kafkatest.UniqueTopic(t)
			for _, defaults := range []bool{true, false} {
				redact := ""
				if !defaults {
					redact = "    redact: {defaults: false}\n"
				}
				name := fmt.Sprintf("%s-%v", topic, defaults)
				yaml := fmt.Sprintf(`version: 1
name: default-names
kafka: {brokers: [%s], catalog-topic: %s.windows}
topics:
  traffic: {name: %s, partitions: 1, create: true}
jobs:
  record:
    source: {gor: {path: %s}}
%s    sink: {kafka: {topic: traffic}}
    save-window: w-%v
`, strings.Join(target.Addrs, ","), topic, name, gorPath, redact, defaults)
				if out, err := sfRun(t, dir, yaml, engine.Options{}); err != nil {
					t.Fatalf("defaults %v: run: %v\n%s", defaults, err, out)
				}
				dump, err := exec.Command(kcat, "-C", "-b", target.Addrs[0], "-t", name, "-o", "beginning", "-e", "-q", "-f", "%s\n").CombinedOutput()
				if err != nil {
					t.Fatalf("kcat: %v\n%s", err, dump)
				}
				if n := bytes.Count(dump, []byte("HTTP/1.1")); n != 8 {
					t.Fatalf("kcat read %d HTTP messages, want 8:\n%s", n, dump)
				}
				for _, secret := range secrets {
					if found := bytes.Contains(dump, []byte(secret)); found == defaults {
						t.Errorf("defaults %v: secret %q found in the topic: %v\n%s", defaults, secret, found, dump)
					}
				}
				if defaults && !bytes.Contains(dump, []byte("GET /account?access_token=REDACTED&page=2&Api-Key=REDACTED HTTP/1.1")) {
					t.Errorf("request line not redacted in place:\n%s", dump)
				}
			}
		})
	}
}

// TestUnredactableWarningHidesBytes: a message that cannot be parsed cannot
// be redacted, is not recorded, and the warning about it shows none of its
// bytes.
func TestUnredactableWarningHidesBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.gor")
	s, err := gorsink.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range []string{
		"GET /?token=S3CRET-1 HTTP/1.1\r\nAuthorization: Bearer S3CRET-2\r\nbroken S3CRET-3\r\n\r\n",
		"POST /login?token=S3CRET-4 HTTP/1.1\r\nContent-Length: S3CRET-5\r\n\r\n",
		"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		if err := s.Write(context.Background(), &message.Message{Kind: message.Request, ID: fmt.Sprint(i), Time: int64(i + 1), Raw: []byte(raw)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`version: 1
name: unredactable
jobs:
  copy:
    source: {gor: {path: %s}}
    sink: {gor: {path: out.gor}}
    on-loss: warn   # the two unparsable messages are losses (unredactable)
`, path)
	var logs syncBuffer
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	res := run(t, dir, yaml, opts)
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	text := logs.String() + res.out
	if !strings.Contains(res.out, "unredactable 2") {
		t.Errorf("summary does not count the 2 unredactable messages as lost:\n%s", res.out)
	}
	if strings.Count(logs.String(), "cannot be redacted") != 2 || strings.Contains(text, "S3CRET") {
		t.Fatalf("warnings (want 2, without message bytes):\n%s", text)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out.gor"))
	if err != nil || bytes.Contains(out, []byte("S3CRET")) || !bytes.Contains(out, []byte("GET /ok")) {
		t.Fatalf("out.gor: %v\n%s", err, out)
	}
}

// TestCaptureHostGuardAliases: the capture-host guard is not bypassed by
// another name for this host: a pcap captured to 127.0.0.1:P is not replayed
// to 0.0.0.0:P (which reaches the same server), 127.0.0.2:P, [::1]:P or
// localhost:P, and a .gor file whose requests say Host: localhost:P is
// not replayed to 127.0.0.1:P. Nothing reaches the server.
func TestCaptureHostGuardAliases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tg := newTarget(t)
	server := netip.MustParseAddrPort(tg.Addr())
	writePcap(t, filepath.Join(dir, "cap.pcap"), server, evenly(3, 5*time.Millisecond))
	port := server.Port()
	writeGor(t, dir, "local.gor", []req{{0, fmt.Sprintf("GET /x HTTP/1.1\r\nHost: localhost:%d\r\n\r\n", port)}})
	for _, tc := range []struct{ source, url string }{
		{"{pcap: {path: cap.pcap, ports: [%[1]d]}}", "http://0.0.0.0:%[1]d"},
		{"{pcap: {path: cap.pcap, ports: [%[1]d]}}", "http://127.0.0.2:%[1]d"},
		{"{pcap: {path: cap.pcap, ports: [%[1]d]}}", "http://[::1]:%[1]d"},
		{"{pcap: {path: cap.pcap, ports: [%[1]d]}}", "http://localhost:%[1]d"},
		{"{gor: {path: local.gor}}", "http://127.0.0.1:%[1]d"},
	} {
		src := strings.ReplaceAll(tc.source, "%[1]d", fmt.Sprint(port))
		url := fmt.Sprintf(tc.url, port)
		t.Run(url+" "+src, func(t *testing.T) {
			yaml := fmt.Sprintf(`version: 1
name: alias
targets:
  app: {url: %q}
jobs:
  replay:
    source: %s
    speed: max
    sink: {http: {target: app}}
    assert: ['errors.rate == 0']
`, url, src)
			res := run(t, dir, yaml, engine.Options{})
			if !errors.Is(res.err, engine.ErrInvalid) || !strings.Contains(res.err.Error(), "allow-capture-hosts") {
				t.Fatalf("err = %v, want ErrInvalid naming allow-capture-hosts\n%s", res.err, res.out)
			}
			// The refusal is told as it is, and the figures of a job that
			// did not run get no verdict.
			if !strings.HasPrefix(res.err.Error(), `job replay: target "app" reaches`) {
				t.Errorf("err = %v, want the guard's refusal first", res.err)
			}
			if !strings.Contains(res.out, "--   errors.rate == 0  (not evaluated: the job failed)") {
				t.Errorf("a refused job's assertions were evaluated:\n%s", res.out)
			}
		})
	}
	if n := tg.count(); n != 0 {
		t.Fatalf("the server received %d requests", n)
	}
	// The same replay with allow-capture-hosts reaches it through 0.0.0.0.
	yaml := fmt.Sprintf(`version: 1
name: alias
targets:
  app: {url: "http://0.0.0.0:%d"}
safety: {allow-capture-hosts: true}
jobs:
  replay:
    source: {pcap: {path: cap.pcap, ports: [%d]}}
    speed: max
    sink: {http: {target: app}}
`, port, port)
	if res := run(t, dir, yaml, engine.Options{}); res.err != nil {
		t.Fatalf("allowed: %v\n%s", res.err, res.out)
	}
	if n := tg.count(); n != 3 {
		t.Fatalf("allowed: the server received %d requests, want 3", n)
	}
}

// TestTargetPasswordNotShown: a password in a target URL is not printed by
// the plan, the summary or the HTML report.
func TestTargetPasswordNotShown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(2, time.Millisecond))
	tg := newTarget(t)
	u := strings.Replace(tg.URL(), "http://", "http://user:S3CRETPW@", 1)
	yaml := fmt.Sprintf(`version: 1
name: pw
targets:
  app: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {target: app}}
    report: {html: r.html}
  inline:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {url: %q}}
`, u, u)
	var plan bytes.Buffer
	compile(t, dir, yaml, &engine.Options{}).Describe(&plan)
	res := run(t, dir, yaml, engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	html, err := os.ReadFile(filepath.Join(dir, "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"plan": plan.String(), "summary": res.out, "html": string(html)} {
		if strings.Contains(text, "S3CRETPW") {
			t.Errorf("%s shows the password:\n%s", what, text)
		}
	}
	if !strings.Contains(plan.String(), "user:xxxxx@") {
		t.Errorf("plan does not show the redacted URL:\n%s", plan.String())
	}
}

// TestPlanMasksCredentials: the plan (--dry-run) shows the credentials a
// scenario writes masked: rewrites that set a secret header, query parameter
// or JSON member, and target URLs' passwords and secret query parameters.
func TestPlanMasksCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, rewrite, url, want string
	}{
		{"bearer header", `{set-header: {name: Authorization, value: '"Bearer S3CRETTOKEN"'}}`, "", `set-header Authorization = "Bearer xxxxx"`},
		{"proxy header", `{set-header: {name: Proxy-Authorization, value: '"Basic S3CRET"'}}`, "", `set-header Proxy-Authorization = "Basic xxxxx"`},
		{"cookie", `{set-header: {name: Cookie, value: '"sid=S3CRET"'}}`, "", `set-header Cookie = "xxxxx"`},
		{"token-named header", `{set-header: {name: X-Upstream-Token, value: "'S3CRET'"}}`, "", `set-header X-Upstream-Token = 'xxxxx'`},
		{"env name kept", `{set-header: {name: X-Api-Key, value: 'env("API_KEY")'}}`, "", `set-header X-Api-Key = env("API_KEY")`},
		{"query", `{set-query: {name: access_token, value: '"S3CRET"'}}`, "", `set-query access_token = "xxxxx"`},
		{"json", `{set-json: {path: $.password, value: '"S3CRET"'}}`, "", `set-json $.password = "xxxxx"`},
		{"plain header shown", `{set-header: {name: X-Tenant, value: '"acme"'}}`, "", `set-header X-Tenant = "acme"`},
		{"if on a secret header", `{set-header: {name: X-Who, value: '"admin"'}, if: 'req.header("Authorization") == "Bearer S3CRET"'}`, "", `if req.header("Authorization") == "Bearer xxxxx"`},
		{"pwd-named json", `{set-json: {path: $.db_pwd, value: '"S3CRET"'}}`, "", `set-json $.db_pwd = "xxxxx"`},
		{"target url", "", "http://admin:S3CRETPW@127.0.0.1:9001/?api_key=S3CRETQ&v=2", "http t http://admin:xxxxx@127.0.0.1:9001/?api_key=xxxxx&v=2,"},
		{"inline url", "", "inline:http://127.0.0.1:9001/?sig=S3CRET", "http http://127.0.0.1:9001/?sig=xxxxx http://127.0.0.1:9001/?sig=xxxxx,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			target := "http://127.0.0.1:9001"
			sink := "{http: {target: t}}"
			if u, ok := strings.CutPrefix(tt.url, "inline:"); ok {
				sink = fmt.Sprintf("{http: {url: %q}}", u)
			} else if tt.url != "" {
				target = tt.url
			}
			rewrite := "[]"
			if tt.rewrite != "" {
				rewrite = "[" + tt.rewrite + "]"
			}
			yaml := fmt.Sprintf(`version: 1
name: creds
targets:
  t: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    rewrite: %s
    sink: %s
`, target, rewrite, sink)
			var plan bytes.Buffer
			compile(t, dir, yaml, &engine.Options{}).Describe(&plan)
			if strings.Contains(plan.String(), "S3CRET") {
				t.Errorf("the plan shows a secret:\n%s", plan.String())
			}
			if !strings.Contains(plan.String(), tt.want) {
				t.Errorf("the plan lacks %q:\n%s", tt.want, plan.String())
			}
		})
	}
}

// TestPlanHidesSecretVariables: a value a ${VAR} with a secret's name put
// into an expression (a rewrite's value, a filter, an if) is shown in the
// plan as written, never as its value, whatever the header's name; a
// variable of another name is shown resolved.
func TestPlanHidesSecretVariables(t *testing.T) {
	t.Parallel()
	env := map[string]string{"API_TOKEN": "S3CRETVAR", "TENANT": "acme-tenant"}
	dir := t.TempDir()
	yaml := `version: 1
name: creds
targets:
  t: {url: "http://127.0.0.1:9001"}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    filter: 'req.query != "k=${API_TOKEN}"'
    rewrite:
      - set-header: {name: X-Api, value: '"${API_TOKEN}"'}
      - {set-header: {name: X-Tenant, value: '"${TENANT}"'}, if: 'req.path != "/${API_TOKEN}"'}
    sink: {http: {target: t}}
    assert: ['requests.sent >= len("${API_TOKEN}")']
`
	s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := engine.Compile(s, engine.Options{DataDir: filepath.Join(dir, "data"), Out: io.Discard, Err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	plan.Describe(&out)
	if strings.Contains(out.String(), "S3CRETVAR") {
		t.Errorf("the plan shows a secret variable's value:\n%s", out.String())
	}
	for _, want := range []string{
		`filter    req.query != "k=${API_TOKEN}"`,
		`set-header X-Api = "${API_TOKEN}"`,
		`set-header X-Tenant = "acme-tenant" if req.path != "/${API_TOKEN}"`,
		`assert    requests.sent >= len("${API_TOKEN}")`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the plan lacks %q:\n%s", want, out.String())
		}
	}
}
