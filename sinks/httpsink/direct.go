package httpsink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/replayctl/replayctl/stats"
)

// Direct sends (open model, plain TCP, pooled connections): the goroutine
// that calls Send writes the request itself on an idle connection, and the
// connection's own goroutine, parked on the socket since the connection
// became idle, wakes once, when the answer arrives. Compared with handing
// the request to the connection's goroutine over a channel, a request costs
// one goroutine wake-up less (and no wake-up of an idle thread to run it),
// its send time is the pacer's (not the pacer's plus a run-queue wait), and
// a connection the server closes while idle is noticed at once instead of
// on the next request.
//
// While idle, a direct slot's goroutine waits in a raw read of at most
// len(worker.pre) bytes: an answer that fits (most do) costs no further
// read. The writer publishes the request (worker.cur, worker.res) under the
// pool's lock, together with the slot becoming busy, and sets worker.armed;
// the reader reads them after seeing armed (or, after a wake-up it did not
// expect, under the lock).

// directMax is the largest request the caller writes itself: it goes out in
// one write on an idle connection, whose send buffer is empty. A larger one
// is written by a goroutine of its own (it may block).
const directMax = 16 << 10

// preSize is the read done while a direct connection is idle.
const preSize = 512

// wbufs are the write buffers of direct sends.
var wbufs = freeList[*[]byte]{make: func() *[]byte { b := make([]byte, 0, directMax); return &b }}

// directState is a direct slot's part of the worker.
type directState struct {
	nc     net.Conn
	rc     syscall.RawConn
	readFn func(fd uintptr) bool // w.readPre, bound once
	armed  atomic.Bool           // cur and res hold a request being written or sent
	cur    job
	res    Result
	werr   error // the write of cur failed (guarded by pool.mu)
	pre    [preSize]byte
	preOff int
	preN   int
	preErr error
	// used: the connection sat idle or answered before the request now
	// armed. Only then is a reset or an end with nothing read a stale
	// connection worth sending to again; on a connection dialed for this
	// request it is the target's answer (a second send would repeat a
	// request the target may have acted on).
	used bool
}

// setDirect makes w a direct slot on nc, if nc is plain TCP.
func (w *worker) setDirect(nc net.Conn) bool {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	if w.d == nil {
		w.d = &directState{}
		w.d.readFn = w.readPre
	}
	w.d.nc, w.d.rc, w.d.used = nc, rc, false
	return true
}

// readPre is the raw read of an idle direct connection: false (wait for
// the socket to be readable) while it has nothing.
func (w *worker) readPre(fd uintptr) bool {
	d := w.d
	for {
		n, err := syscall.Read(int(fd), d.pre[:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			d.preErr = os.NewSyscallError("read", err)
		case n == 0:
			d.preErr = io.EOF
		default:
			d.preN = n
		}
		return true
	}
}

// waitIdle waits until the idle connection has bytes, an end, an error, or
// its deadline passes.
func (w *worker) waitIdle() {
	d := w.d
	d.preOff, d.preN, d.preErr = 0, 0, nil
	if err := d.rc.Read(d.readFn); err != nil {
		d.preErr = err
	}
}

// preRead reads the bytes waitIdle got, then the connection.
type preRead worker

func (r *preRead) Read(b []byte) (int, error) {
	d := r.d
	if d.preOff < d.preN {
		n := copy(b, d.pre[d.preOff:d.preN])
		d.preOff += n
		return n, nil
	}
	if err := d.preErr; err != nil {
		d.preErr = nil
		return 0, err
	}
	return d.nc.Read(b)
}

// armLocked publishes j as w's request (w was just taken busy by the
// caller, under the pool's lock): sent now.
func (w *worker) armLocked(j *job) {
	d := w.d
	d.cur = *j
	d.res = w.s.newResult(j)
	d.werr = nil
	d.armed.Store(true)
	// The deadline covers the write and the answer; set under the lock so
	// that the reader, seeing the slot busy, never reads with the last one.
	_ = d.nc.SetDeadline(d.res.Start.Add(w.s.targets[j.t].timeout))
}

// sendDirect writes j, just armed on w, on nc, w's connection (both read
// by the caller under the lock: once the answer is in, w may be armed
// again). A write error closes the connection, which wakes the reader; it
// reports the error (or retries on a new connection, for a stale one).
func (p *pool) sendDirect(w *worker, j *job, nc net.Conn) {
	t := &p.s.targets[j.t]
	raw := j.req.Raw
	edit := j.info.hostStart >= 0
	size := len(raw)
	if edit {
		size += len(t.host) - (j.info.hostEnd - j.info.hostStart)
	}
	if size > directMax {
		// Written by a goroutine of its own: it may block.
		var bufs net.Buffers
		if edit {
			bufs = net.Buffers{raw[:j.info.hostStart], t.hostBytes, raw[j.info.hostEnd:]}
		} else {
			bufs = net.Buffers{raw}
		}
		go func() {
			if _, err := bufs.WriteTo(nc); err != nil {
				p.writeFailed(w, nc, err)
			}
		}()
		return
	}
	bp := wbufs.get()
	b := (*bp)[:0]
	if edit {
		b = append(b, raw[:j.info.hostStart]...)
		b = append(b, t.hostBytes...)
		b = append(b, raw[j.info.hostEnd:]...)
	} else {
		b = append(b, raw...)
	}
	_, err := nc.Write(b)
	*bp = b[:0]
	wbufs.put(bp)
	if err != nil {
		p.writeFailed(w, nc, err)
	}
}

func (p *pool) writeFailed(w *worker, nc net.Conn, err error) {
	p.mu.Lock()
	if w.d.nc == nc && w.d.armed.Load() {
		w.d.werr = fmt.Errorf("write request: %w", err)
	}
	p.mu.Unlock()
	_ = nc.Close()
}

// complete reads the answer to w's armed request into res (the caller
// finishes it, once the slot is free again). A stale connection (closed by
// the server while idle: nothing read, reset or EOF) gets the request once
// more on a new connection, as worker.do does. It returns whether the
// connection stays usable.
func (p *pool) complete(w *worker, res *Result) bool {
	d := w.d
	d.armed.Store(false)
	j := &d.cur
	r := &d.res
	t := &p.s.targets[j.t]
	if d.preErr != nil && errors.Is(d.preErr, os.ErrDeadlineExceeded) && time.Now().Before(r.Start.Add(t.timeout)) {
		d.preErr = nil // the idle wait's old deadline, not this request's
	}
	w.br = readers.get()
	defer func() {
		w.br.Reset(nil)
		readers.put(w.br)
		w.br = nil
	}()
	w.p.reset(w.br)
	w.br.Reset((*preRead)(w))
	resp, err := w.p.read(j.info.method)
	r.BytesIn = w.p.n
	r.BytesOut = int64(len(j.req.Raw))
	if j.info.hostStart >= 0 {
		r.BytesOut += int64(len(t.host) - (j.info.hostEnd - j.info.hostStart))
	}
	r.Latency = time.Since(r.Start)
	if err != nil {
		p.mu.Lock()
		werr := d.werr
		p.mu.Unlock()
		if werr != nil {
			err = werr
		} else {
			err = fmt.Errorf("read response: %w", err)
		}
	}
	c := d.nc
	keep := false
	switch {
	case err == nil:
		r.Status = resp.status
		if p.s.cfg.KeepResponse {
			r.Response = append([]byte(nil), w.p.out...)
			r.ResponseTruncated = w.p.trunc
		}
		keep = resp.keepAlive && !j.info.close && w.br.Buffered() == 0 && d.preOff == d.preN
		d.used = true
	case d.used && w.p.n == 0 && (stats.Classify(err) == stats.ClassReset || errors.Is(err, io.EOF)) && j.info.replayable:
		// Stale: once more on a new connection.
		_ = c.Close()
		r.Retried = true
		t0 := time.Now()
		nc, derr := w.dial(t)
		r.Connect += time.Since(t0)
		if derr != nil {
			r.Err = derr
			break
		}
		resp, err = w.roundTrip(nc, t, j, r)
		if err != nil {
			_ = nc.Close()
			r.Err = fmt.Errorf("%s %s: %w", t.name, t.addr, err)
			break
		}
		p.mu.Lock() // writeFailed reads d.nc
		keep = resp.keepAlive && !j.info.close && w.br.Buffered() == 0 && w.setDirect(nc)
		d.used = true // it answered
		p.mu.Unlock()
		if !keep {
			_ = nc.Close()
		}
		*res = *r
		return keep
	case d.used && w.p.n == 0 && (stats.Classify(err) == stats.ClassReset || errors.Is(err, io.EOF)):
		r.Err = fmt.Errorf("%s %s: %w", t.name, t.addr, notResent(err))
	default:
		r.Err = fmt.Errorf("%s %s: %w", t.name, t.addr, err)
	}
	if !keep {
		_ = c.Close()
	}
	*res = *r
	return keep
}

// runDirect is a direct pooled slot's goroutine, after its dial: it sends
// the oldest waiting request of its target itself, or waits idle on the
// connection for a request written by Send, then reads the answer, until
// the pool closes or evicts it, or the connection ends. Called with p.mu
// held; returns with it released.
func (p *pool) runDirect(w *worker) {
	t := w.t
	var res Result
	done := false // res holds a result to finish once the lock is released
	finish := func() {
		if done {
			done = false
			w.finish(&res)
			res = Result{}
		}
	}
	for {
		if j, ok := p.popLocked(t); ok && (p.s.stopped.Load() || p.s.ctx.Err() != nil) {
			// Not sent: worker.do drops it (Stop) or fails it (Close
			// gave up waiting).
			w.pending++
			p.mu.Unlock()
			finish()
			w.do(j)
			p.mu.Lock()
			w.pending--
			continue
		} else if ok {
			// The oldest waiting request goes out at once, as Send would
			// on an idle connection; the last result is finished after
			// (OnResult may wait on locks of its own).
			w.pending++
			w.armLocked(&j)
			nc := w.d.nc
			p.fillLocked()
			p.mu.Unlock()
			p.sendDirect(w, &j, nc)
			finish()
		} else {
			if p.closed || w.gone {
				p.endLocked(w)
				p.mu.Unlock()
				_ = w.d.nc.Close()
				finish()
				return
			}
			p.idleLocked(w)
			w.d.used = true
			p.fillLocked()
			p.mu.Unlock()
			finish()
		}
		for {
			w.waitIdle()
			if w.d.armed.Load() {
				break
			}
			p.mu.Lock()
			if w.pending > 0 { // taken while we woke: armed under the lock
				p.mu.Unlock()
				break
			}
			if !w.gone && errors.Is(w.d.preErr, os.ErrDeadlineExceeded) {
				// The last request's deadline, while idle: wait on.
				_ = w.d.nc.SetReadDeadline(time.Time{})
				p.mu.Unlock()
				continue
			}
			// Closed by the server (or evicted, or the pool closed) while
			// idle: the slot ends.
			if !w.gone {
				p.busyLocked(w) // off the idle lists
				w.pending--
				p.endLocked(w)
				p.fillLocked()
			}
			p.mu.Unlock()
			_ = w.d.nc.Close()
			return
		}
		keep := p.complete(w, &res)
		done = true
		p.mu.Lock()
		p.dem[w.t].answered(time.Since(res.Start), time.Now())
		w.pending--
		if !keep {
			p.endLocked(w)
			p.fillLocked()
			p.mu.Unlock()
			finish()
			return
		}
	}
}
