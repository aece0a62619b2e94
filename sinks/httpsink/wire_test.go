package httpsink

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/stats"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		method    method
		status    int
		keepAlive bool
		kept      string // "" = the whole input
		class     string // error class, "" for none
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, keepAlive: true},
		{name: "odd case, LF only", in: "HTTP/1.1 404 Not Found\ncOnTeNt-LeNgTh: 2\n\nno", status: 404, keepAlive: true},
		{name: "no reason", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", status: 200, keepAlive: true},
		{name: "chunked with trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", status: 200, keepAlive: true},
		{name: "chunked beats length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 200, keepAlive: true},
		{name: "head has no body", in: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", method: methodHead, status: 200, keepAlive: true},
		{name: "204", in: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", status: 204, keepAlive: true},
		{name: "304", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304, keepAlive: true},
		{name: "100 continue skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", status: 201, keepAlive: true, kept: "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"},
		{name: "101 switching", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", status: 101},
		{name: "connect established", in: "HTTP/1.1 200 Connection established\r\n\r\n", method: methodConnect, status: 200},
		{name: "connect 2xx ignores length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method: methodConnect, status: 200},
		{name: "connect 2xx ignores chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method: methodConnect, status: 200},
		{name: "connect after interim", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", method: methodConnect, status: 200, kept: "HTTP/1.1 200 OK\r\n\r\n"},
		{name: "connect refused has a body", in: "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nauth", method: methodConnect, status: 407, keepAlive: true},
		{name: "connect refused by 304", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\n", method: methodConnect, status: 304, keepAlive: true},
		{name: "read to close", in: "HTTP/1.1 200 OK\r\n\r\nall of it until EOF", status: 200},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", status: 200},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", status: 200, keepAlive: true},
		{name: "connection close", in: "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", status: 500},
		{name: "unknown transfer-encoding reads to close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", status: 200},
		{name: "folded header", in: "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 1\r\n\r\nx", status: 200, keepAlive: true},
		{name: "empty", in: "", class: stats.ClassReset},
		{name: "garbage", in: "garbage\r\n\r\n", class: stats.ClassBadResponse},
		{name: "http/2 status", in: "HTTP/2 200\r\n\r\n", class: stats.ClassBadResponse},
		{name: "status 099", in: "HTTP/1.1 099 X\r\n\r\n", class: stats.ClassBadResponse},
		{name: "status 2000", in: "HTTP/1.1 2000 X\r\n\r\n", class: stats.ClassBadResponse},
		{name: "bad header", in: "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", class: stats.ClassBadResponse},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", class: stats.ClassBadResponse},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", class: stats.ClassBadResponse},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", class: stats.ClassBadResponse},
		{name: "huge chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", class: stats.ClassBadResponse},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", class: stats.ClassBadResponse},
		{name: "truncated body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", class: stats.ClassReset},
		{name: "truncated headers", in: "HTTP/1.1 200 OK\r\nContent-Le", class: stats.ClassReset},
		{name: "truncated chunks", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", class: stats.ClassReset},
		{name: "line too long", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", readBufSize) + "\r\n\r\n", class: stats.ClassBadResponse},
		{name: "too many headers", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: 1\r\n", maxHeaderLines+1) + "\r\n", class: stats.ClassBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parser{keep: true, limit: DefaultKeepLimit}
			p.reset(bufio.NewReaderSize(strings.NewReader(tt.in), readBufSize))
			r, err := p.read(tt.method)
			if got := stats.Classify(err); got != tt.class {
				t.Fatalf("error %v (class %q), want class %q", err, got, tt.class)
			}
			if err != nil {
				return
			}
			if r.status != tt.status || r.keepAlive != tt.keepAlive {
				t.Errorf("status %d keep-alive %v, want %d %v", r.status, r.keepAlive, tt.status, tt.keepAlive)
			}
			kept := tt.kept
			if kept == "" {
				kept = tt.in
			}
			if string(p.out) != kept {
				t.Errorf("kept %q, want %q", p.out, kept)
			}
			if p.n != int64(len(tt.in)) {
				t.Errorf("consumed %d bytes, want %d", p.n, len(tt.in))
			}
		})
	}
}

func TestReadResponseKeepLimit(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("b", 100)
	p := parser{keep: true, limit: 50}
	p.reset(bufio.NewReaderSize(strings.NewReader(in), readBufSize))
	if _, err := p.read(methodOther); err != nil {
		t.Fatal(err)
	}
	if string(p.out) != in[:50] || !p.trunc || p.n != int64(len(in)) {
		t.Errorf("kept %q trunc %v consumed %d", p.out, p.trunc, p.n)
	}
}

func TestReadResponseSequence(t *testing.T) {
	// Two responses back to back on one connection: the first read stops
	// exactly at its end.
	first := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	second := "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nxyz"
	br := bufio.NewReaderSize(strings.NewReader(first+second), readBufSize)
	var p parser
	for i, want := range []int{200, 202} {
		p.reset(br)
		r, err := p.read(methodOther)
		if err != nil || r.status != want {
			t.Fatalf("response %d: %v %v", i, r.status, err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("bytes left over: %v", err)
	}
}

func TestInspect(t *testing.T) {
	for raw, want := range map[string]bool{
		"GET http://h:1/p HTTP/1.1\r\nHost: h:1\r\n\r\n": true,
		"GET HTTPS://h?q HTTP/1.1\r\n\r\n":               true,
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n":              false,
		"GET /p?u=http://x HTTP/1.1\r\n\r\n":             false,
		"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n":  false,
		"OPTIONS * HTTP/1.1\r\n\r\n":                     false,
		"GET http://h/p\r\n":                             true, // HTTP/0.9-like: no version
		"GET\r\n":                                        false,
	} {
		if got := inspect([]byte(raw)).absolute; got != want {
			t.Errorf("inspect(%q): absolute %v, want %v", raw, got, want)
		}
	}
	tests := []struct {
		raw   string
		head  bool
		close bool
		host  string // "-" = none
	}{
		{"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", false, false, "a.example"},
		{"HEAD /x HTTP/1.1\r\nhOsT:   spaced.example  \r\n\r\n", true, false, "spaced.example"},
		{"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false, false, "h:443"},
		{"GET / HTTP/1.1\r\nX: 1\r\nHost: first\r\nHost: second\r\n\r\n", false, false, "first"},
		{"GET / HTTP/1.1\r\nHost:\r\n\r\n", false, false, ""},
		{"GET / HTTP/1.0\r\n\r\n", false, true, "-"},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, false, "-"},
		{"GET / HTTP/1.1\r\nConnection: Upgrade, close\r\nHost: h\r\n\r\n", false, true, "h"},
		{"POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nHost: in the body\r\n", false, false, "-"},
		{"GET / HTTP/1.1\nHost: lf\n\n", false, false, "lf"},
		{"garbage", false, false, "-"},
	}
	for _, tt := range tests {
		info := inspect([]byte(tt.raw))
		host := "-"
		if info.hostStart >= 0 {
			host = tt.raw[info.hostStart:info.hostEnd]
		}
		if (info.method == methodHead) != tt.head || info.close != tt.close || host != tt.host {
			t.Errorf("inspect(%q) = method %d close %v host %q; want head %v %v %q", tt.raw, info.method, info.close, host, tt.head, tt.close, tt.host)
		}
	}
	for raw, want := range map[string]method{
		"CONNECT h:443 HTTP/1.1\r\n\r\n":  methodConnect,
		"HEAD / HTTP/1.1\r\n\r\n":         methodHead,
		"GET / HTTP/1.1\r\n\r\n":          methodOther,
		"CONNECTX h:443 HTTP/1.1\r\n\r\n": methodOther,
		"connect h:443 HTTP/1.1\r\n\r\n":  methodOther, // methods are case-sensitive
	} {
		if got := inspect([]byte(raw)).method; got != want {
			t.Errorf("inspect(%q): method %d, want %d", raw, got, want)
		}
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"garbage",
	} {
		f.Add([]byte(s), uint8(methodOther))
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), uint8(methodHead))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), uint8(methodConnect))
	f.Fuzz(func(t *testing.T, data []byte, m uint8) {
		p := parser{keep: true, limit: 64}
		p.reset(bufio.NewReaderSize(bytes.NewReader(data), readBufSize))
		r, err := p.read(method(m % 3))
		if p.n > int64(len(data)) {
			t.Fatalf("consumed %d of %d bytes", p.n, len(data))
		}
		if len(p.out) > 64 {
			t.Fatalf("kept %d bytes over the limit", len(p.out))
		}
		if err == nil && (r.status < 100 || r.status > 999) {
			t.Fatalf("status %d accepted", r.status)
		}
		if err != nil && stats.Classify(err) == stats.ClassOther {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
