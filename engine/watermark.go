package engine

import "sync"

// watermark tracks the capture times of requests handed to the sender and
// not yet answered, so that a replay can say up to which capture time every
// request is done: a run resumed from there (Options.ResumeFrom) re-sends
// only what was in flight. Messages reach it in capture-time order (a window
// source merges partitions by capture time).
type watermark struct {
	mu       sync.Mutex
	inflight map[string]*wmEntry
	last     int64 // capture time of the last request emitted
	any      bool
}

type wmEntry struct {
	time int64
	left int // results still expected (targets × amplify)
}

func newWatermark() *watermark { return &watermark{inflight: map[string]*wmEntry{}} }

// sent records a request expecting n results.
func (w *watermark) sent(id string, t int64, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.inflight[id]; ok {
		e.left += n // the same ID again (amplify, a loop): keep the earliest time
		return
	}
	w.inflight[id] = &wmEntry{time: t, left: n}
	w.last, w.any = t, true
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

// value returns the capture time below which every request emitted so far
// was answered (0 before the first). With nothing in flight it is the last
// request's own capture time, not just after it: a request captured at the
// same instant (a burst in a pcap of microseconds, a .gor file) may not be
// emitted yet, and a resumed run must send it; the last one is sent again
// instead (counted as a possible duplicate).
func (w *watermark) value() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.any {
		return 0
	}
	low := w.last
	for _, e := range w.inflight {
		low = min(low, e.time)
	}
	return low
}
