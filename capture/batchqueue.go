package capture

import (
	"sync/atomic"

	"github.com/gopacket/gopacket"
)

// packetBatch holds copies of packets read from a live ring: one copy per
// packet, into one buffer, so that the ring's block is given back to the
// kernel at once.
type packetBatch struct {
	buf  []byte
	pkts []batchPacket
}

type batchPacket struct {
	off, end int
	ci       gopacket.CaptureInfo
}

// batchQueue hands batches from the ring's reader to the assembler. Its
// batches are allocated once: the queue holds at most n of them, one more
// is being filled by the reader and one more decoded by the assembler. The
// reader never waits: a batch that finds the queue full is dropped, and its
// packets are counted in lc.QueueOverflow.
type batchQueue struct {
	full chan *packetBatch
	free chan *packetBatch
	cur  *packetBatch
	size int
	lc   *LiveCounters
	// queued counts the packets handed to the assembler and not decoded
	// yet: what quitting at once loses of what was read from the ring.
	queued atomic.Int64
}

func newBatchQueue(n, size int, lc *LiveCounters) *batchQueue {
	if n < 1 {
		n = 1
	}
	q := &batchQueue{full: make(chan *packetBatch, n), free: make(chan *packetBatch, n+2), size: size, lc: lc}
	q.cur = q.newBatch()
	return q
}

func (q *batchQueue) newBatch() *packetBatch {
	return &packetBatch{buf: make([]byte, 0, q.size), pkts: make([]batchPacket, 0, 256)}
}

// empty reports whether the batch being filled holds no packet.
func (q *batchQueue) empty() bool { return len(q.cur.pkts) == 0 }

// add copies data into the batch being filled. It returns false, copying
// nothing, when the batch has no room left: flush, then add again. A packet
// larger than a whole batch gets a batch of its own size.
func (q *batchQueue) add(data []byte, ci gopacket.CaptureInfo) bool {
	b := q.cur
	if len(b.pkts) > 0 && (len(b.buf)+len(data) > cap(b.buf) || len(b.pkts) == liveBatchPackets) {
		return false
	}
	off := len(b.buf)
	b.buf = append(b.buf, data...)
	b.pkts = append(b.pkts, batchPacket{off: off, end: len(b.buf), ci: ci})
	return true
}

// flush queues the batch being filled, if it holds packets, or drops it
// (counted) when the queue is full, and starts a new one.
func (q *batchQueue) flush() {
	b := q.cur
	if len(b.pkts) == 0 {
		return
	}
	n := int64(len(b.pkts))
	q.queued.Add(n) // before the assembler can take it
	select {
	case q.full <- b:
		q.lc.Batches.Add(1)
	default:
		q.queued.Add(-n)
		q.lc.QueueOverflow.Add(n)
		b.buf, b.pkts = b.buf[:0], b.pkts[:0]
		return
	}
	select {
	case q.cur = <-q.free:
	default:
		q.cur = q.newBatch()
	}
}

// release gives a decoded batch back to the reader.
func (q *batchQueue) release(b *packetBatch) {
	if cap(b.buf) > q.size {
		return // a batch grown for one large packet is not kept
	}
	b.buf, b.pkts = b.buf[:0], b.pkts[:0]
	select {
	case q.free <- b:
	default:
	}
}

// close ends the queue: the reader has finished.
func (q *batchQueue) close() { close(q.full) }
