package httpsink

import (
	"context"
	"sync"
)

// jobQueue is the event loops' bounded queue. The loops take requests in
// batches under one lock, and a Send blocked on a full queue is woken once
// per batch taken (a channel wakes it per request).
type jobQueue struct {
	mu      sync.Mutex
	ring    []job
	head, n int
	closed  bool
	waiters int           // Sends waiting for room
	room    chan struct{} // a token for one waiting Send
}

func newJobQueue(size int) *jobQueue {
	return &jobQueue{ring: make([]job, max(size, 1)), room: make(chan struct{}, 1)}
}

// put adds j, waiting while the queue is full until ctx ends.
func (q *jobQueue) put(ctx context.Context, j job) error {
	q.mu.Lock()
	for q.n == len(q.ring) && !q.closed {
		q.waiters++
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-ctx.Done():
			q.mu.Lock()
			q.waiters--
			q.mu.Unlock()
			return ctx.Err()
		}
		q.mu.Lock()
		q.waiters--
	}
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.ring[(q.head+q.n)%len(q.ring)] = j
	q.n++
	if q.n < len(q.ring) && q.waiters > 0 {
		q.signal() // room for the next waiting Send too
	}
	q.mu.Unlock()
	return nil
}

// take appends up to k requests to dst; closed reports that the queue is
// closed and empty.
func (q *jobQueue) take(dst []job, k int) (out []job, closed bool) {
	q.mu.Lock()
	for ; k > 0 && q.n > 0; k-- {
		dst = append(dst, q.ring[q.head])
		q.ring[q.head] = job{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	if q.waiters > 0 && q.n < len(q.ring) {
		q.signal()
	}
	closed = q.closed && q.n == 0
	q.mu.Unlock()
	return dst, closed
}

// signal gives a waiting Send a token (one is enough: it passes it on).
func (q *jobQueue) signal() {
	select {
	case q.room <- struct{}{}:
	default:
	}
}

// close makes put fail; take drains what is queued.
func (q *jobQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}
