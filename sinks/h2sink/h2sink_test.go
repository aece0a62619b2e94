package h2sink

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/sinks/httpsink"
)

// seen is a request as the test server received it.
type seen struct {
	proto, method, uri, host, remote string
	header                           http.Header
	body                             string
	trailer                          http.Header
}

type recorder struct {
	mu    sync.Mutex
	reqs  []seen
	conns map[string]bool
}

func (rec *recorder) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seen{r.Proto, r.Method, r.RequestURI, r.Host, r.RemoteAddr, r.Header.Clone(), string(body), r.Trailer.Clone()})
	rec.conns[r.RemoteAddr] = true
	rec.mu.Unlock()
	switch r.URL.Path {
	case "/rst":
		panic(http.ErrAbortHandler) // RST_STREAM INTERNAL_ERROR
	case "/grpc-fail":
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "14")
		w.Header().Set("Grpc-Message", "unavailable")
		w.WriteHeader(200)
		return
	case "/slow":
		time.Sleep(50 * time.Millisecond)
	}
	w.Header().Set("Trailer", "Grpc-Status")
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
	_, _ = w.Write(body)
	w.Header().Set("Grpc-Status", "0")
}

func h2cServer(t *testing.T) (*recorder, *url.URL) {
	rec := &recorder{conns: map[string]bool{}}
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(rec.handler), &http2.Server{}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return rec, u
}

func render(t *testing.T, fields []h2text.Field, body string, trailers []h2text.Field) []byte {
	t.Helper()
	raw, err := h2text.AppendRequest(nil, fields, []byte(body), trailers)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func grpcReq(path, body string) []h2text.Field {
	return fields(":method", "POST", ":scheme", "http", ":path", path, ":authority", "recorded:50051",
		"content-type", "application/grpc", "te", "trailers", "x-tenant", "acme")
}

func run(t *testing.T, cfg Config, reqs ...httpsink.Request) ([]httpsink.Result, map[string]int64) {
	t.Helper()
	var mu sync.Mutex
	var res []httpsink.Result
	cfg.KeepResponse = true
	cfg.OnResult = func(r httpsink.Result) { mu.Lock(); res = append(res, r); mu.Unlock() }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if err := s.Send(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return res, s.Stats()
}

// TestH2C sends captured HTTP/2 requests (gRPC framing, trailers) and an
// HTTP/1.1 one over h2c prior knowledge: the server gets them as they were
// recorded, and the answers come back in h2text's form.
func TestH2C(t *testing.T) {
	rec, u := h2cServer(t)
	frame := "\x00\x00\x00\x00\x05hello"
	reqs := []httpsink.Request{
		{ID: "a", Raw: render(t, grpcReq("/pkg.Svc/Do", frame), frame, fields("x-req-trailer", "t1"))},
		{ID: "b", Raw: []byte("POST /form?x=1 HTTP/1.1\r\nHost: old\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nX-One: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{ID: "c", Raw: render(t, fields(":method", "GET", ":path", "/get", ":authority", "x", "accept", "*/*"), "", nil)},
	}
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 2}}, reqs...)
	if st["ok"] != 3 || st["errors"] != 0 {
		t.Fatalf("stats %v", st)
	}
	byURI := map[string]seen{}
	for _, s := range rec.reqs {
		byURI[s.uri] = s
	}
	g := byURI["/pkg.Svc/Do"]
	if g.proto != "HTTP/2.0" || g.method != "POST" || g.body != frame || g.host != u.Host || g.header.Get("X-Tenant") != "acme" ||
		g.header.Get("Content-Length") != "" || g.header.Get("User-Agent") != "" || g.trailer.Get("X-Req-Trailer") != "t1" || g.header.Get("Te") != "trailers" {
		t.Errorf("gRPC request as received: %+v", g)
	}
	h1 := byURI["/form?x=1"]
	if h1.body != "hello" || h1.header.Get("X-One") != "1" || h1.header.Get("Connection") != "" || h1.proto != "HTTP/2.0" {
		t.Errorf("HTTP/1.1 request as received: %+v", h1)
	}
	for _, r := range res {
		resp, err := httpraw.ParseResponse(r.Response)
		if err != nil {
			t.Fatalf("%s: %q: %v", r.ID, r.Response, err)
		}
		if r.ID == "a" {
			tr, _ := resp.Header(h2text.TrailerPrefix + "grpc-status")
			if resp.Proto() != "HTTP/2.0" || resp.StatusCode() != 200 || string(resp.Body()) != frame || tr != "0" {
				t.Errorf("response %q", r.Response)
			}
		}
	}
}

// TestMaxStreamsAndSession: 8 concurrent slow requests with max-streams 4
// use 2 connections; in session mode, each recorded connection's streams
// share one replayed connection.
func TestMaxStreamsAndSession(t *testing.T) {
	rec, u := h2cServer(t)
	var reqs []httpsink.Request
	for i := range 8 {
		reqs = append(reqs, httpsink.Request{ID: fmt.Sprint(i), ConnID: fmt.Sprintf("conn-%d", i%3),
			Raw: render(t, fields(":method", "GET", ":path", fmt.Sprintf("/slow?conn=%d", i%3), ":authority", "x"), "", nil)})
	}
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 8}, MaxStreams: 4}, reqs...)
	if st["ok"] != 8 || st["connections"] != 2 || len(rec.conns) != 2 {
		t.Fatalf("max-streams 4: stats %v, server saw %d connections", st, len(rec.conns))
	}

	rec2, u2 := h2cServer(t)
	_, st = run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u2}}, Workers: 8, Session: true}}, reqs...)
	byConn := map[string]map[string]bool{}
	for _, s := range rec2.reqs {
		if byConn[s.uri] == nil {
			byConn[s.uri] = map[string]bool{}
		}
		byConn[s.uri][s.remote] = true
	}
	if st["ok"] != 8 || len(rec2.conns) != 3 {
		t.Fatalf("session: stats %v, server saw %d connections", st, len(rec2.conns))
	}
	for uri, remotes := range byConn {
		if len(remotes) != 1 {
			t.Errorf("session: %s came over %d connections", uri, len(remotes))
		}
	}
}

// TestErrors: RST_STREAM and gRPC statuses are counted by code.
func TestErrors(t *testing.T) {
	_, u := h2cServer(t)
	get := func(p string) httpsink.Request {
		return httpsink.Request{ID: p, Raw: render(t, fields(":method", "GET", ":path", p, ":authority", "x"), "", nil)}
	}
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}}}, get("/rst"), get("/grpc-fail"), get("/ok"))
	if st["errors-rst-stream-internal_error"] != 1 || st["grpc-status-14"] != 1 || st["ok"] != 2 {
		t.Fatalf("stats %v", st)
	}
	for _, r := range res {
		if r.ID == "/rst" && (r.ErrClass != "rst-stream-internal_error" || r.Err == nil) {
			t.Errorf("rst result %+v", r)
		}
	}

	// A server that answers every connection with GOAWAY.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				_ = fr.WriteSettings()
				_ = fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, []byte("go away"))
				time.Sleep(100 * time.Millisecond)
			}()
		}
	}()
	gu, _ := url.Parse("http://" + ln.Addr().String())
	res, st = run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: gu}}, Timeout: 2 * time.Second}}, get("/x"))
	if st["errors"] != 1 || res[0].ErrClass != "goaway" {
		t.Fatalf("GOAWAY: class %q, err %v, stats %v", res[0].ErrClass, res[0].Err, st)
	}
}

// TestTLS: h2 over TLS negotiated by ALPN; a TLS target without h2 is an
// "alpn" error.
func TestTLS(t *testing.T) {
	rec := &recorder{conns: map[string]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(rec.handler))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	frame := "\x00\x00\x00\x00\x01z"
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u, CAFile: ca, ServerName: "example.com"}}}},
		httpsink.Request{ID: "1", Raw: render(t, grpcReq("/pkg.Svc/Do", frame), frame, nil)})
	if st["ok"] != 1 || len(rec.reqs) != 1 || rec.reqs[0].proto != "HTTP/2.0" || rec.reqs[0].body != frame {
		t.Fatalf("TLS h2: stats %v, received %+v", st, rec.reqs)
	}

	h1 := httptest.NewUnstartedServer(http.HandlerFunc(rec.handler))
	h1.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	h1.StartTLS()
	defer h1.Close()
	u1, _ := url.Parse(h1.URL)
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u1, InsecureSkipVerify: true}}}},
		httpsink.Request{ID: "1", Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
	if st["errors-alpn"] != 1 || !strings.Contains(res[0].Err.Error(), "ALPN") {
		t.Fatalf("TLS without h2: stats %v, err %v", st, res[0].Err)
	}
}

func fields(kv ...string) []h2text.Field {
	var out []h2text.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, h2text.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestKeepHost: a request whose Host a rewrite set (Request.KeepHost) keeps
// its :authority; the others get the target's.
func TestKeepHost(t *testing.T) {
	rec, u := h2cServer(t)
	reqs := []httpsink.Request{
		{ID: "kept", KeepHost: true, Raw: render(t, fields(":method", "GET", ":path", "/kept", ":authority", "rewritten.example:8443"), "", nil)},
		{ID: "target", Raw: render(t, fields(":method", "GET", ":path", "/target", ":authority", "recorded.example"), "", nil)},
	}
	if _, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1}}, reqs...); st["ok"] != 2 {
		t.Fatalf("stats %v", st)
	}
	hosts := map[string]string{}
	for _, s := range rec.reqs {
		hosts[s.uri] = s.host
	}
	if hosts["/kept"] != "rewritten.example:8443" || hosts["/target"] != u.Host {
		t.Errorf(":authority as received: %v, want /kept rewritten.example:8443 and /target %s", hosts, u.Host)
	}
}
