//go:build linux

package httpsink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/replayctl/replayctl/stats"
)

func TestLoopUsedForPlainClosedModel(t *testing.T) {
	plain := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	tls := &url.URL{Scheme: "https", Host: "127.0.0.1:1"}
	tests := []struct {
		name string
		cfg  Config
		loop bool
	}{
		{"plain closed", Config{Targets: []Target{{URL: plain}}, Workers: 5}, true},
		{"mirror", Config{Targets: []Target{{URL: plain, Name: "a"}, {URL: plain, Name: "b"}}, Mode: ModeMirror}, true},
		{"tls", Config{Targets: []Target{{URL: tls}}}, false},
		{"plain and tls", Config{Targets: []Target{{URL: plain, Name: "a"}, {URL: tls, Name: "b"}}, Mode: ModeSplit}, false},
		{"sessions", Config{Targets: []Target{{URL: plain}}, Session: true}, false},
		{"open", Config{Targets: []Target{{URL: plain}}, Open: true}, false},
		{"responses kept (compare)", Config{Targets: []Target{{URL: plain}}, Workers: 5, KeepResponse: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSender(t, tt.cfg)
			defer mustClose(t, s)
			if got := s.loops != nil; got != tt.loop {
				t.Fatalf("event loops %v, want %v", got, tt.loop)
			}
			if tt.loop {
				slots := 0
				for _, l := range s.loops {
					slots += len(l.slots)
				}
				if slots != s.cfg.Workers {
					t.Errorf("%d slots for %d workers", slots, s.cfg.Workers)
				}
			}
		})
	}
}

// dribble writes resp in pieces of n bytes with a pause between them, so
// that the loop parses a response arriving over several reads.
func dribble(c net.Conn, resp string, n int) bool {
	for len(resp) > 0 {
		k := min(n, len(resp))
		if _, err := c.Write([]byte(resp[:k])); err != nil {
			return false
		}
		resp = resp[k:]
		time.Sleep(200 * time.Microsecond)
	}
	return true
}

func chunkedBody(body string, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\nX-Trailer: 1\r\n\r\n")
	return b.String()
}

func TestLoopResponses(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 20<<10) // 320 KiB: many reads, past the buffer
	tests := []struct {
		name     string
		resp     string
		piece    int  // dribble size; 0 = one write
		head     bool // the request is a HEAD
		closes   bool // the server closes after answering
		status   int
		keepConn bool // the connection is reused for the next request
		kept     string
	}{
		{name: "content-length", resp: okResponse, status: 200, keepConn: true},
		{name: "content-length dribbled", resp: "HTTP/1.1 201 Created\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world", piece: 3, status: 201, keepConn: true},
		{name: "chunked dribbled", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody("hello chunked world", 4), piece: 5, status: 200, keepConn: true},
		{name: "big content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, piece: 50 << 10, status: 200, keepConn: true},
		{name: "big chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(big, 7000), piece: 30 << 10, status: 200, keepConn: true},
		{name: "interim then final", resp: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", piece: 10, status: 204, keepConn: true, kept: "HTTP/1.1 204 No Content\r\n\r\n"},
		{name: "head", resp: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head: true, status: 200, keepConn: true},
		{name: "body to close", resp: "HTTP/1.1 200 OK\r\n\r\nuntil the end", piece: 4, closes: true, status: 200},
		{name: "connection close", resp: "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy", closes: true, status: 503},
		{name: "http/1.0", resp: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", closes: true, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
				ok := true
				if tt.piece > 0 {
					ok = dribble(c, tt.resp, tt.piece)
				} else {
					_, err := c.Write([]byte(tt.resp))
					ok = err == nil
				}
				return ok && !tt.closes
			})
			s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, KeepResponse: true})
			method := "GET"
			if tt.head {
				method = "HEAD"
			}
			const n = 3
			for range n {
				mustSend(t, s, Request{Raw: []byte(method + " / HTTP/1.1\r\nHost: x\r\n\r\n")})
			}
			mustClose(t, s)
			kept := tt.kept
			if kept == "" {
				kept = tt.resp
			}
			for i, r := range col.all() {
				if r.Err != nil || r.Status != tt.status || r.BytesIn != int64(len(tt.resp)) {
					t.Fatalf("result %d: err %v status %d bytes in %d, want %d and %d bytes", i, r.Err, r.Status, r.BytesIn, tt.status, len(tt.resp))
				}
				if string(r.Response) != kept {
					t.Errorf("result %d: kept %d bytes %.60q, want %d bytes", i, len(r.Response), r.Response, len(kept))
				}
			}
			want := int64(n)
			if tt.keepConn {
				want = 1
			}
			if got := srv.accepted.Load(); got != want {
				t.Errorf("%d connections, want %d", got, want)
			}
			if st := s.Stats(); st["ok"] != n || st["retries"] != 0 {
				t.Errorf("stats %v", st)
			}
		})
	}
}

func TestLoopFailures(t *testing.T) {
	dead := func(t *testing.T) *url.URL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u := &url.URL{Scheme: "http", Host: ln.Addr().String()}
		_ = ln.Close()
		return u
	}
	tests := []struct {
		name    string
		target  func(t *testing.T) *url.URL
		raw     []byte
		class   string
		errText string
	}{
		{"refused", dead, nil, stats.ClassConnectRefused, "connect: connection refused"},
		{"never answers", func(t *testing.T) *url.URL {
			return newRawServer(t, func(net.Conn, []byte) bool { time.Sleep(400 * time.Millisecond); return false }).url()
		}, nil, stats.ClassTimeout, "read response: read tcp"},
		{"never reads a large request", func(t *testing.T) *url.URL {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { <-stop; _ = c.Close() }()
				}
			}()
			t.Cleanup(func() { close(stop); _ = ln.Close() })
			return &url.URL{Scheme: "http", Host: ln.Addr().String()}
		}, []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n" + strings.Repeat("z", 20_000_000)), stats.ClassTimeout, "write request: write tcp"},
		{"bad response", func(t *testing.T) *url.URL {
			return newRawServer(t, answer("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")).url()
		}, nil, stats.ClassBadResponse, "content-length"},
		{"line too long", func(t *testing.T) *url.URL {
			return newRawServer(t, answer("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", readBufSize)+"\r\n\r\n")).url()
		}, nil, stats.ClassBadResponse, "line longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == nil {
				raw = []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			}
			timeout := 150 * time.Millisecond
			s, col := newSender(t, Config{Targets: []Target{{URL: tt.target(t)}}, Workers: 2, Timeout: timeout})
			if s.loops == nil {
				t.Fatal("no event loop")
			}
			for range 3 {
				mustSend(t, s, Request{Raw: raw})
			}
			mustClose(t, s)
			res := col.all()
			if len(res) != 3 {
				t.Fatalf("%d results", len(res))
			}
			for _, r := range res {
				if r.Err == nil || r.ErrClass != tt.class {
					t.Errorf("err %v class %q, want %q", r.Err, r.ErrClass, tt.class)
				}
				if r.Err != nil && !strings.Contains(r.Err.Error(), tt.errText) {
					t.Errorf("err %q, want it to say %q", r.Err, tt.errText)
				}
				if tt.class == stats.ClassConnectRefused && r.Connect == 0 {
					t.Error("no connect time")
				}
				if strings.HasPrefix(tt.errText, "read") && r.Latency < timeout {
					t.Errorf("timed out after %v, before the timeout %v", r.Latency, timeout)
				}
			}
			if st := s.Stats(); st["errors-"+tt.class] != 3 || st["sent"] != 3 {
				t.Errorf("stats %v", st)
			}
		})
	}
}

// TestLoopEarlyAnswer: a server that answers a large upload after its head
// (413) and then reads the body: the answer arrives while the loop is still
// writing, and is read when the write is done, not left to the timeout.
func TestLoopEarlyAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		w.(http.Flusher).Flush()
		_, _ = io.Copy(io.Discard, r.Body)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s, col := newSender(t, Config{Targets: []Target{{URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}}}, Workers: 1, Timeout: 5 * time.Second})
	if s.loops == nil {
		t.Fatal("no event loop")
	}
	mustSend(t, s, Request{Raw: []byte("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n" + strings.Repeat("u", 8_000_000))})
	mustClose(t, s)
	res := col.all()
	if len(res) != 1 || res[0].Err != nil || res[0].Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("results %+v", res)
	}
	if res[0].Latency >= 5*time.Second {
		t.Errorf("answered at the timeout: %v", res[0].Latency)
	}
}

// TestLoopStopDropsAtOnce: Stop drops the queued requests at once, even
// while every slot waits for an answer that never comes; the requests on
// the wire end at their timeout.
func TestLoopStopDropsAtOnce(t *testing.T) {
	var arrived atomic.Int64
	release := make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
		arrived.Add(1)
		<-release
		return false
	})
	defer close(release)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 4, QueueSize: 40, Timeout: 3 * time.Second})
	for range 40 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	for deadline := time.Now().Add(10 * time.Second); arrived.Load() < 4; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests arrived, want 4", arrived.Load())
		}
	}
	t0 := time.Now()
	s.Stop()
	for deadline := time.Now().Add(2 * time.Second); s.Stats()["dropped-on-stop"] < 36; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %v: the queued requests were not dropped at once", s.Stats())
		}
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("dropped after %v", d)
	}
	if err := s.Send(context.Background(), Request{Raw: []byte("GET / HTTP/1.1\r\n\r\n")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Send after Stop: %v", err)
	}
	mustClose(t, s)
	st := s.Stats()
	if st["sent"] != 4 || st["errors-timeout"] != 4 || st["dropped-on-stop"] != 36 || len(col.all()) != 40 || arrived.Load() != 4 {
		t.Errorf("stats %v, %d results, %d arrived", st, len(col.all()), arrived.Load())
	}
}

// TestLoopManyRequests: a net/http target, 32 slots, every request
// answered once, over as many connections as slots.
func TestLoopManyRequests(t *testing.T) {
	var served, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s", r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	var bad atomic.Int64
	s, _ := newSender(t, Config{Targets: []Target{{URL: u}}, Workers: 32, KeepResponse: true, OnResult: func(r Result) {
		if r.Err != nil || r.Status != 200 || !bytes.HasSuffix(r.Response, []byte("/"+r.ID)) {
			bad.Add(1)
		}
	}})
	const n = 5000
	for i := range n {
		id := strconv.Itoa(i)
		mustSend(t, s, Request{ID: id, Raw: []byte("GET /" + id + " HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	mustClose(t, s)
	if st := s.Stats(); st["ok"] != n || bad.Load() != 0 || served.Load() != n || conns.Load() > 32 {
		t.Errorf("stats %v, %d bad, %d served, %d connections", st, bad.Load(), served.Load(), conns.Load())
	}
}

// FuzzParserFeed: a response fed to the parser as the event loop does, in
// pieces of any size, parses exactly as when read whole from a
// bufio.Reader.
func FuzzParserFeed(f *testing.F) {
	for _, s := range []string{
		okResponse,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.0 200 OK\r\n\r\nto the end",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", readBufSize) + "\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 3\n\nabcEXTRA",
	} {
		f.Add([]byte(s), uint8(7), uint8(methodOther))
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), uint8(5), uint8(methodConnect))
	f.Fuzz(func(t *testing.T, in []byte, piece uint8, m uint8) {
		meth := method(m % 3)
		want := parser{keep: true, limit: 1 << 10}
		want.reset(bufio.NewReaderSize(bytes.NewReader(in), readBufSize))
		wr, werr := want.read(meth)

		sl := &lslot{p: parser{keep: true, limit: 1 << 10}, buf: make([]byte, readBufSize)}
		sl.p.reset(nil)
		sl.p.begin(meth)
		var (
			done bool
			err  error
		)
		step := int(piece)%97 + 1
		for off := 0; !done && err == nil; {
			if off == len(in) {
				err = sl.p.eof(sl.wr > sl.rd)
				done = err == nil
				break
			}
			k := min(step, len(in)-off, len(sl.buf)-sl.wr)
			copy(sl.buf[sl.wr:], in[off:off+k])
			off += k
			done, err = sl.parse(k)
		}
		if stats.Classify(err) != stats.Classify(werr) {
			t.Fatalf("feed: %v; read: %v", err, werr)
		}
		if err != nil {
			return
		}
		if sl.p.resp != wr || sl.p.n != want.n || !bytes.Equal(sl.p.out, want.out) || sl.p.trunc != want.trunc {
			t.Fatalf("feed: %+v n %d kept %q; read: %+v n %d kept %q", sl.p.resp, sl.p.n, sl.p.out, wr, want.n, want.out)
		}
	})
}

// TestLoopSockaddr: the loop's own connect passes an IPv6 zone as the scope
// ID (by interface name or number) and maps IPv4 as IPv4.
func TestLoopSockaddr(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr   string
		family int
		zone   uint32
		err    bool
	}{
		{"127.0.0.1:80", unix.AF_INET, 0, false},
		{"[::ffff:127.0.0.1]:80", unix.AF_INET, 0, false},
		{"[::1]:80", unix.AF_INET6, 0, false},
		{"[fe80::1%lo]:80", unix.AF_INET6, uint32(lo.Index), false},
		{"[fe80::1%7]:80", unix.AF_INET6, 7, false},
		{"[fe80::1%no-such-interface]:80", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			family, sa, err := sockaddr(netip.MustParseAddrPort(tt.addr))
			if tt.err {
				if err == nil {
					t.Fatalf("no error for %s", tt.addr)
				}
				return
			}
			if err != nil || family != tt.family {
				t.Fatalf("family %d, err %v; want %d", family, err, tt.family)
			}
			if s6, ok := sa.(*unix.SockaddrInet6); ok && s6.ZoneId != tt.zone {
				t.Errorf("scope ID %d, want %d", s6.ZoneId, tt.zone)
			}
			if s4, ok := sa.(*unix.SockaddrInet4); ok && (s4.Port != 80 || s4.Addr != [4]byte{127, 0, 0, 1}) {
				t.Errorf("IPv4 sockaddr %+v", s4)
			}
		})
	}
}

// TestLoopIPv6ZoneTarget replays through the loop to a target given as
// [::1%lo]: the address with its zone is used as it is, not looked up.
func TestLoopIPv6ZoneTarget(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("no IPv6 loopback (::1 on lo) to listen on: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	u := &url.URL{Scheme: "http", Host: fmt.Sprintf("[::1%%lo]:%d", port)}
	s, col := newSender(t, Config{Targets: []Target{{URL: u}}, Workers: 2})
	if !s.useLoops() {
		t.Fatal("not on the event loops")
	}
	for i := range 5 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: strconv.Itoa(i)})
	}
	mustClose(t, s)
	for _, r := range col.all() {
		if r.Err != nil || r.Status != 200 {
			t.Errorf("request %s: status %d, %v", r.ID, r.Status, r.Err)
		}
	}
	if n := len(col.all()); n != 5 {
		t.Errorf("%d results, want 5", n)
	}
}
