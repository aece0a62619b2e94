package capture

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/replayctl/replayctl/message"
)

// pageBytes is the page size of gopacket's reassembly buffers.
const pageBytes = 1900

// Assembler turns packets into HTTP/1.x messages. Feed it packets with
// Decode, call Flush now and then to expire idle connections and release
// held messages, and Close at the end. It is not safe for concurrent use,
// except Stats, which may be called from any goroutine.
type Assembler struct {
	cfg     Config
	emit    func(*message.Message) error
	err     error // first error returned by emit; sticky
	closed  bool
	counter [nCounters]atomic.Int64
	h2      h2counters

	ports   [1024]uint64 // bitset of server ports
	anyPort bool
	hosts   map[netip.Addr]struct{}

	eth     layers.Ethernet
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	lo      layers.Loopback
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	// The parser of the latest packet's first layer: a capture has one
	// link type, so the map above is looked up only when it changes.
	lastFirst  gopacket.LayerType
	lastParser *gopacket.DecodingLayerParser

	asm       *reassembly.Assembler
	actx      captureContext
	total     int64                  // bytes buffered by the splitters
	dropped   map[streamKey]struct{} // connections refused for MaxStreams (current generation)
	dropped0  map[streamKey]struct{} // the previous generation: at most 2×maxHeld remembered
	idPrefix  string
	idSeq     uint64
	order     orderQueue
	orderSeq  uint64
	heldBytes int64     // bytes of the messages in order
	heldCap   int64     // bound of heldBytes (maxHeldBytes; tests lower it)
	now       time.Time // latest capture time seen
	lastFlush time.Time
}

type streamKey struct{ net, tcp gopacket.Flow }

type captureContext struct{ ci gopacket.CaptureInfo }

func (c *captureContext) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

// NewAssembler returns an Assembler that calls emit for each message. An
// error from emit stops the Assembler: Decode, Flush and Close return it.
func NewAssembler(cfg Config, emit func(*message.Message) error) *Assembler {
	cfg = cfg.withDefaults()
	a := &Assembler{
		cfg:      cfg,
		emit:     emit,
		parsers:  make(map[gopacket.LayerType]*gopacket.DecodingLayerParser),
		dropped:  make(map[streamKey]struct{}),
		dropped0: make(map[streamKey]struct{}),
		decoded:  make([]gopacket.LayerType, 0, 8),
		heldCap:  maxHeldBytes,
	}
	a.anyPort = len(cfg.Ports) == 0
	for _, p := range cfg.Ports {
		a.ports[p>>6] |= 1 << (p & 63)
	}
	if len(cfg.Hosts) > 0 {
		a.hosts = make(map[netip.Addr]struct{}, len(cfg.Hosts))
		for _, h := range cfg.Hosts {
			a.hosts[h.Unmap()] = struct{}{}
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	a.idPrefix = hex.EncodeToString(b[:])

	a.asm = reassembly.NewAssembler(reassembly.NewStreamPool(factory{a}))
	a.asm.MaxBufferedPagesPerConnection = int(cfg.MaxStreamBytes/pageBytes) + 1
	a.asm.MaxBufferedPagesTotal = int(cfg.MaxBufferedBytes/pageBytes) + 1
	return a
}

// Stats returns a snapshot of the counters.
func (a *Assembler) Stats() Stats {
	s := make(Stats, nCounters)
	for i := range nCounters {
		s[counterNames[i]] = a.counter[i].Load()
	}
	a.h2.addTo(s)
	return s
}

func (a *Assembler) count(c counter, n int64) { a.counter[c].Add(n) }

// SetKernelDrops records the drops reported by a live socket.
func (a *Assembler) SetKernelDrops(n int64) { a.counter[cKernelDrops].Store(n) }

func (a *Assembler) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	if a.lastParser != nil && a.lastFirst == first {
		return a.lastParser
	}
	p := a.parsers[first]
	if p == nil {
		p = gopacket.NewDecodingLayerParser(first, &a.eth, &a.sll, &a.sll2, &a.lo, &a.dot1q, &a.ip4, &a.ip6, &a.tcp)
		p.IgnoreUnsupported = true
		a.parsers[first] = p
	}
	a.lastFirst, a.lastParser = first, p
	return p
}

// firstLayer maps a link type to the layer the packet starts with.
func firstLayer(lt layers.LinkType, data []byte) (gopacket.LayerType, bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, true
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, true
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2, true
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback, true
	case layers.LinkTypeIPv4:
		return layers.LayerTypeIPv4, true
	case layers.LinkTypeIPv6:
		return layers.LayerTypeIPv6, true
	case layers.LinkTypeRaw, 12, 14:
		if len(data) > 0 {
			switch data[0] >> 4 {
			case 4:
				return layers.LayerTypeIPv4, true
			case 6:
				return layers.LayerTypeIPv6, true
			}
		}
	}
	return 0, false
}

// Decode feeds one packet. It returns the error emit returned, if any;
// malformed packets are counted, never returned.
func (a *Assembler) Decode(data []byte, ci gopacket.CaptureInfo, linkType layers.LinkType) error {
	if a.err != nil || a.closed {
		return a.err
	}
	a.count(cPackets, 1)
	a.count(cBytes, int64(len(data)))
	first, ok := firstLayer(linkType, data)
	if !ok {
		a.count(cDecodeErrors, 1)
		return nil
	}
	err := a.parser(first).DecodeLayers(data, &a.decoded)
	var netFlow gopacket.Flow
	var srcIP, dstIP []byte
	hasNet, hasTCP := false, false
	for _, t := range a.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			if a.ip4.Flags&layers.IPv4MoreFragments != 0 || a.ip4.FragOffset != 0 {
				a.count(cFragments, 1)
				return nil
			}
			netFlow, srcIP, dstIP, hasNet = a.ip4.NetworkFlow(), a.ip4.SrcIP, a.ip4.DstIP, true
		case layers.LayerTypeIPv6:
			netFlow, srcIP, dstIP, hasNet = a.ip6.NetworkFlow(), a.ip6.SrcIP, a.ip6.DstIP, true
		case layers.LayerTypeTCP:
			hasTCP = hasNet
		}
	}
	if err != nil {
		a.count(cDecodeErrors, 1)
		return nil
	}
	if !hasTCP {
		a.count(cIgnored, 1)
		return nil
	}
	if _, ok := a.classify(srcIP, dstIP, uint16(a.tcp.SrcPort), uint16(a.tcp.DstPort), a.tcp.SYN, a.tcp.ACK); !ok {
		a.count(cIgnored, 1)
		return nil
	}
	if ci.Timestamp.After(a.now) {
		a.now = ci.Timestamp
	}
	a.actx.ci = ci
	a.asm.AssembleWithContext(netFlow, &a.tcp, &a.actx)
	if a.lastFlush.IsZero() {
		a.lastFlush = a.now
	}
	if a.now.Sub(a.lastFlush) >= time.Second {
		return a.Flush(a.now)
	}
	if a.cfg.OrderWindow > 0 {
		a.release(a.now.Add(-a.cfg.OrderWindow).UnixNano())
	}
	return a.err
}

func (a *Assembler) isServer(ip []byte, port uint16) bool {
	if !a.anyPort && a.ports[port>>6]&(1<<(port&63)) == 0 {
		return false
	}
	if a.hosts == nil {
		return true
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	_, ok = a.hosts[addr.Unmap()]
	return ok
}

// classify says whether the packet's destination is the server, and
// whether the packet belongs to captured traffic at all.
func (a *Assembler) classify(srcIP, dstIP []byte, srcPort, dstPort uint16, syn, ack bool) (serverIsDst, ok bool) {
	dstOK, srcOK := a.isServer(dstIP, dstPort), a.isServer(srcIP, srcPort)
	switch {
	case dstOK && srcOK:
		if syn {
			return !ack, true
		}
		return dstPort <= srcPort, true
	case dstOK:
		return true, true
	case srcOK:
		return false, true
	}
	return false, false
}

// Flush expires connections idle since before now − IdleTimeout and
// releases held messages older than now − OrderWindow. now is capture time
// (packet time for files, wall time for live capture).
func (a *Assembler) Flush(now time.Time) error {
	if a.closed {
		return a.err
	}
	a.lastFlush = now
	idle := now.Add(-a.cfg.IdleTimeout)
	a.asm.FlushWithOptions(reassembly.FlushOptions{T: idle, TC: idle})
	if a.cfg.OrderWindow > 0 {
		a.release(now.Add(-a.cfg.OrderWindow).UnixNano())
	}
	return a.err
}

// idle is Flush for a live capture, called every 100 ms of wall time:
// held messages are released each time, connections expired once a second.
func (a *Assembler) idle(now time.Time) error {
	if a.closed {
		return a.err
	}
	if now.Sub(a.lastFlush) >= time.Second {
		return a.Flush(now)
	}
	if a.cfg.OrderWindow > 0 {
		a.release(now.Add(-a.cfg.OrderWindow).UnixNano())
	}
	return a.err
}

// Close ends every connection (messages in progress are counted as
// incomplete, responses read to the end of the stream are emitted) and
// emits all held messages. It returns the first error emit returned.
func (a *Assembler) Close() error {
	if a.closed {
		return a.err
	}
	a.asm.FlushAll()
	a.release(1<<63 - 1)
	a.closed = true
	return a.err
}

func (a *Assembler) newID() string {
	const digits = "0123456789abcdef"
	a.idSeq++
	var b [24]byte
	copy(b[:], a.idPrefix)
	v := uint32(a.idSeq)
	for i := 23; i >= 16; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// deliver emits m now or holds it to sort by capture time.
func (a *Assembler) deliver(m *message.Message) {
	if m.Kind == message.Request {
		a.count(cRequests, 1)
	} else {
		a.count(cResponses, 1)
	}
	if a.err != nil {
		return
	}
	if a.cfg.OrderWindow < 0 {
		a.err = a.emit(m)
		return
	}
	a.orderSeq++
	a.order.push(heldMsg{time: m.Time, seq: a.orderSeq, m: m})
	a.heldBytes += int64(len(m.Raw))
	for a.err == nil && (a.order.len() > maxHeld || a.heldBytes > a.heldCap) {
		a.err = a.emit(a.pop())
	}
}

// Bounds of the messages held for ordering: beyond them the oldest are
// emitted before their OrderWindow is over.
const (
	maxHeld      = 1 << 16
	maxHeldBytes = 64 << 20
)

func (a *Assembler) pop() *message.Message {
	m := a.order.pop()
	a.heldBytes -= int64(len(m.Raw))
	return m
}

func (a *Assembler) release(upTo int64) {
	for a.err == nil && a.order.len() > 0 && a.order.minTime() <= upTo {
		a.err = a.emit(a.pop())
	}
}

// heldMsg is a message held for ordering, with its sort key inline.
type heldMsg struct {
	time int64
	seq  uint64
	m    *message.Message
}

func (x *heldMsg) less(y *heldMsg) bool {
	return x.time < y.time || x.time == y.time && x.seq < y.seq
}

// orderQueue sorts held messages by (time, seq). Messages complete nearly
// in the order they started, so most go into a sorted queue, a few places
// from its tail at most; the stragglers (slow uploads, long downloads) go
// into a heap. The smallest message is at the head of one or the other.
type orderQueue struct {
	q    []heldMsg // q[head:] is sorted
	head int
	late msgHeap
}

// maxShift is how far from the tail of the queue a message may be
// inserted; one that sorts earlier goes into the heap.
const maxShift = 32

func (o *orderQueue) len() int { return len(o.q) - o.head + len(o.late) }

func (o *orderQueue) push(x heldMsg) {
	i := len(o.q)
	for i > o.head && x.less(&o.q[i-1]) {
		i--
		if len(o.q)-i > maxShift {
			o.late.push(x)
			return
		}
	}
	if o.head > 1024 && o.head*2 >= len(o.q) {
		// Reuse the consumed front of the slice.
		n := copy(o.q, o.q[o.head:])
		clear(o.q[n:])
		o.q = o.q[:n]
		i -= o.head
		o.head = 0
	}
	o.q = append(o.q, heldMsg{})
	copy(o.q[i+1:], o.q[i:])
	o.q[i] = x
}

// first says whether the smallest message is at the head of the queue
// (else at the top of the heap). The queue must not be empty.
func (o *orderQueue) first() bool {
	if len(o.late) == 0 {
		return true
	}
	return o.head < len(o.q) && o.q[o.head].less(&o.late[0])
}

func (o *orderQueue) minTime() int64 {
	if o.first() {
		return o.q[o.head].time
	}
	return o.late[0].time
}

func (o *orderQueue) pop() *message.Message {
	if !o.first() {
		return o.late.pop()
	}
	m := o.q[o.head].m
	o.q[o.head] = heldMsg{}
	o.head++
	if o.head == len(o.q) {
		o.q, o.head = o.q[:0], 0
	}
	return m
}

// msgHeap is a binary min-heap of held messages by (time, seq).
type msgHeap []heldMsg

func (h msgHeap) less(i, j int) bool { return h[i].less(&h[j]) }

func (h *msgHeap) push(x heldMsg) {
	*h = append(*h, x)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *msgHeap) pop() *message.Message {
	q := *h
	m := q[0].m
	n := len(q) - 1
	q[0] = q[n]
	q[n] = heldMsg{}
	q = q[:n]
	*h = q
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.less(r, l) {
			c = r
		}
		if !q.less(c, i) {
			break
		}
		q[i], q[c] = q[c], q[i]
		i = c
	}
	return m
}

// factory creates a conn per TCP connection for gopacket's reassembly.
type factory struct{ a *Assembler }

func (f factory) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	a := f.a
	if !tcp.SYN && len(tcp.Payload) == 0 {
		// The tail of a connection we did not see: nothing to parse.
		return nil
	}
	if a.counter[cStreamsActive].Load() >= int64(a.cfg.MaxStreams) {
		k := streamKey{netFlow, tcpFlow}
		rk := streamKey{netFlow.Reverse(), tcpFlow.Reverse()}
		_, seen := a.dropped[k]
		if _, ok := a.dropped[rk]; ok {
			seen = true
		}
		if _, ok := a.dropped0[k]; ok {
			seen = true
		}
		if _, ok := a.dropped0[rk]; ok {
			seen = true
		}
		if !seen {
			a.count(cStreamsDropped, 1)
			if len(a.dropped) >= maxHeld {
				// Forget the oldest generation only: a connection refused
				// recently is not counted twice.
				a.dropped0, a.dropped = a.dropped, make(map[streamKey]struct{}, maxHeld/4)
			}
			a.dropped[k] = struct{}{}
		}
		return nil
	}
	src, dst := netFlow.Endpoints()
	sp, dp := uint16(tcp.SrcPort), uint16(tcp.DstPort)
	serverIsDst, _ := a.classify(src.Raw(), dst.Raw(), sp, dp, tcp.SYN, tcp.ACK)
	srcAddr, _ := netip.AddrFromSlice(src.Raw())
	dstAddr, _ := netip.AddrFromSlice(dst.Raw())
	c := &conn{a: a, firstIsClient: serverIsDst, midstream: !tcp.SYN}
	if serverIsDst {
		c.client, c.server = netip.AddrPortFrom(srcAddr, sp), netip.AddrPortFrom(dstAddr, dp)
	} else {
		c.client, c.server = netip.AddrPortFrom(dstAddr, dp), netip.AddrPortFrom(srcAddr, sp)
	}
	c.id = connID(c.client, c.server, ac.GetCaptureInfo().Timestamp.UnixNano())
	for _, s := range []*splitter{&c.req, &c.resp} {
		s.ev = c
		s.maxBody = a.cfg.MaxBody
		s.maxKeep = a.cfg.MaxStreamBytes
		s.total = &a.total
		s.totalCap = a.cfg.MaxBufferedBytes
		s.onDead = c.h2rest
	}
	c.resp.isResp = true
	a.count(cStreams, 1)
	a.count(cStreamsActive, 1)
	return c
}

// connID is "client-server-ns", ns the capture time of the connection's
// first packet.
func connID(client, server netip.AddrPort, ns int64) string {
	b := make([]byte, 0, 64)
	b = client.AppendTo(b)
	b = append(b, '-')
	b = server.AppendTo(b)
	b = append(b, '-')
	b = strconv.AppendInt(b, ns, 10)
	return string(b)
}

type pendingReq struct {
	id     string
	time   int64
	method string
}

// conn is one TCP connection: a splitter per direction and the requests
// awaiting their responses.
type conn struct {
	a              *Assembler
	client, server netip.AddrPort
	id             string
	firstIsClient  bool
	req, resp      splitter
	pending        []pendingReq // pending[phead:] await their responses
	phead          int
	reqID          string
	respID         string
	respReqTime    int64
	rst            bool
	done           bool
	sgt            sgTime
	h2             *h2conn // the connection speaks HTTP/2 (h2.go)
	sniffed        bool    // its first bytes were checked for HTTP/2
	midstream      bool    // its first packet was not a SYN
	sniffBuf       []byte  // first request bytes held until HTTP/2 can be told
	sniffTime      int64
}

type sgTime struct{ sg reassembly.ScatterGather }

func (t *sgTime) at(off int) int64 { return t.sg.CaptureInfo(off).Timestamp.UnixNano() }

func (c *conn) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	if nextSeq < 0 && !tcp.SYN && len(tcp.Payload) > 0 {
		// No SYN seen in this direction: start where the capture starts.
		*start = true
	}
	if tcp.RST {
		c.rst = true
	}
	return true
}

func (c *conn) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, end, skip := sg.Info()
	isReq := (dir == reassembly.TCPDirClientToServer) == c.firstIsClient
	s, other := &c.resp, &c.req
	if isReq {
		s, other = &c.req, &c.resp
	}
	if (c.h2 != nil || !c.sniffed || isReq && !c.a.cfg.Responses) && c.h2Segment(isReq, sg, skip) {
		return
	}
	if isReq || c.a.cfg.Responses {
		if skip > 0 {
			c.a.count(cGaps, 1)
			s.gap()
		}
		if n, _ := sg.Lengths(); n > 0 {
			c.sgt.sg = sg
			s.feed(sg.Fetch(n), &c.sgt)
			c.sgt.sg = nil
		}
	}
	if end {
		s.end()
		if c.rst {
			other.end()
		}
	}
}

func (c *conn) ReassemblyComplete(ac reassembly.AssemblerContext) bool {
	c.h2end()
	c.req.end()
	c.resp.end()
	if !c.done {
		c.done = true
		c.a.count(cStreamsActive, -1)
	}
	return true
}

func (c *conn) count(ct counter, n int64) { c.a.count(ct, n) }

func (c *conn) headDone(s *splitter, h *head) []byte {
	a := c.a
	if !s.isResp {
		c.reqID = a.newID()
		if a.cfg.Responses {
			if len(c.pending)-c.phead >= maxPending {
				c.popPending()
				a.count(cPendingOverflow, 1)
			}
			if c.phead > 32 && c.phead*2 > len(c.pending) {
				n := copy(c.pending, c.pending[c.phead:])
				clear(c.pending[n:])
				c.pending, c.phead = c.pending[:n], 0
			}
			c.pending = append(c.pending, pendingReq{id: c.reqID, time: s.start, method: methodString(h.method)})
		}
		return nil
	}
	var method []byte
	if c.phead < len(c.pending) {
		p := c.popPending()
		c.respID, c.respReqTime = p.id, p.time
		switch p.method {
		case "HEAD":
			method = methodHEAD
		case "CONNECT":
			method = methodCONNECT
		}
	} else {
		a.count(cUnpaired, 1)
		c.respID, c.respReqTime = a.newID(), s.start
	}
	if h.status == 101 || string(method) == "CONNECT" && h.status >= 200 && h.status < 300 {
		a.count(cUpgraded, 1)
		c.req.reset()
		c.req.st = stDead
	}
	return method
}

// popPending removes the oldest request awaiting a response.
func (c *conn) popPending() pendingReq {
	p := c.pending[c.phead]
	c.pending[c.phead] = pendingReq{}
	c.phead++
	if c.phead == len(c.pending) {
		c.pending, c.phead = c.pending[:0], 0
	}
	return p
}

// methodString returns m as a string, without allocating for the common
// methods.
func methodString(m []byte) string {
	for _, k := range knownMethods {
		if string(m) == k {
			return k
		}
	}
	return string(m)
}

// The methods that change how a response is delimited; never modified.
var methodHEAD, methodCONNECT = []byte("HEAD"), []byte("CONNECT")

var knownMethods = [...]string{"GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT"}

func (c *conn) messageDone(s *splitter, raw []byte, start int64, truncated bool) {
	if s.isResp && c.h2 == nil && c.h2Upgrade(raw) {
		return
	}
	m := &message.Message{
		ConnID:    c.id,
		Time:      start,
		Raw:       raw,
		Truncated: truncated,
		Host:      c.a.cfg.Host,
	}
	if s.isResp {
		m.Kind, m.ID, m.Latency = message.Response, c.respID, start-c.respReqTime
		m.Src, m.Dst = c.server, c.client
	} else {
		m.Kind, m.ID = message.Request, c.reqID
		m.Src, m.Dst = c.client, c.server
	}
	c.a.deliver(m)
}
