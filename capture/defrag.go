package capture

import (
	"errors"
	"hash/maphash"
	"slices"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
)

// The fragments of IP packets (IPv4, and IPv6's Fragment header) are held
// until their packet is whole, as the receiver does, then the packet is
// decoded. frag4Timeout and frag6Timeout are how long, in capture time
// from its first fragment held, a packet waits for the rest of it (Linux's
// ipfrag_time and ip6frag_time); maxFragBytes bounds the bytes held (a
// flood of fragments that never complete): past it, those held are dropped
// (buffer-overflow).
const (
	frag4Timeout = 30 * time.Second
	frag6Timeout = 60 * time.Second
	maxFragBytes = 16 << 20
	// fragHeldBytes is what a packet held costs besides its bytes (its
	// list, its map entry), counted against maxFragBytes.
	fragHeldBytes = 128
	// maxFragDone bounds the packets made whole that are remembered, to
	// know a fragment repeated after its packet was whole.
	maxFragDone = 4096
)

// fragKey names the packet a fragment belongs to: its addresses, its Id
// and, for IPv4 (RFC 791), its protocol. IPv6 (RFC 8200) does not key on
// the next header; proto is 0.
type fragKey struct {
	net   gopacket.Flow
	id    uint32
	proto uint8
}

// fragPiece is the bytes [start, end) of a packet's payload.
type fragPiece struct {
	start, end int
	data       []byte
}

// fragPacket is the fragments held of one packet: sorted by offset and
// never overlapping.
type fragPacket struct {
	pieces []fragPiece
	end    int  // the highest end seen; the packet's, once final
	final  bool // the last fragment (no more fragments) was seen
	have   int  // bytes held
	since  time.Time
	v6     bool
	// head is the IP header of the first fragment (offset 0), nil until
	// it comes; ours says whether that fragment is of captured traffic.
	head  []byte
	ours  bool
	tcp   bool // the first fragment is of TCP
	bytes int  // counted against maxFragBytes
}

// defragmenter holds fragments by packet. Unlike gopacket's ip4defrag and
// ip6defrag it keeps its own copy of the bytes, times packets out in
// capture time (ip6defrag uses the clock, which a pcap file read at once
// never moves) and tells whether a packet dropped incomplete was of
// captured traffic (fragments-incomplete).
type defragmenter struct {
	held  map[fragKey]*fragPacket
	bytes int
	// done remembers the packets made whole within their timeout (at most
	// maxFragDone, oldest first in doneOrder): a fragment that repeats
	// one of theirs (a link-level repeat, a capture seeing it twice)
	// makes no packet and is no loss, where held alone it would time out
	// incomplete. A fragment with their Id and other bytes (the Id used
	// again) starts a packet, as in the receiver.
	done      map[fragKey]*fragDone
	doneOrder []*fragDone
	seed      maphash.Seed
}

// fragDone is a packet made whole: its fragments' ranges and the hashes of
// their bytes.
type fragDone struct {
	key    fragKey
	at     time.Time
	v6     bool
	pieces []fragSum
}

type fragSum struct {
	start, end int
	sum        uint64
}

// fragIn is one fragment to add: its packet's key, the offset of its
// payload in the packet's, whether more follow, and, for the first
// (start 0), its IP header and whether it is of captured traffic.
type fragIn struct {
	key   fragKey
	start int
	data  []byte
	more  bool
	limit int // the payload's end may not pass it (65535 less the header)
	head  []byte
	ours  bool
	tcp   bool
	v6    bool
}

var (
	errFragEmpty    = errors.New("defrag: fragment empty")
	errFragTooLong  = errors.New("defrag: fragment past the largest packet")
	errFragOverlap  = errors.New("defrag: fragment overlaps another one")
	errFragBadFinal = errors.New("defrag: fragments disagree on where the packet ends")
)

// add holds f. It returns the packet's header and payload once whole. An
// error is a fragment the receiver refuses (RFC 5722 for overlaps): the
// fragments held of its packet are dropped with it, as the receiver drops
// them.
func (d *defragmenter) add(f fragIn, ts time.Time) (head, payload []byte, err error) {
	data := f.data
	if f.more {
		// Only whole 8-byte units of a fragment that is not the last
		// count (RFC 791, RFC 8200: all but the last hold multiples of 8).
		data = data[:len(data)&^7]
	}
	end := f.start + len(data)
	if d.held == nil {
		d.held = make(map[fragKey]*fragPacket)
	}
	p := d.held[f.key]
	if p == nil && d.repeated(f.key, f.start, end, data) {
		return nil, nil, nil
	}
	switch {
	case len(data) == 0:
		err = errFragEmpty
	case end > f.limit:
		err = errFragTooLong
	}
	if err != nil {
		if p != nil {
			d.drop(f.key, p)
		}
		return nil, nil, err
	}
	if p == nil {
		p = &fragPacket{since: ts, v6: f.v6, bytes: fragHeldBytes}
		d.held[f.key] = p
		d.bytes += p.bytes
	}
	// The pieces [i, j) share bytes with the new one: a repeat of bytes
	// held is ignored, any other overlap drops the packet.
	i := sort.Search(len(p.pieces), func(k int) bool { return p.pieces[k].end > f.start })
	j := i
	for j < len(p.pieces) && p.pieces[j].start < end {
		j++
	}
	if i < j {
		if p.covered(i, j, f.start, end) {
			return nil, nil, nil
		}
		d.drop(f.key, p)
		return nil, nil, errFragOverlap
	}
	// The last fragment tells where the packet ends: not before bytes
	// held, two last fragments agree, nothing passes it.
	switch {
	case !f.more:
		if end < p.end || (p.final && end != p.end) {
			d.drop(f.key, p)
			return nil, nil, errFragBadFinal
		}
		p.final, p.end = true, end
	case end > p.end:
		if p.final {
			d.drop(f.key, p)
			return nil, nil, errFragBadFinal
		}
		p.end = end
	}
	if f.start == 0 {
		p.head, p.ours, p.tcp = slices.Clone(f.head), f.ours, f.tcp
		p.bytes += len(p.head)
		d.bytes += len(p.head)
	}
	p.pieces = slices.Insert(p.pieces, i, fragPiece{start: f.start, end: end, data: slices.Clone(data)})
	p.have += len(data)
	p.bytes += len(data)
	d.bytes += len(data)
	if !p.final || p.have != p.end || p.head == nil {
		return nil, nil, nil
	}
	d.drop(f.key, p)
	payload = make([]byte, 0, p.end)
	for _, pc := range p.pieces {
		payload = append(payload, pc.data...)
	}
	d.remember(f.key, p, ts)
	return p.head, payload, nil
}

// remember keeps the ranges and hashes of p's fragments, a packet just
// made whole, for its timeout.
func (d *defragmenter) remember(k fragKey, p *fragPacket, ts time.Time) {
	if d.done == nil {
		d.done = make(map[fragKey]*fragDone)
		d.seed = maphash.MakeSeed()
	}
	if len(d.doneOrder) >= maxFragDone {
		d.forget()
	}
	e := &fragDone{key: k, at: ts, v6: p.v6, pieces: make([]fragSum, len(p.pieces))}
	for i, pc := range p.pieces {
		e.pieces[i] = fragSum{pc.start, pc.end, maphash.Bytes(d.seed, pc.data)}
	}
	d.done[k] = e
	d.doneOrder = append(d.doneOrder, e)
}

// forget drops the oldest packet remembered.
func (d *defragmenter) forget() {
	e := d.doneOrder[0]
	d.doneOrder[0] = nil
	d.doneOrder = d.doneOrder[1:]
	if d.done[e.key] == e {
		delete(d.done, e.key)
	}
}

// repeated says whether the fragment [start, end) holding data repeats one
// of a packet made whole within its timeout.
func (d *defragmenter) repeated(k fragKey, start, end int, data []byte) bool {
	e := d.done[k]
	if e == nil {
		return false
	}
	for _, s := range e.pieces {
		if s.start == start && s.end == end {
			return s.sum == maphash.Bytes(d.seed, data)
		}
	}
	return false
}

// covered says whether the pieces [i, j), which all touch [start, end),
// hold every byte of it.
func (p *fragPacket) covered(i, j, start, end int) bool {
	if p.pieces[i].start > start || p.pieces[j-1].end < end {
		return false
	}
	for k := i; k < j-1; k++ {
		if p.pieces[k].end != p.pieces[k+1].start {
			return false
		}
	}
	return true
}

func (d *defragmenter) drop(k fragKey, p *fragPacket) {
	delete(d.held, k)
	d.bytes -= p.bytes
}

// expire drops the packets whose first fragment held came before now less
// their timeout (all of them when now is zero), calling lost for each, and
// forgets the packets made whole before then. When now is zero (the bytes
// held overflowed, the capture ends) those made whole are kept: they cost
// none of the bytes held, and a fragment of one repeated after an
// overflow is no loss.
func (d *defragmenter) expire(now time.Time, lost func(fragKey, *fragPacket)) {
	for k, p := range d.held {
		timeout := frag4Timeout
		if p.v6 {
			timeout = frag6Timeout
		}
		if now.IsZero() || p.since.Before(now.Add(-timeout)) {
			d.drop(k, p)
			lost(k, p)
		}
	}
	if now.IsZero() {
		return
	}
	for len(d.doneOrder) > 0 {
		e := d.doneOrder[0]
		timeout := frag4Timeout
		if e.v6 {
			timeout = frag6Timeout
		}
		if !e.at.Before(now.Add(-timeout)) {
			break
		}
		d.forget()
	}
}
