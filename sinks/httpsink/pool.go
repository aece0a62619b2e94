package httpsink

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// pool is the open model: connection slots (workers) started on demand, each
// holding at most one connection, up to cap.
//
// A request goes to an idle connection of its target (the most recently
// idle, so that few connections stay warm). When none is idle it waits in
// its target's queue and a new connection is dialed for it; whichever comes
// first — a busy connection freeing up or the new one — takes the oldest
// waiting request, so a request never waits for a dial slower than an
// answer, and a dial that lost the race leaves a spare idle connection.
// Dials in progress are bounded (dialBudget: 16, or a quarter of the
// connections open), and so are each target's pooled connections, by what
// its schedule needs (demand: the requests scheduled for it within its last
// latency, by Little's law, twice, plus 16): after a stall of the process,
// the machine or the target, the requests that became due at once are
// taken by the connections freeing up instead of each starting a dial (a
// request that waits because of that bound is counted as
// connections-bounded; its wait is its lateness). At the
// cap, the least recently idle connection of another target or session is
// closed to make room; when every connection is busy, the request waits
// (counted as pool-exhausted) and Send blocks until a connection takes it.
//
// With Config.MinConnections, preconnect opens that many pooled
// connections to each target before the first request, and the reaper
// keeps that many open.
//
// Sessions (Config.Session) have their own slots: a recorded connection's
// requests queue on its replay connection, in order. Pooled slots on plain
// TCP are direct (direct.go): Send writes the request itself on an idle
// one, and the slot's goroutine wakes only for the answer.
type pool struct {
	s *Sender

	mu       sync.Mutex
	cap      int
	open     int // slots started and not ended or evicted
	peak     int
	next     int         // slot number, for the shards
	idle     [][]*worker // per target: idle pooled slots, most recent last
	lru      list.List   // every idle slot, least recently idle first
	elems    map[*worker]*list.Element
	sessions map[sessionKey]*worker
	all      map[*worker]struct{} // slots not ended, for close
	waitq    [][]queued           // per target: requests waiting for a connection, oldest first
	dialing  []int                // per target: pooled slots dialing
	dials    int                  // pooled slots dialing, all targets
	seq      uint64               // requests queued so far
	closed   bool
	timer    *time.Timer   // armed while requests wait: starts their dials after dialGrace
	reaper   *time.Timer   // closes connections idle for idleTimeout
	waiting  int           // Sends blocked at the cap
	freed    chan struct{} // closed when a queued request is taken or a slot frees, then replaced
	pooledT  []int         // per target: pooled slots open, dialing included (dem bounds them; the reaper keeps MinConnections)
	preErr   error         // the first failed dial of preconnect
	preOpen  int           // connections preconnect opened
	dem      []demand      // per target: connections its schedule needs (Little's law)
	heldSeq  []uint64      // per target: waiting requests up to this seq were counted as bounded

	opened, exhausted, bounded atomic.Int64
}

type queued struct {
	j   job
	seq uint64
	at  time.Time // when it was queued
}

// dialGrace is how long a waiting request gives the busy connections to
// free before a connection is dialed for it. After a stall of the process
// (a GC, a busy machine) many requests are due at once while the answers
// that will free the connections are already in their socket buffers:
// without this grace each request would start a dial, and the pool would
// grow by thousands of connections it does not need. For a target that is
// really slow it adds at most this much (plus a timer's slack) to the
// lateness of a request that needs a new connection.
const dialGrace = time.Millisecond

// idleTimeout is how long a connection may stay idle before the pool closes
// it: after a burst the pool shrinks back to what the traffic needs (the
// most recently idle connections are reused first, so the extra ones age
// out), and connections are closed by us before a server's own idle
// timeout makes them stale.
var idleTimeout = 2 * time.Second

// sessionQueue is how many requests of one recorded connection may wait for
// its replay connection before Send blocks (keeping them in order).
const sessionQueue = 64

func newPool(s *Sender) *pool {
	p := &pool{
		s:        s,
		cap:      s.cfg.MaxConnections,
		idle:     make([][]*worker, len(s.targets)),
		elems:    map[*worker]*list.Element{},
		sessions: map[sessionKey]*worker{},
		all:      map[*worker]struct{}{},
		waitq:    make([][]queued, len(s.targets)),
		dialing:  make([]int, len(s.targets)),
		heldSeq:  make([]uint64, len(s.targets)),
		pooledT:  make([]int, len(s.targets)),
		dem:      make([]demand, len(s.targets)),
		freed:    make(chan struct{}),
	}
	if fd := fdLimit(); fd > 0 && fd-fdReserve < p.cap {
		p.cap = max(fd-fdReserve, 1)
	}
	p.mu.Lock() // reap reads p.reaper under the lock
	p.reaper = time.AfterFunc(reapEvery, p.reap)
	p.mu.Unlock()
	return p
}

// reap closes the connections idle for longer than idleTimeout, oldest
// first, and runs again reapEvery later. It closes at most reapMax (or an
// eighth of the connections open) at a time: closing thousands at once (a
// burst's connections, all idle since the same moment) is a stall of its
// own for both sides, and the pool shrinks back smoothly.
func (p *pool) reap() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	old := time.Now().Add(-idleTimeout)
	var shut []func()
	for e := p.lru.Front(); e != nil && len(shut) < max(reapMax, p.open/8); {
		w, next := e.Value.(*worker), e.Next()
		if w.idleSince.After(old) {
			break
		}
		if w.session == nil && p.pooledT[w.t] <= p.s.cfg.MinConnections {
			e = next // its target keeps MinConnections open
			continue
		}
		shut = append(shut, p.unlinkLocked(w))
		e = next
	}
	p.reaper.Reset(reapEvery)
	p.mu.Unlock()
	for _, f := range shut {
		f()
	}
}

// How often reap runs, and how many it closes at least each time.
const (
	reapEvery = 100 * time.Millisecond
	reapMax   = 32
)

// dispatch hands j to a connection, or queues it for the next one; at the
// cap it blocks until a connection takes it, ctx ends or the sender stops.
func (p *pool) dispatch(ctx context.Context, j job) error {
	if p.s.stopped.Load() {
		return fmt.Errorf("http sink: request %q: %w", j.req.ID, errStopped)
	}
	if p.s.cfg.Session && j.req.ConnID != "" {
		return p.dispatchSession(ctx, j)
	}
	t := j.t
	at := j.req.Scheduled
	if at.IsZero() {
		at = time.Now()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.dem[t].scheduled(at)
	if l := p.idle[t]; len(l) > 0 {
		w := l[len(l)-1]
		p.busyLocked(w)
		if w.d != nil {
			w.armLocked(&j)
			nc := w.d.nc
			p.mu.Unlock()
			p.sendDirect(w, &j, nc)
			return nil
		}
		p.mu.Unlock()
		w.jobs <- j // an idle slot's queue is empty
		return nil
	}
	p.seq++
	seq := p.seq
	p.waitq[t] = append(p.waitq[t], queued{j, seq, time.Now()})
	p.fillLocked()
	p.armLocked()
	if p.dialing[t] >= len(p.waitq[t]) || p.open < p.cap || p.lru.Len() > 0 {
		// A connection is on its way for every waiting request, or will
		// be when a dial ends: the first to free takes the oldest.
		p.mu.Unlock()
		return nil
	}
	// At the cap: wait until a connection takes the request.
	p.exhausted.Add(1)
	for p.queuedLocked(t, seq) {
		p.waiting++
		ch := p.freed
		p.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		p.mu.Lock()
		p.waiting--
		if err == nil && p.s.stopped.Load() {
			err = errStopped
		}
		if err != nil && p.unqueueLocked(t, seq) {
			p.mu.Unlock()
			return fmt.Errorf("http sink: request %q waits for a connection (all %d busy): %w", j.req.ID, p.cap, err)
		}
	}
	p.mu.Unlock()
	return nil
}

// queuedLocked reports whether request seq still waits in t's queue.
func (p *pool) queuedLocked(t int, seq uint64) bool {
	q := p.waitq[t]
	return len(q) > 0 && q[0].seq <= seq && q[len(q)-1].seq >= seq
}

// unqueueLocked removes request seq from t's queue; false if a connection
// already took it.
func (p *pool) unqueueLocked(t int, seq uint64) bool {
	q := p.waitq[t]
	i := slices.IndexFunc(q, func(e queued) bool { return e.seq == seq })
	if i < 0 {
		return false
	}
	p.waitq[t] = slices.Delete(q, i, i+1)
	return true
}

// popLocked takes the oldest request waiting for target t.
func (p *pool) popLocked(t int) (job, bool) {
	q := p.waitq[t]
	if len(q) == 0 {
		return job{}, false
	}
	j := q[0].j
	q[0] = queued{}
	p.waitq[t] = q[1:]
	p.wakeLocked()
	return j, true
}

// fillLocked starts a dial for every waiting request that has none coming,
// making room at the cap by closing idle connections.
func (p *pool) fillLocked() {
	old := time.Now().Add(-dialGrace)
	for t, q := range p.waitq {
		// Requests that waited dialGrace, oldest first, get a dial each
		// (the dials in progress count for the oldest); with no connection
		// at all, or when closing, every waiting request is due.
		due := len(q)
		if p.open > 0 && !p.closed {
			due = sort.Search(len(q), func(i int) bool { return q[i].at.After(old) })
		}
		for due > p.dialing[t] && p.dials < p.dialBudget() {
			if p.overBoundLocked(t) {
				p.heldLocked(t, due)
				break
			}
			if p.open >= p.cap && !p.evictLocked() {
				break
			}
			p.startPooledLocked(t)
		}
	}
}

// overBoundLocked reports whether target t's pooled connections are as
// many as its schedule's demand justifies (demand.bound): a waiting request
// then waits for a busy connection instead of a dial. Each target has its
// own demand and latency, so a fast target in a mirror or split never
// holds a slow one's connections down, nor the other way round.
func (p *pool) overBoundLocked(t int) bool {
	b, ok := p.dem[t].bound()
	return ok && p.pooledT[t] >= b
}

// heldLocked counts as bounded the requests among the first due waiting
// for t that get no dial because of the bound, each once.
func (p *pool) heldLocked(t, due int) {
	q := p.waitq[t][p.dialing[t]:due]
	if len(q) == 0 || q[len(q)-1].seq <= p.heldSeq[t] {
		return
	}
	i := sort.Search(len(q), func(i int) bool { return q[i].seq > p.heldSeq[t] })
	p.bounded.Add(int64(len(q) - i))
	p.heldSeq[t] = q[len(q)-1].seq
}

// armLocked makes sure fillLocked runs again once the youngest waiting
// request has waited dialGrace, while any request waits.
func (p *pool) armLocked() {
	if p.timer != nil || p.closed {
		return
	}
	p.timer = time.AfterFunc(dialGrace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.timer = nil
		p.fillLocked()
		for _, q := range p.waitq {
			if len(q) > 0 {
				p.armLocked()
				break
			}
		}
	})
}

// preconnect opens up to n pooled connections to each target before the
// first request (MinConnections), at most preconnectDials dialing at once,
// and waits for them: at the schedule's start every request would
// otherwise find no connection and wait for a dial, on a small machine for
// tens of milliseconds (hundreds of dials at once). It returns how many
// are open, how many were asked for, and the first dial error.
func (p *pool) preconnect(ctx context.Context, n int) (open, asked int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t := range p.waitq {
		want := min(n, p.cap-p.open+p.pooledT[t]) // never past the cap
		asked += want
		// Each connection is dialed once: a target that refuses, or
		// closes what it accepts, ends its slots and would otherwise be
		// dialed for ever. After a failed dial no more are started.
		for started := p.pooledT[t]; started < want && p.preErr == nil && !p.closed && ctx.Err() == nil; {
			if p.dials < preconnectDials {
				p.startPooledLocked(t)
				started++
				continue
			}
			p.waitFreedLocked(ctx)
		}
	}
	for p.dials > 0 && !p.closed && ctx.Err() == nil {
		p.waitFreedLocked(ctx)
	}
	for t := range p.waitq {
		open += p.pooledT[t] - p.dialing[t]
	}
	p.preOpen = open
	if err = p.preErr; err == nil {
		err = ctx.Err()
	}
	return open, asked, err
}

// preconnectDials bounds the dials of preconnect in progress at once (the
// target's accept queue, and a far target's SYNs, need not see thousands).
const preconnectDials = 64

// waitFreedLocked releases the lock until a slot frees, becomes idle or
// ends (wakeLocked), or ctx ends.
func (p *pool) waitFreedLocked(ctx context.Context) {
	p.waiting++
	ch := p.freed
	p.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	p.mu.Lock()
	p.waiting--
}

// dialBudget is how many dials may be in progress at once.
func (p *pool) dialBudget() int { return max(16, p.open/4) }

func (p *pool) dispatchSession(ctx context.Context, j job) error {
	key := sessionKey{j.t, j.req.ConnID}
	counted := false
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		w := p.sessions[key]
		if w == nil && p.open >= p.cap {
			p.evictLocked()
		}
		if w == nil && p.open < p.cap {
			w = p.startSessionLocked(key)
		}
		if w != nil {
			p.busyLocked(w)
			p.mu.Unlock()
			return p.feed(ctx, w, j)
		}
		if !counted {
			counted = true
			p.exhausted.Add(1)
		}
		p.waitFreedLocked(ctx)
		p.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("http sink: request %q waits for a connection (all %d busy): %w", j.req.ID, p.cap, err)
		}
		if p.s.stopped.Load() {
			return fmt.Errorf("http sink: request %q: %w", j.req.ID, errStopped)
		}
	}
}

// feed queues j on a session slot, in order, blocking while its queue is
// full.
func (p *pool) feed(ctx context.Context, w *worker, j job) error {
	select {
	case w.jobs <- j:
		return nil
	default:
	}
	select {
	case w.jobs <- j:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		p.sessionDoneLocked(w)
		p.mu.Unlock()
		return fmt.Errorf("http sink: queue request %q on its session: %w", j.req.ID, ctx.Err())
	}
}

// busyLocked counts one more job for w and takes it off the idle lists.
func (p *pool) busyLocked(w *worker) {
	if w.pending == 0 {
		if e := p.elems[w]; e != nil {
			p.lru.Remove(e)
			delete(p.elems, w)
		}
		if w.session == nil {
			l := p.idle[w.t]
			for i := len(l) - 1; i >= 0; i-- { // the last one but for evictions
				if l[i] == w {
					p.idle[w.t] = append(l[:i], l[i+1:]...)
					break
				}
			}
		}
	}
	w.pending++
}

// idleLocked puts w on the idle lists.
func (p *pool) idleLocked(w *worker) {
	if w.session == nil {
		p.idle[w.t] = append(p.idle[w.t], w)
	}
	w.idleSince = time.Now()
	p.elems[w] = p.lru.PushBack(w)
	p.wakeLocked()
}

// sessionDoneLocked counts one job of session slot w done.
func (p *pool) sessionDoneLocked(w *worker) {
	w.pending--
	if w.pending > 0 || w.gone {
		return
	}
	p.idleLocked(w)
	p.fillLocked() // at the cap, a waiting request may take its place
}

// evictLocked closes the least recently idle slot, if any, to make room.
func (p *pool) evictLocked() bool {
	if p.lru.Len() == 0 {
		return false
	}
	p.unlinkOldestLocked()()
	return true
}

// unlinkOldestLocked takes the least recently idle slot (there is one) out
// of the pool and returns what ends it: closing its connection, which the
// caller may do after releasing the lock.
func (p *pool) unlinkOldestLocked() func() {
	return p.unlinkLocked(p.lru.Front().Value.(*worker))
}

// unlinkLocked takes idle slot w out of the pool and returns what ends it
// (as unlinkOldestLocked).
func (p *pool) unlinkLocked(w *worker) func() {
	p.busyLocked(w) // off the idle lists
	w.pending--
	p.endLocked(w)
	close(w.jobs)
	if d := w.d; d != nil {
		nc := d.nc
		return func() { _ = nc.Close() } // wakes its goroutine
	}
	return func() {}
}

// endLocked takes w out of the pool.
func (p *pool) endLocked(w *worker) {
	if w.gone {
		return
	}
	w.gone = true
	p.open--
	if w.session == nil {
		p.pooledT[w.t]--
	}
	delete(p.all, w)
	if w.session != nil {
		delete(p.sessions, *w.session)
	}
	p.wakeLocked()
}

func (p *pool) newSlotLocked(t int) *worker {
	w := p.s.newWorker(p.next)
	p.next++
	w.t = t
	p.open++
	p.peak = max(p.peak, p.open)
	p.all[w] = struct{}{}
	p.opened.Add(1)
	return w
}

func (p *pool) startPooledLocked(t int) {
	w := p.newSlotLocked(t)
	w.jobs = make(chan job, 1)
	p.pooledT[t]++
	p.dialing[t]++
	p.dials++
	p.s.wg.Go(func() { p.runPooled(w) })
}

func (p *pool) startSessionLocked(key sessionKey) *worker {
	w := p.newSlotLocked(key.t)
	w.jobs = make(chan job, sessionQueue)
	w.session = &key
	p.sessions[key] = w
	p.s.wg.Go(func() { p.runSession(w) })
	return w
}

// runPooled is a pooled slot's goroutine: it dials, then sends the oldest
// waiting request of its target, or waits idle to be handed one, until the
// pool closes or evicts it. A failed dial fails the oldest waiting request
// (the one it was dialed for, or an equivalent) and ends the slot.
func (p *pool) runPooled(w *worker) {
	defer w.closeAll()
	t := w.t
	t0 := time.Now()
	nc, err := w.dial(&p.s.targets[t])
	took := time.Since(t0)
	p.mu.Lock()
	p.dialing[t]--
	p.dials--
	if err != nil {
		j, ok := p.popLocked(t)
		if !ok && p.preErr == nil {
			p.preErr = err // a dial of preconnect: no request waited for it
		}
		p.endLocked(w)
		p.fillLocked()
		p.mu.Unlock()
		if ok {
			w.fail(&j, err, took)
		}
		return
	}
	if w.setDirect(nc) {
		p.runDirect(w)
		return
	}
	w.conns[t] = &conn{nc: nc, dialed: true}
	for {
		if j, ok := p.popLocked(t); ok {
			w.pending++
			p.fillLocked() // a dial ended: the budget may allow another
			p.mu.Unlock()
			w.do(j)
			p.mu.Lock()
			p.dem[w.t].answered(w.lastLat, time.Now())
			w.pending--
			continue
		}
		if p.closed || w.gone {
			p.endLocked(w)
			p.mu.Unlock()
			return
		}
		if c := w.conns[t]; c != nil {
			c.dialed = false // it idles: it may go stale
		}
		p.idleLocked(w)
		p.fillLocked() // another target's waiting request may take its place
		p.mu.Unlock()
		j, ok := <-w.jobs
		if !ok {
			return // evicted or closed
		}
		w.do(j)
		p.mu.Lock()
		p.dem[w.t].answered(w.lastLat, time.Now())
		w.pending--
	}
}

// runSession is a session slot's goroutine: it sends its recorded
// connection's requests in order until the pool closes or evicts it.
func (p *pool) runSession(w *worker) {
	defer w.closeAll()
	for j := range w.jobs {
		w.do(j)
		p.mu.Lock()
		p.sessionDoneLocked(w)
		p.mu.Unlock()
	}
}

func (p *pool) wakeLocked() {
	if p.waiting > 0 {
		close(p.freed)
		p.freed = make(chan struct{})
	}
}

// stop drops the waiting requests (after Stop) and wakes blocked Sends.
func (p *pool) stop() {
	p.mu.Lock()
	var dropped []job
	for t, q := range p.waitq {
		for _, e := range q {
			dropped = append(dropped, e.j)
		}
		p.waitq[t] = nil
	}
	p.wakeLocked()
	p.mu.Unlock()
	for i := range dropped {
		p.s.drop(&dropped[i])
	}
}

// close ends every slot once the requests queued for it are done: idle
// and session slots now (sessions after their queue), busy and dialing
// ones when they find nothing more to send.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.reaper.Stop()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.fillLocked() // no more grace: every waiting request gets its dial
	for w := range p.all {
		if w.session != nil || (w.pending == 0 && p.elems[w] != nil) {
			if e := p.elems[w]; e != nil {
				p.lru.Remove(e)
				delete(p.elems, w)
			}
			w.gone = true
			close(w.jobs)
			if w.d != nil {
				_ = w.d.nc.Close() // wakes its goroutine
			}
			delete(p.all, w)
		}
	}
	for t := range p.idle {
		p.idle[t] = nil
	}
	p.wakeLocked()
}
