package serve

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/shquote"
)

// TestOpenAPIMatchesRoutes checks openapi.json against the routes the
// server registers, both ways: every route is documented, every documented
// operation is served, with the same scope.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	documented := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			scope := ""
			for _, s := range op.Security {
				if sc := s["bearer"]; len(sc) > 0 {
					scope = sc[0]
				}
			}
			documented[strings.ToUpper(method)+" "+path] = scope
		}
	}
	served := map[string]string{}
	for _, r := range routes {
		served[r.method+" "+r.pattern] = r.scope
	}
	for k, scope := range served {
		d, ok := documented[k]
		if !ok {
			t.Errorf("route %s is not in openapi.json", k)
		} else if d != scope {
			t.Errorf("%s: openapi says scope %q, the server %q", k, d, scope)
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			t.Errorf("openapi.json documents %s, which the server does not serve", k)
		}
	}
	if len(served) != len(routes) {
		t.Errorf("duplicate routes")
	}
}

// TestStatesListed: every state the fleet reports (fleet.States) is what
// GET /v1/states answers, in order, with the final ones marked, and what
// openapi.json's State enum lists.
func TestStatesListed(t *testing.T) {
	var want []string
	for _, st := range fleet.States() {
		want = append(want, string(st))
	}
	rec := httptest.NewRecorder()
	(&Server{}).listStates(rec, httptest.NewRequest("GET", "/v1/states", nil), Token{})
	var got []StateView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET /v1/states: %d %s: %v", rec.Code, rec.Body, err)
	}
	var names []string
	for _, sv := range got {
		names = append(names, string(sv.State))
		if sv.Final != sv.State.Final() {
			t.Errorf("%s: final %v", sv.State, sv.Final)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("GET /v1/states lists %v, want %v", names, want)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if enum := doc.Components.Schemas["State"].Enum; !slices.Equal(enum, want) {
		t.Errorf("openapi.json's State enum is %v, want %v", enum, want)
	}
}

func TestScenarioDirContained(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "scenarios")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "team"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("version: 1\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "team", "b.yml"), []byte("version: 1\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret.yaml"), []byte("password: x\n"), 0o644))
	must(os.Symlink(filepath.Join(base, "secret.yaml"), filepath.Join(dir, "out.yaml")))
	must(os.Symlink("a.yaml", filepath.Join(dir, "in.yaml"))) // relative, inside
	must(os.Symlink(base, filepath.Join(dir, "up")))
	// A hidden directory (a checkout's .github, .git) is not listed: its
	// files are not scenarios to run either.
	must(os.MkdirAll(filepath.Join(dir, ".github", "workflows"), 0o755))
	must(os.WriteFile(filepath.Join(dir, ".github", "workflows", "ci.yml"), []byte("on: push\n"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "team", ".private"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "team", ".private", "c.yaml"), []byte("version: 1\n"), 0o644))
	d, err := openScenarioDir(dir)
	must(err)
	defer d.root.Close()
	files, err := d.list()
	must(err)
	if want := []string{"a.yaml", "in.yaml", "team/b.yml"}; !slices.Equal(files, want) {
		t.Errorf("list %v, want %v", files, want)
	}
	for _, name := range []string{"a.yaml", "team/b.yml", "in.yaml"} {
		if _, err := d.read(name); err != nil {
			t.Errorf("read %s: %v", name, err)
		}
	}
	for _, name := range []string{"../secret.yaml", "out.yaml", "up/secret.yaml", filepath.Join(base, "secret.yaml"), "team/../../secret.yaml", "notes.txt", "", "team", ".github/workflows/ci.yml", "team/.private/c.yaml", "./.github/workflows/ci.yml"} {
		if data, err := d.read(name); err == nil {
			t.Errorf("read %q: %q, want a refusal", name, data)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"--input-kafka-host 'k1:9092,k2:9092' --output-http http://x", []string{"--input-kafka-host", "k1:9092,k2:9092", "--output-http", "http://x"}, ""},
		{`gor --http-set-header "X-A: b c" --x=y`, []string{"--http-set-header", "X-A: b c", "--x=y"}, ""},
		{`/usr/bin/gor a\ b "q\"d"`, []string{"a b", `q"d`}, ""},
		{"a ; rm -rf /", nil, "no shell"},
		{"a $(id)", nil, "no shell"},
		{"a `id`", nil, "no shell"},
		{"a | b", nil, "no shell"},
		{"'open", nil, "unterminated"},
		{"", nil, ""},
		{"gor --input-file r.gor \\\n  --output-http http://x", []string{"--input-file", "r.gor", "--output-http", "http://x"}, ""},
		{"a\\\r\nb \"c\\\nd\" 'e\\\nf'", []string{"ab", "cd", "e\\\nf"}, ""},
	} {
		got, err := splitArgs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q %v, want %q", c.in, got, err, c.want)
		}
	}
}

func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"--a 'b c' \"d\\\"e\"", "gor x\\ y", "'", "a;b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := splitArgs(s)
		if err != nil {
			return
		}
		for _, a := range args {
			if strings.ContainsAny(a, "\x00") && !strings.Contains(s, "\x00") {
				t.Fatalf("%q: NUL from nowhere in %q", s, a)
			}
		}
		// The arguments, quoted for a shell, split back to themselves.
		if len(args) > 0 && (args[0] == "gor" || strings.HasSuffix(args[0], "/gor")) {
			return
		}
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = shquote.Quote(a)
		}
		if again, err := splitArgs(strings.Join(quoted, " \\\n ")); err != nil || !slices.Equal(again, args) {
			t.Fatalf("%q: %q, quoted and split again %q (%v)", s, args, again, err)
		}
	})
}

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	secret, err := AddToken(path, "alice", []string{ScopeReplay})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), secret) || !strings.Contains(string(data), HashToken(secret)) {
		t.Fatalf("the file must hold the hash only:\n%s", data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if _, err := AddToken(path, "alice", []string{ScopeRead}); err == nil {
		t.Error("a second alice was accepted")
	}
	if _, err := AddToken(path, "../x", []string{ScopeRead}); err == nil {
		t.Error("a bad name was accepted")
	}
	if _, err := ParseScopes([]string{"read,write"}); err == nil {
		t.Error("scope write accepted")
	}
	s := &tokenStore{path: path}
	tok, ok, err := s.lookup(secret)
	if err != nil || !ok || tok.Name != "alice" {
		t.Fatalf("lookup: %v %v %v", tok, ok, err)
	}
	for scope, want := range map[string]bool{ScopeRead: true, ScopeReplay: true, ScopeRecord: false, ScopeAdmin: false} {
		if tok.Has(scope) != want {
			t.Errorf("replay token Has(%s) = %v", scope, !want)
		}
	}
	if (Token{Scopes: []string{ScopeAdmin}}).Has(ScopeRecord) != true {
		t.Error("admin lacks record")
	}
	if _, ok, _ := s.lookup(secret + "x"); ok {
		t.Error("a wrong token was accepted")
	}
	// A removal is seen at once by a store that already read the file.
	if err := RemoveToken(path, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.lookup(secret); ok {
		t.Error("a removed token still works")
	}
}

// TestDescribeScenarioMasksSecrets: the scenarios API (and the page built
// on it) never shows a credential written in a scenario: a URL's password or
// token, or the default of a variable whose name says it is secret or whose
// value reads as a credential ("Bearer …").
func TestDescribeScenarioMasksSecrets(t *testing.T) {
	text := []byte(`version: 1
name: s
vars:
  API_TOKEN: ${API_TOKEN:-s3cret-default}
  UPSTREAM: http://admin:pw123@10.0.0.1/?api_key=k3y
  SPEED: "2"
  header_value: ${HEADER:-Bearer defHEADERval}
jobs:
  replay:
    source: {window: w}
    sink: {http: {url: "http://u:pw456@127.0.0.1:9/?token=t0k"}}
`)
	info := describeScenario(t.TempDir(), "s.yaml", text)
	out := fmt.Sprintf("%+v", info)
	for _, secret := range []string{"s3cret-default", "pw123", "k3y", "pw456", "t0k", "defHEADERval"} {
		if strings.Contains(out, secret) {
			t.Errorf("the description shows %q: %s", secret, out)
		}
	}
	for _, v := range info.Vars {
		if v.Name == "SPEED" && (v.Value != "2" || v.Default != "2") {
			t.Errorf("a plain variable is masked: %+v", v)
		}
		if v.Name == "API_TOKEN" && (v.Value != "${API_TOKEN:-xxxxx}" || v.Default != "xxxxx") {
			t.Errorf("API_TOKEN shown as %+v", v)
		}
	}
}

// TestShardTotalIsTheShards: the engine's progress total of a shard is
// already the shard's own (its restricted window's requests): the job page
// shows it as the agent reports it, marked an estimate, never scaled again
// by the shard's share (a 2-shard replay showed "0 / ≈32" beside "0/66").
func TestShardTotalIsTheShards(t *testing.T) {
	spec := &fleet.Spec{Kind: fleet.KindReplay, Replay: &fleet.ReplayPlan{Shards: []fleet.ShardPlan{{Index: 0, Records: 134}, {Index: 1, Records: 266}}}}
	for i, total := range []int64{66, 134} {
		shard := i
		p := progressOf(&fleet.Progress{Line: fmt.Sprintf("[%s] 0/%d  0 req/s  errors 0", strings.Repeat(" ", 24), total)})
		shardTotal(spec, &shard, p)
		if p.Done != 0 || p.Total != total || !p.Estimated {
			t.Errorf("shard %d: %+v, want 0 of ≈%d (the line's)", i, p, total)
		}
	}
	// A shard that sent more than the estimate keeps its figures.
	shard := 1
	p := &PartProgress{Done: 140, Total: 134}
	shardTotal(spec, &shard, p)
	if p.Done != 140 || p.Total != 134 {
		t.Errorf("past the estimate: %+v", p)
	}
	// Not a shard of a sharded replay: nothing is estimated.
	one := &fleet.Spec{Kind: fleet.KindReplay, Replay: &fleet.ReplayPlan{Shards: []fleet.ShardPlan{{Records: 400}}}}
	shard = 0
	p = &PartProgress{Done: 5, Total: 200}
	shardTotal(one, &shard, p)
	if p.Total != 200 || p.Estimated {
		t.Errorf("one shard: %+v", p)
	}
}

// TestJobViewMasksSecrets: a job's --set values are shown (set, command)
// with URL passwords and secret query values masked, and the whole value
// of a --set whose last path segment is a secret name; the spec keeps them.
func TestJobViewMasksSecrets(t *testing.T) {
	spec := &fleet.Spec{File: "replay.yaml", Job: "replay", Kind: fleet.KindReplay, Selector: fleet.Selector{"role": "load"}, Shards: 2,
		Set: []string{
			"vars.secret=VarSecretValue99",
			"targets.t.url=http://svc:TopSecretPW@127.0.0.1:19000",
			"kafka.sasl.password=SaslPw77",
			"jobs.replay.sink.http.headers.X-Api-Key=HeaderKey55",
			"vars.target=http://127.0.0.1:9/?api_key=QueryKey44&x=1",
			"kafka.sasl={mechanism: PLAIN, user: u, password: FlowPw33}",
			"vars.API_TOKEN=",
			"jobs.replay.rate=100/s",
			"vars.target=http://user@127.0.0.1:9/path",
		}}
	v := (&Server{}).view("j1", fleet.Status{Kind: fleet.KindReplay, State: fleet.Running}, &shownSpec{Spec: *spec}, false)
	shown := strings.Join(v.Set, "\n") + "\n" + v.Command
	for _, secret := range []string{"VarSecretValue99", "TopSecretPW", "SaslPw77", "HeaderKey55", "QueryKey44", "FlowPw33"} {
		if strings.Contains(shown, secret) {
			t.Errorf("the job view shows %q:\n%s", secret, shown)
		}
	}
	want := []string{
		"vars.secret=xxxxx",
		"targets.t.url=http://svc:xxxxx@127.0.0.1:19000",
		"kafka.sasl.password=xxxxx",
		"jobs.replay.sink.http.headers.X-Api-Key=xxxxx",
		"vars.target=http://127.0.0.1:9/?api_key=xxxxx&x=1",
		"kafka.sasl=xxxxx",
		"vars.API_TOKEN=",
		"jobs.replay.rate=100/s",
		"vars.target=http://user@127.0.0.1:9/path",
	}
	if !slices.Equal(v.Set, want) {
		t.Errorf("set:\n%q\nwant\n%q", v.Set, want)
	}
	if c := "replayctl jobs submit replay.yaml --job replay --on role=load --shards 2 --set vars.secret=xxxxx --set targets.t.url=http://svc:xxxxx@127.0.0.1:19000 --set kafka.sasl.password=xxxxx"; !strings.HasPrefix(v.Command, c) {
		t.Errorf("command %q\nwant it to start %q", v.Command, c)
	}
	if !strings.Contains(spec.Set[0], "VarSecretValue99") {
		t.Error("the spec lost its value (a rerun submits it again)")
	}
}

// TestMaskSetCredentials: --set values that carry a credential are masked
// in what the API shows, whatever the path's last segment says.
func TestMaskSetCredentials(t *testing.T) {
	for _, st := range []string{
		`jobs.replay.rewrite.0.set-header.value="Bearer abc123"`,
		`jobs.replay.rewrite.0.set-header.value='"Bearer abc123"'`,
		`jobs.replay.rewrite.0={set-header: {name: Authorization, value: '"Bearer abc123"'}}`,
		`jobs.replay.headers=["Authorization: Bearer abc123"]`,
		`vars.api_token=abc123`,
		`vars."sig"=abc123`,    // a quoted key (--set reads it as sig)
		`vars."db.sig"=abc123`, // a quoted key holding a dot
		`targets.t.url=http://u:abc123@h/`,
	} {
		if got := maskSet(st); strings.Contains(got, "abc123") {
			t.Errorf("maskSet(%s) = %s", st, got)
		}
	}
	for _, st := range []string{`jobs.replay.speed=2`, `vars.greeting=hello world`, `jobs.replay.rewrite.0.set-header.value="acme"`} {
		if got := maskSet(st); got != st {
			t.Errorf("maskSet(%s) = %s, want it as it is", st, got)
		}
	}
}

// TestGorID: gor/start and gor/stop name a compat job alike.
func TestGorID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nightly-42", "gor-nightly-42"},
		{"gor-nightly-42", "gor-nightly-42"},
		{"gor-", "gor-"},
		{"gor", "gor-gor"},
		{"GOR-x", "gor-GOR-x"},
	} {
		if got := gorID(c.in); got != c.want {
			t.Errorf("gorID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if id := gorID(""); !strings.HasPrefix(id, "gor-") || !jobIDRe.MatchString(id) || id == gorID("") {
		t.Errorf("a new compat job ID %q", id)
	}
}

// TestMaskSetsSecretHeaderValue: an override of a set-header's value whose
// header the scenario (or another override) names with a secret's name
// (X-Token) is masked whole, whatever the value looks like: it showed
// '"postSETliteral"'.
func TestMaskSetsSecretHeaderValue(t *testing.T) {
	text := "version: 1\nname: s\njobs:\n  replay:\n    source: {gor: {path: in.gor}}\n    rewrite:\n      - set-header: {name: X-Acme, value: '\"a\"'}\n      - set-header: {name: X-Token, value: '\"b\"'}\n    sink: {stdout: {}}\n"
	sets := []string{
		`jobs.replay.rewrite.1.set-header.value='"abc123"'`,
		`jobs.replay.rewrite.0.set-header.value='"plain"'`,
		`jobs.replay.rewrite.2.set-header.name=X-Api-Key`,
		`jobs.replay.rewrite.2.set-header.value='"def456"'`,
	}
	got := maskSets(text, sets)
	want := []string{
		`jobs.replay.rewrite.1.set-header.value=` + "xxxxx",
		`jobs.replay.rewrite.0.set-header.value='"plain"'`,
		`jobs.replay.rewrite.2.set-header.name=X-Api-Key`,
		`jobs.replay.rewrite.2.set-header.value=` + "xxxxx",
	}
	if !slices.Equal(got, want) {
		t.Errorf("maskSets = %q\nwant %q", got, want)
	}
}

// TestMaskSetsWholeStep: a set-header's name given by an override of the
// whole step, or of the rewrite list, masks the value another override
// sets (the review).
func TestMaskSetsWholeStep(t *testing.T) {
	text := "version: 1\nname: p\njobs:\n  replay:\n    rewrite:\n      - set-header: {name: X-Env, value: '\"prod\"'}\n"
	for _, set := range []string{
		`jobs.replay.rewrite.0.set-header={name: X-Token, value: '"s3cretvalue"'}`,
		`jobs.replay.rewrite=[{set-header: {name: X-Token, value: '"s3cretvalue"'}}]`,
		`jobs.replay.rewrite.0.set-header.name=X-Token`,
	} {
		if got := maskSets(text, []string{set, `jobs.replay.rewrite.0.set-header.value="s3cretvalue2"`}); strings.Contains(strings.Join(got, " "), "s3cretvalue") {
			t.Errorf("%q: shown as %q", set, got)
		}
	}
}
