package engine_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/sample"
)

func post(path, body string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: shop.example\r\n", path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func TestFilterDropsBeforeTheTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var reqs []req
	for i := range 12 {
		r := get(fmt.Sprintf("/item/%d", i))
		if i%3 == 0 {
			r = post(fmt.Sprintf("/item/%d", i), `{"n":1}`)
		}
		reqs = append(reqs, req{at: time.Duration(i) * time.Millisecond, raw: r})
	}
	writeGor(t, dir, "rec.gor", reqs)
	tg := newTarget(t)
	res := run(t, dir, replayYAML(tg.URL(), "speed: max\nfilter: 'req.method != \"POST\"'"), engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	got := tg.requests()
	if len(got) != 8 {
		t.Errorf("target counted %d requests, want the 8 GETs", len(got))
	}
	for _, g := range got {
		if g.Method == "POST" {
			t.Errorf("target received a filtered request: %s %s", g.Method, g.Path)
		}
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if n := number(t, rep, "counters", "filtered"); n != 4 {
		t.Errorf("counters.filtered = %v, want 4", n)
	}
	if n := number(t, rep, "requests", "sent"); n != 8 {
		t.Errorf("requests.sent = %v, want 8", n)
	}
}

func TestSampleKeepsWholeUsersConsistently(t *testing.T) {
	t.Parallel()
	const users, each = 20, 3
	dir := t.TempDir()
	var reqs []req
	for k := range each {
		for u := range users {
			reqs = append(reqs, req{at: time.Duration(k*users+u) * time.Millisecond, raw: get(fmt.Sprintf("/u/%d/%d", u, k), fmt.Sprintf("X-User: user-%d", u))})
		}
	}
	writeGor(t, dir, "rec.gor", reqs)
	var want []string
	for u := range users {
		if name := fmt.Sprintf("user-%d", u); sample.Keep(name, 50) {
			want = append(want, name)
		}
	}
	if len(want) == 0 || len(want) == users {
		t.Fatalf("the fixture keeps %d of %d users; pick other names", len(want), users)
	}
	var kept [2][]string
	for i := range kept {
		tg := newTarget(t)
		res := run(t, dir, replayYAML(tg.URL(), "speed: max\nsample: {percent: 50, by: 'req.header(\"X-User\")'}"), engine.Options{})
		if res.err != nil {
			t.Fatalf("run %d: %v\n%s", i, res.err, res.out)
		}
		per := map[string]int{}
		for _, g := range tg.requests() {
			per[g.Header.Get("X-User")]++
		}
		for u, n := range per {
			if n != each {
				t.Errorf("run %d: %s kept %d of %d requests; a user is kept whole or not at all", i, u, n, each)
			}
			kept[i] = append(kept[i], u)
		}
		slices.Sort(kept[i])
	}
	slices.Sort(want)
	if !reflect.DeepEqual(kept[0], want) || !reflect.DeepEqual(kept[1], want) {
		t.Errorf("kept users: run 1 %v, run 2 %v, want %v in both", kept[0], kept[1], want)
	}
}

// TestSampleWithoutConnections: a .gor file names no connection, so a
// sample without a key samples each request by its ID: about the share
// asked, the same one each run. It kept all of them or none (every
// request hashed the empty connection ID), as `import gor` maps
// --output-http "URL|50%". A key of nil keeps the request unsampled (gor's
// header limiter passes the requests without the header).
func TestSampleWithoutConnections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var reqs []req
	for i := range 200 {
		hdr := []string{fmt.Sprintf("X-User: user-%d", i%10)}
		if i%4 == 0 {
			hdr = nil
		}
		reqs = append(reqs, req{at: time.Duration(i) * time.Millisecond, raw: get(fmt.Sprintf("/r/%d", i), hdr...)})
	}
	writeGor(t, dir, "rec.gor", reqs)
	var first []string
	for i := range 2 {
		tg := newTarget(t)
		res := run(t, dir, replayYAML(tg.URL(), "speed: max\nsample: {percent: 30}"), engine.Options{})
		if res.err != nil {
			t.Fatalf("run %d: %v\n%s", i, res.err, res.out)
		}
		var paths []string
		for _, g := range tg.requests() {
			paths = append(paths, g.Path)
		}
		slices.Sort(paths)
		if n := len(paths); n < 40 || n > 80 {
			t.Errorf("run %d: a 30%% sample of 200 requests sent %d", i, n)
		}
		if i == 0 {
			first = paths
		} else if !slices.Equal(first, paths) {
			t.Errorf("two runs kept different requests: %d and %d", len(first), len(paths))
		}
	}

	// A key of "" (req.header of a header the request lacks) is no key
	// either: it put all such requests in one bucket, kept or dropped
	// together.
	for _, by := range []string{`req.header("X-User") != "" ? req.header("X-User") : nil`, `req.header("X-User")`} {
		sampledBy(t, dir, by)
	}
}

// sampledBy replays TestSampleWithoutConnections's file with a 1% sample
// by key: every request without the X-User header is sent, and those of
// the users sample.Keep keeps.
func sampledBy(t *testing.T, dir, by string) {
	t.Helper()
	tg := newTarget(t)
	res := run(t, dir, replayYAML(tg.URL(), "speed: max\nsample: {percent: 1, by: '"+by+"'}"), engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	without, with := 0, map[string]int{}
	for _, g := range tg.requests() {
		if u := g.Header.Get("X-User"); u == "" {
			without++
		} else {
			with[u]++
		}
	}
	kept := 0
	for u := range 10 {
		if sample.Keep(fmt.Sprintf("user-%d", u), 1) {
			kept++
		}
	}
	if without != 50 || len(with) != kept {
		t.Errorf("by %s: sent %d requests without the key (want all 50) and %d users' (want %d, as sample.Keep says)", by, without, len(with), kept)
	}
}

func TestEveryRewriteReachesTheTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", []req{
		{0, post("/api/users?debug=0&keep=1", `{"user":{"id":1,"name":"x"},"secret":"s"}`, "X-Remove: yes")},
		{time.Millisecond, get("/health")},
		{2 * time.Millisecond, get("/other?a=b", "X-Remove: yes")},
	})
	tg := newTarget(t)
	extra := `speed: max
rewrite:
  - set-header: {name: X-Replay, value: '"1"'}
  - remove-header: X-Remove
  - set-method: '"PUT"'
    if: 'req.method == "POST"'
  - set-path: '"/v2" + req.path'
    if: 'req.path startsWith "/api"'
  - set-query: {name: debug, value: '"1"'}
  - remove-query: keep
  - set-host: '"staging.example"'
  - set-json: {path: "$.user.id", value: '42'}
    if: 'req.json != nil'
  - remove-json: "$.secret"
    if: 'req.json != nil'
  - drop: 'true'
    if: 'req.path == "/health"'
sink: {http: {target: app, workers: 1, preserve-host: true}}`
	res := run(t, dir, replayYAML(tg.URL(), extra), engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	got := tg.requests()
	if len(got) != 2 {
		t.Fatalf("target counted %d requests, want 2 (/health dropped)", len(got))
	}
	slices.SortFunc(got, func(a, b received) int { return strings.Compare(a.Method, b.Method) })
	g, p := got[0], got[1] // GET /other, PUT /v2/api/users
	for _, r := range got {
		if r.Header.Get("X-Replay") != "1" {
			t.Errorf("%s %s: X-Replay = %q, want 1", r.Method, r.Path, r.Header.Get("X-Replay"))
		}
		if _, ok := r.Header["X-Remove"]; ok {
			t.Errorf("%s %s: X-Remove still present", r.Method, r.Path)
		}
		if host := hostLine(r.Raw); host != "staging.example" {
			t.Errorf("%s %s: Host = %q, want staging.example", r.Method, r.Path, host)
		}
	}
	if g.Method != "GET" {
		t.Errorf("GET became %s", g.Method)
	}
	u, _ := url.Parse(g.Path)
	if u.Path != "/other" || u.Query().Get("debug") != "1" || u.Query().Get("a") != "b" {
		t.Errorf("GET target = %s, want /other with a=b and debug=1", g.Path)
	}
	if p.Method != "PUT" {
		t.Errorf("POST became %s, want PUT", p.Method)
	}
	u, _ = url.Parse(p.Path)
	if u.Path != "/v2/api/users" || u.Query().Get("debug") != "1" || u.Query().Has("keep") {
		t.Errorf("PUT target = %s, want /v2/api/users?debug=1 without keep", p.Path)
	}
	var body map[string]any
	if err := json.Unmarshal(p.Body, &body); err != nil {
		t.Fatalf("PUT body %q: %v", p.Body, err)
	}
	want := map[string]any{"user": map[string]any{"id": 42.0, "name": "x"}}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("PUT body = %s, want {\"user\":{\"id\":42,\"name\":\"x\"}}", p.Body)
	}
	if cl := p.Header.Get("Content-Length"); cl != fmt.Sprint(len(p.Body)) {
		t.Errorf("Content-Length %s for a %d-byte body", cl, len(p.Body))
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if n := number(t, rep, "counters", "dropped"); n != 1 {
		t.Errorf("counters.dropped = %v, want 1", n)
	}
}

// hostLine returns the value of the first Host header in raw.
func hostLine(raw []byte) string {
	for _, l := range strings.Split(string(raw), "\r\n")[1:] {
		if l == "" {
			break
		}
		if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, "host") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
