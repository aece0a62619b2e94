package httpsink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/replayctl/replayctl/stats"
)

type conn struct {
	nc   net.Conn
	used int64 // last use (worker's request counter), for LRU eviction
}

type sessionKey struct {
	t      int
	connID string
}

// worker sends one request at a time. It owns its connections: one pooled
// keep-alive connection per target, plus one per open session.
type worker struct {
	s        *Sender
	conns    []*conn
	sessions map[sessionKey]*conn
	br       *bufio.Reader
	bw       *bufio.Writer
	p        parser
	n        int64
}

func (w *worker) run(own chan job) {
	shared := w.s.shared
	defer w.closeAll()
	for own != nil || shared != nil {
		select {
		case j, ok := <-own:
			if !ok {
				own = nil
				continue
			}
			w.do(j)
		case j, ok := <-shared:
			if !ok {
				shared = nil
				continue
			}
			w.do(j)
		}
	}
}

func (w *worker) closeAll() {
	for _, c := range w.conns {
		if c != nil {
			_ = c.nc.Close()
		}
	}
	for _, c := range w.sessions {
		_ = c.nc.Close()
	}
}

// take removes and returns the connection j should use, nil if none is open.
func (w *worker) take(j *job) (*conn, bool) {
	if w.s.cfg.Session && j.req.ConnID != "" {
		k := sessionKey{j.t, j.req.ConnID}
		c := w.sessions[k]
		delete(w.sessions, k)
		return c, true
	}
	c := w.conns[j.t]
	w.conns[j.t] = nil
	return c, false
}

// put stores c for reuse by j's session or target.
func (w *worker) put(j *job, c *conn, session bool) {
	w.n++
	c.used = w.n
	if !session {
		w.conns[j.t] = c
		return
	}
	if len(w.sessions) >= maxSessions {
		var oldest sessionKey
		var min int64 = -1
		for k, sc := range w.sessions {
			if min < 0 || sc.used < min {
				oldest, min = k, sc.used
			}
		}
		_ = w.sessions[oldest].nc.Close()
		delete(w.sessions, oldest)
	}
	w.sessions[sessionKey{j.t, j.req.ConnID}] = c
}

func (w *worker) do(j job) {
	s := w.s
	if s.dropping.Load() {
		s.droppedQueued.Add(1)
		return
	}
	t := &s.targets[j.t]
	r := Result{
		Result:   stats.Result{Scheduled: j.req.Scheduled, Start: time.Now()},
		Target:   t.name,
		ID:       j.req.ID,
		ConnID:   j.req.ConnID,
		Expected: j.req.Expected,
	}
	if err := s.ctx.Err(); err != nil {
		r.Err = fmt.Errorf("send to %s: %w", t.name, err)
		w.finish(&r)
		return
	}
	c, session := w.take(&j)
	var resp response
	for attempt := 0; ; attempt++ {
		fresh := c == nil
		if fresh {
			t0 := time.Now()
			nc, err := w.dial(t)
			r.Connect += time.Since(t0)
			if err != nil {
				r.Err = err
				break
			}
			c = &conn{nc: nc}
		}
		var err error
		resp, err = w.roundTrip(c.nc, t, &j, &r)
		if err == nil {
			break
		}
		if !fresh && attempt == 0 && w.p.n == 0 && stats.Classify(err) == stats.ClassReset {
			// A stale pooled connection (closed by the server while idle):
			// send once more on a new one.
			_ = c.nc.Close()
			c, r.Retried = nil, true
			continue
		}
		r.Err = fmt.Errorf("%s %s: %w", t.name, t.addr, err)
		break
	}
	if c != nil {
		if r.Err == nil && resp.keepAlive && !j.info.close && w.br.Buffered() == 0 {
			w.put(&j, c, session)
		} else {
			_ = c.nc.Close()
		}
	}
	w.finish(&r)
}

// roundTrip writes the request and reads the response on nc.
func (w *worker) roundTrip(nc net.Conn, t *target, j *job, r *Result) (response, error) {
	s := w.s
	start := time.Now()
	w.p.reset(w.br)
	r.BytesIn = 0
	if err := nc.SetDeadline(start.Add(s.cfg.Timeout)); err != nil {
		return response{}, err
	}
	w.bw.Reset(nc)
	raw := j.req.Raw
	if !s.cfg.PreserveHost && j.info.hostStart >= 0 {
		_, _ = w.bw.Write(raw[:j.info.hostStart])
		_, _ = w.bw.WriteString(t.host)
		_, _ = w.bw.Write(raw[j.info.hostEnd:])
		r.BytesOut = int64(len(raw) - (j.info.hostEnd - j.info.hostStart) + len(t.host))
	} else {
		_, _ = w.bw.Write(raw)
		r.BytesOut = int64(len(raw))
	}
	if err := w.bw.Flush(); err != nil {
		w.bw.Reset(nil)
		return response{}, fmt.Errorf("write request: %w", err)
	}
	w.bw.Reset(nil)
	w.br.Reset(nc)
	resp, err := w.p.read(j.info.head)
	r.BytesIn = w.p.n
	r.Latency = time.Since(start)
	if err != nil {
		return response{}, fmt.Errorf("read response: %w", err)
	}
	r.Status = resp.status
	if s.cfg.KeepResponse {
		r.Response = bytes.Clone(w.p.out)
		r.ResponseTruncated = w.p.trunc
	}
	return resp, nil
}

// dial opens a connection to t: TCP with TCP_NODELAY, then TLS for https.
func (w *worker) dial(t *target) (net.Conn, error) {
	s := w.s
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	nc, err := s.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if t.tls == nil {
		return nc, nil
	}
	tc := tls.Client(nc, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("%s: tls handshake: %w", t.name, err)
	}
	return tc, nil
}

func (w *worker) finish(r *Result) {
	if r.Err != nil {
		r.ErrClass = stats.Classify(r.Err)
	}
	w.s.count(r)
	if w.s.cfg.OnResult != nil {
		w.s.cfg.OnResult(*r)
	}
}
