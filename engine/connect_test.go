package engine_test

import (
	"bufio"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// proxyTarget is a raw TCP loopback proxy: it answers CONNECT with answer
// and keeps the connection open as a tunnel (reading what comes, answering
// nothing); any other request it logs, with its connection, and answers
// 200.
type proxyTarget struct {
	ln     net.Listener
	answer string
	mu     sync.Mutex
	log    []string // "conn N: request line"
	wg     sync.WaitGroup
}

func newProxyTarget(t *testing.T, answer string) *proxyTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyTarget{ln: ln, answer: answer}
	var conns []net.Conn
	p.wg.Go(func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			conns = append(conns, c)
			p.mu.Unlock()
			p.wg.Go(func() { p.serve(c, n) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxyTarget) serve(c net.Conn, n int) {
	defer c.Close()
	br := bufio.NewReader(c)
	tunnel := false
	for {
		raw, err := readRawRequest(br)
		if err != nil {
			return
		}
		line, _, _ := strings.Cut(string(raw), "\r\n")
		p.mu.Lock()
		if tunnel {
			line = "in the tunnel: " + line
		}
		p.log = append(p.log, "conn "+strconv.Itoa(n)+": "+line)
		p.mu.Unlock()
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		if strings.HasPrefix(line, "CONNECT ") {
			resp, tunnel = p.answer, true
		}
		if _, err := c.Write([]byte(resp)); err != nil {
			return
		}
	}
}

func (p *proxyTarget) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// TestConnectReplayed: a recorded CONNECT answered 200 by a proxy target
// is a complete answer at the end of its head (no body is waited for, so a
// single worker is not held until the timeout) and its connection, now a
// tunnel, carries no later request.
func TestConnectReplayed(t *testing.T) {
	t.Parallel()
	for name, answer := range map[string]string{
		"no length": "HTTP/1.1 200 Connection established\r\n\r\n",
		"length":    "HTTP/1.1 200 Connection established\r\nContent-Length: 0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", []req{
				{0, "CONNECT upstream.example:443 HTTP/1.1\r\nHost: upstream.example:443\r\n\r\n"},
				{time.Millisecond, get("/after")},
				{2 * time.Millisecond, get("/later")},
			})
			p := newProxyTarget(t, answer)
			start := time.Now()
			res := run(t, dir, replayYAML("http://"+p.ln.Addr().String(), "speed: max\nsink: {http: {target: app, workers: 1}}"), engine.Options{})
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the replay took %v: the CONNECT answer held the worker", d)
			}
			want := []string{"conn 1: CONNECT upstream.example:443 HTTP/1.1", "conn 2: GET /after HTTP/1.1", "conn 2: GET /later HTTP/1.1"}
			if got := p.requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("the proxy got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			rep := readReport(t, filepath.Join(dir, "report.json"))
			if n := number(t, rep, "status", "200"); n != 3 {
				t.Errorf("status 200: %v, want 3", n)
			}
			if n := number(t, rep, "requests", "errors"); n != 0 {
				t.Errorf("errors: %v, want 0", n)
			}
		})
	}
}
