package httpsink

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestNotIdempotentNotSentTwice: a target that reads the second request of
// a connection and closes it without an answer (it may have acted on it)
// gets a GET once more on a new connection, as before, but a POST only
// once: the POST fails, and its error says why it was not sent again. A
// POST went twice, and the target processed it twice. An Idempotency-Key
// makes a POST replayable, as in Go's client. Every send path: the event
// loops (closed model), the worker goroutines (closed model keeping
// responses) and the open model's direct slots.
func TestNotIdempotentNotSentTwice(t *testing.T) {
	modes := []struct {
		name string
		cfg  Config
	}{
		{"loops", Config{Workers: 1}},
		{"workers", Config{Workers: 1, KeepResponse: true}},
		{"open", Config{Open: true}},
	}
	reqs := []struct {
		name, raw string
		resent    bool
	}{
		{"GET", "GET /r HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"PUT", "PUT /r HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", true},
		{"POST", "POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", false},
		{"PATCH", "PATCH /r HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", false},
		{"POST with Idempotency-Key", "POST /pay HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k1\r\nContent-Length: 1\r\n\r\nx", true},
	}
	for _, m := range modes {
		for _, rq := range reqs {
			t.Run(m.name+"/"+rq.name, func(t *testing.T) {
				h := &perConn{answer: 1}
				srv := newRawServer(t, h.handle)
				cfg := m.cfg
				cfg.Targets = []Target{{URL: srv.url()}}
				s, col := newSender(t, cfg)
				for i := range 2 {
					mustSend(t, s, Request{Raw: []byte(rq.raw), ID: fmt.Sprint(i)})
					waitFor(t, "the result", func() bool { return len(col.all()) == i+1 })
				}
				mustClose(t, s)
				received := 0
				h.mu.Lock()
				for _, n := range h.n {
					received += n
				}
				h.mu.Unlock()
				second := col.all()[1]
				if rq.resent {
					if second.Err != nil || !second.Retried || received != 3 {
						t.Errorf("second request: err %v retried %t, target received %d; want sent again and answered (3)", second.Err, second.Retried, received)
					}
					return
				}
				if second.Err == nil || second.Retried || !strings.Contains(second.Err.Error(), "not sent again: its method is not idempotent") || received != 2 {
					t.Errorf("second request: err %v retried %t, target received %d; want a failure that says why, not sent again (2)", second.Err, second.Retried, received)
				}
			})
		}
	}
}

// TestWorkerNoticesIdleCloseBeforePOST: on the worker goroutines, a POST
// does not go on a pooled connection the target closed while idle (a peek
// finds the end first), so it needs no second send and does not fail.
func TestWorkerNoticesIdleCloseBeforePOST(t *testing.T) {
	h := &perConn{answer: 1, idle: true}
	srv := newRawServer(t, h.handle)
	s, col := newSender(t, Config{Targets: []Target{{URL: srv.url()}}, Workers: 1, KeepResponse: true})
	raw := []byte("POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	for i := range 3 {
		mustSend(t, s, Request{Raw: raw, ID: fmt.Sprint(i)})
		waitFor(t, "the result", func() bool { return len(col.all()) == i+1 })
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	mustClose(t, s)
	for _, r := range col.all() {
		if r.Err != nil || r.Retried {
			t.Errorf("request %s: err %v retried %t; want answered on a new connection", r.ID, r.Err, r.Retried)
		}
	}
}
