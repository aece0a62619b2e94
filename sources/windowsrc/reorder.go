package windowsrc

import (
	"container/heap"
	"math"

	"github.com/replayctl/replayctl/message"
)

// reorder puts merged messages back in capture-time order. A partition
// holds records in the order the broker received them, not the order they
// were captured: two hosts recording into one topic interleave by arrival
// (measured: half of the requests 26 ms early on average, 81 ms at most,
// with two capture processes under wrk), and a spool drained after an
// outage arrives minutes late. Sent in that order, a paced replay sends each
// inverted request late. reorder holds each message until the message read
// last was captured more than hold after it, or until more than max
// messages or maxBytes bytes are held, and releases them oldest first (ties
// in arrival order). When no message arrives more than hold after a
// message captured later, the output is sorted. It compares with the
// message read last, not the latest capture time seen, so that one record
// with a time far ahead (a host's clock step) flushes what is held once
// instead of turning the reordering off for the rest of the window. Its
// output depends on its input alone, never on timing, so a window read
// twice comes out the same and a resume position means the same request.
//
// Messages in arrival order (the usual case) go through a FIFO; only the
// inverted ones go through a heap. The counters are of requests: only
// their order paces a replay.
type reorder struct {
	hold     int64 // capture time held back, ns; 0 passes messages through
	max      int   // messages held at most
	maxBytes int64 // bytes (raw HTTP) held at most

	fifo  []entry // ascending; fifo[head:] is live
	head  int
	inv   entryHeap
	seq   uint64
	last  int64 // capture time of the message read last
	bytes int64 // held

	// untimed, when set, tells a capture time that cannot be real (a .gor
	// file's zero or garbage): such a message keeps its place in arrival
	// order (it sorts as the message read before it) and is not counted
	// late, nor does it move what the others are compared with.
	untimed func(t int64) bool

	lastOut   int64 // the latest capture time of a request released
	anyOut    bool
	late      int64 // requests released after a request captured later
	worstLate int64 // ns: the largest such inversion
	reordered int64 // requests read after a request captured later
}

type entry struct {
	m       *message.Message
	key     int64 // the capture time it sorts by: m.Time, unless untimed
	untimed bool
	seq     uint64
}

func (a entry) before(b entry) bool {
	return a.key < b.key || (a.key == b.key && a.seq < b.seq)
}

type entryHeap []entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = entry{}
	*h = old[:len(old)-1]
	return e
}

func newReorder(hold int64, max int, maxBytes int64) *reorder {
	return &reorder{hold: hold, max: max, maxBytes: maxBytes}
}

// after reports whether a is more than d after b, without overflow.
func after(a, b, d int64) bool {
	return a > b && uint64(a-b) > uint64(d)
}

// held is how many messages wait.
func (r *reorder) held() int { return len(r.fifo) - r.head + len(r.inv) }

// push adds m, in arrival order.
func (r *reorder) push(m *message.Message) {
	e := entry{m: m, key: m.Time, seq: r.seq, untimed: r.untimed != nil && r.untimed(m.Time)}
	r.seq++
	if e.untimed {
		e.key = r.last
		if r.seq == 1 {
			e.key = math.MinInt64 // read first: released first
		}
	}
	if n := len(r.fifo); n == r.head || !e.before(r.fifo[n-1]) {
		r.fifo = append(r.fifo, e)
	} else {
		heap.Push(&r.inv, e)
		if m.Kind == message.Request {
			r.reordered++
		}
	}
	if !e.untimed {
		r.last = m.Time
	}
	r.bytes += int64(len(m.Raw))
}

// ready reports whether the oldest held message may go: the message read
// last was captured more than hold after it, or too much is held.
func (r *reorder) ready() bool {
	n := r.held()
	if n == 0 {
		return false
	}
	return r.hold == 0 || n > r.max || r.bytes > r.maxBytes || after(r.last, r.peek().key, r.hold)
}

// heapFirst reports whether the oldest held message is in the heap rather
// than at the head of the FIFO; held() must be > 0.
func (r *reorder) heapFirst() bool {
	return len(r.inv) > 0 && (r.head == len(r.fifo) || r.inv[0].before(r.fifo[r.head]))
}

// peek returns the oldest held message; held() must be > 0.
func (r *reorder) peek() entry {
	if r.heapFirst() {
		return r.inv[0]
	}
	return r.fifo[r.head]
}

// pop releases the oldest held message; held() must be > 0.
func (r *reorder) pop() *message.Message {
	var e entry
	if r.heapFirst() {
		e = heap.Pop(&r.inv).(entry)
	} else {
		e = r.fifo[r.head]
		r.fifo[r.head] = entry{}
		r.head++
		if r.head == len(r.fifo) {
			r.fifo, r.head = r.fifo[:0], 0
		} else if r.head >= 1024 && r.head*2 >= len(r.fifo) {
			n := copy(r.fifo, r.fifo[r.head:])
			clear(r.fifo[n:])
			r.fifo, r.head = r.fifo[:n], 0
		}
	}
	r.bytes -= int64(len(e.m.Raw))
	if e.m.Kind != message.Request || e.untimed {
		return e.m
	}
	t := e.m.Time
	if r.anyOut && t < r.lastOut {
		r.late++
		d := uint64(r.lastOut - t)
		r.worstLate = max(r.worstLate, int64(min(d, math.MaxInt64)))
	}
	if !r.anyOut || t > r.lastOut {
		r.lastOut = t
	}
	r.anyOut = true
	return e.m
}
