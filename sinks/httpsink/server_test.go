package httpsink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is a loopback TCP server that frames HTTP/1.x requests itself
// and records their exact bytes, per connection, in arrival order.
type rawServer struct {
	t        testing.TB
	ln       net.Listener
	accepted atomic.Int64
	handle   func(c net.Conn, req []byte) bool // answers; false closes the connection

	mu    sync.Mutex
	reqs  []received
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

type received struct {
	conn int64 // accept order, from 1
	raw  []byte
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func answer(resp string) func(net.Conn, []byte) bool {
	return func(c net.Conn, _ []byte) bool {
		_, err := c.Write([]byte(resp))
		return err == nil
	}
}

func newRawServer(t testing.TB, handle func(c net.Conn, req []byte) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{t: t, ln: ln, handle: handle, conns: map[net.Conn]bool{}}
	s.wg.Go(s.accept)
	t.Cleanup(s.stop)
	return s
}

func (s *rawServer) url() *url.URL { return &url.URL{Scheme: "http", Host: s.ln.Addr().String()} }

func (s *rawServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		n := s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(c, n) })
	}
}

func (s *rawServer) serve(c net.Conn, n int64) {
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := readRequest(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, received{conn: n, raw: req})
		s.mu.Unlock()
		if !s.handle(c, req) {
			return
		}
	}
}

// stop closes the listener and every open connection, and waits.
func (s *rawServer) stop() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *rawServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.reqs...)
}

// readRequest reads one request's bytes: head, then a Content-Length or
// chunked body.
func readRequest(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	length, chunked := 0, false
	for first := true; ; first = false {
		l, err := br.ReadBytes('\n')
		buf = append(buf, l...)
		if err != nil {
			return nil, err
		}
		h := bytes.TrimRight(l, "\r\n")
		if len(h) == 0 {
			break
		}
		if first {
			continue
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch string(bytes.ToLower(name)) {
		case "content-length":
			length, _ = strconv.Atoi(string(value))
		case "transfer-encoding":
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	if !chunked {
		body := make([]byte, length)
		_, err := ioReadFull(br, body)
		return append(buf, body...), err
	}
	for {
		l, err := br.ReadBytes('\n')
		buf = append(buf, l...)
		if err != nil {
			return nil, err
		}
		size, err := strconv.ParseInt(string(bytes.TrimRight(l, "\r\n")), 16, 64)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			for {
				l, err := br.ReadBytes('\n')
				buf = append(buf, l...)
				if err != nil || len(bytes.TrimRight(l, "\r\n")) == 0 {
					return buf, err
				}
			}
		}
		chunk := make([]byte, size+2)
		if _, err := ioReadFull(br, chunk); err != nil {
			return nil, err
		}
		buf = append(buf, chunk...)
	}
}

func ioReadFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// collector gathers results.
type collector struct {
	mu  sync.Mutex
	res []Result
}

func (c *collector) add(r Result) {
	c.mu.Lock()
	c.res = append(c.res, r)
	c.mu.Unlock()
}

func (c *collector) all() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Result(nil), c.res...)
}

func newSender(t testing.TB, cfg Config) (*Sender, *collector) {
	t.Helper()
	col := &collector{}
	if cfg.OnResult == nil {
		cfg.OnResult = col.add
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, col
}

func mustSend(t testing.TB, s *Sender, req Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Send(ctx, req); err != nil {
		t.Fatal(err)
	}
}

func mustClose(t testing.TB, s *Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}
