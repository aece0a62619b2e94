package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// slowTarget is figure (o)'s target: it answers every request `200 ok`
// exactly delay after it has read it, like an application that thinks for
// delay, at a small cost per request. A goroutine per connection reads
// requests; one goroutine writes the answers in the order they are due
// (the delay is the same for all, so the order they were read in), waking
// once per batch. net/http with a time.Sleep per request (a timer and a
// park per request, plus its parsing) served only 16–38k req/s on the
// 2-core build machine even to wrk, below the rates the figure asks for:
// the figure would measure the target, not the replay.
type slowTarget struct {
	ln       net.Listener
	delay    time.Duration
	requests atomic.Int64

	mu     sync.Mutex
	due    []answer // oldest first
	wake   chan struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

type answer struct {
	c  net.Conn
	at time.Time
}

var slowResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")

func startSlowTarget(delay time.Duration) (*slowTarget, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slow target: %w", err)
	}
	t := &slowTarget{ln: ln, delay: delay, wake: make(chan struct{}, 1), conns: map[net.Conn]struct{}{}}
	t.wg.Go(t.accept)
	t.wg.Go(t.write)
	return t, nil
}

func (t *slowTarget) url() string  { return "http://" + t.ln.Addr().String() }
func (t *slowTarget) count() int64 { return t.requests.Load() }

func (t *slowTarget) accept() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Go(func() { t.serve(c) })
	}
}

// serve reads the requests of c (head, then a Content-Length body if any)
// and queues an answer for each.
func (t *slowTarget) serve(c net.Conn) {
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		n, err := readHead(br)
		if err != nil {
			return
		}
		if n > 0 {
			if _, err := br.Discard(n); err != nil {
				return
			}
		}
		t.requests.Add(1)
		t.mu.Lock()
		t.due = append(t.due, answer{c, time.Now().Add(t.delay)})
		first := len(t.due) == 1
		t.mu.Unlock()
		if first {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
}

// readHead reads a request head and returns its Content-Length.
func readHead(br *bufio.Reader) (int, error) {
	length := 0
	for first := true; ; first = false {
		l, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, errors.New("header line too long")
			}
			return 0, err
		}
		l = bytes.TrimRight(l, "\r\n")
		if len(l) == 0 {
			if first {
				return 0, io.ErrUnexpectedEOF
			}
			return length, nil
		}
		if k, v, ok := bytes.Cut(l, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("content-length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad content-length %q", v)
			}
			length = n
		}
	}
}

// write answers the queued requests as they become due.
func (t *slowTarget) write() {
	var batch []answer
	for {
		t.mu.Lock()
		for len(t.due) == 0 && !t.closed {
			t.mu.Unlock()
			<-t.wake
			t.mu.Lock()
		}
		if t.closed {
			t.mu.Unlock()
			return
		}
		now := time.Now()
		if wait := t.due[0].at.Sub(now); wait > 0 {
			t.mu.Unlock()
			time.Sleep(wait)
			continue
		}
		i := 0
		for i < len(t.due) && !t.due[i].at.After(now) {
			i++
		}
		batch = append(batch[:0], t.due[:i]...)
		t.due = append(t.due[:0], t.due[i:]...)
		t.mu.Unlock()
		for _, a := range batch {
			_, _ = a.c.Write(slowResponse)
		}
		clear(batch)
	}
}

func (t *slowTarget) close() {
	_ = t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	t.wg.Wait()
}
