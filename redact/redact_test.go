package redact

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/httpraw"
)

func mustNew(t *testing.T, cfg Config) *Redactor {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readBack parses out with net/http to prove the message is still valid.
func readBack(t *testing.T, out []byte) (*http.Request, string) {
	t.Helper()
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
	if err != nil {
		t.Fatalf("net/http rejects %q: %v", out, err)
	}
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatalf("net/http body of %q: %v", out, err)
	}
	return hr, string(b)
}

func req(target, headers, body string) string {
	s := "POST " + target + " HTTP/1.1\r\nHost: shop.local\r\n" + headers
	if body != "" {
		s += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	}
	return s + "\r\n" + body
}

func TestRequestKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   string
		want string
		c    Counts
	}{
		{"authorization", Config{Defaults: true},
			req("/", "Authorization: Bearer abc\r\nX-Other: keep\r\n", ""),
			req("/", "Authorization: REDACTED\r\nX-Other: keep\r\n", ""), Counts{Headers: 1}},
		{"named header case-insensitive", Config{Headers: []string{"x-secret"}},
			req("/", "X-Secret: s\r\nX-SECRET: t\r\n", ""),
			req("/", "X-Secret: REDACTED\r\nX-SECRET: REDACTED\r\n", ""), Counts{Headers: 2}},
		{"each cookie", Config{Defaults: true},
			req("/", "Cookie: a=1; b=2;c=\r\n", ""),
			req("/", "Cookie: a=REDACTED; b=REDACTED;c=\r\n", ""), Counts{Headers: 2}},
		{"query", Config{Query: []string{"token", "key"}},
			req("/p?a=1&token=abc%20d&Key=k&z", "", ""),
			req("/p?a=1&token=REDACTED&Key=REDACTED&z", "", ""), Counts{Query: 2}},
		{"form", Config{Form: []string{"password"}},
			req("/login", "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n", "user=ann&password=hunter2"),
			req("/login", "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n", "user=ann&password=REDACTED"),
			Counts{Form: 1}},
		{"json", Config{JSON: []string{"$.password", "$..card.number"}},
			req("/pay", "Content-Type: application/json\r\n", `{"user":"ann","password":"pw","items":[{"card":{"number":4111,"exp":"12/30"}}]}`),
			req("/pay", "Content-Type: application/json\r\n", `{"user":"ann","password":"REDACTED","items":[{"card":{"number":"REDACTED","exp":"12/30"}}]}`),
			Counts{JSON: 2}},
		{"json without content type", Config{JSON: []string{"$.t"}},
			req("/", "", ` {"t":"x"}`), req("/", "", `{"t":"REDACTED"}`), Counts{JSON: 1}},
		{"pattern whole match", Config{Patterns: []string{`\b\d{4}-\d{4}-\d{4}-\d{4}\b`}},
			req("/", "Content-Type: text/plain\r\n", "card 1234-5678-9012-3456 ok"),
			req("/", "Content-Type: text/plain\r\n", "card REDACTED ok"), Counts{Patterns: 1}},
		{"pattern group", Config{Patterns: []string{`secret=(\w+)`}},
			req("/", "Content-Type: text/plain\r\n", "secret=abc&secret=def"),
			req("/", "Content-Type: text/plain\r\n", "secret=REDACTED&secret=REDACTED"), Counts{Patterns: 2}},
		{"custom mask", Config{Headers: []string{"X-Api-Key"}, Mask: "***"},
			req("/", "X-Api-Key: k\r\n", ""), req("/", "X-Api-Key: ***\r\n", ""), Counts{Headers: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, c, err := mustNew(t, tc.cfg).Request([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want || c != tc.c {
				t.Fatalf("got %q %+v\nwant %q %+v", out, c, tc.want, tc.c)
			}
			_, body := readBack(t, out)
			if !strings.HasSuffix(tc.want, body) {
				t.Fatalf("net/http body %q", body)
			}
			// Redacting again changes nothing.
			again, c2, err := mustNew(t, tc.cfg).Request(out)
			if err != nil || !bytes.Equal(again, out) || c2.Redacted() != 0 {
				t.Fatalf("second pass: %q %+v %v", again, c2, err)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	r := mustNew(t, Config{Defaults: true, JSON: []string{"$.token"}})
	in := "HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/; HttpOnly\r\nSet-Cookie: theme=dark\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"token\":\"t1\"}\n"
	out, c, err := r.Response([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\nSet-Cookie: sid=REDACTED; Path=/; HttpOnly\r\nSet-Cookie: theme=REDACTED\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"token\":\"REDACTED\"}"
	if string(out) != want || c != (Counts{Headers: 2, JSON: 1}) {
		t.Fatalf("got %q %+v", out, c)
	}
	hr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(hr.Body); string(b) != `{"token":"REDACTED"}` {
		t.Fatalf("body %q", b)
	}
}

func TestHashMode(t *testing.T) {
	r := mustNew(t, Config{Mode: "hash", Key: []byte("k1"), Headers: []string{"Authorization"}, Query: []string{"t"}})
	h := func(auth, q string) (string, string) {
		out, _, err := r.Request([]byte(req("/?t="+q, "Authorization: "+auth+"\r\n", "")))
		if err != nil {
			t.Fatal(err)
		}
		hr, _ := readBack(t, out)
		return hr.Header.Get("Authorization"), hr.URL.Query().Get("t")
	}
	a1, q1 := h("Bearer one", "x")
	a2, q2 := h("Bearer one", "x")
	a3, q3 := h("Bearer two", "y")
	if a1 != a2 || q1 != q2 {
		t.Fatalf("equal inputs hashed differently: %q %q / %q %q", a1, a2, q1, q2)
	}
	if a1 == a3 || q1 == q3 {
		t.Fatalf("different inputs hashed equal: %q %q", a1, a3)
	}
	if !strings.HasPrefix(a1, "hmac:") || len(a1) != 21 || !isDigest(q1) {
		t.Fatalf("digest format %q %q", a1, q1)
	}
	other := mustNew(t, Config{Mode: "hash", Key: []byte("k2"), Headers: []string{"Authorization"}})
	out, _, _ := other.Request([]byte(req("/", "Authorization: Bearer one\r\n", "")))
	if hr, _ := readBack(t, out); hr.Header.Get("Authorization") == a1 {
		t.Fatal("another key gives the same digest")
	}
}

func TestChunkedBody(t *testing.T) {
	r := mustNew(t, Config{JSON: []string{"$.pw"}})
	in := "POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pw\"\r\n6\r\n:\"abc\"\r\n1\r\n}\r\n0\r\n\r\n"
	out, c, err := r.Request([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.JSON != 1 {
		t.Fatalf("counts %+v", c)
	}
	if _, body := readBack(t, out); body != `{"pw":"REDACTED"}` {
		t.Fatalf("body %q in %q", body, out)
	}
}

func TestEncodedBodySkipped(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"pw":"abc"}`))
	w.Close()
	in := []byte(req("/", "Content-Type: application/json\r\nContent-Encoding: gzip\r\nAuthorization: x\r\n", gz.String()))
	out, c, err := mustNew(t, Config{Defaults: true, JSON: []string{"$.pw"}}).Request(in)
	if err != nil {
		t.Fatal(err)
	}
	if c != (Counts{Headers: 1, Skipped: 1}) {
		t.Fatalf("counts %+v", c)
	}
	if !bytes.HasSuffix(out, gz.Bytes()) {
		t.Fatal("encoded body changed")
	}
	// Declared JSON that does not parse is counted too.
	_, c, _ = mustNew(t, Config{JSON: []string{"$.pw"}}).Request([]byte(req("/", "Content-Type: application/json\r\n", "{nope")))
	if c.Skipped != 1 {
		t.Fatalf("invalid JSON counts %+v", c)
	}
}

func TestNoOpKeepsBytes(t *testing.T) {
	r := mustNew(t, Config{Defaults: true, Query: []string{"token"}, Form: []string{"pw"}, JSON: []string{"$.pw"}, Patterns: []string{`\d{16}`}})
	for _, in := range []string{
		req("/p?a=1", "X-Other: 1\r\n", ""),
		req("/p", "Content-Type: application/json\r\n", `{ "user" : "ann" }`),
		req("/p", "Content-Type: application/x-www-form-urlencoded\r\n", "user=ann"),
	} {
		b := []byte(in)
		out, c, err := r.Request(b)
		if err != nil || c != (Counts{}) || &out[0] != &b[0] || len(out) != len(b) {
			t.Fatalf("%q: %q %+v %v", in, out, c, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: "hash"}, "needs a key"},
		{Config{Mode: "rot13"}, "unknown mode"},
		{Config{JSON: []string{"pw"}}, "redact: json: jsonpath"},
		{Config{Patterns: []string{"("}}, `pattern "("`},
		{Config{Mask: "a\nb"}, "mask"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, _, err := mustNew(t, Config{}).Request([]byte("nope")); err == nil {
		t.Fatal("malformed request: no error")
	}
}

// TestDefaultNames checks the names Defaults redacts beyond headers: query
// parameters, form fields and JSON members (any depth, case-insensitive, '-'
// as '_'), and header fields in chunked trailers; defaults: false keeps them.
func TestDefaultNames(t *testing.T) {
	chunked := func(body, trailers string) string {
		return "POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n" + trailers + "\r\n"
	}
	for _, tc := range []struct {
		name     string
		in, want string
		c        Counts
	}{
		{"query token", req("/p?a=1&access_token=abc&Refresh-Token=r&API_KEY=k", "", ""),
			req("/p?a=1&access_token=REDACTED&Refresh-Token=REDACTED&API_KEY=REDACTED", "", ""), Counts{Query: 3}},
		{"encoded query name", req("/p?%74oken=abc", "", ""), req("/p?%74oken=REDACTED", "", ""), Counts{Query: 1}},
		{"query signature", req("http://h/p?X-Amz-Signature=ab12&sig=x", "", ""), req("http://h/p?X-Amz-Signature=REDACTED&sig=REDACTED", "", ""), Counts{Query: 2}},
		{"form", req("/login", "Content-Type: application/x-www-form-urlencoded\r\n", "user=ann&Password=hunter2&client_secret=s"),
			req("/login", "Content-Type: application/x-www-form-urlencoded\r\n", "user=ann&Password=REDACTED&client_secret=REDACTED"), Counts{Form: 2}},
		{"json members", req("/j", "Content-Type: application/json\r\n", `{"user":"ann","auth":{"Id_Token":"t","n":1},"list":[{"secret":42},{"session":null}],"note":"token"}`),
			req("/j", "Content-Type: application/json\r\n", `{"user":"ann","auth":"REDACTED","list":[{"secret":"REDACTED"},{"session":null}],"note":"token"}`), Counts{JSON: 2}},
		{"json cut short", req("/j", "Content-Type: application/json\r\n", `{"password":"hunter2","token":12,"x":"`),
			req("/j", "Content-Type: application/json\r\n", `{"password":"REDACTED","token":"REDACTED","x":"`), Counts{JSON: 2}},
		{"json cut in a secret", req("/j", "Content-Type: application/json\r\n", `{"a":1,"password":"hunt`),
			req("/j", "Content-Type: application/json\r\n", `{"a":1,"password":"REDACTED"`), Counts{JSON: 1}},
		{"trailer", chunked("abc", "Authorization: Bearer x\r\nX-Checksum: 1\r\n"),
			chunked("abc", "Authorization: REDACTED\r\nX-Checksum: 1\r\n"), Counts{Headers: 1}},
		{"folded trailer", chunked("abc", "cookie: a=1\r\n b=2\r\n"), chunked("abc", "cookie: REDACTED\r\n"), Counts{Headers: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew(t, Config{Defaults: true})
			out, c, err := r.Request([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want || c != tc.c {
				t.Fatalf("got %q %+v\nwant %q %+v", out, c, tc.want, tc.c)
			}
			if !strings.Contains(tc.name, "cut") {
				readBack(t, out)
			}
			off, c, err := mustNew(t, Config{}).Request([]byte(tc.in))
			if err != nil || string(off) != tc.in || c != (Counts{}) {
				t.Fatalf("defaults off: %q %+v %v", off, c, err)
			}
		})
	}
}

// TestDefaultNamesEncodedBody counts a compressed form or JSON body as
// skipped (the default names could not be looked for) but not other
// compressed bodies.
func TestDefaultNamesEncodedBody(t *testing.T) {
	r := mustNew(t, Config{Defaults: true})
	for _, tc := range []struct {
		ct   string
		skip int
	}{{"application/json", 1}, {"application/x-www-form-urlencoded", 1}, {"image/png", 0}} {
		_, c, err := r.Response([]byte("HTTP/1.1 200 OK\r\nContent-Type: " + tc.ct + "\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc"))
		if err != nil || c.Skipped != tc.skip {
			t.Errorf("%s: %+v %v, want %d skipped", tc.ct, c, err, tc.skip)
		}
	}
}

// TestResponseToHEAD: a response to HEAD announces its body's framing
// (Content-Length or chunked) but carries none; it is redacted, not refused
// as unparsable (which would drop it from the recording).
func TestResponseToHEAD(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n", ""},
		{"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\nSet-Cookie: sid=REDACTED\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc\r\nContent-Length: 12\r\n\r\n", "HTTP/1.1 200 OK\r\nSet-Cookie: sid=REDACTED\r\nContent-Length: 12\r\n\r\n"},
	} {
		for _, cfg := range []Config{{}, {Defaults: true}} {
			out, _, err := mustNew(t, cfg).Response([]byte(tc.in))
			want := tc.want
			if want == "" || !cfg.Defaults {
				want = tc.in
			}
			if err != nil || string(out) != want {
				t.Errorf("%+v %q: got %q, %v; want %q", cfg, tc.in, out, err, want)
			}
		}
	}
}

// TestUserinfo: with the defaults, the credentials of an absolute-form
// target (a proxy's request, GET http://user:pw@host/) are masked as an
// Authorization header's are; they were recorded as sent.
func TestUserinfo(t *testing.T) {
	for _, tc := range []struct {
		name, cfgMask, target, want string
		n                           int
	}{
		{"password", "", "http://alice:s3cret@h:8080/p?q=1", "http://alice:REDACTED@h:8080/p?q=1", 1},
		{"token as user name", "", "https://ghp_TOKEN@h/r.git", "https://REDACTED@h/r.git", 1},
		{"empty password", "", "http://alice:@h/", "http://alice:@h/", 0},
		{"no userinfo", "", "http://h/a@b", "http://h/a@b", 0},
		{"origin form", "", "/a@b", "/a@b", 0},
		{"already masked", "", "http://alice:REDACTED@h/", "http://alice:REDACTED@h/", 0},
		{"mask escaped", "x @y", "http://alice:pw@h/", "http://alice:x%20%40y@h/", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(Config{Defaults: true, Mask: tc.cfgMask})
			if err != nil {
				t.Fatal(err)
			}
			in := "GET " + tc.target + " HTTP/1.1\r\nHost: h\r\n\r\n"
			out, c, err := r.Request([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			want := "GET " + tc.want + " HTTP/1.1\r\nHost: h\r\n\r\n"
			if string(out) != want || c.Userinfo != tc.n || c.Redacted() != tc.n {
				t.Errorf("got %q (%+v), want %q (%d masked)", out, c, want, tc.n)
			}
			if _, err := httpraw.ParseRequest(out); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
}
