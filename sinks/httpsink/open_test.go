package httpsink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine/pace"
	"github.com/replayctl/replayctl/stats"
)

// gate is a target that holds every answer until released, counting the
// requests waiting: the pool's connections are busy exactly as long as the
// test says, whatever the machine's speed.
type gate struct {
	waiting atomic.Int64
	release chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{}, 1000)} }

func (g *gate) handle(c net.Conn, _ []byte) bool {
	g.waiting.Add(1)
	<-g.release
	g.waiting.Add(-1)
	_, err := c.Write([]byte(okResponse))
	return err == nil
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The open model on a manual clock: the pacer schedules requests 1 ms apart
// without sleeping, the target holds every answer, so each scheduled send
// finds every connection busy and opens a new one, up to max-connections;
// past the cap a request waits (pool-exhausted) until an answer frees a
// connection, which it then reuses.
func TestOpenModelOpensConnectionsUpToTheCap(t *testing.T) {
	g := newGate()
	srv := newRawServer(t, g.handle)
	const capN = 4
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true, MaxConnections: capN})
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := pace.NewManual(start)
	p, err := pace.New(pace.Config{Speed: 1, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ctx := context.Background()
	for i := range capN {
		at, err := p.Wait(ctx, int64(i)*int64(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i), Scheduled: at})
		// Every connection opened so far is busy: the next request opens one.
		waitFor(t, fmt.Sprintf("request %d at the target", i), func() bool { return g.waiting.Load() == int64(i+1) })
		if got := srv.accepted.Load(); got != int64(i+1) {
			t.Fatalf("after %d requests held by the target: %d connections, want %d", i+1, got, i+1)
		}
	}
	if st := s.Stats(); st["pool-exhausted"] != 0 || st["connections-peak"] != capN || st["max-connections"] != capN {
		t.Fatalf("at the cap: %v", st)
	}

	// The cap is reached: the next request waits for a connection.
	at, _ := p.Wait(ctx, int64(capN)*int64(time.Millisecond))
	sent := make(chan error, 1)
	go func() { sent <- s.Send(ctx, Request{Raw: raw, ID: "late", Scheduled: at}) }()
	waitFor(t, "pool-exhausted to be counted", func() bool { return s.Stats()["pool-exhausted"] == 1 })
	select {
	case err := <-sent:
		t.Fatalf("Send returned (%v) while every connection was busy at the cap", err)
	default:
	}
	g.release <- struct{}{} // one answer: one connection frees
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late request at the target", func() bool { return g.waiting.Load() == capN })
	if got := srv.accepted.Load(); got != capN {
		t.Errorf("%d connections after the wait, want %d (the freed one reused)", got, capN)
	}
	for range capN {
		g.release <- struct{}{}
	}
	mustClose(t, s)
	st := s.Stats()
	if st["sent"] != capN+1 || st["ok"] != capN+1 || st["pool-exhausted"] != 1 || st["connections-opened"] != capN {
		t.Errorf("stats %v", st)
	}
	if n := len(col.all()); n != capN+1 {
		t.Errorf("%d results, want %d", n, capN+1)
	}
	if sum := s.Summary(); sum.Sent != capN+1 || sum.OK != capN+1 || sum.Lateness.Max <= 0 {
		t.Errorf("summary: sent %d ok %d lateness %+v", sum.Sent, sum.OK, sum.Lateness)
	}
}

// An idle connection is reused before a new one is opened.
func TestOpenModelReusesIdleConnections(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 20 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the answer", func() bool { return len(col.all()) == i+1 })
	}
	mustClose(t, s)
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections for 20 requests sent one after the other, want 1", n)
	}
}

// With sessions, a recorded connection's requests stay on one replay
// connection, in order, even when the target is slow; another recorded
// connection gets its own.
func TestOpenModelSessions(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, _ []byte) bool {
		time.Sleep(5 * time.Millisecond)
		_, err := c.Write([]byte(okResponse))
		return err == nil
	})
	s, _ := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true, Session: true})
	for i := range 10 {
		for _, cid := range []string{"a", "b"} {
			mustSend(t, s, Request{Raw: []byte(fmt.Sprintf("GET /%s/%d HTTP/1.1\r\nHost: x\r\n\r\n", cid, i)), ConnID: cid})
		}
	}
	mustClose(t, s)
	byConn := map[int64][]string{}
	for _, r := range srv.received() {
		line := strings.SplitN(string(r.raw), " ", 3)[1]
		byConn[r.conn] = append(byConn[r.conn], line)
	}
	if len(byConn) != 2 {
		t.Fatalf("%d connections, want 2 (one per recorded connection): %v", len(byConn), byConn)
	}
	for conn, paths := range byConn {
		cid := paths[0][1:2]
		for i, p := range paths {
			if want := fmt.Sprintf("/%s/%d", cid, i); p != want {
				t.Errorf("connection %d: request %d is %s, want %s (order kept, one recorded connection)", conn, i, p, want)
			}
		}
	}
}

// Stop drops what is not on the wire yet; what is on the wire is waited for
// up to the request timeout. The target never answers.
func TestStopDropsQueuedRequests(t *testing.T) {
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			g := newGate()
			srv := newRawServer(t, g.handle)
			defer close(g.release)
			s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, Open: open, MaxConnections: 1,
				QueueSize: 10, Timeout: 300 * time.Millisecond})
			raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			mustSend(t, s, Request{Raw: raw, ID: "0"})
			waitFor(t, "the first request at the target", func() bool { return g.waiting.Load() == 1 })
			queued := make(chan error, 1)
			if open {
				// The open model has no queue: the next Send waits for the
				// only connection, and Stop ends that wait.
				go func() { queued <- s.Send(context.Background(), Request{Raw: raw, ID: "1"}) }()
				waitFor(t, "the second request to wait", func() bool { return s.Stats()["pool-exhausted"] == 1 })
			} else {
				for i := 1; i < 5; i++ {
					mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
				}
				queued <- nil
			}
			t0 := time.Now()
			s.Stop()
			if err := <-queued; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("the waiting Send after Stop: %v", err)
			}
			if err := s.Send(context.Background(), Request{Raw: raw, ID: "after"}); err == nil {
				t.Error("Send after Stop succeeded")
			}
			mustClose(t, s)
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("close after Stop took %v; the request timeout is 300ms", d)
			}
			if n := len(srv.received()); n != 1 {
				t.Errorf("the target received %d requests, want 1 (only the one already sent)", n)
			}
			st := s.Stats()
			wantDropped := int64(4)
			if open {
				wantDropped = 1 // the one waiting for the connection
			}
			if st["dropped-on-stop"] != wantDropped || st["errors-timeout"] != 1 {
				t.Errorf("stats %v", st)
			}
			for _, r := range col.all() {
				if r.ID != "0" && (r.ErrClass != stats.ClassCanceled || !r.Start.IsZero()) {
					t.Errorf("dropped request %s: class %q, start %v", r.ID, r.ErrClass, r.Start)
				}
			}
		})
	}
}

// A slow target (15 ms per answer) replayed on a fixed schedule of 400
// requests 2.5 ms apart (400 req/s, about 6 in flight): the open model sends
// every one, loses none, and records the lateness. The bound on lateness
// p99 (2 s) only separates "on schedule" from "slipping": one connection at
// a time would take 6 s for this 1 s schedule, its last requests 5 s late,
// whatever the machine. It is far above the `make bench` goal (5 ms) on
// purpose: with -race on the shared 2-core machine this test measured
// 1.3 ms when the machine was quiet, 129 ms at a load average of 15 and
// close to 1 s at 28 (another process fuzzing), when any goroutine waits
// that long for a CPU. The figure itself is a `make bench` row.
func TestOpenModelSlowTargetOnSchedule(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(15 * time.Millisecond)
		served.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	u := mustURL(t, srv.URL)
	s, _ := newSender(t, Config{Targets: []Target{{URL: u}}, Open: true})
	p, err := pace.New(pace.Config{Speed: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	raw := []byte("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	ctx := context.Background()
	for i := range n {
		at, err := p.Wait(ctx, int64(i)*int64(2500*time.Microsecond))
		if err != nil {
			t.Fatal(err)
		}
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i), Scheduled: at})
	}
	mustClose(t, s)
	sum := s.Summary()
	st := s.Stats()
	t.Logf("lateness p50 %v p99 %v max %v; latency p50 %v; connections peak %d; pool-exhausted %d",
		sum.Lateness.P50, sum.Lateness.P99, sum.Lateness.Max, sum.Latency.P50, st["connections-peak"], st["pool-exhausted"])
	if sum.Sent != n || sum.OK != n || served.Load() != n || st["pool-exhausted"] != 0 {
		t.Errorf("sent %d ok %d served %d pool-exhausted %d, want %d each (0 exhausted)", sum.Sent, sum.OK, served.Load(), st["pool-exhausted"], n)
	}
	if sum.Lateness.P99 > 2*time.Second {
		t.Errorf("lateness p99 %v > 2s", sum.Lateness.P99)
	}
	// 15 ms answers to requests 2.5 ms apart need several connections at
	// once: a closed pool of one would have fallen behind.
	if st["connections-peak"] < 2 {
		t.Errorf("connections peak %d, want several", st["connections-peak"])
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A request larger than the write buffer goes out with writev: the same
// bytes, Host edited, in both models.
func TestLargeRequestWritev(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 6000) // 96 000 bytes
	raw := fmt.Sprintf("POST /up HTTP/1.1\r\nHost: prod.example\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	for _, open := range []bool{false, true} {
		srv := newRawServer(t, answer(okResponse))
		s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, Open: open})
		mustSend(t, s, Request{Raw: []byte(raw)})
		mustClose(t, s)
		want := strings.Replace(raw, "prod.example", srv.ln.Addr().String(), 1)
		got := srv.received()
		if len(got) != 1 || string(got[0].raw) != want {
			t.Fatalf("open=%v: the server got %d requests; first %d bytes, want %d", open, len(got), len(got[0].raw), len(want))
		}
		if r := col.all(); len(r) != 1 || r[0].Err != nil || r[0].BytesOut != int64(len(want)) {
			t.Errorf("open=%v: result %+v", open, r)
		}
	}
}

// Mirror and split in the open model: every target gets its own
// connections; split keeps a recorded connection on one target; sessions
// keep each recorded connection on one connection per target.
func TestOpenModelMirrorSplitSessions(t *testing.T) {
	a, b := newRawServer(t, answer(okResponse)), newRawServer(t, answer(okResponse))
	targets := []Target{{URL: a.url(), Name: "a"}, {URL: b.url(), Name: "b"}}
	s, col := newSender(t, Config{Targets: targets, Mode: ModeMirror, Open: true, Session: true})
	const conns, each = 5, 8
	for i := range each {
		for c := range conns {
			mustSend(t, s, Request{Raw: []byte(fmt.Sprintf("GET /c%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", c, i)), ConnID: fmt.Sprint("c", c)})
		}
	}
	mustClose(t, s)
	for _, srv := range []*rawServer{a, b} {
		if n := len(srv.received()); n != conns*each {
			t.Errorf("mirror: a target got %d requests, want %d", n, conns*each)
		}
		if n := srv.accepted.Load(); n != conns {
			t.Errorf("mirror with sessions: %d connections to a target, want %d (one per recorded connection)", n, conns)
		}
		next := map[int64]int{}
		for _, r := range srv.received() {
			var c, i int
			if _, err := fmt.Sscanf(string(r.raw), "GET /c%d/%d ", &c, &i); err != nil {
				t.Fatal(err)
			}
			if i != next[r.conn] {
				t.Errorf("connection %d: request %d arrived, want %d", r.conn, i, next[r.conn])
			}
			next[r.conn] = i + 1
		}
	}
	if n := len(col.all()); n != 2*conns*each {
		t.Errorf("%d results", n)
	}

	s, col = newSender(t, Config{Targets: targets, Mode: ModeSplit, Open: true})
	for i := range 100 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ConnID: fmt.Sprint("c", i%20)})
	}
	mustClose(t, s)
	where := map[string]string{}
	for _, r := range col.all() {
		if w, ok := where[r.ConnID]; ok && w != r.Target {
			t.Errorf("split: connection %s went to %s and %s", r.ConnID, w, r.Target)
		}
		where[r.ConnID] = r.Target
	}
	if len(col.all()) != 100 {
		t.Errorf("split: %d results", len(col.all()))
	}
}

// At the cap, an idle connection of another target (or an idle session) is
// closed to make room rather than waiting for a busy one.
func TestOpenModelEvictsIdleAtTheCap(t *testing.T) {
	a, b := newRawServer(t, answer(okResponse)), newRawServer(t, answer(okResponse))
	targets := []Target{{URL: a.url(), Name: "a"}, {URL: b.url(), Name: "b"}}
	s, col := newSender(t, Config{Targets: targets, Mode: ModeSplit, Open: true, MaxConnections: 1})
	for i := range 40 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ConnID: fmt.Sprint("c", i%4)})
		waitFor(t, "the answer", func() bool { return len(col.all()) == i+1 })
	}
	mustClose(t, s)
	for _, r := range col.all() {
		if r.Err != nil {
			t.Fatalf("result %+v", r)
		}
	}
	if st := s.Stats(); st["pool-exhausted"] != 0 || st["connections-peak"] != 1 {
		t.Errorf("stats %v", st)
	}
}

// A target that refuses connections: in the open model each request gets
// the dial's error (connect-refused), none hangs waiting for a connection.
func TestOpenModelTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s, col := newSender(t, Config{Targets: []Target{{URL: mustURL(t, "http://"+addr)}}, Open: true, MaxConnections: 2})
	for i := range 20 {
		mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: fmt.Sprint(i)})
	}
	mustClose(t, s)
	st := s.Stats()
	if st["sent"] != 20 || st["errors-connect-refused"] != 20 {
		t.Errorf("stats %v", st)
	}
	for _, r := range col.all() {
		if r.ErrClass != stats.ClassConnectRefused || r.Connect <= 0 {
			t.Errorf("result %s: class %q connect %v", r.ID, r.ErrClass, r.Connect)
		}
	}
}

// Connections idle for longer than idleTimeout are closed: after a burst
// the pool shrinks back, and the next request simply opens one again.
func TestOpenModelReapsIdleConnections(t *testing.T) {
	was := idleTimeout
	t.Cleanup(func() { idleTimeout = was }) // after the sender's Close (cleanups run last first)
	idleTimeout = 100 * time.Millisecond
	g := newGate()
	srv := newRawServer(t, g.handle)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 5 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the request at the target", func() bool { return g.waiting.Load() == int64(i+1) })
	}
	for range 5 {
		g.release <- struct{}{}
	}
	open := func() int {
		s.pool.mu.Lock()
		defer s.pool.mu.Unlock()
		return s.pool.open
	}
	waitFor(t, "the idle connections to be closed", func() bool { return open() == 0 })
	mustSend(t, s, Request{Raw: raw, ID: "again"})
	g.release <- struct{}{}
	mustClose(t, s)
	if n := len(col.all()); n != 6 {
		t.Errorf("%d results, want 6", n)
	}
	for _, r := range col.all() {
		if r.Err != nil {
			t.Errorf("result %s: %v", r.ID, r.Err)
		}
	}
	if n := srv.accepted.Load(); n != 6 {
		t.Errorf("%d connections, want 6 (5, reaped, then 1)", n)
	}
}

// MinConnections: Preconnect opens that many connections to each target
// before any request, the requests that follow use them (no dial while
// fewer are in flight), and the reaper does not close them however long they
// stay idle; connections opened beyond them are reaped as usual.
func TestOpenModelPreconnect(t *testing.T) {
	was := idleTimeout
	t.Cleanup(func() { idleTimeout = was })
	idleTimeout = 50 * time.Millisecond
	g := newGate()
	srvA, srvB := newRawServer(t, g.handle), newRawServer(t, g.handle)
	const minN = 6
	s, col := newSender(t, Config{Targets: []Target{{URL: srvA.url(), Name: "a"}, {URL: srvB.url(), Name: "b"}},
		Mode: ModeMirror, Open: true, MinConnections: minN})
	open, asked, err := s.Preconnect(context.Background())
	if err != nil || open != 2*minN || asked != 2*minN {
		t.Fatalf("Preconnect: %d open of %d, %v; want %d of %d", open, asked, err, 2*minN, 2*minN)
	}
	waitFor(t, "the targets to accept", func() bool { return srvA.accepted.Load() == minN && srvB.accepted.Load() == minN })
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// minN+2 requests held by the targets at once: minN on the connections
	// opened ahead, then two new ones per target.
	for i := range minN + 2 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the request at both targets", func() bool { return g.waiting.Load() == int64(2*(i+1)) })
		if i < minN {
			if a, b := srvA.accepted.Load(), srvB.accepted.Load(); a != minN || b != minN {
				t.Fatalf("request %d dialed: %d and %d connections, want %d each", i, a, b, minN)
			}
		}
	}
	for range 2 * (minN + 2) {
		g.release <- struct{}{}
	}
	waitFor(t, "the answers", func() bool { return len(col.all()) == 2*(minN+2) })
	pooled := func() (int, int) {
		s.pool.mu.Lock()
		defer s.pool.mu.Unlock()
		return s.pool.pooledT[0], s.pool.pooledT[1]
	}
	waitFor(t, "the connections beyond the minimum to be reaped", func() bool { a, b := pooled(); return a == minN && b == minN })
	time.Sleep(5 * idleTimeout) // many reaper rounds: the minimum stays
	if a, b := pooled(); a != minN || b != minN {
		t.Errorf("after idling: %d and %d connections open, want %d each", a, b, minN)
	}
	mustClose(t, s)
	if a, b := srvA.accepted.Load(), srvB.accepted.Load(); a != minN+2 || b != minN+2 {
		t.Errorf("%d and %d connections in all, want %d each", a, b, minN+2)
	}
	for _, r := range col.all() {
		if r.Err != nil {
			t.Errorf("result %s: %v", r.ID, r.Err)
		}
	}
}

// Preconnect to a target that refuses connections, or closes each one it
// accepts, says so and returns, however many connections were asked for
// (more than preconnectDials once looped for ever: each failed slot made
// room for another dial); the requests that follow fail as they would have
// anyway, each counted.
func TestOpenModelPreconnectRefused(t *testing.T) {
	for _, n := range []int{4, 3 * preconnectDials} {
		t.Run(fmt.Sprintf("min-connections %d", n), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			_ = ln.Close()
			s, col := newSender(t, Config{Targets: []Target{{URL: mustURL(t, "http://"+addr)}}, Open: true, MinConnections: n})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			open, asked, err := s.Preconnect(ctx)
			if ctx.Err() != nil {
				t.Fatalf("Preconnect dialed until its context ended (%v)", err)
			}
			if open != 0 || asked != n || err == nil || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("Preconnect: %d open of %d, %v; want 0 of %d and a refused dial", open, asked, err, n)
			}
			mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: "1"})
			mustClose(t, s)
			if st := s.Stats(); st["sent"] != 1 || st["errors-connect-refused"] != 1 || len(col.all()) != 1 {
				t.Errorf("stats %v, %d results", st, len(col.all()))
			}
		})
	}
	t.Run("accepts and closes", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var accepted atomic.Int64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				_ = c.Close()
			}
		}()
		defer ln.Close()
		const n = 3 * preconnectDials
		s, _ := newSender(t, Config{Targets: []Target{{URL: mustURL(t, "http://"+ln.Addr().String())}}, Open: true, MinConnections: n})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, asked, err := s.Preconnect(ctx)
		if asked != n || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Preconnect: asked %d, %v; want %d asked and no wait to the deadline", asked, err, n)
		}
		if a := accepted.Load(); a > n {
			t.Errorf("%d connections dialed, want at most %d", a, n)
		}
		mustClose(t, s)
	})
}

// Preconnect never goes past max-connections (all targets together).
func TestOpenModelPreconnectCapped(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, _ := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true, MinConnections: 10, MaxConnections: 3})
	open, asked, err := s.Preconnect(context.Background())
	if err != nil || open != 3 || asked != 3 {
		t.Fatalf("Preconnect: %d open of %d, %v; want 3 of 3", open, asked, err)
	}
	mustClose(t, s)
}

// TestOpenModelNoRetryOnFreshTLSConnection: on an https:// target (worker
// goroutines, not direct sends) a reset of a connection dialed for the
// request is the target's answer too: the request is sent once.
func TestOpenModelNoRetryOnFreshTLSConnection(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := c.(*tls.Conn).NetConn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a TLS close
		}
		_ = c.Close()
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	s, col := newSender(t, Config{Targets: []Target{{URL: mustURL(t, srv.URL), InsecureSkipVerify: true}}, Open: true})
	mustSend(t, s, Request{Raw: []byte("POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), ID: "0"})
	mustClose(t, s)
	res := col.all()
	if len(res) != 1 || res[0].Err == nil || res[0].Retried {
		t.Fatalf("results %+v: want one failed request, not retried", res)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the target got the request %d times, want 1", n)
	}
}
