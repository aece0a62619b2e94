package httpsink

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine/pace"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Little's law on the schedule's timeline: the requests scheduled within
// the latency estimate before the newest one.
func TestDemandInFlight(t *testing.T) {
	ms := time.Millisecond
	every := func(n int, step time.Duration, from time.Time) []time.Time {
		var out []time.Time
		for i := range n {
			out = append(out, from.Add(time.Duration(i)*step))
		}
		return out
	}
	burst := func(n int, at time.Time) []time.Time {
		var out []time.Time
		for range n {
			out = append(out, at)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		sched []time.Time
		lat   time.Duration
		want  int // -1: no estimate, no bound
	}{
		{"no latency measured yet", every(100, ms, t0), 0, -1},
		{"1 per ms, 10 ms latency", every(100, ms, t0), 10 * ms, 11},
		{"1 per 100 µs, 15 ms latency", every(1000, 100*time.Microsecond, t0), 15 * ms, 160},
		{"a recorded burst counts whole", append(every(50, ms, t0), burst(300, t0.Add(50*ms))...), 10 * ms, 310},
		{"a burst older than the latency does not", append(burst(300, t0), every(50, ms, t0.Add(ms))...), 10 * ms, 11},
		{"a gap longer than the ring clears it", append(burst(300, t0), every(5, ms, t0.Add(10*time.Second))...), 100 * ms, 5},
		{"a latency longer than the ring counts all of it", every(3000, 2*ms, t0), 10 * time.Second, demandBuckets / 2},
		{"earlier than the first counts in the first bucket", []time.Time{t0, t0.Add(-time.Second), t0.Add(ms)}, 5 * ms, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d demand
			for _, at := range tc.sched {
				d.scheduled(at)
			}
			d.lat = tc.lat
			n, ok := d.inFlight()
			b, bok := d.bound()
			if tc.want < 0 {
				if ok || bok {
					t.Fatalf("in flight %d (ok %v), bound %d (ok %v): want no estimate", n, ok, b, bok)
				}
				return
			}
			if !ok || n != tc.want {
				t.Fatalf("in flight %d (ok %v), want %d", n, ok, tc.want)
			}
			if want := 2*n + boundHeadroom; !bok || b != want {
				t.Errorf("bound %d, want %d", b, want)
			}
		})
	}
}

// The latency estimate is the lowest 20 ms window average of the last 250
// windows (5 s): a stall of a few windows does not raise it, a target that
// stays slower for all of them does; a faster target lowers it at once.
func TestDemandLatencyEstimate(t *testing.T) {
	var d demand
	now := t0
	feed := func(lat time.Duration, windows int) {
		for range windows {
			for range 10 {
				d.answered(lat, now)
				now = now.Add(latWindow / 10)
			}
			d.answered(lat, now) // closes the window
		}
	}
	if d.lat != 0 {
		t.Fatal("an estimate before any answer")
	}
	feed(15*time.Millisecond, latWindows)
	if d.lat != 15*time.Millisecond {
		t.Fatalf("estimate %v after 15 ms answers", d.lat)
	}
	feed(300*time.Millisecond, 10) // a 200 ms stall
	if d.lat != 15*time.Millisecond {
		t.Errorf("estimate %v after a stall of 10 windows, want it unchanged (15ms)", d.lat)
	}
	feed(15*time.Millisecond, latWindows)
	feed(60*time.Millisecond, latWindows-1)
	if d.lat != 15*time.Millisecond {
		t.Errorf("estimate %v after 60 ms answers for less than 5 s, want it unchanged (15ms)", d.lat)
	}
	feed(60*time.Millisecond, 1) // the target is slower for 5 s
	if d.lat != 60*time.Millisecond {
		t.Errorf("estimate %v after 5 s of 60 ms answers, want 60ms", d.lat)
	}
	feed(5*time.Millisecond, 1)
	if d.lat != 5*time.Millisecond {
		t.Errorf("estimate %v after a window of 5 ms answers, want 5ms", d.lat)
	}
}

// The bound on a manual clock: requests 1 ms apart to a target that holds
// every answer, with a latency estimate of 5 ms, need 6 connections (Little's
// law), so the pool stops at 2 × 6 + 16 = 28: the others wait for a busy
// connection — Send returns at once (not at the cap: not pool-exhausted),
// they are counted as connections-bounded, and once answers come they go
// out on the connections that free up, late (their lateness is the wait).
func TestOpenModelBoundHoldsDials(t *testing.T) {
	g := newGate()
	srv := newRawServer(t, g.handle)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	s.pool.mu.Lock()
	s.pool.dem[0].lat = 5 * time.Millisecond
	s.pool.mu.Unlock()
	const n, bound = 40, 28
	clock := pace.NewManual(t0)
	p, err := pace.New(pace.Config{Speed: 1, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range n {
		at, err := p.Wait(context.Background(), int64(i)*int64(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i), Scheduled: at})
		if i < bound {
			waitFor(t, fmt.Sprintf("request %d at the target", i), func() bool { return g.waiting.Load() == int64(i+1) })
		}
	}
	time.Sleep(20 * dialGrace) // long past the grace after which a waiting request would get a dial
	if a, w := srv.accepted.Load(), g.waiting.Load(); a != bound || w != bound {
		t.Fatalf("%d connections, %d requests at the target; want %d each (the bound)", a, w, bound)
	}
	st := s.Stats()
	if st["connections-bounded"] != n-bound || st["pool-exhausted"] != 0 {
		t.Fatalf("connections-bounded %d (want %d), pool-exhausted %d (want 0)", st["connections-bounded"], n-bound, st["pool-exhausted"])
	}
	released := time.Now()
	for range n {
		g.release <- struct{}{}
	}
	mustClose(t, s)
	res := col.all()
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	late := 0
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("request %s: %v", r.ID, r.Err)
		}
		if !r.Start.Before(released) {
			late++
		}
	}
	if late != n-bound {
		t.Errorf("%d requests sent after the first answers, want the %d held by the bound", late, n-bound)
	}
	if a := srv.accepted.Load(); a != bound {
		t.Errorf("%d connections in all, want %d", a, bound)
	}
}

// TestOpenModelBoundPerTarget: in a split, a slow target whose requests
// are all held (by a gate) fills its own bound, not a shared one: the fast
// target's requests that come afterwards still get a connection and their
// answers at once. (With one bound for the pool, the slow target's 28
// connections filled it and the fast target's requests waited, unsent,
// until the slow target answered.)
func TestOpenModelBoundPerTarget(t *testing.T) {
	g := newGate()
	slow := newRawServer(t, g.handle)
	fast := newRawServer(t, func(c net.Conn, _ []byte) bool {
		_, err := c.Write([]byte(okResponse))
		return err == nil
	})
	s, col := newSender(t, Config{Targets: []Target{{Name: "slow", URL: slow.url()}, {Name: "fast", URL: fast.url()}}, Mode: ModeSplit, Open: true})
	t.Cleanup(func() { // on failure too: the slow target's handlers must end
		for range 64 {
			g.release <- struct{}{}
		}
	})
	s.pool.mu.Lock()
	for i := range s.pool.dem {
		s.pool.dem[i].lat = 5 * time.Millisecond
	}
	s.pool.mu.Unlock()
	// Connection IDs that the split sends to each target.
	var toSlow, toFast []string
	for i := 0; len(toSlow) < 40 || len(toFast) < 5; i++ {
		id := fmt.Sprintf("c%d", i)
		if s.targets[s.pick(id)].name == "slow" {
			toSlow = append(toSlow, id)
		} else {
			toFast = append(toFast, id)
		}
	}
	const nSlow, nFast, bound = 40, 5, 28
	clock := pace.NewManual(t0)
	p, err := pace.New(pace.Config{Speed: 1, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range nSlow + nFast {
		at, err := p.Wait(context.Background(), int64(i)*int64(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if i < nSlow {
			mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint("slow-", i), ConnID: toSlow[i], Scheduled: at})
			if i < bound {
				waitFor(t, fmt.Sprintf("request %d at the slow target", i), func() bool { return g.waiting.Load() == int64(i+1) })
			}
			continue
		}
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint("fast-", i), ConnID: toFast[i-nSlow], Scheduled: at})
	}
	waitFor(t, "the fast target's answers while the slow one holds its requests", func() bool { return len(col.all()) == nFast })
	if a := slow.accepted.Load(); a != bound {
		t.Errorf("%d connections to the slow target, want %d (its bound)", a, bound)
	}
	for range nSlow {
		g.release <- struct{}{}
	}
	mustClose(t, s)
	res := col.all()
	if len(res) != nSlow+nFast {
		t.Fatalf("%d results, want %d", len(res), nSlow+nFast)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("request %s: %v", r.ID, r.Err)
		}
	}
	if st := s.Stats(); st["connections-bounded"] != nSlow-bound {
		t.Errorf("connections-bounded %d, want %d (the slow target's)", st["connections-bounded"], nSlow-bound)
	}
}

// perConn answers the first requests of each connection and then closes it
// in the way given: after the answer, or on the next request, unanswered.
type perConn struct {
	mu     sync.Mutex
	n      map[net.Conn]int
	answer int  // requests answered per connection
	idle   bool // true: close right after the last answer; false: on the next request
}

func (p *perConn) handle(c net.Conn, _ []byte) bool {
	p.mu.Lock()
	if p.n == nil {
		p.n = map[net.Conn]int{}
	}
	p.n[c]++
	k := p.n[c]
	p.mu.Unlock()
	if k > p.answer {
		return false
	}
	if _, err := c.Write([]byte(okResponse)); err != nil {
		return false
	}
	return !(p.idle && k == p.answer)
}

// A server that closes a keep-alive connection while it is idle: the
// direct slot waiting on it sees the end at once and leaves the pool, so
// the next request opens a new connection instead of failing on the stale
// one and being sent again.
func TestOpenModelNoticesIdleClose(t *testing.T) {
	h := &perConn{answer: 1, idle: true}
	srv := newRawServer(t, h.handle)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 5 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the answer", func() bool { return len(col.all()) == i+1 })
		waitFor(t, "the closed connection to leave the pool", func() bool {
			s.pool.mu.Lock()
			defer s.pool.mu.Unlock()
			return s.pool.open == 0
		})
	}
	mustClose(t, s)
	st := s.Stats()
	if st["ok"] != 5 || st["retries"] != 0 || srv.accepted.Load() != 5 {
		t.Errorf("ok %d retries %d connections %d; want 5, 0 (never sent on a closed connection), 5", st["ok"], st["retries"], srv.accepted.Load())
	}
}

// A connection the server drops when the next request arrives (nothing
// answered): the request written by Send on the idle connection is sent
// again on a new one, once, and succeeds.
func TestOpenModelDirectStaleRetry(t *testing.T) {
	h := &perConn{answer: 1}
	srv := newRawServer(t, h.handle)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 4 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the answer", func() bool { return len(col.all()) == i+1 })
	}
	mustClose(t, s)
	for _, r := range col.all() {
		if r.Err != nil || r.Status != 200 || r.Retried != (r.ID != "0") {
			t.Errorf("request %s: err %v status %d retried %v", r.ID, r.Err, r.Status, r.Retried)
		}
	}
	if st := s.Stats(); st["ok"] != 4 || st["retries"] != 3 || srv.accepted.Load() != 4 {
		t.Errorf("ok %d retries %d connections %d; want 4, 3, 4", st["ok"], st["retries"], srv.accepted.Load())
	}
}

// TestOpenModelNoRetryOnFreshConnection: a target that closes a connection
// dialed for a request, without an answer, gets that request once: it is
// the target's answer, not a stale connection (a second send would repeat
// a request the target may have acted on).
func TestOpenModelNoRetryOnFreshConnection(t *testing.T) {
	h := &perConn{answer: 0}
	srv := newRawServer(t, h.handle)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	mustSend(t, s, Request{Raw: []byte("POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), ID: "0"})
	mustClose(t, s)
	res := col.all()
	if len(res) != 1 || res[0].Err == nil || res[0].Retried {
		t.Fatalf("results %+v: want one failed request, not retried", res)
	}
	if a := srv.accepted.Load(); a != 1 {
		t.Errorf("%d connections, want 1 (sent once)", a)
	}
	if st := s.Stats(); st["retries"] != 0 {
		t.Errorf("retries %d, want 0", st["retries"])
	}
}

// On an idle connection, a request too large for one direct write goes out
// whole (written by a goroutine of its own), Host edited.
func TestOpenModelLargeRequestOnIdleConnection(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 6000) // 96 000 bytes
	large := fmt.Sprintf("POST /up HTTP/1.1\r\nHost: prod.example\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	small := "GET / HTTP/1.1\r\nHost: prod.example\r\n\r\n"
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true})
	for i, raw := range []string{small, large, small} {
		mustSend(t, s, Request{Raw: []byte(raw), ID: fmt.Sprint(i)})
		waitFor(t, "the answer", func() bool { return len(col.all()) == i+1 })
	}
	mustClose(t, s)
	host := srv.ln.Addr().String()
	got := srv.received()
	if len(got) != 3 || srv.accepted.Load() != 1 {
		t.Fatalf("%d requests on %d connections, want 3 on 1", len(got), srv.accepted.Load())
	}
	for i, want := range []string{small, large, small} {
		want = strings.Replace(want, "prod.example", host, 1)
		if string(got[i].raw) != want {
			t.Errorf("request %d: %d bytes, want %d", i, len(got[i].raw), len(want))
		}
		if r := col.all()[i]; r.Err != nil || r.BytesOut != int64(len(want)) {
			t.Errorf("request %d: err %v bytes out %d, want %d", i, r.Err, r.BytesOut, len(want))
		}
	}
}

// A direct connection idle for longer than Timeout stays usable: the last
// request's deadline, passing while idle, is not an error.
func TestOpenModelIdleLongerThanTimeout(t *testing.T) {
	srv := newRawServer(t, answer(okResponse))
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Open: true, Timeout: 50 * time.Millisecond})
	raw := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 3 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the answer", func() bool { return len(col.all()) == i+1 })
		time.Sleep(150 * time.Millisecond)
	}
	mustClose(t, s)
	if st := s.Stats(); st["ok"] != 3 || st["retries"] != 0 || srv.accepted.Load() != 1 {
		t.Errorf("ok %d retries %d connections %d; want 3, 0, 1", st["ok"], st["retries"], srv.accepted.Load())
	}
}
