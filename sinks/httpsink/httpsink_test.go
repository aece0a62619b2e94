package httpsink

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/stats"
)

// recorded requests as they might come out of a capture, quirks included.
var recorded = []string{
	"GET /a?x=1 HTTP/1.1\r\nhOsT: prod.example:8080\r\nX-Odd-CASE: Value\r\nAccept: */*\r\n\r\n",
	"GET /b HTTP/1.1\r\nX-First: 1\r\nCookie: a=1\r\nHost:   prod.example  \r\nCookie: b=2\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n",
	"GET http://prod.example/abs/form HTTP/1.1\r\nHost: prod.example\r\nUser-Agent: curl/8\r\n\r\n",
	"POST /upload HTTP/1.1\r\nHost: prod.example\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
	"PUT /put HTTP/1.1\r\nContent-Length: 11\r\nHost: prod.example\r\n\r\nHost: nope\n",
	"OPTIONS * HTTP/1.1\r\nHost: prod.example\r\nHost: second.example\r\n\r\n",
}

func TestBytesOnTheWire(t *testing.T) {
	for _, preserve := range []bool{true, false} {
		t.Run(fmt.Sprintf("preserve-host=%v", preserve), func(t *testing.T) {
			srv := newRawServer(t, answer(okResponse))
			s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, PreserveHost: preserve})
			for i, r := range recorded {
				mustSend(t, s, Request{Raw: []byte(r), ID: fmt.Sprint(i)})
			}
			mustClose(t, s)
			got := srv.received()
			if len(got) != len(recorded) {
				t.Fatalf("server got %d requests, want %d", len(got), len(recorded))
			}
			host := srv.ln.Addr().String()
			for i, r := range recorded {
				want := r
				if !preserve {
					info := inspect([]byte(r))
					want = r[:info.hostStart] + host + r[info.hostEnd:]
					lines := 1
					if info.absolute { // and the request line's authority
						want = strings.Replace(want, " http://prod.example/", " http://"+host+"/", 1)
						lines = 2
					}
					// Exactly one line differs, and it is the Host line
					// (and the request line of an absolute-form target).
					gl, wl := strings.Split(string(got[i].raw), "\n"), strings.Split(r, "\n")
					diff := 0
					for j := range min(len(gl), len(wl)) {
						if gl[j] != wl[j] {
							diff++
							if j == 0 && info.absolute {
								continue
							}
							if !strings.HasPrefix(strings.ToLower(gl[j]), "host:") || !strings.Contains(gl[j], host) {
								t.Errorf("request %d: changed line %q", i, gl[j])
							}
						}
					}
					if diff != lines || len(gl) != len(wl) {
						t.Errorf("request %d: %d lines changed, want %d", i, diff, lines)
					}
				}
				if string(got[i].raw) != want {
					t.Errorf("request %d on the wire:\n%q\nwant\n%q", i, got[i].raw, want)
				}
			}
			if n := srv.accepted.Load(); n != 1 {
				t.Errorf("%d connections accepted, want 1 (keep-alive)", n)
			}
			res := col.all()
			for _, r := range res {
				if r.Err != nil || r.Status != 200 {
					t.Errorf("result %s: %v %d", r.ID, r.Err, r.Status)
				}
			}
			st := s.Stats()
			var out int64
			for _, g := range got {
				out += int64(len(g.raw))
			}
			if st["sent"] != 6 || st["ok"] != 6 || st["bytes-out"] != out || st["bytes-in"] != 6*int64(len(okResponse)) {
				t.Errorf("stats %v (bytes on the wire %d)", st, out)
			}
		})
	}
}

func TestKeepAliveReuse(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 4})
	for i := range 200 {
		mustSend(t, s, Request{Raw: []byte("GET /" + fmt.Sprint(i) + " HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	mustClose(t, s)
	if n := srv.accepted.Load(); n < 1 || n > 4 {
		t.Errorf("%d connections for 200 requests and 4 workers", n)
	}
	if n := len(col.all()); n != 200 {
		t.Errorf("%d results", n)
	}

	// A server that closes after each response (Connection: close) and
	// requests asking to close: a new connection each time, no errors.
	srv = newRawServer(t, func(c net.Conn, _ []byte) bool {
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		return false
	})
	s, _ = newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1})
	for range 5 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	mustClose(t, s)
	if st := s.Stats(); st["ok"] != 5 || st["retries"] != 0 || srv.accepted.Load() != 5 {
		t.Errorf("stats %v, %d connections", st, srv.accepted.Load())
	}
}

func TestSessions(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 3, Session: true})
	const sessions, each = 7, 10
	for i := range each {
		for sess := range sessions {
			raw := fmt.Sprintf("GET /s%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", sess, i)
			mustSend(t, s, Request{Raw: []byte(raw), ConnID: fmt.Sprintf("conn-%d", sess)})
		}
	}
	mustClose(t, s)
	if n := srv.accepted.Load(); n != sessions {
		t.Errorf("%d connections, want one per session (%d)", n, sessions)
	}
	// Each replay connection carries one session's requests, in order.
	bySess := map[string]int64{}
	next := map[int64]int{}
	for _, r := range srv.received() {
		var sess, i int
		if _, err := fmt.Sscanf(string(r.raw), "GET /s%d/%d ", &sess, &i); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(sess)
		if c, ok := bySess[key]; ok && c != r.conn {
			t.Errorf("session %d on connections %d and %d", sess, c, r.conn)
		}
		bySess[key] = r.conn
		if i != next[r.conn] {
			t.Errorf("session %d: request %d arrived, want %d", sess, i, next[r.conn])
		}
		next[r.conn] = i + 1
	}
	if n := len(col.all()); n != sessions*each {
		t.Errorf("%d results", n)
	}
}

func TestMirrorAndSplit(t *testing.T) {
	a, b := newRawServer(t, answer(okResponse)), newRawServer(t, answer(okResponse))
	targets := []Target{{URL: a.url(), Name: "a"}, {URL: b.url(), Name: "b"}}

	s, col := newSender(t, Config{Targets: targets, Mode: ModeMirror, Workers: 4})
	for i := range 20 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: fmt.Sprint(i)})
	}
	mustClose(t, s)
	if na, nb := len(a.received()), len(b.received()); na != 20 || nb != 20 {
		t.Errorf("mirror: a got %d, b got %d, want 20 each", na, nb)
	}
	tags := map[string]int{}
	for _, r := range col.all() {
		tags[r.Target]++
	}
	if tags["a"] != 20 || tags["b"] != 20 {
		t.Errorf("mirror results by target %v", tags)
	}

	split := func() map[string]string {
		s, col := newSender(t, Config{Targets: targets, Mode: ModeSplit, Workers: 4})
		for i := range 200 {
			mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ConnID: fmt.Sprint("c", i%50), ID: fmt.Sprint(i)})
		}
		mustClose(t, s)
		where := map[string]string{}
		for _, r := range col.all() {
			if w, ok := where[r.ConnID]; ok && w != r.Target {
				t.Errorf("split: connection %s went to %s and %s", r.ConnID, w, r.Target)
			}
			where[r.ConnID] = r.Target
		}
		return where
	}
	first, second := split(), split()
	count := map[string]int{}
	for k, v := range first {
		count[v]++
		if second[k] != v {
			t.Errorf("split not consistent across runs: %s → %s then %s", k, v, second[k])
		}
	}
	if count["a"] < 10 || count["b"] < 10 {
		t.Errorf("split distribution %v over 50 connections", count)
	}

	// Rendezvous hashing: dropping target b moves only b's connections.
	s3, err := New(Config{Targets: append(targets, Target{URL: a.url(), Name: "c"}), Mode: ModeSplit})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s3.Close(context.Background()) }()
	for k, v := range first {
		if got := s3.targets[s3.pick(k)].name; got != v && got != "c" {
			t.Errorf("adding a target moved %s from %s to %s", k, v, got)
		}
	}
}

func TestFailures(t *testing.T) {
	dead := func() *url.URL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u := &url.URL{Scheme: "http", Host: ln.Addr().String()}
		_ = ln.Close()
		return u
	}
	tests := []struct {
		name   string
		target func(t *testing.T) *url.URL
		class  string
	}{
		{"refused", func(t *testing.T) *url.URL { return dead() }, stats.ClassConnectRefused},
		{"timeout", func(t *testing.T) *url.URL {
			return newRawServer(t, func(net.Conn, []byte) bool { time.Sleep(300 * time.Millisecond); return false }).url()
		}, stats.ClassTimeout},
		{"reset mid-response", func(t *testing.T) *url.URL {
			return newRawServer(t, func(c net.Conn, _ []byte) bool {
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
				time.Sleep(10 * time.Millisecond)
				_ = c.(*net.TCPConn).SetLinger(0)
				return false
			}).url()
		}, stats.ClassReset},
		{"closed mid-response", func(t *testing.T) *url.URL {
			return newRawServer(t, func(c net.Conn, _ []byte) bool {
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Le"))
				return false
			}).url()
		}, stats.ClassReset},
		{"garbage", func(t *testing.T) *url.URL { return newRawServer(t, answer("SSH-2.0-OpenSSH\r\n\r\n")).url() }, stats.ClassBadResponse},
		{"tls to plain server", func(t *testing.T) *url.URL {
			// A plain-text server that speaks first, as soon as it accepts.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
					// Read what the client sends until it gives up, so
					// closing does not reset the connection.
					_ = c.SetDeadline(time.Now().Add(time.Second))
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}
			}()
			t.Cleanup(func() { _ = ln.Close(); <-done })
			return &url.URL{Scheme: "https", Host: ln.Addr().String()}
		}, stats.ClassTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := 2 * time.Second
			if tt.class == stats.ClassTimeout {
				timeout = 150 * time.Millisecond
			}
			s, col := newSender(t, Config{Targets: []Target{{URL: tt.target(t)}}, Workers: 2, Timeout: timeout})
			for range 3 {
				mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
			}
			mustClose(t, s)
			res := col.all()
			if len(res) != 3 {
				t.Fatalf("%d results, want 3", len(res))
			}
			for _, r := range res {
				if r.Err == nil || r.ErrClass != tt.class {
					t.Errorf("result: err %v class %q, want %q", r.Err, r.ErrClass, tt.class)
				}
			}
			if st := s.Stats(); st["errors"] != 3 || st["errors-"+tt.class] != 3 || st["sent"] != 3 {
				t.Errorf("stats %v", st)
			}
		})
	}
}

func TestTargetDownMidRun(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1})
	req := Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
	for range 5 {
		mustSend(t, s, req)
	}
	for len(col.all()) < 5 {
		time.Sleep(time.Millisecond)
	}
	srv.stop() // listener and the pooled connection close
	for range 5 {
		mustSend(t, s, req)
	}
	mustClose(t, s)
	st := s.Stats()
	if st["ok"] != 5 || st["errors"] != 5 || st["errors-connect-refused"] != 5 || st["retries"] != 1 {
		t.Errorf("stats %v", st)
	}
	res := col.all()
	if !res[5].Retried || res[5].ErrClass != stats.ClassConnectRefused {
		t.Errorf("first request after the stop: retried %v class %q", res[5].Retried, res[5].ErrClass)
	}
}

func TestStalePooledConnRetried(t *testing.T) {
	// The server closes idle connections after each response without
	// saying so: the next request on the pooled connection fails before
	// any response byte and is sent again on a new connection.
	srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
		_, _ = c.Write([]byte(okResponse))
		return false
	})
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1})
	for range 4 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
		time.Sleep(5 * time.Millisecond) // let the close arrive
	}
	mustClose(t, s)
	if st := s.Stats(); st["ok"] != 4 || st["retries"] != 3 {
		t.Errorf("stats %v", st)
	}
	if r := col.all(); r[0].Retried || !r[1].Retried || r[1].Connect == 0 {
		t.Errorf("results %+v", r)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "host=%s", r.Host)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.StartTLS()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target Target
		class  string
	}{
		{"verified with CA", Target{CAFile: ca}, ""},
		{"verified with CA and server name", Target{CAFile: ca, ServerName: "example.com"}, ""},
		{"wrong server name", Target{CAFile: ca, ServerName: "wrong.example"}, stats.ClassTLS},
		{"unknown authority", Target{}, stats.ClassTLS},
		{"insecure skip verify", Target{InsecureSkipVerify: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			target.URL = u
			s, col := newSender(t, Config{Targets: []Target{target}, KeepResponse: true})
			mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: prod.example\r\n\r\n")})
			mustClose(t, s)
			r := col.all()[0]
			if r.ErrClass != tt.class {
				t.Fatalf("err %v class %q, want %q", r.Err, r.ErrClass, tt.class)
			}
			if tt.class == "" && (r.Status != 200 || !bytes.HasSuffix(r.Response, []byte("host="+u.Host))) {
				t.Errorf("status %d response %q", r.Status, r.Response)
			}
		})
	}
	if _, err := New(Config{Targets: []Target{{URL: u, CAFile: filepath.Join(t.TempDir(), "missing.pem")}}}); err == nil {
		t.Error("missing CA file accepted")
	}
}

func TestKeepResponseAndExpected(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
	srv := newRawServer(t, answer(resp))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, KeepResponse: true})
	exp := &message.Message{Kind: message.Response, ID: "id1", Raw: []byte("HTTP/1.1 200 OK\r\n\r\n")}
	sched := time.Now()
	mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: "id1", ConnID: "c1", Scheduled: sched, Expected: exp})
	mustClose(t, s)
	r := col.all()[0]
	if string(r.Response) != resp || r.Expected != exp || r.ID != "id1" || r.ConnID != "c1" || !r.Scheduled.Equal(sched) ||
		r.Start.Before(sched) || r.Latency <= 0 || r.BytesIn != int64(len(resp)) {
		t.Errorf("result %+v", r)
	}
}

func TestSinkAdapterAndLifecycle(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}})
	ctx := context.Background()
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := s.Write(ctx, &message.Message{Kind: message.Request, ID: "r", Raw: raw}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, &message.Message{Kind: message.Response, ID: "r", Raw: []byte(okResponse)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, Request{}); !errors.Is(err, ErrEmptyRequest) {
		t.Errorf("empty request: %v", err)
	}
	mustClose(t, s)
	if err := s.Send(ctx, Request{Raw: raw}); !errors.Is(err, ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second close: %v", err)
	}
	st := s.Stats()
	if st["ok"] != 1 || st["skipped-non-request"] != 1 || st["invalid"] != 1 || len(col.all()) != 1 {
		t.Errorf("stats %v", st)
	}
}

func TestCloseCanceled(t *testing.T) {
	var answered atomic.Int64
	srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
		time.Sleep(20 * time.Millisecond)
		answered.Add(1)
		_, err := c.Write([]byte(okResponse))
		return err == nil
	})
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, QueueSize: 50})
	for range 50 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close: %v", err)
	}
	st := s.Stats()
	if len(col.all()) != 50 || st["sent"] != 50 || st["errors-canceled"] == 0 || st["ok"]+st["errors"] != 50 {
		t.Errorf("stats %v, %d results", st, len(col.all()))
	}
}

// TestDropQueued: after Stop (Ctrl-C) the request on the wire gets
// its answer, and the queued ones are dropped and counted, never sent.
func TestDropQueued(t *testing.T) {
	var arrived atomic.Int64
	release := make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
		arrived.Add(1)
		<-release
		_, err := c.Write([]byte(okResponse))
		return err == nil
	})
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, QueueSize: 10})
	for range 10 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	for deadline := time.Now().Add(10 * time.Second); arrived.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first request did not arrive")
		}
	}
	s.Stop()
	close(release)
	mustClose(t, s)
	st := s.Stats()
	var dropped int
	for _, r := range col.all() {
		if r.Dropped() {
			dropped++
		}
	}
	if n := arrived.Load(); n != 1 || st["sent"] != 1 || st["ok"] != 1 || st["dropped-on-stop"] != 9 || len(col.all()) != 10 || dropped != 9 {
		t.Errorf("arrived %d, stats %v, %d results; want 1 answered and 9 dropped", n, st, len(col.all()))
	}
}

func TestSendBackpressure(t *testing.T) {
	release := make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
		<-release
		_, err := c.Write([]byte(okResponse))
		return err == nil
	})
	s, _ := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, QueueSize: 2})
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var err error
	for range 10 {
		if err = s.Send(ctx, Request{Raw: raw}); err != nil {
			break
		}
	}
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("full queue: %v, want deadline exceeded", err)
	}
	mustClose(t, s)
}

func TestNewRejects(t *testing.T) {
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	for _, cfg := range []Config{
		{},
		{Targets: []Target{{URL: u}, {URL: u, Name: "b"}}},
		{Targets: []Target{{URL: u}}, Mode: "broadcast"},
		{Targets: []Target{{URL: &url.URL{Scheme: "ftp", Host: "x"}}}},
		{Targets: []Target{{URL: &url.URL{Scheme: "http"}}}},
		{Targets: []Target{{URL: u, Name: "a"}, {URL: u, Name: "a"}}, Mode: ModeMirror},
	} {
		if s, err := New(cfg); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// BenchmarkSender measures requests/s through the sender to a loopback
// server answering a fixed response.
func BenchmarkSender(b *testing.B) {
	u := fastServer(b)
	var done atomic.Int64
	s, err := New(Config{Targets: []Target{{URL: u}}, Workers: 8, OnResult: func(Result) { done.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte("GET /bench HTTP/1.1\r\nHost: prod.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.Send(ctx, Request{Raw: raw}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "req/s")
	if st := s.Stats(); st["errors"] != 0 {
		b.Fatalf("stats %v", st)
	}
}

// fastServer answers every bodiless request (each "\r\n\r\n") with
// okResponse, allocation-free, so the benchmark measures the sender.
func fastServer(b *testing.B) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				buf := make([]byte, 32<<10)
				out := make([]byte, 0, 64<<10)
				state := 0 // bytes of "\r\n\r\n" matched so far
				const end = "\r\n\r\n"
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					out = out[:0]
					for _, ch := range buf[:n] {
						switch {
						case ch == end[state]:
							state++
						case ch == '\r':
							state = 1
						default:
							state = 0
						}
						if state == 4 {
							state = 0
							out = append(out, okResponse...)
						}
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

func TestNetHTTPServer(t *testing.T) {
	// Interoperability with Go's own server, over one keep-alive connection.
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			for _, part := range []string{"one,", "two,", "three"} {
				_, _ = io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/cached":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(body)+5))
			_, _ = fmt.Fprintf(w, "echo:%s", body)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	s, col := newSender(t, Config{Targets: []Target{{URL: u}}, Workers: 1, KeepResponse: true})
	tests := []struct {
		raw    string
		status int
		suffix string
	}{
		{"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n", 200, "0\r\n\r\n"},
		{"HEAD /chunked HTTP/1.1\r\nHost: x\r\n\r\n", 200, "\r\n\r\n"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody", 200, "echo:body"},
		{"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "echo:abc"},
		{"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", 204, "\r\n\r\n"},
		{"GET /cached HTTP/1.1\r\nHost: x\r\n\r\n", 304, "\r\n\r\n"},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 200, "echo:"},
	}
	for i, tt := range tests {
		mustSend(t, s, Request{Raw: []byte(tt.raw), ID: fmt.Sprint(i)})
	}
	mustClose(t, s)
	res := col.all()
	if len(res) != len(tests) {
		t.Fatalf("%d results", len(res))
	}
	for i, tt := range tests {
		r := res[i]
		if r.Err != nil || r.Status != tt.status || !bytes.HasPrefix(r.Response, []byte("HTTP/1.1 ")) ||
			!bytes.HasSuffix(r.Response, []byte(tt.suffix)) {
			t.Errorf("%q: err %v status %d response %q", tt.raw, r.Err, r.Status, r.Response)
		}
	}
	if r := res[2]; r.BytesIn <= int64(len(r.Response)) {
		t.Errorf("no interim 100 Continue skipped before %q", r.Response)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
