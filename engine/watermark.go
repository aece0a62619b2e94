package engine

import (
	"sync"
	"sync/atomic"
)

// ResumePoint is where a replay that stopped part-way resumes: every request
// before Position, counted in the order the source emits them, was answered.
// A position, not a capture time: a window's partitions are in the order the
// brokers received the records (several hosts, connections that finish out
// of order), and even put back in capture-time order (windowsrc's reorder)
// a request read late may come out after one already answered: the stream
// is deterministic, not strictly sorted by capture time.
type ResumePoint struct {
	// Position is the index (from 0, in the source's order, before any
	// filter) of the first request not known to be answered.
	Position int64
	// Time is that request's capture time (Unix ns) when known (0 when it
	// is the next one and not read yet): for people, not for resuming.
	Time int64
	// Order is the source's order the position counts in
	// (sources.Ordered; "" for a source whose order has no settings). A
	// resume point of another order is not used: the run starts from its
	// first request (and counts possible duplicates).
	Order string
}

// watermark tracks the requests handed to the sender and not yet answered,
// so that a replay can say up to which position of its source every request
// is done: a run resumed there (Options.Resume) re-sends only what was in
// flight, or after it.
type watermark struct {
	mu       sync.Mutex
	inflight map[string]*wmEntry
	order    string       // the source's order (ResumePoint.Order), set before the first request
	next     int64        // the request being handled, or the next one to come
	nextTime atomic.Int64 // capture time of the request being handled (no lock: for people only)
}

type wmEntry struct {
	pos  int64
	time int64
	left int // results still expected (targets × amplify)
}

func newWatermark() *watermark { return &watermark{inflight: map[string]*wmEntry{}} }

// setOrder notes the source's order (ResumePoint.Order).
func (w *watermark) setOrder(order string) {
	w.mu.Lock()
	w.order = order
	w.mu.Unlock()
}

// handling records the capture time of the request being handled (the
// one at next: not answered, perhaps waiting for its scheduled instant).
// No lock: it runs once per request on the one goroutine that also calls
// sent and handled (which clear it under the lock), and the time is for
// people.
func (w *watermark) handling(t int64) { w.nextTime.Store(t) }

// handled records that the request at pos needs nothing more than what
// was sent for it: it was filtered out or skipped, or sent (see sent).
func (w *watermark) handled(pos int64) {
	w.mu.Lock()
	w.next = pos + 1
	w.nextTime.Store(0)
	w.mu.Unlock()
}

// sent records that the request at pos was handed to the sender and
// expects n results.
func (w *watermark) sent(id string, pos, t int64, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = pos + 1
	w.nextTime.Store(0)
	if e, ok := w.inflight[id]; ok {
		e.left += n // the same ID again (amplify, a loop): keep the earliest
		return
	}
	w.inflight[id] = &wmEntry{pos: pos, time: t, left: n}
}

// done records one result of a request.
func (w *watermark) done(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.inflight[id]; ok {
		if e.left--; e.left <= 0 {
			delete(w.inflight, id)
		}
	}
}

// value returns the position before which every request was answered.
func (w *watermark) value() ResumePoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	low := ResumePoint{Position: w.next, Order: w.order}
	if t := w.nextTime.Load(); t > 0 {
		low.Time = t
	}
	for _, e := range w.inflight {
		if e.pos < low.Position {
			low = ResumePoint{Position: e.pos, Time: e.time, Order: w.order}
		}
	}
	return low
}
