package httpraw

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

const getReq = "GET /api/items?b=2&a=%20x&c HTTP/1.1\r\n" +
	"Host: shop.local\r\n" +
	"x-trace:  abc \r\n" +
	"Accept: */*\r\n" +
	"X-Trace: second\r\n" +
	"\r\n"

const postReq = "POST /login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"user\":\"me\"}"

const chunkedReq = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 9\r\n\r\n"

func mustReq(t *testing.T, s string) *Request {
	t.Helper()
	r, err := ParseRequest([]byte(s))
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	return r
}

func TestParseRequest(t *testing.T) {
	r := mustReq(t, getReq)
	if r.Method() != "GET" || r.Target() != "/api/items?b=2&a=%20x&c" || r.Proto() != "HTTP/1.1" {
		t.Fatalf("request line: %q %q %q", r.Method(), r.Target(), r.Proto())
	}
	if r.Path() != "/api/items" || r.RawQuery() != "b=2&a=%20x&c" {
		t.Fatalf("path %q query %q", r.Path(), r.RawQuery())
	}
	if v, _ := r.Query().Get("a"); v != " x" {
		t.Fatalf("query a = %q", v)
	}
	if v, ok := r.Header("X-TRACE"); !ok || v != "abc" {
		t.Fatalf("X-Trace = %q %v", v, ok)
	}
	if got := r.Values("x-trace"); len(got) != 2 || got[1] != "second" {
		t.Fatalf("Values = %q", got)
	}
	h := r.Headers()
	if len(h) != 4 || h[1].Name != "x-trace" || h[3].Name != "X-Trace" {
		t.Fatalf("Headers = %q", h)
	}
	if !bytes.Equal(r.Bytes(), []byte(getReq)) || len(r.Body()) != 0 {
		t.Fatal("unedited bytes differ")
	}
}

func TestParseBodies(t *testing.T) {
	r := mustReq(t, chunkedReq)
	if !r.Chunked() || string(r.Body()) != chunkedReq[strings.Index(chunkedReq, "\r\n\r\n")+4:] {
		t.Fatalf("raw body %q", r.Body())
	}
	d, err := r.DecodedBody()
	if err != nil || string(d) != "hello, world" {
		t.Fatalf("decoded %q %v", d, err)
	}
	r = mustReq(t, postReq)
	if d, _ := r.DecodedBody(); string(d) != `{"user":"me"}` {
		t.Fatalf("body %q", d)
	}
	// obs-fold and bare LF line endings.
	r = mustReq(t, "GET / HTTP/1.0\nX-Long: one\n  two\n\tthree\nHost: h\n\n")
	if v, _ := r.Header("x-long"); v != "one two three" {
		t.Fatalf("folded %q", v)
	}
	// Absolute-form target.
	r = mustReq(t, "GET http://user@up.local:8080/p/q?x=1 HTTP/1.1\r\n\r\n")
	if r.Path() != "/p/q" || r.RawQuery() != "x=1" || r.Host() != "up.local:8080" {
		t.Fatalf("absolute: %q %q %q", r.Path(), r.RawQuery(), r.Host())
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		code   int
		reason string
		body   string
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "OK", "hi"},
		{"HTTP/1.1 404\r\n\r\n", 404, "", ""},
		{"HTTP/1.0 200 Fine Thanks\r\nServer: x\r\n\r\nuntil close", 200, "Fine Thanks", "until close"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", 200, "OK", ""},                           // HEAD
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n", 200, "OK", ""}, // HEAD
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n", 304, "Not Modified", ""},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "OK", "ok"},
	} {
		r, err := ParseResponse([]byte(tc.raw))
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		d, err := r.DecodedBody()
		if r.StatusCode() != tc.code || r.Reason() != tc.reason || string(d) != tc.body || err != nil {
			t.Fatalf("%q: %d %q %q %v", tc.raw, r.StatusCode(), r.Reason(), d, err)
		}
		if !bytes.Equal(r.Bytes(), []byte(tc.raw)) {
			t.Fatalf("%q: bytes differ", tc.raw)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"GET /\r\n\r\n", "malformed request line"},
		{"GET  / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"GET / FTP/1.1\r\n\r\n", "malformed request line"},
		{"GET / HTTP/1.1", "not terminated"},
		{"GET / HTTP/1.1\r\nHost: a\r\n", "header block not terminated"},
		{"GET / HTTP/1.1\r\nNo colon\r\n\r\n", "want name: value"},
		{"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "want name: value"},
		{"GET / HTTP/1.1\r\n folded\r\n\r\n", "continuation line"},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", "body truncated"},
		{"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nab", "1 bytes after"},
		{"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "invalid Content-Length"},
		{"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\na", "conflicting"},
		{"POST / HTTP/1.1\r\n\r\nbody", "without Content-Length"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", "invalid chunk size"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "truncated"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nextra", "after the last chunk"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n x: 1\r\nT: 2\r\n\r\n", "continuation line before any trailer"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "does not end with chunked"},
		{"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"},
		{"HTTP/1.1 204 No Content\r\n\r\nx", "status has no body"},
	} {
		var err error
		if strings.HasPrefix(tc.raw, "HTTP/") {
			_, err = ParseResponse([]byte(tc.raw))
		} else {
			_, err = ParseRequest([]byte(tc.raw))
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestRequestEdits(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		edit func(r *Request) error
		want string
	}{
		{"set header in place, drop duplicate", getReq,
			func(r *Request) error { return r.SetHeader("X-TRACE", "new") },
			"GET /api/items?b=2&a=%20x&c HTTP/1.1\r\nHost: shop.local\r\nx-trace:  new\r\nAccept: */*\r\n\r\n"},
		{"append header", getReq,
			func(r *Request) error { return r.SetHeader("X-Replay", "1") },
			getReq[:len(getReq)-2] + "X-Replay: 1\r\n\r\n"},
		{"append header LF", "GET / HTTP/1.1\nHost: a\n\n",
			func(r *Request) error { return r.SetHeader("X-Replay", " 1 ") },
			"GET / HTTP/1.1\nHost: a\nX-Replay: 1\n\n"},
		{"set folded header", "GET / HTTP/1.1\r\nX-A: one\r\n two\r\nB: c\r\n\r\n",
			func(r *Request) error { return r.SetHeader("x-a", "z") },
			"GET / HTTP/1.1\r\nX-A: z\r\nB: c\r\n\r\n"},
		{"remove header", getReq,
			func(r *Request) error { r.RemoveHeader("x-trace"); return nil },
			"GET /api/items?b=2&a=%20x&c HTTP/1.1\r\nHost: shop.local\r\nAccept: */*\r\n\r\n"},
		{"method", postReq,
			func(r *Request) error { return r.SetMethod("PUT") },
			"PUT" + postReq[4:]},
		{"path keeps query", getReq,
			func(r *Request) error { return r.SetPath("/v2/items") },
			strings.Replace(getReq, "/api/items?", "/v2/items?", 1)},
		{"set query param keeps others", getReq,
			func(r *Request) error { return r.SetQueryParam("b", "x y&") },
			strings.Replace(getReq, "b=2&", "b=x+y%26&", 1)},
		{"add query param", "GET /p HTTP/1.1\r\n\r\n",
			func(r *Request) error { return r.SetQueryParam("k", "v") },
			"GET /p?k=v HTTP/1.1\r\n\r\n"},
		{"remove query param", getReq,
			func(r *Request) error { r.RemoveQueryParam("a"); return nil },
			strings.Replace(getReq, "b=2&a=%20x&c", "b=2&c", 1)},
		{"remove last query param", "GET /p?a=1 HTTP/1.1\r\n\r\n",
			func(r *Request) error { r.RemoveQueryParam("a"); return nil },
			"GET /p HTTP/1.1\r\n\r\n"},
		{"host", getReq,
			func(r *Request) error { return r.SetHost("127.0.0.1:9") },
			strings.Replace(getReq, "shop.local", "127.0.0.1:9", 1)},
		{"host absolute-form", "GET http://u@old:1/p?q HTTP/1.1\r\nHost: old:1\r\n\r\n",
			func(r *Request) error { return r.SetHost("new:2") },
			"GET http://u@new:2/p?q HTTP/1.1\r\nHost: new:2\r\n\r\n"},
		{"retarget absolute-form", "GET http://u@old:1/p?q HTTP/1.1\r\nHost: old:1\r\nhost: dup\r\n\r\n",
			func(r *Request) error { return r.Retarget("https", "new:2") },
			"GET https://u@new:2/p?q HTTP/1.1\r\nHost: new:2\r\nhost: dup\r\n\r\n"},
		{"retarget absolute-form without Host", "GET HTTP://old/p HTTP/1.0\r\nAccept: */*\r\n\r\n",
			func(r *Request) error { return r.Retarget("http", "new:2") },
			"GET http://new:2/p HTTP/1.0\r\nAccept: */*\r\n\r\n"},
		{"retarget origin-form", getReq,
			func(r *Request) error { return r.Retarget("http", "127.0.0.1:9") },
			strings.Replace(getReq, "shop.local", "127.0.0.1:9", 1)},
		{"retarget authority-form", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
			func(r *Request) error { return r.Retarget("http", "new:2") },
			"CONNECT h:443 HTTP/1.1\r\nHost: new:2\r\n\r\n"},
		{"path absolute-form", "GET http://h?q=1 HTTP/1.1\r\n\r\n",
			func(r *Request) error { return r.SetPath("/x") },
			"GET http://h/x?q=1 HTTP/1.1\r\n\r\n"},
		{"body content-length", postReq,
			func(r *Request) error { return r.SetBody([]byte(`{}`)) },
			strings.Replace(postReq, "13\r\n\r\n{\"user\":\"me\"}", "2\r\n\r\n{}", 1)},
		{"body added to bodiless request", "POST /p HTTP/1.1\r\nHost: a\r\n\r\n",
			func(r *Request) error { return r.SetBody([]byte("abc")) },
			"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"},
		{"body chunked keeps trailers", chunkedReq,
			func(r *Request) error { return r.SetBody([]byte("0123456789abcdefX")) },
			"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n0123456789abcdefX\r\n0\r\nX-Sum: 9\r\n\r\n"},
		{"empty chunked body", chunkedReq,
			func(r *Request) error { return r.SetBody(nil) },
			"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Sum: 9\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustReq(t, tc.in)
			if err := tc.edit(r); err != nil {
				t.Fatal(err)
			}
			if got := string(r.Bytes()); got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			if _, err := ParseRequest(r.Bytes()); err != nil {
				t.Fatalf("edited message does not parse: %v", err)
			}
		})
	}
}

// TestNoOpEdits proves edits that change nothing keep the input slice.
func TestNoOpEdits(t *testing.T) {
	for _, in := range []string{getReq, postReq, chunkedReq} {
		r := mustReq(t, in)
		body, _ := r.DecodedBody()
		host, _ := r.Header("Host")
		steps := []error{
			r.SetHeader("host", host),
			r.SetMethod(r.Method()),
			r.SetPath(r.Path()),
			r.SetRawQuery(r.RawQuery()),
			r.SetHost(host),
			r.SetBody(append([]byte(nil), body...)),
		}
		r.RemoveHeader("Absent")
		r.RemoveQueryParam("absent")
		if v, ok := r.Query().Get("b"); ok {
			steps = append(steps, r.SetQueryParam("b", v))
		}
		for _, err := range steps {
			if err != nil {
				t.Fatal(err)
			}
		}
		out := r.Bytes()
		if string(out) != in || &out[0] != &r.raw[0] {
			t.Fatalf("no-op edits changed %q into %q", in, out)
		}
	}
	// Same on a response.
	in := "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n\r\nhi"
	r, _ := ParseResponse([]byte(in))
	_ = r.SetHeader("set-cookie", "a=1")
	_ = r.SetBody([]byte("hi"))
	if string(r.Bytes()) != in {
		t.Fatalf("response changed: %q", r.Bytes())
	}
}

// TestHostSet: an edit of the Host header is told, even one that keeps its
// value; other edits are not.
func TestHostSet(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(r *Request) error
		want bool
	}{
		"set-host":           {func(r *Request) error { return r.SetHost("a") }, true},
		"same host":          {func(r *Request) error { return r.SetHost("shop.local") }, true},
		"set-header host":    {func(r *Request) error { return r.SetHeader("hOsT", "a") }, true},
		"set-header-at host": {func(r *Request) error { return r.SetHeaderAt(0, "a") }, true},
		"retarget":           {func(r *Request) error { return r.Retarget("http", "a") }, true},
		"other header":       {func(r *Request) error { return r.SetHeader("X-Host", "a") }, false},
		"other header at":    {func(r *Request) error { return r.SetHeaderAt(1, "a") }, false},
		"path":               {func(r *Request) error { return r.SetPath("/x") }, false},
		"failed":             {func(r *Request) error { _ = r.SetHost("a/b"); return nil }, false},
	} {
		r := mustReq(t, getReq)
		if err := tc.edit(r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.HostSet() != tc.want {
			t.Errorf("%s: HostSet %v, want %v", name, r.HostSet(), tc.want)
		}
	}
}

func TestEditErrors(t *testing.T) {
	r := mustReq(t, getReq)
	for name, err := range map[string]error{
		"header injection": r.SetHeader("X", "a\r\nEvil: 1"),
		"bad header name":  r.SetHeader("Bad Name", "a"),
		"bad method":       r.SetMethod("G T"),
		"relative path":    r.SetPath("api"),
		"path with query":  r.SetPath("/a?b"),
		"bad host":         r.SetHost("a/b"),
		"retarget host":    r.Retarget("http", "a@b"),
		"retarget scheme":  r.Retarget("1http", "b"),
		"index":            r.SetHeaderAt(99, "x"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if string(r.Bytes()) != getReq {
		t.Fatal("failed edits changed the message")
	}
	c := mustReq(t, "CONNECT h:443 HTTP/1.1\r\n\r\n")
	if err := c.SetPath("/x"); err == nil {
		t.Fatal("SetPath on authority-form target: no error")
	}
	resp, _ := ParseResponse([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	if err := resp.SetBody([]byte("x")); err == nil {
		t.Fatal("SetBody on 204: no error")
	}
}

func TestResponseEdits(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
	r, err := ParseResponse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetHeaderAt(1, "b=X"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetBody([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=X\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	if string(r.Bytes()) != want {
		t.Fatalf("got %q", r.Bytes())
	}
	hr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(r.Bytes())), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hr.Body)
	if string(b) != "hello" {
		t.Fatalf("net/http reads %q", b)
	}
}

// TestNetHTTPAgrees checks edited requests are valid for net/http.
func TestNetHTTPAgrees(t *testing.T) {
	for _, in := range []string{getReq, postReq, chunkedReq} {
		r := mustReq(t, in)
		_ = r.SetHeader("X-Replay", "1")
		_ = r.SetBody([]byte("new body"))
		_ = r.SetQueryParam("z", "1 2")
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(r.Bytes())))
		if err != nil {
			t.Fatalf("%q: %v", r.Bytes(), err)
		}
		b, _ := io.ReadAll(hr.Body)
		if string(b) != "new body" || hr.Header.Get("X-Replay") != "1" || hr.URL.Query().Get("z") != "1 2" {
			t.Fatalf("%q: net/http sees body %q header %q", r.Bytes(), b, hr.Header.Get("X-Replay"))
		}
	}
}

func TestQueryRoundTrip(t *testing.T) {
	for _, raw := range []string{"", "a", "a=", "=b", "a=1&&b=%zz", "x=%41&x=B;y=2", "&"} {
		if got := ParseQuery(raw).String(); got != raw {
			t.Errorf("ParseQuery(%q).String() = %q", raw, got)
		}
	}
}

func BenchmarkParseEdit(b *testing.B) {
	raw := []byte(postReq)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := ParseRequest(raw)
		_ = r.SetHeader("X-Replay", "1")
		_ = r.Bytes()
	}
}

// TestErrorsHideMessageBytes: parse and edit errors say what is wrong and
// where (line numbers, lengths), never the message's bytes, which may hold
// secrets (they are logged when a message cannot be redacted).
func TestErrorsHideMessageBytes(t *testing.T) {
	for _, raw := range []string{
		"GET /?token=S3CRET HTTP/1.1",
		"GET /?token=S3CRET  HTTP/1.1\r\n\r\n",
		"GET /?token=S3CRET HTTP/1.1\r\nAuthorization S3CRET\r\n\r\n",
		"GET /?token=S3CRET HTTP/1.1\r\nAuthorization: Bearer S3CRET\x00\r\n\r\n",
		"GET /?token=S3CRET HTTP/1.1\r\n S3CRET\r\n\r\n",
		"POST /?token=S3CRET HTTP/1.1\r\nContent-Length: S3CRET\r\n\r\n",
		"POST /?token=S3CRET HTTP/1.1\r\nTransfer-Encoding: S3CRET\r\n\r\n",
		"POST /?token=S3CRET HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nS3CRET\r\n",
		"POST /?token=S3CRET HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nS3CRET\r\n\r\n",
		"HTTP/1.1 200 S3CRET\x00\r\n\r\n",
		"HTTP/1.1 S3CRET",
	} {
		var err error
		if strings.HasPrefix(raw, "HTTP/") {
			_, err = ParseResponse([]byte(raw))
		} else {
			_, err = ParseRequest([]byte(raw))
		}
		if err == nil || strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%q: error %v shows the message's bytes", raw, err)
		}
	}
	r, err := ParseRequest([]byte("GET /p?token=S3CRET HTTP/1.1\r\nHost: h\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{r.SetMethod("S3CRET X"), r.SetTarget("/S3CRET x"), r.SetPath("/S3CRET?x"), r.SetRawQuery("S3CRET x"), r.SetHost("S3CRET/x")} {
		if err == nil || strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("edit error %v shows the value", err)
		}
	}
}

func TestTrailers(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-A: 1\r\nX-Sig: s\r\n  more\r\nX-B:2\n\r\n"
	r, err := ParseResponse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Trailers()
	want := []Field{{"X-A", "1"}, {"X-Sig", "s more"}, {"X-B", "2"}}
	if len(got) != len(want) {
		t.Fatalf("trailers %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("trailers %v, want %v", got, want)
		}
	}
	if err := r.SetTrailerAt(1, "REDACTED"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTrailerAt(2, "x"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTrailerAt(0, "1"); err != nil { // unchanged
		t.Fatal(err)
	}
	out := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-A: 1\r\nX-Sig: REDACTED\r\nX-B: x\n\r\n"
	if string(r.Bytes()) != out {
		t.Fatalf("got %q\nwant %q", r.Bytes(), out)
	}
	// A later SetBody keeps the edited trailers.
	if err := r.SetBody([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b := string(r.Bytes()); !strings.HasSuffix(b, "5\r\nhello\r\n0\r\nX-A: 1\r\nX-Sig: REDACTED\r\nX-B: x\n\r\n") {
		t.Fatalf("after SetBody: %q", b)
	}
	if err := r.SetTrailerAt(3, "x"); err == nil {
		t.Fatal("index out of range accepted")
	}
	if err := r.SetTrailerAt(0, "a\r\nb"); err == nil {
		t.Fatal("CRLF in a trailer value accepted")
	}
	plain, _ := ParseResponse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	if plain.Trailers() != nil {
		t.Fatal("trailers on a message that is not chunked")
	}
}

// TestSetBodyBodilessChunkedResponse: a response to HEAD announces a chunked
// body and carries none; a body set on it is chunked, so it parses again.
func TestSetBodyBodilessChunkedResponse(t *testing.T) {
	r, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetBody([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
	if string(r.Bytes()) != want {
		t.Fatalf("got %q, want %q", r.Bytes(), want)
	}
	again, err := ParseResponse(r.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := again.DecodedBody(); err != nil || string(b) != "hi" {
		t.Fatalf("body %q, %v", b, err)
	}
}
