package h2sink

import (
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/sinks/httpsink"
)

// drainingConn is a client connection whose close takes closeDrain (1 s):
// its server, on a loopback socket with small buffers, reads nothing after
// accepting it, and 850 kB of PING frames wait to be sent; with full,
// batchLimit bytes or more wait (the next Write would wait for room).
func drainingConn(t *testing.T, full bool) *clientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetReadBuffer(1) // the kernel's minimum
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.(*net.TCPConn).SetWriteBuffer(1)
	server := <-accepted
	t.Cleanup(func() { server.Close() })
	cc, err := newClientConn(newBatchConn(nc), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	cc.wmu.Lock()
	for range 50_000 { // 850 kB: below batchLimit, so that no Write waits
		_ = cc.fr.WritePing(false, [8]byte{})
	}
	for full {
		cc.bc.mu.Lock()
		full = len(cc.bc.buf) < batchLimit
		cc.bc.mu.Unlock()
		if full {
			_ = cc.fr.WriteData(1, false, make([]byte, 64<<10))
		}
	}
	cc.wmu.Unlock()
	return cc
}

// closing reports whether cc's batchConn began to close.
func closing(cc *clientConn) bool {
	cc.bc.mu.Lock()
	defer cc.bc.mu.Unlock()
	return cc.bc.closing
}

// TestCloseOutsidePoolLock: a connection the pool closes (the last stream
// of a replaced session connection ended; an idle shared connection
// dropped) is closed after the pool's lock is released: its close, which
// waits up to 1 s for its last bytes to go out, does not hold the other
// requests of the pool (here, reuse takes the lock within 200 ms). Before,
// they waited for the close.
func TestCloseOutsidePoolLock(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	p := &s.targets[0].pool
	for _, tc := range []struct {
		name  string
		close func(cc *clientConn) // closes cc through the pool
	}{
		{"put", func(cc *clientConn) {
			cc.reserveNew()
			p.put(&pconn{cc: cc, inflight: 1, replaced: true}, "s1")
		}},
		{"reuse", func(cc *clientConn) {
			cc.mu.Lock()
			cc.closing = true // idle: no stream, none can be opened
			cc.mu.Unlock()
			p.mu.Lock()
			p.conns = append(p.conns, &pconn{cc: cc})
			p.mu.Unlock()
			p.reuse("")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := drainingConn(t, false)
			done := make(chan time.Duration, 1)
			start := time.Now()
			go func() {
				tc.close(cc)
				done <- time.Since(start)
			}()
			for !closing(cc) {
				if time.Since(start) > 2*time.Second {
					t.Fatal("the connection was not closed")
				}
				time.Sleep(time.Millisecond)
			}
			t0 := time.Now()
			if pc := p.reuse(""); pc != nil {
				t.Fatalf("reuse found %+v", pc)
			}
			waited := time.Since(t0)
			took := <-done
			if took < 500*time.Millisecond {
				t.Fatalf("the close took %v: the test needs one that drains", took)
			}
			if waited > 200*time.Millisecond {
				t.Errorf("reuse waited %v for the pool's lock while a close (%v) drained", waited, took)
			}
		})
	}
}

// TestCloseWithFullBuffer: a connection whose server reads nothing, with
// batchLimit bytes held (a Write waits for room), closes within about
// closeDrain: its GOAWAY does not wait for room. Before, close waited for
// it without end (under the pool's lock, every request of the pool with
// it), the worker that closed it too, and Sender.Close.
func TestCloseWithFullBuffer(t *testing.T) {
	cc := drainingConn(t, true)
	done := make(chan struct{})
	go func() {
		cc.close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = cc.bc.Conn.Close() // for the test to end
		<-done
		t.Fatal("close did not return within 3 s")
	}
}

// TestSettingsTimeoutClosedOutsideDialLock: a connection whose server
// sends no SETTINGS within the timeout is closed after the pool's dial
// lock is released: its close, which drains for closeDrain (1 s) here,
// does not hold the next dial to the target. The first server reads
// nothing and sends 10 000 PINGs: their 170 kB of acks are more than the
// sockets hold (the client's buffers are made small), so the close waits
// for them; the second server answers. Before, the request waiting for
// the dial lock got its answer only after the close, after the timed-out
// request's error; now it gets it while the close drains, before.
func TestSettingsTimeoutClosedOutsideDialLock(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	event := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { ln.Close(); close(stop); wg.Wait() })
	firstAccepted := make(chan struct{})
	wg.Go(func() {
		for n := 1; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if n == 1 {
				close(firstAccepted)
				wg.Go(func() {
					defer nc.Close()
					_ = nc.(*net.TCPConn).SetReadBuffer(1) // reads nothing
					fr := http2.NewFramer(nc, nil)
					_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
					for range 10_000 {
						if fr.WritePing(false, [8]byte{}) != nil {
							return
						}
					}
					event("flooded")
					<-stop
				})
				continue
			}
			wg.Go(func() { defer nc.Close(); answerAll(nc) })
		}
	})
	u, _ := url.Parse("http://" + ln.Addr().String())
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 2, Timeout: 3 * time.Second,
		OnResult: func(r httpsink.Result) { event("result " + r.ID) }}})
	if err != nil {
		t.Fatal(err)
	}
	s.dialer.Control = func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1)
		})
	}
	get := func(id string) httpsink.Request {
		return httpsink.Request{ID: id, Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
	}
	if err := s.Send(t.Context(), get("timed-out")); err != nil {
		t.Fatal(err)
	}
	<-firstAccepted // its worker holds the dial lock
	if err := s.Send(t.Context(), get("next")); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, s, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"flooded", "result next", "result timed-out"}; !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
	if st := s.Stats(); st["ok"] != 1 || st["errors"] != 1 {
		t.Errorf("stats %v", st)
	}
}

// answerAll is a server that answers every request with 204.
func answerAll(nc net.Conn) {
	if _, err := io.ReadFull(nc, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	c := &frameConn{fr: http2.NewFramer(nc, nc)}
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = c.fr.WriteSettings()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			_ = c.headers(f.StreamID, true, ":status", "204")
		}
	}
}
