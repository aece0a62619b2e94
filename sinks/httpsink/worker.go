package httpsink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/replayctl/replayctl/stats"
)

// writeBufSize is the write buffer: a request up to this size goes out in
// one write of one copy; a larger one is written with writev (head edit and
// body as they are, no copy) on plain TCP.
const writeBufSize = 32 << 10

// Buffers of the open model's connections, taken for one request and given
// back after it: thousands of mostly idle connections do not each hold
// 48 KiB, and as many buffers exist as requests were ever in flight at once.
// (A sync.Pool would be emptied by every GC and refilled by allocating,
// which at thousands of requests per second is itself a GC load.)
var (
	readers = freeList[*bufio.Reader]{make: func() *bufio.Reader { return bufio.NewReaderSize(nil, readBufSize) }}
	writers = freeList[*bufio.Writer]{make: func() *bufio.Writer { return bufio.NewWriterSize(nil, writeBufSize) }}
)

// freeList keeps values for reuse; it never shrinks.
type freeList[T any] struct {
	mu    sync.Mutex
	items []T
	make  func() T
}

func (f *freeList[T]) get() T {
	f.mu.Lock()
	if n := len(f.items); n > 0 {
		v := f.items[n-1]
		f.items = f.items[:n-1]
		f.mu.Unlock()
		return v
	}
	f.mu.Unlock()
	return f.make()
}

func (f *freeList[T]) put(v T) {
	f.mu.Lock()
	f.items = append(f.items, v)
	f.mu.Unlock()
}

// errStopped is the error of a request dropped by Stop before it was sent.
var errStopped = fmt.Errorf("not sent: the replay was stopped: %w", context.Canceled)

type conn struct {
	nc   net.Conn
	used int64 // last use (worker's request counter), for LRU eviction
	// dialed: opened for the request about to use it (the open model dials
	// before it takes a request); a reset on it is the target's answer,
	// not a stale connection, and is not retried.
	dialed bool
}

type sessionKey struct {
	t      int
	connID string
}

// worker sends one request at a time. It owns its connections: one pooled
// keep-alive connection per target, plus one per open session. In the open
// model a worker is one connection slot: it holds at most one connection
// (to target t, or for one session) and gets its jobs from the pool.
type worker struct {
	s        *Sender
	sh       *shard
	conns    []*conn
	sessions map[sessionKey]*conn
	br       *bufio.Reader // nil between requests in the open model
	bw       *bufio.Writer
	p        parser
	n        int64

	// open model, guarded by pool.mu except jobs' use
	jobs      chan job
	t         int
	session   *sessionKey   // set for a session connection
	pending   int           // jobs dispatched to this worker and not done
	idleSince time.Time     // when it last became idle
	lastLat   time.Duration // how long its last request held the connection (0 if not sent)
	gone      bool          // removed from the pool (evicted or closing)
	d         *directState  // a direct slot (plain TCP, pooled): see direct.go
}

func (s *Sender) newWorker(i int) *worker {
	return &worker{
		s:        s,
		sh:       s.shards[i%len(s.shards)],
		conns:    make([]*conn, len(s.targets)),
		sessions: map[sessionKey]*conn{},
		p:        parser{keep: s.cfg.KeepResponse, limit: s.cfg.KeepLimit},
	}
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

// newResult starts j's result: sent now, unless told otherwise.
func (s *Sender) newResult(j *job) Result {
	return Result{
		Result:   stats.Result{Scheduled: j.req.Scheduled, Start: time.Now()},
		Target:   s.targets[j.t].name,
		ID:       j.req.ID,
		ConnID:   j.req.ConnID,
		Expected: j.req.Expected,
	}
}

// drop accounts for j, not sent because of Stop: counted as
// dropped-on-stop, not as a request sent.
func (s *Sender) drop(j *job) {
	s.dropped.Add(1)
	if s.cfg.OnResult != nil {
		r := s.newResult(j)
		r.Start, r.Err, r.ErrClass = time.Time{}, errStopped, stats.ClassCanceled
		s.cfg.OnResult(r)
	}
}

// fail finishes j with the error of the connection opened for it.
func (w *worker) fail(j *job, err error, connect time.Duration) {
	if w.s.stopped.Load() {
		w.s.drop(j)
		return
	}
	r := w.s.newResult(j)
	r.Connect = connect
	r.Err = err
	w.finish(&r)
}

func (w *worker) do(j job) {
	s := w.s
	t := &s.targets[j.t]
	r := s.newResult(&j)
	if s.stopped.Load() {
		s.drop(&j)
		return
	}
	if err := s.ctx.Err(); err != nil {
		r.Err = fmt.Errorf("send to %s: %w", t.name, err)
		w.finish(&r)
		return
	}
	if w.br == nil {
		w.br = readers.get()
		defer func() {
			w.br.Reset(nil)
			readers.put(w.br)
			w.br = nil
		}()
	}
	c, session := w.take(&j)
	if c != nil && !j.info.replayable && peerClosed(c.nc) {
		// Closed by the target while idle: a request that cannot be sent
		// twice does not find it out by failing on it.
		_ = c.nc.Close()
		c = nil
	}
	var resp response
	for attempt := 0; ; attempt++ {
		fresh := c == nil || c.dialed // no earlier request on it: a reset is not staleness
		if c != nil {
			c.dialed = false
		}
		if c == nil {
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
		stale := !fresh && attempt == 0 && w.p.n == 0 && stats.Classify(err) == stats.ClassReset
		if stale && j.info.replayable {
			// A stale pooled connection (closed by the server while idle):
			// send once more on a new one.
			_ = c.nc.Close()
			c, r.Retried = nil, true
			continue
		}
		if stale {
			err = notResent(err)
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
	if err := nc.SetDeadline(start.Add(t.timeout)); err != nil {
		return response{}, err
	}
	if err := w.write(nc, t, j, r); err != nil {
		return response{}, fmt.Errorf("write request: %w", err)
	}
	w.br.Reset(nc)
	resp, err := w.p.read(j.info.method)
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

// write puts the request on nc: with the Host value replaced unless it is
// kept (PreserveHost, KeepHost). A request that fits the write buffer is copied into it and
// written at once; a larger one on plain TCP goes out with writev (the
// recorded bytes around the Host value and the new value, uncopied).
func (w *worker) write(nc net.Conn, t *target, j *job, r *Result) error {
	raw := j.req.Raw
	edit := j.info.hostStart >= 0
	r.BytesOut = int64(len(raw))
	if edit {
		r.BytesOut += int64(len(t.host) - (j.info.hostEnd - j.info.hostStart))
	}
	if _, plain := nc.(*net.TCPConn); plain && r.BytesOut > writeBufSize {
		bufs := net.Buffers{raw}
		if edit {
			bufs = net.Buffers{raw[:j.info.hostStart], t.hostBytes, raw[j.info.hostEnd:]}
		}
		_, err := bufs.WriteTo(nc)
		return err
	}
	bw := w.bw
	if bw == nil { // open model: a buffer only while writing
		bw = writers.get()
		defer writers.put(bw)
	}
	bw.Reset(nc)
	if edit {
		_, _ = bw.Write(raw[:j.info.hostStart])
		_, _ = bw.Write(t.hostBytes)
		_, _ = bw.Write(raw[j.info.hostEnd:])
	} else {
		_, _ = bw.Write(raw)
	}
	err := bw.Flush()
	bw.Reset(nil)
	return err
}

// dial opens a connection to t: TCP with TCP_NODELAY, then TLS for https.
func (w *worker) dial(t *target) (net.Conn, error) {
	s := w.s
	ctx, cancel := context.WithTimeout(s.ctx, t.timeout)
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
	w.lastLat = 0
	if !r.Start.IsZero() {
		w.lastLat = time.Since(r.Start) // failures too: they hold a connection as long
	}
	w.s.finish(w.sh, r)
}
