package redact

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// agreeConfigs are the configurations both paths are compared under.
var agreeConfigs = []Config{
	{},
	{Defaults: true},
	{Headers: []string{"X-Secret", "content-length", "Transfer-Encoding"}},
	{Query: []string{"token", "key"}},
	{Form: []string{"password", "pw"}},
	{JSON: []string{"$.password", "$..card.number", "$.pw", "$.t", "$.token"}},
	{Patterns: []string{`\b\d{4}-\d{4}-\d{4}-\d{4}\b`, `secret=(\w+)`}},
	{Defaults: true, Query: []string{"token"}, Form: []string{"pw"}, JSON: []string{"$.pw"}, Patterns: []string{`\d{16}`}},
	{Defaults: true, Mode: "hash", Key: []byte("k"), Query: []string{"t"}, Form: []string{"pw"}},
	{Defaults: true, Mask: "REDACTED", JSON: []string{"$.token"}},
	{Defaults: true, Headers: []string{"X-Sig"}},
	{Defaults: true, Mode: "hash", Key: []byte("k")},
	{Defaults: true, Mask: `"\\`},
}

// agreeSeeds are hand-made inputs around every rule the scan mirrors.
var agreeSeeds = []string{
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n x: 1\r\nT: 2\r\n\r\n", // a continuation before any trailer
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\tx\r\n\r\n",
	"", "nope", "GET / HTTP/1.1", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\n\n",
	"GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "G@T / HTTP/1.1\r\n\r\n", "GET / HTTP/1\r\n\r\n",
	"GET / HTTP/1.1\r\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n", "GET /?token=a HTTP/1.1\r\n\r\n", "GET * HTTP/1.1\r\n\r\n",
	"CONNECT h:443 HTTP/1.1\r\n\r\n", "GET http://h/p?key=1 HTTP/1.1\r\n\r\n", "GET h?t=1 HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n  folded\r\n\r\n", "GET / HTTP/1.1\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\nAuthorization: Basic x\r\n continued\r\n\r\n",
	"GET / HTTP/1.1\r\nHost h\r\n\r\n", "GET / HTTP/1.1\r\n: v\r\n\r\n", "GET / HTTP/1.1\r\nA\x00: v\r\n\r\n",
	"GET / HTTP/1.1\r\nA: v\x00\r\n\r\n", "GET / HTTP/1.1\r\nA: v\rw\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n",
	"GET / HTTP/1.1\r\nauthorization:\r\n\r\n", "GET / HTTP/1.1\r\nAUTHORIZATION: REDACTED\r\n\r\n",
	"GET / HTTP/1.1\r\nCookie: a=REDACTED\r\n\r\n", "GET / HTTP/1.1\r\nX-Api-Key: k\r\n\r\n",
	"GET / HTTP/1.1\r\nX-Secret: s\r\n\r\n", "GET / HTTP/1.1\r\nX-Api-Key-2: k\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabc", "POST / HTTP/1.1\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: -0\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: 0003\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 00000000000000000000003\r\n\r\nabc", "POST / HTTP/1.1\r\nContent-Length: ,3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nabc", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked \r\n\r\n3;x=1 \r\nabc\n0\r\nT: v\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nx",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nbad\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
	"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\npw=abc",
	"POST / HTTP/1.1\r\nContent-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8\r\nContent-Length: 6\r\n\r\npw=abc",
	"POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\npw=abc",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"pw\":\"a\"}",
	"POST / HTTP/1.1\r\nContent-Type: application/problem+JSON\r\nContent-Length: 10\r\n\r\n{\"pw\":\"a\"}",
	"POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n{\"pw\":\"a\"}",
	"POST / HTTP/1.1\r\nContent-Type: ;;\r\nContent-Length: 10\r\n\r\n{\"pw\":\"a\"}",
	"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n \n{\"pw\":\"a\"",
	"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n[1,2]",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 24\r\n\r\ncard 1234-5678-9012-3456",
	"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nuntil close", "HTTP/1.1 200\r\n\r\n", "HTTP/1.1 200 \r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1 200 O\x00K\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\nx", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 199 X\r\n\r\nx", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nanything",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=b; Path=/\r\n\r\n", "HTTP/1.1 200 OK\r\nset-cookie: a=REDACTED\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}",
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n{\"token\":\"t\"}\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\nContent-Length: 2\n\nok",
	// Default names: query, form, JSON members, trailers.
	"GET /p?access_token=abc&x=1 HTTP/1.1\r\n\r\n", "GET /p?API-KEY=abc HTTP/1.1\r\n\r\n", "GET /p?%74oken=abc HTTP/1.1\r\n\r\n",
	"GET /p?token HTTP/1.1\r\n\r\n", "GET /p?token= HTTP/1.1\r\n\r\n", "GET /p?+token=1 HTTP/1.1\r\n\r\n", "GET /p#f?sig=1 HTTP/1.1\r\n\r\n",
	"GET http://h?password=1 HTTP/1.1\r\n\r\n", "GET h?password=1 HTTP/1.1\r\n\r\n", "GET a?b://h/?secret=1 HTTP/1.1\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 21\r\n\r\nuser=a&password=b%20c",
	"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\npassword=b",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{\"user\":{\"Password\":\"x\",\"n\":[1,{\"sig\":2}]}}",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n{\"credentials\":{\"a\":1},\"token\":null}",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{\"token\":\"abc\",\"x\"",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"secret\": 12, [}",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"secret\": {\"a\":",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"tok\\u0065n\":1",
	"POST / HTTP/1.1\r\nContent-Length: 15\r\n\r\n[{\"session\":\"\"}]",
	"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\n{ab",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nAuthorization: Bearer x\r\nX-Sig: s\r\n  folded\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nAuthorization: REDACTED\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n2\r\n{}\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nb\r\n{\"token\":1}\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + strings.Repeat(" ", 64) + "\r\n1\r\n{\r\n0\r\n\r\n",
}

// fixtureInputs returns the capture fixtures' byte streams and the messages
// cut out of them at each start line.
func fixtureInputs(t testing.TB) []string {
	files, err := filepath.Glob("../capture/testdata/*.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no capture fixtures under ../capture/testdata")
	}
	startLine := regexp.MustCompile(`(?m)^(?:HTTP/1\.[01] \d{3}|[A-Z]+ \S+ HTTP/1\.[01]\r?$)`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var conns []struct{ C2S, S2C []byte }
		if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			// The synthetic fixtures' goldens list the messages the
			// capture emits rather than the connections' streams.
			var golden struct{ Messages []struct{ Raw []byte } }
			if err := json.Unmarshal(b, &golden); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, m := range golden.Messages {
				out = append(out, string(m.Raw))
			}
			continue
		}
		if err := json.Unmarshal(b, &conns); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range conns {
			for _, s := range [][]byte{c.C2S, c.S2C} {
				out = append(out, string(s))
				locs := startLine.FindAllIndex(s, -1)
				for i, loc := range locs {
					end := len(s)
					if i+1 < len(locs) {
						end = locs[i+1][0]
					}
					out = append(out, string(s[loc[0]:end]))
				}
			}
		}
	}
	return out
}

// variants returns in plus mechanical changes of it: LF line endings, upper-
// and lower-cased bytes, and truncations.
func variants(in string) []string {
	out := []string{in, strings.ReplaceAll(in, "\r\n", "\n"), strings.ToUpper(in), strings.ToLower(in)}
	for i := 0; i < len(in); i += 1 + len(in)/16 {
		out = append(out, in[:i])
	}
	return out
}

// agree checks that Request and Response give what the full path gives.
func agree(t testing.TB, r *Redactor, cfg Config, raw []byte) {
	t.Helper()
	for _, kind := range []struct {
		name       string
		fast, full func([]byte) ([]byte, Counts, error)
	}{
		{"request", r.Request, r.request},
		{"response", r.Response, r.response},
	} {
		in := bytes.Clone(raw)
		fo, fc, ferr := kind.fast(in)
		so, sc, serr := kind.full(bytes.Clone(raw))
		if !bytes.Equal(fo, so) || fc != sc || (ferr == nil) != (serr == nil) ||
			(ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("%s %+v of %q:\nfast %q %+v %v\nfull %q %+v %v", kind.name, cfg, raw, fo, fc, ferr, so, sc, serr)
		}
		if r.clean(in, kind.name == "request") && len(in) > 0 && (len(fo) != len(in) || &fo[0] != &in[0]) {
			t.Fatalf("%s %q: fast path did not return the input slice", kind.name, raw)
		}
	}
}

func agreeInputs(t testing.TB) []string {
	var ins []string
	for _, s := range agreeSeeds {
		ins = append(ins, variants(s)...)
	}
	for _, s := range fixtureInputs(t) {
		ins = append(ins, variants(s)...)
	}
	for _, s := range []string{benchRequest, benchResponse, secretRequest, secretResponse} {
		ins = append(ins, variants(s)...)
	}
	// The inputs of the other tests of this package.
	ins = append(ins,
		req("/", "Authorization: Bearer abc\r\nX-Other: keep\r\n", ""),
		req("/", "X-Secret: s\r\nX-SECRET: t\r\n", ""),
		req("/", "Cookie: a=1; b=2;c=\r\n", ""),
		req("/p?a=1&token=abc%20d&Key=k&z", "", ""),
		req("/login", "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n", "user=ann&password=hunter2"),
		req("/pay", "Content-Type: application/json\r\n", `{"user":"ann","password":"pw","items":[{"card":{"number":4111,"exp":"12/30"}}]}`),
		req("/", "", ` {"t":"x"}`),
		req("/", "Content-Type: text/plain\r\n", "card 1234-5678-9012-3456 ok"),
		req("/", "Content-Type: text/plain\r\n", "secret=abc&secret=def"),
		req("/p?a=1", "X-Other: 1\r\n", ""),
		req("/p", "Content-Type: application/json\r\n", `{ "user" : "ann" }`),
		req("/p", "Content-Type: application/x-www-form-urlencoded\r\n", "user=ann"),
		req("/", "Content-Type: application/json\r\n", "{nope"),
		"POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pw\"\r\n6\r\n:\"abc\"\r\n1\r\n}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/; HttpOnly\r\nSet-Cookie: theme=dark\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"token\":\"t1\"}\n",
		req("/p?a=1&access_token=abc&Refresh-Token=r&API_KEY=k", "", ""),
		req("/login", "Content-Type: application/x-www-form-urlencoded\r\n", "user=ann&Password=hunter2&client_secret=s"),
		req("/j", "Content-Type: application/json\r\n", `{"user":"ann","auth":{"Id_Token":"t","n":1},"list":[{"secret":42},{"session":null}],"note":"token"}`),
		req("/j", "Content-Type: application/json\r\n", `{"password":"hunter2","token":12,"x":"`),
		req("/j", "Content-Type: application/json\r\n", `{"a":1,"password":"hunt`),
		req("/j", "", `{"a":1,"b":[true,null],"c":"x"}`),
		req("/j", "Content-Type: application/x-www-form-urlencoded\r\n", "q=shoes&page=2"),
	)
	return ins
}

func TestFastPathAgrees(t *testing.T) {
	ins := agreeInputs(t)
	fast := 0
	for _, cfg := range agreeConfigs {
		r := mustNew(t, cfg)
		for _, in := range ins {
			agree(t, r, cfg, []byte(in))
			if r.clean([]byte(in), true) || r.clean([]byte(in), false) {
				fast++
			}
		}
	}
	if fast == 0 {
		t.Fatal("the fast path never answered")
	}
	t.Logf("%d inputs x %d configs, fast path taken %d times", len(ins), len(agreeConfigs), fast)
}

// TestFastPathTaken checks that ordinary messages without secrets take the
// fast path without allocating, and that secrets do not.
func TestFastPathTaken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		in    string
		isReq bool
		want  bool
	}{
		{"request", Config{Defaults: true}, benchRequest, true, true},
		{"response", Config{Defaults: true}, benchResponse, false, true},
		{"LF only", Config{Defaults: true}, strings.ReplaceAll(benchRequest, "\r\n", "\n"), true, true},
		{"chunked response", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, true},
		{"chunked response to HEAD", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, true},
		{"query without '?'", Config{Query: []string{"token"}}, "GET /p HTTP/1.1\r\n\r\n", true, true},
		{"form rules, JSON body", Config{Form: []string{"pw"}}, "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", true, true},
		{"json rules, text body", Config{JSON: []string{"$.pw"}}, "POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", true, true},
		{"body rules, no body", Config{Patterns: []string{"x"}, JSON: []string{"$.a"}}, benchRequest, true, true},
		{"secret header", Config{Defaults: true}, secretRequest, true, false},
		{"absolute form", Config{Defaults: true}, "GET http://h:80/a@b HTTP/1.1\r\nHost: h\r\n\r\n", true, true},
		{"absolute form with userinfo", Config{Defaults: true}, "GET http://u:pw@h/ HTTP/1.1\r\nHost: h\r\n\r\n", true, false},
		{"userinfo without defaults", Config{Headers: []string{"X-A"}}, "GET http://u:pw@h/ HTTP/1.1\r\nHost: h\r\n\r\n", true, true},
		{"set-cookie", Config{Defaults: true}, secretResponse, false, false},
		{"query without secrets", Config{Query: []string{"token"}}, "GET /p?a=1 HTTP/1.1\r\n\r\n", true, true},
		{"query", Config{Query: []string{"token"}}, "GET /p?a=1&Token=x HTTP/1.1\r\n\r\n", true, false},
		{"default query name", Config{Defaults: true}, "GET /p?a=1&access_token=x HTTP/1.1\r\n\r\n", true, false},
		{"encoded query name", Config{Defaults: true}, "GET /p?%61=1 HTTP/1.1\r\n\r\n", true, false},
		{"form without secrets", Config{Defaults: true}, "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nq=shoes", true, true},
		{"form password", Config{Defaults: true}, "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\npassword=x", true, false},
		{"json member token", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"a\":{\"Id-Token\":1}}", false, false},
		{"json escaped name", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"\\u0061\":1}", false, false},
		{"json string value only", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n{\"a\":\"token\",\"b\":2}", false, true},
		{"chunked json", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n {\r\n1\r\n}\r\n0\r\n\r\n", false, false},
		{"trailer", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nauthorization: x\r\n\r\n", false, false},
		{"harmless trailer", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n", false, true},
		{"gzip body, no type", Config{Defaults: true}, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", false, true},
		{"json body", Config{JSON: []string{"$.pw"}}, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", true, false},
		{"patterns and body", Config{Patterns: []string{"x"}}, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", true, false},
		{"malformed", Config{Defaults: true}, "GET / HTTP/1.1\r\nHost: h\r\n", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew(t, tc.cfg)
			in := []byte(tc.in)
			if got := r.clean(in, tc.isReq); got != tc.want {
				t.Fatalf("clean = %v, want %v", got, tc.want)
			}
			if !tc.want {
				return
			}
			f := r.Response
			if tc.isReq {
				f = r.Request
			}
			if n := testing.AllocsPerRun(100, func() { _, _, _ = f(in) }); n != 0 {
				t.Fatalf("%v allocations per message, want 0", n)
			}
		})
	}
}

// FuzzFastPathAgrees compares the output bytes, counts and errors of the fast
// path with the full path's, under every agreeConfigs configuration.
func FuzzFastPathAgrees(f *testing.F) {
	for _, s := range agreeSeeds {
		f.Add([]byte(s))
	}
	for _, s := range fixtureInputs(f) {
		if len(s) <= 2048 { // large seeds make minimizing slow; TestFastPathAgrees covers them
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(benchRequest))
	f.Add([]byte(secretResponse))
	rs := make([]*Redactor, len(agreeConfigs))
	for i, cfg := range agreeConfigs {
		r, err := New(cfg)
		if err != nil {
			f.Fatal(err)
		}
		rs[i] = r
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for i, r := range rs {
			agree(t, r, agreeConfigs[i], raw)
		}
	})
}
