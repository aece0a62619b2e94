package h2text

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/httpraw"
)

// TestAppendHTTP1 converts requests in the stored form to HTTP/1.1 and
// checks the exact bytes, and that net/http reads them back with their
// body and trailers.
func TestAppendHTTP1(t *testing.T) {
	tests := []struct {
		name     string
		fields   []Field
		body     string
		trailers []Field
		want     string
		// what net/http reads
		host, cookie string
		trailer      http.Header
	}{
		{"get", fields(":method", "GET", ":scheme", "http", ":path", "/x?y=1", ":authority", "shop:8080", "accept", "*/*"), "", nil,
			"GET /x?y=1 HTTP/1.1\r\nHost: shop:8080\r\naccept: */*\r\n\r\n", "shop:8080", "", nil},
		{"body: Content-Length replaces the recorded one", fields(":method", "PUT", ":path", "/p", ":authority", "a", "content-length", "5", "x-a", "1"), "hello", nil,
			"PUT /p HTTP/1.1\r\nHost: a\r\nx-a: 1\r\nContent-Length: 5\r\n\r\nhello", "a", "", nil},
		{"body without content-length", fields(":method", "POST", ":path", "/form", ":authority", "a", "content-type", "application/x-www-form-urlencoded"), "n=1", nil,
			"POST /form HTTP/1.1\r\nHost: a\r\ncontent-type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nn=1", "a", "", nil},
		{"empty POST", fields(":method", "POST", ":path", "/", ":authority", "a"), "", nil,
			"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "a", "", nil},
		{"no authority: the wire's host, once", fields(":method", "GET", ":path", "/", "host", "wire:1", "x", "y", "host", "again"), "", nil,
			"GET / HTTP/1.1\r\nHost: wire:1\r\nx: y\r\n\r\n", "wire:1", "", nil},
		{"no host at all: an empty Host", fields(":method", "GET", ":path", "/"), "", nil,
			"GET / HTTP/1.1\r\nHost: \r\n\r\n", "", "", nil},
		{":authority wins over host", fields(":method", "GET", ":path", "/", ":authority", "auth", "host", "wire"), "", nil,
			"GET / HTTP/1.1\r\nHost: auth\r\n\r\n", "auth", "", nil},
		{"cookies joined, te: trailers kept", fields(":method", "GET", ":path", "/", ":authority", "a", "cookie", "a=1", "x", "1", "cookie", "b=2", "te", "trailers"), "", nil,
			"GET / HTTP/1.1\r\nHost: a\r\ncookie: a=1; b=2\r\nx: 1\r\nte: trailers\r\n\r\n", "a", "a=1; b=2", nil},
		{"trailers: chunked", fields(":method", "PUT", ":path", "/c/2", ":authority", "a", "trailer", "X-Request-Trailer", "content-length", "4"), "data",
			fields("x-request-trailer", "done", "content-length", "4", "host", "h", "authorization", "secret", "content-type", "x", "x-sum", "7"),
			"PUT /c/2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-request-trailer, x-sum\r\n\r\n4\r\ndata\r\n0\r\nx-request-trailer: done\r\nx-sum: 7\r\n\r\n",
			"a", "", http.Header{"X-Request-Trailer": {"done"}, "X-Sum": {"7"}}},
		{"trailers without a body", fields(":method", "POST", ":path", "/", ":authority", "a"), "", fields("x-t", ""),
			"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n0\r\nx-t: \r\n\r\n", "a", "", http.Header{"X-T": {""}}},
		{"only trailers that may not be trailers: Content-Length", fields(":method", "POST", ":path", "/", ":authority", "a"), "ab", fields("content-length", "2"),
			"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", "a", "", nil},
		{"gRPC-Web goes", fields(":method", "POST", ":path", "/p.S/M", ":authority", "a", "content-type", "application/grpc-web+proto"), "\x80\x00\x00\x00\x00", nil,
			"POST /p.S/M HTTP/1.1\r\nHost: a\r\ncontent-type: application/grpc-web+proto\r\nContent-Length: 5\r\n\r\n\x80\x00\x00\x00\x00", "a", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := AppendRequest(nil, tt.fields, []byte(tt.body), tt.trailers)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendHTTP1([]byte("keep"), raw)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "keep"+tt.want {
				t.Fatalf("from %q\ngot  %q\nwant %q", raw, got[4:], tt.want)
			}
			r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(got[4:])))
			if err != nil {
				t.Fatalf("net/http does not read %q: %v", got[4:], err)
			}
			body, err := io.ReadAll(r.Body)
			if err != nil || string(body) != tt.body || r.Proto != "HTTP/1.1" || r.Host != tt.host || r.Header.Get("Cookie") != tt.cookie {
				t.Fatalf("net/http read %s %q host %q cookie %q body %q (%v)", r.Proto, r.RequestURI, r.Host, r.Header.Get("Cookie"), body, err)
			}
			if len(r.Trailer) != len(tt.trailer) {
				t.Fatalf("trailers %v, want %v", r.Trailer, tt.trailer)
			}
			for k, v := range tt.trailer {
				if r.Trailer.Get(k) != v[0] {
					t.Fatalf("trailers %v, want %v", r.Trailer, tt.trailer)
				}
			}
		})
	}
}

func TestAppendHTTP1Refuses(t *testing.T) {
	for _, ct := range []string{"application/grpc", "application/grpc+proto", "Application/GRPC+json", "application/grpc; charset=utf-8"} {
		raw, _ := AppendRequest(nil, fields(":method", "POST", ":path", "/p.S/M", ":authority", "a", "content-type", ct, "te", "trailers"), []byte("\x00\x00\x00\x00\x00"), nil)
		if got, err := AppendHTTP1(nil, raw); !errors.Is(err, ErrGRPC) || len(got) != 0 {
			t.Errorf("%s: %q, %v; want ErrGRPC", ct, got, err)
		}
	}
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",              // not the HTTP/2 form
		"POST / HTTP/2.0\r\nContent-Length: 5\r\n\r\nab", // body cut
		"GET / HTTP/2.0\r\nHost: a\r\nbad line\r\n\r\n",  // malformed
	} {
		if got, err := AppendHTTP1(nil, []byte(raw)); err == nil || errors.Is(err, ErrGRPC) || len(got) != 0 {
			t.Errorf("%q: %q, %v; want an error", raw, got, err)
		}
	}
}

// An X-Replayctl-Trailer- field never goes out as a header, in any case.
func TestAppendHTTP1TrailerPrefix(t *testing.T) {
	raw := "GET / HTTP/2.0\r\nHost: a\r\nx-replayctl-trailer-x-t: 1\r\nX-Replayctl-Trailer-: 2\r\nX-REPLAYCTL-TRAILER-Connection: close\r\n\r\n"
	got, err := AppendHTTP1(nil, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n0\r\nx-t: 1\r\n\r\n"
	if string(got) != want || strings.Contains(strings.ToLower(string(got)), "replayctl") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func BenchmarkAppendHTTP1(b *testing.B) {
	raw, _ := AppendRequest(nil, fields(":method", "POST", ":path", "/api/v1/orders", ":authority", "shop.example:8080",
		"content-type", "application/json", "user-agent", "curl/8", "accept", "*/*", "x-request-id", "abc"), []byte(`{"sku":"a","n":2}`), nil)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendHTTP1(buf[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAppendHTTP1: what converts is one HTTP/1.1 request that net/http
// reads whole, with the body of the stored form, and without anything of
// the stored form or of HTTP/2.
func FuzzAppendHTTP1(f *testing.F) {
	raw, _ := AppendRequest(nil, fields(":method", "POST", ":path", "/p", ":authority", "a:1", "cookie", "a=1", "cookie", "b=2"), []byte("body"), fields("x-t", "1"))
	f.Add(raw)
	f.Add([]byte("GET / HTTP/2.0\r\nhost: x\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := AppendHTTP1(nil, b)
		if err != nil {
			return
		}
		r, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("AppendHTTP1 took %q that ParseRequest refuses: %v", b, err)
		}
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			if hr, perr := httpraw.ParseRequest(b); perr == nil {
				if _, uerr := url.ParseRequestURI(hr.Target()); uerr != nil {
					return // a target net/http refuses, as the stored form had it
				}
			}
			t.Fatalf("net/http does not read %q: %v", out, err)
		}
		body, err := io.ReadAll(hr.Body)
		if err != nil || !bytes.Equal(body, r.Body) || hr.Proto != "HTTP/1.1" {
			t.Fatalf("%q: read %s body %q (%v), want %q", out, hr.Proto, body, err, r.Body)
		}
		if head, _, _ := strings.Cut(string(out), "\r\n\r\n"); strings.Contains(strings.ToLower(head), "\r\nx-replayctl-trailer-") {
			t.Fatalf("%q: a trailer line went out as a header", out)
		}
	})
}
