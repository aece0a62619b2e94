package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
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

// ctxSlab is how many packet contexts are allocated at once, at most.
const ctxSlab = 256

// Assembler turns packets into HTTP/1.x messages. Feed it packets with
// Decode, call Flush now and then to expire idle connections and release
// held messages, and Close at the end. It is not safe for concurrent use,
// except Stats, which may be called from any goroutine.
type Assembler struct {
	cfg     Config
	emit    func(*message.Message) error
	err     error // first error returned by emit; sticky
	closed  bool
	closing bool // in Close: holes handed over now are not losses (holeLost)
	counter [nCounters]atomic.Int64
	h2      h2counters

	ports   [1024]uint64 // bitset of server ports
	anyPort bool
	hosts   map[netip.Addr]struct{}

	eth   layers.Ethernet
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	lo    layers.Loopback
	dot1q layers.Dot1Q
	ip4   layers.IPv4
	ip6   layers.IPv6
	ip6f  layers.IPv6Fragment
	// ip6ext passes over the IPv6 extension headers other than Fragment
	// (destination options, routing; hop-by-hop is the IPv6 layer's).
	ip6ext layers.IPv6ExtensionSkipper
	tcp    layers.TCP
	// Tunnels, decoded unless Config.NoDecap.
	udp     layers.UDP
	vxlan   layers.VXLAN
	geneve  layers.Geneve
	gre     layers.GRE
	erspan2 layers.ERSPANII
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	// defrag holds IP fragments until their packet is whole.
	defrag defragmenter
	// whole: the packet decode is given was made whole from fragments.
	whole bool
	// The parser of the latest packet's first layer: a capture has one
	// link type, so the map above is looked up only when it changes.
	lastFirst  gopacket.LayerType
	lastParser *gopacket.DecodingLayerParser

	asm *reassembly.Assembler
	// Each packet has a context (its capture time, a serial number telling
	// segments apart, its ACK). gopacket keeps the context of a packet it
	// buffers out of order with its bytes: such a packet keeps its own, cut
	// from a slab; packets taken in order use the same one in turn.
	ctxs     []pktCtx
	ctx      *pktCtx // the context given to the current packet
	ctxKept  bool    // gopacket keeps it: the next packet needs another
	serial   uint32
	skipHole bool                  // a connection buffered too many bytes: skip its hole now
	closed1  map[uint64]closedConn // connections ended recently (current generation)
	closed0  map[uint64]closedConn // the previous generation
	// open holds the connections being reassembled, by hash
	// (fragmentResent).
	open      map[uint64]*conn
	total     int64                  // bytes buffered by the splitters
	dropped   map[streamKey]struct{} // connections refused for MaxStreams (current generation)
	dropped0  map[streamKey]struct{} // the previous generation: at most 2×maxHeld remembered
	idPrefix  string
	idSeq     uint64
	order     orderQueue
	orderSeq  uint64
	heldBytes int64 // bytes of the messages in order
	heldCap   int64 // bound of heldBytes (maxHeldBytes; tests lower it)
	// The messages delivered and not yet emitted (held in order, or in an
	// emit that has not returned), readable from any goroutine: what
	// quitting at once loses (Unemitted).
	// messages counts requests in its high 32 bits, responses in its low
	// ones: one atomic add per message.
	unemitted struct{ messages, bytes atomic.Int64 }
	now       time.Time // latest capture time seen
	lastFlush time.Time
}

type streamKey struct{ net, tcp gopacket.Flow }

// pktCtx is the AssemblerContext of one packet. Its CaptureInfo carries,
// besides the timestamp, the packet's serial number (InterfaceIndex), the
// sequence number of its payload (Length) and its ACK (CaptureLength, bit
// 32 set when the ACK flag is): ScatterGather gives out nothing else per
// byte.
type pktCtx struct {
	ts     time.Time
	serial uint32
	seq    uint32
	ack    uint32
	hasAck bool
}

func (c *pktCtx) GetCaptureInfo() gopacket.CaptureInfo {
	ci := gopacket.CaptureInfo{Timestamp: c.ts, InterfaceIndex: int(c.serial), Length: int(c.seq), CaptureLength: int(c.ack)}
	if c.hasAck {
		ci.CaptureLength |= 1 << 32
	}
	return ci
}

// newCtx returns the context of the packet being decoded. gopacket keeps
// a context beyond the packet only with the bytes it buffers out of order:
// the context of a packet taken in order is used again for the next one,
// and conn.Accept sets ctxKept when the packet will be buffered.
func (a *Assembler) newCtx(ci gopacket.CaptureInfo) *pktCtx {
	if a.ctx == nil {
		if len(a.ctxs) == cap(a.ctxs) {
			// Slabs grow to ctxSlab: most Assemblers buffer few packets.
			a.ctxs = make([]pktCtx, 0, min(max(2*cap(a.ctxs), 4), ctxSlab))
		}
		a.ctxs = a.ctxs[:len(a.ctxs)+1]
		a.ctx = &a.ctxs[len(a.ctxs)-1]
	}
	a.serial++
	*a.ctx = pktCtx{ts: ci.Timestamp, serial: a.serial, seq: a.tcp.Seq, ack: a.tcp.Ack, hasAck: a.tcp.ACK}
	return a.ctx
}

// closedConn is what is remembered of a connection that ended: the
// sequence numbers that end each direction, so that data retransmitted
// after its end is not taken for a new connection.
type closedConn struct {
	clientPort uint16
	cEnd, sEnd uint32
	cOK, sOK   bool
}

// maxClosed bounds the connections remembered per generation (two are
// kept): late packets come within seconds of the end of a connection.
const maxClosed = 1 << 14

// connHash identifies a connection whichever way a packet goes.
func connHash(netFlow, tcpFlow gopacket.Flow) uint64 {
	return netFlow.FastHash()*0x9e3779b97f4a7c15 ^ tcpFlow.FastHash()
}

// NewAssembler returns an Assembler that calls emit for each message. An
// error from emit stops the Assembler: Decode, Flush and Close return it.
func NewAssembler(cfg Config, emit func(*message.Message) error) *Assembler {
	cfg = cfg.withDefaults()
	a := &Assembler{
		cfg:      cfg,
		emit:     emit,
		parsers:  make(map[gopacket.LayerType]*gopacket.DecodingLayerParser),
		dropped:  make(map[streamKey]struct{}),
		open:     make(map[uint64]*conn),
		dropped0: make(map[streamKey]struct{}),
		closed1:  make(map[uint64]closedConn),
		closed0:  make(map[uint64]closedConn),
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
	// The per-connection bound is in bytes (Config.MaxStreamBytes), kept by
	// conn.Accept; the total bound is in gopacket's pages.
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
		// ip6ext before ip6f: it decodes every extension header, Fragment
		// too, and the later Put of ip6f takes Fragment back.
		ls := []gopacket.DecodingLayer{&a.eth, &a.sll, &a.sll2, &a.lo, &a.dot1q, &a.ip4, &a.ip6, &a.ip6ext, &a.ip6f, &a.tcp}
		if !a.cfg.NoDecap {
			ls = append(ls, &a.udp, &a.vxlan, &a.geneve, &a.gre, &a.erspan2)
		}
		// A sparse container (a slice indexed by layer type, the largest
		// here 276) looks decoders up without hashing, as a map does.
		var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
		for _, l := range ls {
			dlc = dlc.Put(l)
		}
		p = gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(dlc)
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
	return a.decode(data, ci, first)
}

// decode feeds one packet whose first layer is first: a packet read, or
// one a defragmentation made whole.
func (a *Assembler) decode(data []byte, ci gopacket.CaptureInfo, first gopacket.LayerType) error {
	whole := a.whole
	a.whole = false
	p := a.parser(first)
	err := p.DecodeLayers(data, &a.decoded)
	// cut: a layer found fewer bytes than its header says it has (the
	// capture's snaplen cut the packet).
	cut := p.Truncated
	tunnel := false
	if n := len(a.decoded); err == nil && n > 0 && !a.cfg.NoDecap {
		switch a.decoded[n-1] {
		case layers.LayerTypeGRE:
			if inner, first, ok := erspan3(&a.gre); ok {
				p = a.parser(first)
				err = p.DecodeLayers(inner, &a.decoded)
				cut = cut || p.Truncated
				tunnel = true
			}
		case layers.LayerTypeTCP:
			if n <= 3 {
				break // link, IP, TCP
			}
			for _, t := range a.decoded {
				tunnel = tunnel || t == layers.LayerTypeVXLAN || t == layers.LayerTypeGeneve || t == layers.LayerTypeGRE
			}
		}
	}
	var netFlow gopacket.Flow
	var srcIP, dstIP []byte
	hasNet, hasTCP := false, false
	var netLayer gopacket.NetworkLayer
	for _, t := range a.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			if a.ip4.Flags&layers.IPv4MoreFragments != 0 || a.ip4.FragOffset != 0 {
				a.count(cFragments, 1)
				return a.defragment4(ci, cut)
			}
			netFlow, srcIP, dstIP, hasNet, netLayer = a.ip4.NetworkFlow(), a.ip4.SrcIP, a.ip4.DstIP, true, &a.ip4
		case layers.LayerTypeIPv6:
			// A routing header with segments left names the final
			// destination, a Home Address option the source: the
			// connection's, as its endpoints (and tshark) see it.
			a.ip6.SrcIP, a.ip6.DstIP = ipv6Endpoints(&a.ip6)
			netFlow, srcIP, dstIP, hasNet, netLayer = a.ip6.NetworkFlow(), a.ip6.SrcIP, a.ip6.DstIP, true, &a.ip6
		case layers.LayerTypeIPv6Fragment:
			// An atomic fragment (offset 0, no more) is a whole packet,
			// decoded on.
			if a.ip6f.MoreFragments || a.ip6f.FragmentOffset != 0 {
				a.count(cFragments, 1)
				return a.defragment6(ci, cut)
			}
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
	if tunnel {
		a.count(cDecapsulated, 1)
	}
	if cut {
		// The bytes past the snaplen were on the wire and are not in
		// the capture: a loss whatever the reassembly makes of the hole
		// (one at the end of a stream, before its FIN, is not seen as
		// one).
		a.count(cSnaplenCut, 1)
	}
	if a.tcp.RST && !tcpChecksumOK(&a.tcp, netLayer) {
		a.count(cBogusRST, 1)
		return nil
	}
	if whole && !tcpChecksumOK(&a.tcp, netLayer) {
		// Fragments of two packets that had one Id (a lost fragment's
		// Id used again within the fragments' wait) make a packet never
		// sent: its TCP checksum fails and the receiver drops it.
		// Decoded, its bytes would be taken as the stream's.
		a.count(cDecodeErrors, 1)
		return nil
	}
	if ci.Timestamp.After(a.now) {
		a.now = ci.Timestamp
	}
	a.asm.AssembleWithContext(netFlow, &a.tcp, a.newCtx(ci))
	if a.ctxKept {
		a.ctx, a.ctxKept = nil, false
	}
	if a.skipHole {
		a.skipHole = false
		a.asm.MaxBufferedPagesPerConnection = 0
	}
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

// defragment4 holds the IPv4 fragment just decoded (a.ip4) until its
// packet is whole, then decodes the packet.
func (a *Assembler) defragment4(ci gopacket.CaptureInfo, cut bool) error {
	ip := &a.ip4
	f := fragIn{
		key:   fragKey{net: ip.NetworkFlow(), id: uint32(ip.Id), proto: uint8(ip.Protocol)},
		start: int(ip.FragOffset) * 8,
		data:  ip.Payload,
		more:  ip.Flags&layers.IPv4MoreFragments != 0,
		limit: 65535 - len(ip.Contents),
		head:  ip.Contents,
	}
	head, payload, ok := a.addFragment(f, ip.Protocol, ip.SrcIP, ip.DstIP, ci, cut)
	if !ok {
		return nil
	}
	// The header of the first fragment, with the packet's length, not a
	// fragment's, and its checksum.
	b := append(head, payload...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[6], b[7], b[10], b[11] = b[6]&0x40, 0, 0, 0 // DF kept; MF, offset cleared
	var sum uint32
	for i := 0; i+1 < len(head); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	ci.CaptureLength, ci.Length = len(b), len(b)
	a.whole = true
	return a.decode(b, ci, layers.LayerTypeIPv4)
}

// defragment6 holds the IPv6 fragment just decoded (a.ip6, a.ip6f) until
// its packet is whole, then decodes the packet: the fixed header of the
// first fragment followed by the packet's fragmentable part (extension
// headers before the Fragment header, such as hop-by-hop options, are
// left out).
func (a *Assembler) defragment6(ci gopacket.CaptureInfo, cut bool) error {
	ip, fh := &a.ip6, &a.ip6f
	f := fragIn{
		key:   fragKey{net: ip.NetworkFlow(), id: fh.Identification},
		start: int(fh.FragmentOffset) * 8,
		data:  fh.Payload,
		more:  fh.MoreFragments,
		limit: 65535,
		head:  ip.Contents,
		v6:    true,
	}
	head, payload, ok := a.addFragment(f, fh.NextHeader, ip.SrcIP, ip.DstIP, ci, cut)
	if !ok {
		return nil
	}
	if len(head) < 40 {
		a.count(cDecodeErrors, 1)
		return nil
	}
	b := append(head[:40:40], payload...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = uint8(fh.NextHeader)
	// A routing header or a Home Address option, left out with the
	// other headers before the Fragment header, named the connection's
	// addresses (ipv6Endpoints).
	copy(b[8:24], ip.SrcIP.To16())
	copy(b[24:40], ip.DstIP.To16())
	ci.CaptureLength, ci.Length = len(b), len(b)
	a.whole = true
	return a.decode(b, ci, layers.LayerTypeIPv6)
}

// addFragment holds f, a fragment of a packet of protocol proto (for IPv6,
// the Fragment header's next header), and returns its packet's header and
// payload once whole. Fragments of TCP are held and, unless NoDecap, of
// tunnels (UDP, GRE); others are ignored. A fragment cut by the snaplen is
// lost, and so is its packet (snaplen-cut, when of captured traffic).
func (a *Assembler) addFragment(f fragIn, proto layers.IPProtocol, src, dst []byte, ci gopacket.CaptureInfo, cut bool) (head, payload []byte, ok bool) {
	switch proto {
	case layers.IPProtocolTCP:
	case layers.IPProtocolUDP, layers.IPProtocolGRE:
		if a.cfg.NoDecap {
			return nil, nil, false
		}
	default:
		return nil, nil, false
	}
	if f.start == 0 {
		f.ours, f.tcp = a.fragmentOurs(proto, src, dst, f.data), proto == layers.IPProtocolTCP
	}
	if cut {
		// Its bytes past the snaplen are lost, and so is its packet: a
		// loss of captured traffic when its first fragment says it is
		// (its ports). A later fragment has none (a live filter passes
		// those to any port): its packet is counted when it never
		// completes (fragmentsLost), once, if its first fragment was.
		if f.ours {
			a.count(cSnaplenCut, 1)
		}
		return nil, nil, false
	}
	if a.defrag.bytes+fragHeldBytes+len(f.head)+len(f.data) > maxFragBytes {
		// A flood of fragments that never complete: those held are
		// dropped.
		a.count(cBufferOverflow, 1)
		a.defrag.expire(time.Time{}, a.fragmentsLost)
	}
	head, payload, err := a.defrag.add(f, ci.Timestamp)
	if err != nil {
		// The receiver refuses such a fragment and drops those held
		// with it (RFC 5722 for overlaps); TCP sends their data again.
		a.count(cDecodeErrors, 1)
		return nil, nil, false
	}
	return head, payload, payload != nil
}

// fragmentOurs says whether the first fragment of a packet, whose payload
// is data, is of captured traffic: TCP to or from Ports and Hosts, or a
// tunnel (GRE, UDP to VXLAN's or Geneve's port), which may carry it.
func (a *Assembler) fragmentOurs(proto layers.IPProtocol, src, dst, data []byte) bool {
	if len(data) < 4 {
		return false
	}
	sport, dport := binary.BigEndian.Uint16(data), binary.BigEndian.Uint16(data[2:])
	switch proto {
	case layers.IPProtocolTCP:
		var flags byte
		if len(data) > 13 {
			flags = data[13]
		}
		_, ok := a.classify(src, dst, sport, dport, flags&0x02 != 0, flags&0x10 != 0)
		return ok
	case layers.IPProtocolUDP:
		return dport == portVXLAN || dport == portGeneve
	}
	return proto == layers.IPProtocolGRE
}

// fragmentsLost counts a packet whose fragments were dropped before it was
// whole (their timeout, the bound of the bytes held, the capture's end):
// a loss when its first fragment is of captured traffic, unless TCP sent
// its bytes again since (fragmentResent). One whose first fragment never
// came is of no known connection (a live capture's filter lets through the
// fragments after the first to any port, which have none); if it was of a
// captured one, its stream has a hole there (holes).
func (a *Assembler) fragmentsLost(k fragKey, p *fragPacket) {
	if p.ours && !a.fragmentResent(k, p) {
		a.count(cFragmentsIncomplete, 1)
	}
}

// fragmentResent says whether the bytes of p, a TCP packet never made
// whole, have reached its connection's stream since, as far as its first
// fragment tells (its sequence number and the bytes it carries): the
// network lost a fragment, the receiver dropped the packet, and TCP sent
// the bytes again. The capture lost nothing.
func (a *Assembler) fragmentResent(k fragKey, p *fragPacket) bool {
	if !p.tcp || len(p.pieces) == 0 || p.pieces[0].start != 0 {
		return false
	}
	d := p.pieces[0].data
	if len(d) < 20 {
		return false
	}
	sport := binary.BigEndian.Uint16(d)
	end := binary.BigEndian.Uint32(d[4:]) + uint32(max(len(d)-int(d[12]>>4)*4, 0))
	h := connHash(k.net, gopacket.NewFlow(layers.EndpointTCPPort, d[0:2], d[2:4]))
	var pos uint32
	var ok bool
	if c := a.open[h]; c != nil {
		s := &c.resp
		if src := k.net.Src().Raw(); sport == c.client.Port() && bytes.Equal(src, c.client.Addr().AsSlice()) {
			s = &c.req
		}
		pos, ok = s.pos, s.posOK
	} else if cc, found := a.closedConn(h); found {
		pos, ok = cc.sEnd, cc.sOK
		if sport == cc.clientPort {
			pos, ok = cc.cEnd, cc.cOK
		}
	}
	return ok && int32(pos-end) >= 0
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
	a.defrag.expire(now, a.fragmentsLost)
	if a.cfg.OrderWindow > 0 {
		a.release(now.Add(-a.cfg.OrderWindow).UnixNano())
	}
	return a.err
}

// idle is Flush for a live capture, called every liveIdleTick of wall time:
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
	a.closing = true
	// The fragments left first, while their streams' positions are the
	// bytes they got (fragmentResent): flushed, a stream skips its holes.
	a.defrag.expire(time.Time{}, a.fragmentsLost)
	a.asm.FlushAll()
	a.release(1<<63 - 1)
	a.closed = true
	return a.err
}

// holeLost says whether a hole now skipped in a stream is a loss (the
// holes counter): not while closing, where data held behind a segment that
// was only late or reordered at the capture's end is handed over, nor in
// bytes that are not HTTP (notHTTP: TLS on a captured port, a tunnel).
func (a *Assembler) holeLost(notHTTP bool) bool {
	return !a.closing && !notHTTP
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
	a.hold(m.Kind, len(m.Raw), 1)
	if a.cfg.OrderWindow < 0 {
		a.err = a.emitHeld(m)
		return
	}
	a.orderSeq++
	a.order.push(heldMsg{time: m.Time, seq: a.orderSeq, m: m})
	a.heldBytes += int64(len(m.Raw))
	for a.err == nil && (a.order.len() > maxHeld || a.heldBytes > a.heldCap) {
		a.err = a.emitHeld(a.pop())
	}
}

// hold counts m (sign 1) or uncounts it (sign -1) among the unemitted,
// as kind and size (emit may change m.Raw: uncount what was counted).
func (a *Assembler) hold(kind message.Kind, size int, sign int64) {
	one := int64(1)
	if kind == message.Request {
		one <<= 32
	}
	a.unemitted.messages.Add(sign * one)
	a.unemitted.bytes.Add(sign * int64(size))
}

// emitHeld emits a delivered message: it stays among the unemitted until
// emit returns (a sink's Write may block).
func (a *Assembler) emitHeld(m *message.Message) error {
	kind, size := m.Kind, len(m.Raw) // as deliver counted it; emit may rewrite m.Raw
	err := a.emit(m)
	a.hold(kind, size, -1)
	return err
}

// Unemitted returns the messages delivered and not yet emitted: held to
// sort them by capture time, or handed to an emit that has not returned.
// It may be called from any goroutine.
func (a *Assembler) Unemitted() (requests, responses, bytes int64) {
	n := a.unemitted.messages.Load()
	return n >> 32, int64(int32(n)), a.unemitted.bytes.Load()
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
		a.err = a.emitHeld(a.pop())
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
	if !tcp.SYN && a.lateClosed(netFlow, tcpFlow, tcp) {
		// Data retransmitted after the connection ended: not a new one.
		a.count(cLatePackets, 1)
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
	c := &conn{a: a, firstIsClient: serverIsDst, hash: connHash(netFlow, tcpFlow), midstream: !tcp.SYN}
	a.open[c.hash] = c
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
	c.req.lost, c.resp.lost = false, false
	a.count(cStreams, 1)
	a.count(cStreamsActive, 1)
	return c
}

// lateClosed says whether a packet belongs to a connection that ended
// recently: its sequence number lies before the end of its direction.
func (a *Assembler) lateClosed(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP) bool {
	cc, ok := a.closedConn(connHash(netFlow, tcpFlow))
	if !ok {
		return false
	}
	end, endOK := cc.sEnd, cc.sOK
	if uint16(tcp.SrcPort) == cc.clientPort {
		end, endOK = cc.cEnd, cc.cOK
	}
	// Bytes before the end are retransmissions; a connection expired while
	// idle goes on at its end, and a direction that had sent nothing is not
	// known.
	d := int32(end - tcp.Seq)
	return endOK && d > 0 && d < 1<<30
}

// closedConn is what is kept of a connection ended recently, by its hash.
func (a *Assembler) closedConn(h uint64) (closedConn, bool) {
	cc, ok := a.closed1[h]
	if !ok {
		cc, ok = a.closed0[h]
	}
	return cc, ok
}

// rememberClosed keeps what is needed to recognise late packets of c.
func (a *Assembler) rememberClosed(c *conn) {
	if len(a.closed1) >= maxClosed {
		a.closed0, a.closed1 = a.closed1, make(map[uint64]closedConn, maxClosed/4)
	}
	a.closed1[c.hash] = closedConn{clientPort: c.client.Port(),
		cEnd: c.req.pos + uint32(c.finBit(false)), cOK: c.req.posOK,
		sEnd: c.resp.pos + uint32(c.finBit(true)), sOK: c.resp.posOK}
}

// erspan3 opens an ERSPAN type III packet (GRE protocol 0x22EB), which
// gopacket does not decode: a 12-byte header, 8 more with the O flag, then
// an Ethernet frame (frame type 0) or an IP packet (2).
func erspan3(g *layers.GRE) ([]byte, gopacket.LayerType, bool) {
	p := g.Payload
	if g.Protocol != 0x22EB || len(p) < 12 || p[0]>>4 != 2 {
		return nil, 0, false
	}
	w := binary.BigEndian.Uint16(p[10:12])
	n := 12
	if w&1 != 0 {
		n += 8
	}
	if len(p) < n {
		return nil, 0, false
	}
	inner := p[n:]
	switch (w >> 10) & 0x1f {
	case 0:
		return inner, layers.LayerTypeEthernet, true
	case 2:
		if first, ok := firstLayer(layers.LinkTypeRaw, inner); ok {
			return inner, first, true
		}
	}
	return nil, 0, false
}

// tcpChecksumOK says whether a TCP segment carries a valid checksum, or
// the partial one of a packet captured on its sending host before
// checksum offload filled it in (the folded pseudo-header sum). A RST that
// fails is not what the receiver saw: it must not end the stream; nor is a
// packet reassembled from the fragments of two packets.
func tcpChecksumOK(tcp *layers.TCP, net gopacket.NetworkLayer) bool {
	var sum uint32
	var src, dst []byte
	switch ip := net.(type) {
	case *layers.IPv4:
		src, dst = ip.SrcIP.To4(), ip.DstIP.To4()
	case *layers.IPv6:
		s, d := ipv6Endpoints(ip)
		src, dst = s.To16(), d.To16()
	default:
		return true
	}
	if src == nil || dst == nil {
		return true
	}
	n := len(tcp.Contents) + len(tcp.Payload)
	for _, b := range [][]byte{src, dst} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	sum += 6 + uint32(n)&0xffff + uint32(n)>>16
	pseudo := sum
	for _, b := range [][]byte{tcp.Contents, tcp.Payload} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			// Contents has an even length (a multiple of 4): only the
			// payload can be odd, and it is last.
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	fold := func(x uint32) uint16 {
		for x > 0xffff {
			x = x&0xffff + x>>16
		}
		return uint16(x)
	}
	if fold(sum) == 0xffff {
		return true
	}
	return tcp.Checksum == fold(pseudo)
}

// ipv6Endpoints are the addresses of an IPv6 packet's connection, the
// ones its pseudo-header names: its destination, unless a routing header
// has segments left, where the final destination is in the routing header
// (RFC 8200 §8.1): the last address of type 0, the home address of type 2
// (RFC 6275 §6.4), Segment List[0] of a segment routing header (type 4,
// RFC 8754; the list is in reverse order); its source, unless a Home
// Address option names the mobile node's home address (RFC 6275 §6.3),
// sent from a care-of address. A routing header of another type, or a
// header cut short, leaves the address as it is.
func ipv6Endpoints(ip *layers.IPv6) (src, dst net.IP) {
	src, dst = ip.SrcIP, ip.DstIP
	next, data := ip.NextHeader, ip.Payload
	if ip.HopByHop != nil {
		next = ip.HopByHop.NextHeader
	}
	for len(data) >= 8 {
		var n int
		switch next {
		case layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing:
			n = (int(data[1]) + 1) * 8
		case layers.IPProtocolAH:
			n = (int(data[1]) + 2) * 4
		default:
			return src, dst
		}
		if n > len(data) {
			return src, dst
		}
		switch {
		case next == layers.IPProtocolIPv6Destination:
			if home := homeAddress(data[2:n]); home != nil {
				src = home
			}
		case next == layers.IPProtocolIPv6Routing && data[3] > 0:
			addrs := data[8:n]
			switch data[2] {
			case 0:
				if k := len(addrs) / 16; k > 0 {
					dst = net.IP(addrs[(k-1)*16 : k*16])
				}
			case 2, 4:
				if len(addrs) >= 16 {
					dst = net.IP(addrs[:16])
				}
			}
		}
		next, data = layers.IPProtocol(data[0]), data[n:]
	}
	return src, dst
}

// homeAddress is the address of the Home Address option (type 201, RFC
// 6275 §6.3) among the options of a destination options header, or nil.
func homeAddress(opts []byte) net.IP {
	for i := 0; i < len(opts); {
		if opts[i] == 0 { // Pad1
			i++
			continue
		}
		if i+1 >= len(opts) {
			return nil
		}
		end := i + 2 + int(opts[i+1])
		if end > len(opts) {
			return nil
		}
		if opts[i] == 201 && end-i-2 == 16 {
			return net.IP(opts[i+2 : end])
		}
		i = end
	}
	return nil
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
	id       string
	time     int64
	method   string
	startSeq uint32 // of the request's first byte
	endSeq   uint32 // after its last byte, when endOK
	endOK    bool
	// respAck is the ACK of the request's first segment: how much of the
	// response stream the client had received when it sent the request.
	respAck   uint32
	respAckOK bool
}

// conn is one TCP connection: a splitter per direction and the requests
// awaiting their responses.
type conn struct {
	a              *Assembler
	client, server netip.AddrPort
	id             string
	hash           uint64
	firstIsClient  bool
	req, resp      splitter
	pending        []pendingReq // pending[phead:] await their responses
	phead          int
	// early holds the responses captured before the request they answer
	// (earlyResp): the next requests take their IDs.
	early       []earlyResp
	reqID       string
	respID      string
	respReqTime int64
	rst         bool
	fin         [2]bool // FIN seen: [0] from the client, [1] from the server
	maxEnd      [2]uint32
	maxEndOK    [2]bool
	// finSeq[d] is the sequence number direction d's FIN ends its data at.
	finSeq [2]uint32
	// peerAck[d] is the highest ACK the other side sent for direction d
	// ([0] client → server).
	peerAck    [2]uint32
	peerAckOK  [2]bool
	done       bool
	sgt        sgTime
	h2         *h2conn // the connection speaks HTTP/2 (h2.go)
	sniffed    bool    // its first bytes were checked for HTTP/2
	midstream  bool    // its first packet was not a SYN
	sniffBuf   []byte  // first request bytes held until HTTP/2 can be told
	sniffTime  int64
	sniffSeg   uint64 // the segment and ACK of the held bytes
	sniffAck   uint32
	sniffAckOK bool
}

// finBit is 1 when the direction (server → client when resp) saw a FIN,
// which takes a sequence number.
func (c *conn) finBit(resp bool) int {
	if c.fin[b2i(resp)] {
		return 1
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sgTime is the timeSource of a ScatterGather. A message start asks for
// the time and the ACK of the same byte: the last lookup is kept.
type sgTime struct {
	sg    reassembly.ScatterGather
	off   int
	ci    gopacket.CaptureInfo
	valid bool
}

func (t *sgTime) set(sg reassembly.ScatterGather) { t.sg, t.valid = sg, false }

func (t *sgTime) info(off int) *gopacket.CaptureInfo {
	if !t.valid || t.off != off {
		t.ci, t.off, t.valid = t.sg.CaptureInfo(off), off, true
	}
	return &t.ci
}

func (t *sgTime) at(off int) int64 { return t.info(off).Timestamp.UnixNano() }

func (t *sgTime) seg(off int) uint64 { return uint64(t.info(off).InterfaceIndex) }

func (t *sgTime) ack(off int) (uint32, bool) {
	v := t.info(off).CaptureLength
	return uint32(v), v>>32 != 0
}

func (c *conn) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	isResp := (dir == reassembly.TCPDirClientToServer) != c.firstIsClient
	s := &c.req
	if isResp {
		s = &c.resp
	}
	if tcp.RST {
		// A RST ends the stream only at the sequence number expected
		// (RFC 5961); gopacket ignores others, and so does the pairing.
		if nextSeq >= 0 && reassembly.Sequence(tcp.Seq) != nextSeq {
			c.a.count(cBogusRST, 1)
			return false
		}
		c.rst = true
	}
	if tcp.FIN {
		c.fin[b2i(isResp)] = true
		c.finSeq[b2i(isResp)] = tcp.Seq + uint32(len(tcp.Payload))
	}
	if tcp.ACK {
		o := b2i(!isResp)
		if !c.peerAckOK[o] || int32(tcp.Ack-c.peerAck[o]) > 0 {
			c.peerAck[o], c.peerAckOK[o] = tcp.Ack, true
		}
	}
	if nextSeq < 0 {
		switch {
		case tcp.SYN:
			s.pos, s.posOK = tcp.Seq+1, true
		case len(tcp.Payload) > 0:
			// No SYN seen in this direction: start where the capture
			// starts, maybe inside a message.
			*start = true
			s.pos, s.posOK = tcp.Seq, true
			s.resync(false)
			s.segNew = true
		}
		return true
	}
	if n := len(tcp.Payload); n > 0 && c.a.cfg.MaxStreamBytes > 0 {
		// The bytes gopacket buffers ahead of a hole are bounded in bytes:
		// past MaxStreamBytes, the hole is skipped.
		d, end := b2i(isResp), tcp.Seq+uint32(n)
		if !c.maxEndOK[d] || int32(end-c.maxEnd[d]) > 0 {
			c.maxEnd[d], c.maxEndOK[d] = end, true
		}
		if ahead := int32(uint32(nextSeq) - tcp.Seq); ahead < 0 {
			c.a.ctxKept = true
			// Out of order: held behind a hole. The hole is skipped now
			// when the receiver acknowledged bytes past it (they reached
			// it: the capture lost them, no retransmission will come),
			// or when too many bytes are held.
			switch {
			case c.peerAckOK[d] && int32(c.peerAck[d]-uint32(nextSeq)) > 0:
				c.a.skipHole = true
			case int64(int32(c.maxEnd[d]-uint32(nextSeq))) > c.a.cfg.MaxStreamBytes:
				c.a.skipHole = true
				c.a.count(cBufferOverflow, 1)
			}
			if c.a.skipHole {
				c.a.asm.MaxBufferedPagesPerConnection = 1
			}
		}
	}
	return true
}

func (c *conn) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, end, skip := sg.Info()
	isResp := (dir == reassembly.TCPDirClientToServer) != c.firstIsClient
	s, other := &c.req, &c.resp
	if isResp {
		s, other = &c.resp, &c.req
	}
	n, _ := sg.Lengths()
	if (c.h2 != nil || !c.sniffed || !isResp && !c.a.cfg.Responses) && c.h2Segment(!isResp, sg, skip) {
		return
	}
	if !isResp || c.a.cfg.Responses {
		c.sgt.set(sg)
		switch {
		case skip > 0:
			c.a.count(cGaps, 1)
			if c.a.holeLost(s.garbage || s.st == stDead) {
				c.a.count(cHoles, 1)
			}
			s.gap(skip)
		case skip < 0 && n > 0:
			// Delivered without a known start (flushed): resynchronise.
			c.a.count(cGaps, 1)
			s.pos, s.posOK = uint32(sg.CaptureInfo(0).Length), true
			s.gap(0)
		}
		if n > 0 {
			s.feed(sg.Fetch(n), &c.sgt)
		}
		c.sgt.set(nil)
	} else {
		s.pos += uint32(max(skip, 0) + n)
	}
	if end {
		s.finish(c.fin[b2i(isResp)])
		if c.rst {
			other.finish(c.fin[b2i(!isResp)])
		}
	}
}

func (c *conn) ReassemblyComplete(ac reassembly.AssemblerContext) bool {
	c.finHoles()
	c.h2end()
	c.req.finish(c.fin[0])
	c.resp.finish(c.fin[1])
	if !c.done {
		c.done = true
		c.a.count(cStreamsActive, -1)
		if n := len(c.pending) - c.phead; n > 0 {
			c.a.count(cUnanswered, int64(n))
		}
		if n := len(c.early); n > 0 {
			c.a.count(cUnpaired, int64(n)) // their requests never came
		}
		c.pending, c.phead, c.early = nil, 0, nil
		c.a.rememberClosed(c)
		if c.a.open[c.hash] == c {
			delete(c.a.open, c.hash)
		}
	}
	return true
}

// finHoles hands over, as a hole, the bytes a direction's FIN says were
// sent and the peer acknowledged but that were never captured: gopacket
// keeps no page for a FIN without payload queued past a hole, so the hole
// before it is never handed over. Without a FIN captured, the bytes the
// peer acknowledged past those captured are the hole (the last one may be
// the FIN's). Bytes nothing acknowledged (the capture
// ended before they came, maybe late) are not, as a hole skipped at the
// capture's end is not a loss. HTTP/2 connections are left out: their
// splitters do not follow the stream (nor do they while the first bytes
// are held to tell HTTP/2).
func (c *conn) finHoles() {
	if c.h2 != nil || len(c.sniffBuf) > 0 {
		return
	}
	for d, s := range []*splitter{&c.req, &c.resp} {
		if !s.posOK || !c.peerAckOK[d] || d == 1 && !c.a.cfg.Responses {
			continue
		}
		var n int32
		if c.fin[d] {
			n = int32(c.finSeq[d] - s.pos)
			if int32(c.peerAck[d]-s.pos) <= 0 {
				continue
			}
		} else {
			// No FIN captured: the peer acknowledged bytes past those
			// captured, and the last byte it acknowledged may be the
			// FIN's.
			n = int32(c.peerAck[d]-s.pos) - 1
		}
		if n <= 0 {
			continue
		}
		c.a.count(cGaps, 1)
		if !s.garbage && s.st != stDead {
			c.a.count(cHoles, 1)
		}
		s.gap(int(n))
	}
}

func (c *conn) count(ct counter, n int64) { c.a.count(ct, n) }

// earlyResp is a response whose first segment was captured before the
// request it answers: its ACK covers request bytes not seen yet (the two
// directions reordered, on a multi-queue NIC or "any"). The first request
// that starts before ack takes its ID; one that starts at or after it
// shows that response's request was never captured.
type earlyResp struct {
	id  string
	ack uint32
}

// maxEarly bounds the responses held for requests not seen yet.
const maxEarly = 64

// takeEarly returns the ID of the response captured ahead of the request
// starting at seq, if any; responses whose request was not captured are
// counted unpaired.
func (c *conn) takeEarly(seq uint32) (string, bool) {
	for len(c.early) > 0 {
		e := c.early[0]
		c.early = c.early[1:]
		if int32(seq-e.ack) < 0 {
			return e.id, true
		}
		c.a.count(cUnpaired, 1)
	}
	return "", false
}

func (c *conn) headDone(s *splitter, h *head) []byte {
	a := c.a
	if !s.isResp {
		if len(c.early) > 0 && s.posOK {
			if id, ok := c.takeEarly(s.startSeq); ok {
				c.reqID = id // answered already, by a response captured first
				return nil
			}
		}
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
			c.pending = append(c.pending, pendingReq{id: c.reqID, time: s.start, method: methodString(h.method), startSeq: s.startSeq,
				respAck: s.startAck, respAckOK: s.startHasAck})
		}
		return nil
	}
	var method []byte
	if k := c.answered(s); k >= 0 {
		for c.phead < k {
			c.popPending()
			a.count(cUnanswered, 1)
		}
		p := c.popPending()
		c.respID, c.respReqTime = p.id, p.time
		switch p.method {
		case "HEAD":
			method = methodHEAD
		case "CONNECT":
			method = methodCONNECT
		}
	} else if s.startHasAck && c.req.posOK && int32(s.startAck-c.req.pos) > 0 && len(c.early) < maxEarly {
		// The server had received request bytes this capture has not
		// seen yet: the request comes after its response (earlyResp).
		// It paired with the next request, and every later response
		// with the request before its own.
		c.respID, c.respReqTime = a.newID(), s.start
		c.early = append(c.early, earlyResp{id: c.respID, ack: s.startAck})
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

// answered returns the index in pending of the request the response whose
// head s just read answers, or -1. Responses come in the order of their
// requests, so it is the oldest request awaiting one, provided the server
// had begun reading it: the ACK of the response's first segment tells how
// much of the request stream the server had received. When response bytes
// were lost since the previous response (a hole, a resync, a capture
// started mid-connection), responses may be missing, answering the oldest
// requests: a request sent after the client had received every byte before
// this response (its own ACK says so) cannot have been answered by the
// bytes lost, so the response answers it or an older one; the oldest such
// request the server had begun reading is taken. The requests skipped are
// left without a response.
func (c *conn) answered(s *splitter) int {
	lost := s.lost
	s.lost = false
	if c.phead == len(c.pending) {
		return -1
	}
	if !s.startHasAck || !c.req.posOK {
		return c.phead
	}
	ack := s.startAck
	last := -1
	for i := c.phead; i < len(c.pending); i++ {
		if int32(c.pending[i].startSeq-ack) >= 0 {
			break
		}
		last = i
	}
	if last < 0 || !lost || !s.posOK {
		return min(last, c.phead)
	}
	for i := c.phead; i <= last; i++ {
		if p := &c.pending[i]; p.respAckOK && int32(p.respAck-s.startSeq) >= 0 {
			return i
		}
	}
	return c.phead
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
		for i := len(c.pending) - 1; i >= c.phead; i-- {
			if p := &c.pending[i]; p.id == c.reqID {
				p.endSeq, p.endOK = s.endSeq, true
				break
			}
		}
	}
	c.a.deliver(m)
}
