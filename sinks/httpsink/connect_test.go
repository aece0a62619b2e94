package httpsink

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// TestConnectAnswer: a 2xx answer to CONNECT ends at its head (RFC 9110
// §9.3.6: the connection is a tunnel from there; a Content-Length in it is
// ignored), is counted as an answer, and its connection is closed, not
// reused for the next request; on every path to the wire.
func TestConnectAnswer(t *testing.T) {
	const connect = "CONNECT upstream.example:443 HTTP/1.1\r\nHost: upstream.example:443\r\n\r\n"
	for name, head := range map[string]string{
		"no length":  "HTTP/1.1 200 Connection established\r\n\r\n",
		"length 0":   "HTTP/1.1 200 Connection established\r\nContent-Length: 0\r\n\r\n",
		"length 5":   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"chunked":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"keep-alive": "HTTP/1.0 200 Connection established\r\nConnection: keep-alive\r\n\r\n",
	} {
		for _, m := range models {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				// The proxy answers CONNECT, then says hello through the
				// tunnel (bytes of no response) and keeps it open.
				srv := newRawServer(t, func(c net.Conn, req []byte) bool {
					if bytes.HasPrefix(req, []byte("CONNECT ")) {
						_, err := c.Write([]byte(head + "hello"))
						return err == nil
					}
					_, err := c.Write([]byte(okResponse))
					return err == nil
				})
				cfg := m.cfg
				cfg.Targets = []Target{{URL: srv.url()}}
				cfg.Timeout = 5 * time.Second
				s, col := newSender(t, cfg)
				start := time.Now()
				mustSend(t, s, Request{Raw: []byte(connect), ID: "connect", ConnID: "c"})
				// Answered first (the open model would else open another
				// connection for the next request anyway).
				waitFor(t, "the CONNECT answer", func() bool { return len(col.all()) == 1 })
				mustSend(t, s, Request{Raw: []byte("GET /after HTTP/1.1\r\nHost: x\r\n\r\n"), ID: "after", ConnID: "c"})
				mustClose(t, s)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("took %v: the CONNECT answer was read as if a body followed", d)
				}
				for _, r := range col.all() {
					want := int64(len(okResponse))
					if r.ID == "connect" {
						want = int64(len(head))
					}
					if r.Err != nil || r.Status != 200 || r.BytesIn != want {
						t.Errorf("%s: err %v status %d bytes in %d, want 200 and %d bytes", r.ID, r.Err, r.Status, r.BytesIn, want)
					}
				}
				got := srv.received()
				switch {
				case len(got) != 2:
					t.Errorf("the server got %d requests, want 2", len(got))
				case got[1].conn == got[0].conn:
					t.Errorf("the request after CONNECT went into the tunnel (connection %d): want a new connection", got[1].conn)
				}
				if st := s.Stats(); st["ok"] != 2 || st["errors"] != 0 {
					t.Errorf("stats %v", st)
				}
			})
		}
	}
}

// TestNoBodyAnswers: the answers to HEAD, a 204, a 304 and a refused
// CONNECT's (not a tunnel) end where they should, whatever their
// Content-Length says, and the connection carries the next request.
func TestNoBodyAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, req, resp string
		status          int
	}{
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200},
		{"204", "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 204},
		{"304", "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 304},
		{"CONNECT refused", "CONNECT u:443 HTTP/1.1\r\nHost: u:443\r\n\r\n", "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nauth", 407},
	} {
		for _, m := range models {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				srv := newRawServer(t, func(c net.Conn, req []byte) bool {
					resp := okResponse
					if line, _, _ := bytes.Cut(req, []byte("\r\n")); strings.HasPrefix(tc.req, string(line)+"\r\n") {
						resp = tc.resp
					}
					_, err := c.Write([]byte(resp))
					return err == nil
				})
				cfg := m.cfg
				cfg.Targets = []Target{{URL: srv.url()}}
				s, col := newSender(t, cfg)
				mustSend(t, s, Request{Raw: []byte(tc.req), ID: "first", ConnID: "c"})
				waitFor(t, "the first answer", func() bool { return len(col.all()) == 1 })
				mustSend(t, s, Request{Raw: []byte("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"), ID: "next", ConnID: "c"})
				mustClose(t, s)
				for _, r := range col.all() {
					status, in := 200, len(okResponse)
					if r.ID == "first" {
						status, in = tc.status, len(tc.resp)
					}
					if r.Err != nil || r.Status != status || r.BytesIn != int64(in) {
						t.Errorf("%s: err %v status %d bytes in %d, want %d and %d bytes", r.ID, r.Err, r.Status, r.BytesIn, status, in)
					}
				}
				if n := srv.accepted.Load(); n != 1 {
					t.Errorf("%d connections, want 1 (kept alive)", n)
				}
			})
		}
	}
}
