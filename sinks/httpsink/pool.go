package httpsink

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// pool is the open model: connection slots (workers) started on demand, each
// holding at most one connection, up to cap. An idle slot is reused (the most
// recently idle first, so that few connections stay warm); when none is
// idle, a new one is started; at the cap, the least recently idle slot of
// another target or session is closed to make room, and when every slot is
// busy the request waits for one (counted as pool-exhausted).
type pool struct {
	s *Sender

	mu       sync.Mutex
	cap      int
	open     int // slots started and not evicted
	peak     int
	next     int         // slot number, for the shards
	idle     [][]*worker // per target: idle non-session slots, most recent last
	lru      list.List   // every idle slot, least recently idle first
	elems    map[*worker]*list.Element
	sessions map[sessionKey]*worker
	all      map[*worker]struct{} // slots not evicted, for close
	closed   bool
	waiting  int           // Sends waiting for a slot
	freed    chan struct{} // closed when a slot becomes idle or is closed, then replaced

	opened, exhausted atomic.Int64
}

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
		freed:    make(chan struct{}),
	}
	if fd := fdLimit(); fd > 0 && fd-fdReserve < p.cap {
		p.cap = max(fd-fdReserve, 1)
	}
	return p
}

// dispatch hands j to a slot: the recorded connection's own slot (sessions),
// an idle slot of j's target, or a new one; at the cap it waits until a slot
// frees, ctx ends or the sender stops.
func (p *pool) dispatch(ctx context.Context, j job) error {
	session := p.s.cfg.Session && j.req.ConnID != ""
	key := sessionKey{j.t, j.req.ConnID}
	counted := false
	for {
		if p.s.stopped.Load() {
			return fmt.Errorf("http sink: request %q: %w", j.req.ID, errStopped)
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if session {
			if w := p.sessions[key]; w != nil {
				p.busyLocked(w)
				p.mu.Unlock()
				return p.feed(ctx, w, j)
			}
		} else if l := p.idle[j.t]; len(l) > 0 {
			w := l[len(l)-1]
			p.busyLocked(w)
			p.mu.Unlock()
			w.jobs <- j // an idle slot's queue is empty
			return nil
		}
		if p.open >= p.cap {
			p.evictLocked()
		}
		if p.open < p.cap {
			w := p.startLocked(j.t, session, key)
			p.busyLocked(w)
			p.mu.Unlock()
			w.jobs <- j
			return nil
		}
		if !counted {
			counted = true
			p.exhausted.Add(1)
		}
		p.waiting++
		ch := p.freed
		p.mu.Unlock()
		select {
		case <-ch:
			p.mu.Lock()
			p.waiting--
			p.mu.Unlock()
		case <-ctx.Done():
			p.mu.Lock()
			p.waiting--
			p.mu.Unlock()
			return fmt.Errorf("http sink: request %q waits for a connection (all %d busy): %w", j.req.ID, p.cap, ctx.Err())
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
		p.doneLocked(w)
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

// doneLocked counts one job of w done; an idle slot goes back to the idle
// lists, and a waiting Send is woken.
func (p *pool) doneLocked(w *worker) {
	w.pending--
	if w.pending > 0 || w.gone {
		return
	}
	if w.session == nil {
		p.idle[w.t] = append(p.idle[w.t], w)
	}
	p.elems[w] = p.lru.PushBack(w)
	p.wakeLocked()
}

// evictLocked closes the least recently idle slot, if any, to make room.
func (p *pool) evictLocked() {
	e := p.lru.Front()
	if e == nil {
		return
	}
	w := e.Value.(*worker)
	p.busyLocked(w) // off the idle lists
	w.pending--
	p.removeLocked(w)
}

// removeLocked takes w out of the pool and ends its goroutine once its
// queue is done.
func (p *pool) removeLocked(w *worker) {
	if w.gone {
		return
	}
	w.gone = true
	p.open--
	delete(p.all, w)
	if w.session != nil {
		delete(p.sessions, *w.session)
	}
	close(w.jobs)
}

func (p *pool) startLocked(t int, session bool, key sessionKey) *worker {
	w := p.s.newWorker(p.next)
	p.next++
	w.t = t
	if session {
		w.jobs = make(chan job, sessionQueue)
		w.session = &key
		p.sessions[key] = w
	} else {
		w.jobs = make(chan job, 1)
	}
	p.open++
	p.peak = max(p.peak, p.open)
	p.all[w] = struct{}{}
	p.opened.Add(1)
	p.s.wg.Go(func() { p.run(w) })
	return w
}

// run is a slot's goroutine: it sends its jobs one after the other on its
// connection until the pool closes it.
func (p *pool) run(w *worker) {
	defer w.closeAll()
	for j := range w.jobs {
		w.do(j)
		p.mu.Lock()
		p.doneLocked(w)
		p.mu.Unlock()
	}
}

func (p *pool) wakeLocked() {
	if p.waiting > 0 {
		close(p.freed)
		p.freed = make(chan struct{})
	}
}

// wake wakes Sends waiting for a slot (after Stop).
func (p *pool) wake() {
	p.mu.Lock()
	p.wakeLocked()
	p.mu.Unlock()
}

// close ends every slot once its queued jobs are done.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for w := range p.all {
		w.gone = true
		close(w.jobs)
	}
	clear(p.all)
	p.wakeLocked()
}
