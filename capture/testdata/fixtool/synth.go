package main

// The synthetic fixtures: packets built with gopacket's serialization for
// the cases a loopback capture cannot produce on demand (lost segments,
// captures started mid-connection, reordering, bogus RSTs, tunnels). Each
// case writes synth-NAME.pcap and synth-NAME.golden.json: the messages the
// packets carry as the case built them (bytes, capture time of the packet
// that carries the first byte, which request a response answers, whether
// it is a truncated prefix) and the counters expected.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// synthGolden is what a synthetic fixture must give.
type synthGolden struct {
	Port    uint16         `json:"port"`
	MaxBody int64          `json:"max_body,omitempty"`
	Stats   map[string]int `json:"stats"`
	Msgs    []synthMsg     `json:"messages"`
}

// synthMsg is one expected message. Answers is, for a response, the index
// in Msgs of the request it answers (-1: none).
type synthMsg struct {
	Kind      string `json:"kind"`
	Client    string `json:"client"`
	TimeNs    int64  `json:"time_ns"`
	Raw       []byte `json:"raw"`
	Truncated bool   `json:"truncated,omitempty"`
	Answers   int    `json:"answers"`
}

type synthPkt struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// synth builds one fixture.
type synth struct {
	name   string
	now    time.Time
	pkts   []synthPkt
	golden synthGolden
}

// tconn is one TCP connection of a fixture.
type tconn struct {
	s              *synth
	client, server netip.AddrPort
	cisn, sisn     uint32
	sent           [2]uint32 // bytes sent so far: [0] client, [1] server
	// wrap, if set, encapsulates each Ethernet frame.
	wrap func(frame []byte) []byte
}

func (s *synth) conn(client, server string) *tconn {
	return &tconn{s: s, client: netip.MustParseAddrPort(client), server: netip.MustParseAddrPort(server),
		cisn: 0xfffff000, sisn: 0x7ffff000} // the client's wraps around 2^32
}

// tick advances the clock.
func (s *synth) tick(d time.Duration) { s.now = s.now.Add(d) }

// pkt describes one segment.
type pkt struct {
	fromClient bool
	off        uint32 // offset in the direction's stream
	data       []byte
	flags      string // any of "SAFR"
	ack        *uint32
	badSum     bool // corrupt the TCP checksum
	seqDelta   uint32
	drop       bool // not captured (the stream offsets still advance)
}

// send builds the segment and, unless p.drop, records it at the current
// time; the clock then advances by 1 ms. It returns the capture time.
func (c *tconn) send(p pkt) int64 {
	src, dst, isn := c.client, c.server, c.cisn
	me, other := 0, 1
	if !p.fromClient {
		src, dst, isn = c.server, c.client, c.sisn
		me, other = 1, 0
	}
	otherISN := c.sisn
	if !p.fromClient {
		otherISN = c.cisn
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: isn + 1 + p.off + p.seqDelta, Window: 65535}
	for _, f := range p.flags {
		switch f {
		case 'S':
			tcp.SYN, tcp.Seq = true, isn
		case 'A':
			tcp.ACK, tcp.Ack = true, otherISN+1+c.sent[other]
			if p.ack != nil {
				tcp.Ack = otherISN + 1 + *p.ack
			}
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		}
	}
	if end := p.off + uint32(len(p.data)); end > c.sent[me] {
		c.sent[me] = end
	}
	t := c.s.now
	c.s.tick(time.Millisecond)
	if p.drop {
		return t.UnixNano()
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
	tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	frame := serialize(eth, ip, tcp, gopacket.Payload(p.data))
	if p.badSum {
		frame[14+20+16] ^= 0x5a
	}
	if c.wrap != nil {
		frame = c.wrap(frame)
	}
	c.s.pkts = append(c.s.pkts, synthPkt{frame, gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(frame), Length: len(frame)}})
	return t.UnixNano()
}

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// handshake sends SYN, SYN-ACK, ACK.
func (c *tconn) handshake() {
	c.send(pkt{fromClient: true, flags: "S"})
	c.send(pkt{flags: "SA"})
	c.send(pkt{fromClient: true, flags: "A"})
}

// close sends FIN from both sides.
func (c *tconn) close() {
	c.send(pkt{fromClient: true, off: c.sent[0], flags: "FA"})
	c.send(pkt{off: c.sent[1], flags: "FA"})
	c.sent[0]++
	c.sent[1]++
	c.send(pkt{fromClient: true, off: c.sent[0], flags: "A"})
}

// write sends data in segments of at most mss bytes from the current end of
// the direction's stream; drop lists the segments (by index) not captured.
// It returns the capture time of the first segment.
func (c *tconn) write(fromClient bool, data string, mss int, drop ...int) int64 {
	me := 1
	if fromClient {
		me = 0
	}
	var first int64
	for i := 0; len(data) > 0; i++ {
		n := min(mss, len(data))
		dropped := false
		for _, d := range drop {
			dropped = dropped || d == i
		}
		t := c.send(pkt{fromClient: fromClient, off: c.sent[me], data: []byte(data[:n]), flags: "A", drop: dropped})
		if i == 0 {
			first = t
		}
		data = data[n:]
	}
	return first
}

// expect records an expected message; it returns its index.
func (c *tconn) expect(kind string, t int64, raw string, truncated bool, answers int) int {
	c.s.golden.Msgs = append(c.s.golden.Msgs, synthMsg{Kind: kind, Client: c.client.String(), TimeNs: t, Raw: []byte(raw), Truncated: truncated, Answers: answers})
	return len(c.s.golden.Msgs) - 1
}

// exchange writes a request then its response, each in one segment, and
// expects both.
func (c *tconn) exchange(req, resp string) {
	tq := c.write(true, req, 1448)
	i := c.expect("request", tq, req, false, -1)
	tr := c.write(false, resp, 1448)
	c.expect("response", tr, resp, false, i)
}

func (s *synth) write(dir string) error {
	path := filepath.Join(dir, "synth-"+s.name+".pcap")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for _, p := range s.pkts {
		if err := w.WritePacket(p.ci, p.data); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s.golden, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "synth-"+s.name+".golden.json"), append(b, '\n'), 0o644)
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: synth/1.0\r\n\r\n"
}

func okResp(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// binaryBody is n bytes that look like a JPEG: it ends with FF D9 and
// carries status-line and request-line look-alikes that are not at a
// segment start.
func binaryBody(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/253)
	}
	copy(b, "\xff\xd8\xff\xe0")
	copy(b[n/3:], "\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
	copy(b[n/2:], "\nGET /fake HTTP/1.1\r\nHost: x\r\n\r\n")
	copy(b[n-2:], "\xff\xd9")
	return string(b)
}

type synthCase struct {
	name  string
	build func(s *synth)
}

var synthCases = []synthCase{
	// A hole of 1448 bytes inside a 5000-byte Content-Length body: the
	// response is a truncated prefix (headers + the first segment); the
	// next exchange on the connection is whole.
	{"hole-length", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 3, "responses": 3, "gaps": 1, "incomplete": 1, "unanswered-requests": 0, "unpaired-responses": 0}
		c := s.conn("10.0.0.1:40001", "10.0.0.2:18180")
		c.handshake()
		c.exchange(get("/one"), okResp("first"))
		tq := c.write(true, get("/big"), 1448)
		iq := c.expect("request", tq, get("/big"), false, -1)
		body := strings.Repeat("0123456789abcdef", 5000/16) + "0123456789ab"
		resp := okResp(body)
		tr := c.write(false, resp, 1448, 1)
		c.expect("response", tr, resp[:1448], true, iq)
		c.exchange(get("/after"), okResp("after the hole"))
		c.close()
	}},
	// A hole inside the data of a chunk: the chunk sizes after it are
	// still read, so the message's end and the next exchange are found.
	{"hole-chunk", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 2, "responses": 2, "gaps": 1, "incomplete": 1}
		c := s.conn("10.0.0.1:40002", "10.0.0.2:18180")
		c.handshake()
		tq := c.write(true, get("/chunked"), 1448)
		iq := c.expect("request", tq, get("/chunked"), false, -1)
		chunk := strings.Repeat("x", 4000)
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk) + "5\r\nhello\r\n0\r\n\r\n"
		tr := c.write(false, resp, 1000, 2)
		c.expect("response", tr, resp[:2000], true, iq)
		c.exchange(get("/next"), okResp("next"))
		c.close()
	}},
	// The capture starts while a keep-alive connection is open: its first
	// packets are the end of a JPEG body. The next response starts at a
	// segment start, right after a segment ending with FF D9; look-alike
	// lines inside the binary body are not taken for messages.
	{"midstream-binary", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 2, "responses": 2, "incomplete": 1, "unparsable": 0, "unpaired-responses": 0}
		c := s.conn("10.0.0.1:40003", "10.0.0.2:18180")
		// Not captured: the handshake, a request and most of its response.
		c.sent[0] = uint32(len(get("/photo.jpg")))
		c.sent[1] = 3000
		body := binaryBody(3000)
		c.write(false, body[:1448], 1448)
		c.write(false, body[1448:], 1448)
		tq := c.write(true, get("/next.jpg"), 1448)
		iq := c.expect("request", tq, get("/next.jpg"), false, -1)
		resp := okResp(binaryBody(2000))
		tr := c.write(false, resp, 1448)
		c.expect("response", tr, resp, false, iq)
		c.exchange(get("/last"), okResp("last"))
		c.close()
	}},
	// A response lost on a keep-alive connection pipelining two requests
	// at a time: each later response is paired with its own request, and
	// the request whose response was lost is counted unanswered.
	{"lost-response", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 6, "responses": 5, "gaps": 1, "incomplete": 0, "unanswered-requests": 1, "unpaired-responses": 0}
		c := s.conn("10.0.0.1:40004", "10.0.0.2:18180")
		c.handshake()
		for round := range 3 {
			a, b := get(fmt.Sprintf("/r%d/a", round)), get(fmt.Sprintf("/r%d/b", round))
			tq := c.write(true, a+b, 1448)
			ia := c.expect("request", tq, a, false, -1)
			ib := c.expect("request", tq, b, false, -1)
			ra, rb := okResp(fmt.Sprintf("answer %d a", round)), okResp(fmt.Sprintf("answer %d b", round))
			ta := c.write(false, ra, 1448)
			c.expect("response", ta, ra, false, ia)
			if round == 1 {
				c.write(false, rb, 1448, 0) // lost
				continue
			}
			tb := c.write(false, rb, 1448)
			c.expect("response", tb, rb, false, ib)
		}
		c.close()
	}},
	// Segments captured out of order: each message's capture time is that
	// of the packet carrying its first byte, not of the packet that let
	// reassembly release it.
	{"reorder", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 3, "responses": 3, "gaps": 0}
		c := s.conn("10.0.0.1:40005", "10.0.0.2:18180")
		c.handshake()
		post := "POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("p", 3000)
		// Segment 0 is captured first, then 2, then 1: 0 and 2 are
		// buffered until 1 arrives, 30 ms later.
		t0 := c.send(pkt{fromClient: true, off: 0, data: []byte(post[:1000]), flags: "A"})
		c.send(pkt{fromClient: true, off: 2000, data: []byte(post[2000:]), flags: "A"})
		s.tick(30 * time.Millisecond)
		c.send(pkt{fromClient: true, off: 1000, data: []byte(post[1000:2000]), flags: "A"})
		iq := c.expect("request", t0, post, false, -1)
		// A second request, pipelined.
		g := get("/second")
		tg := c.write(true, g, 1448)
		ig := c.expect("request", tg, g, false, -1)
		// The first response's second segment is delayed behind the whole
		// second response, which reassembly holds until it comes: the
		// second response keeps the time of its own packet.
		resp := okResp(strings.Repeat("r", 2500))
		r2 := okResp("second")
		tr := c.send(pkt{off: 0, data: []byte(resp[:1448]), flags: "A"})
		tr2 := c.send(pkt{off: uint32(len(resp)), data: []byte(r2), flags: "A"})
		s.tick(40 * time.Millisecond)
		c.send(pkt{off: 1448, data: []byte(resp[1448:]), flags: "A"})
		c.expect("response", tr, resp, false, iq)
		c.expect("response", tr2, r2, false, ig)
		// The last response's first segment arrives after its second one.
		g3 := get("/third")
		tg3 := c.write(true, g3, 1448)
		ig3 := c.expect("request", tg3, g3, false, -1)
		r3 := okResp(strings.Repeat("3", 2000))
		off := uint32(len(resp) + len(r2))
		c.send(pkt{off: off + 1448, data: []byte(r3[1448:]), flags: "A"})
		s.tick(20 * time.Millisecond)
		tr3 := c.send(pkt{off: off, data: []byte(r3[:1448]), flags: "A"})
		c.expect("response", tr3, r3, false, ig3)
		c.close()
	}},
	// A response delimited by the end of the stream, cut by the server's
	// RST: emitted truncated. Before it, two bogus RSTs (a bad checksum,
	// a sequence number outside the window) do not end the stream.
	{"rst-cut", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 1, "responses": 1, "incomplete": 1, "bogus-rst": 2, "truncated": 0}
		c := s.conn("10.0.0.1:40006", "10.0.0.2:18180")
		c.handshake()
		req := "GET /stream HTTP/1.0\r\nHost: shop.example\r\n\r\n"
		tq := c.write(true, req, 1448)
		iq := c.expect("request", tq, req, false, -1)
		head := "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
		tr := c.write(false, head+strings.Repeat("a", 1000), 1448)
		c.send(pkt{off: c.sent[1], flags: "RA", badSum: true})
		c.send(pkt{off: c.sent[1], flags: "RA", seqDelta: 200000})
		c.write(false, strings.Repeat("b", 1000), 1448)
		c.send(pkt{off: c.sent[1], flags: "RA"})
		c.expect("response", tr, head+strings.Repeat("a", 1000)+strings.Repeat("b", 1000), true, iq)
	}},
	// Both sides close with FIN; then the request and the response are
	// retransmitted: they are late packets, not a new connection.
	{"fin-retrans", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 1, "responses": 1, "streams": 1, "late-packets": 2}
		c := s.conn("10.0.0.1:40007", "10.0.0.2:18180")
		c.handshake()
		req, resp := get("/once"), okResp("once")
		c.exchange(req, resp)
		c.close()
		c.send(pkt{fromClient: true, off: 0, data: []byte(req), flags: "A"})
		c.send(pkt{off: 0, data: []byte(resp), flags: "A"})
	}},
	// A response of 1.1 MiB, over the default max-body of 1 MiB, then
	// another exchange on the same connection: the big one is emitted with
	// its headers and the first MiB of its body, marked truncated; the
	// framing is kept, so the next exchange is whole.
	{"big", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 2, "responses": 2, "truncated": 1, "incomplete": 0}
		c := s.conn("10.0.0.1:40008", "10.0.0.2:18180")
		c.handshake()
		tq := c.write(true, get("/big"), 1448)
		iq := c.expect("request", tq, get("/big"), false, -1)
		body := strings.Repeat("0123456789ABCDEF", (1<<20+100<<10)/16) // 1.1 MiB
		resp := okResp(body)
		tr := c.write(false, resp, 16384)
		hdr := strings.Index(resp, "\r\n\r\n") + 4
		c.expect("response", tr, resp[:hdr+1<<20], true, iq)
		c.exchange(get("/small"), okResp("small"))
		c.close()
	}},
	// What common servers accept: several spaces after the method, a bare
	// LF after chunk data, a Transfer-Encoding list with empty elements.
	// Two different Content-Lengths are refused (counted with the reason)
	// and the next request, at a segment start, is found.
	{"lenient", func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 3, "responses": 4, "unparsable": 1, "refused-content-length": 1, "unpaired-responses": 1}
		c := s.conn("10.0.0.1:40009", "10.0.0.2:18180")
		c.handshake()
		c.exchange("GET   /spaces HTTP/1.1\r\nHost: x\r\n\r\n", okResp("spaces"))
		c.exchange("POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked, \r\n\r\n3\r\nabc\n0\r\n\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n2\r\nok\n0\r\n\r\n")
		// Refused: its response has no request to answer.
		c.write(true, "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello", 1448)
		tr := c.write(false, okResp("refused"), 1448)
		c.expect("response", tr, okResp("refused"), false, -1)
		c.exchange(get("/after"), okResp("after"))
		c.close()
	}},
	{"h2-unrenderable", h2Unrenderable},
	{"vxlan", tunnelCase("10.0.0.1:40010", func(frame []byte) []byte {
		return serialize(outerEth(), outerIP(layers.IPProtocolUDP), udp(4789), &layers.VXLAN{ValidIDFlag: true, VNI: 42}, gopacket.Payload(frame))
	})},
	{"geneve", tunnelCase("10.0.0.1:40011", func(frame []byte) []byte {
		return serialize(outerEth(), outerIP(layers.IPProtocolUDP), udp(6081), &layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: 42}, gopacket.Payload(frame))
	})},
	{"gre", tunnelCase("10.0.0.1:40012", func(frame []byte) []byte {
		return serialize(outerEth(), outerIP(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging}, gopacket.Payload(frame))
	})},
	{"erspan1", tunnelCase("10.0.0.1:40015", func(frame []byte) []byte {
		// Type I: GRE without a sequence number, the frame right after.
		return serialize(outerEth(), outerIP(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeERSPAN}, gopacket.Payload(frame))
	})},
	{"erspan2", tunnelCase("10.0.0.1:40013", func(frame []byte) []byte {
		return serialize(outerEth(), outerIP(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeERSPAN, SeqPresent: true, Seq: 7},
			&layers.ERSPANII{Version: layers.ERSPANIIVersion, SessionID: 3}, gopacket.Payload(frame))
	})},
	{"erspan3", tunnelCase("10.0.0.1:40014", func(frame []byte) []byte {
		// Type III header (version 2), frame type 0 (Ethernet), with the
		// optional 8-byte platform sub-header (O flag).
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], 2<<12|42)
		binary.BigEndian.PutUint16(h[2:], 3)
		binary.BigEndian.PutUint32(h[4:], 123456)
		binary.BigEndian.PutUint16(h[10:], 1)
		return serialize(outerEth(), outerIP(layers.IPProtocolGRE), &layers.GRE{Protocol: 0x22EB, SeqPresent: true, Seq: 9}, gopacket.Payload(append(h, frame...)))
	})},
}

func outerEth() *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv4}
}

func outerIP(p layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: net.IP{192, 168, 9, 1}, DstIP: net.IP{192, 168, 9, 2}}
}

// udp is the outer UDP header; its checksum is left zero (as tunnel
// endpoints send it over IPv4).
func udp(dst uint16) gopacket.SerializableLayer {
	return udpNoSum{&layers.UDP{SrcPort: 50123, DstPort: layers.UDPPort(dst)}}
}

type udpNoSum struct{ *layers.UDP }

func (u udpNoSum) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	opts.ComputeChecksums = false
	return u.UDP.SerializeTo(b, opts)
}

// tunnelCase is a keep-alive connection with two exchanges, every packet
// wrapped by wrap.
func tunnelCase(client string, wrap func([]byte) []byte) func(s *synth) {
	return func(s *synth) {
		s.golden.Stats = map[string]int{"requests": 2, "responses": 2, "decapsulated": 10}
		c := s.conn(client, "10.0.0.2:18180")
		c.wrap = wrap
		c.handshake()
		c.exchange(get("/mirrored"), okResp("seen through the tunnel"))
		c.exchange("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\na=1&b=2", okResp("posted"))
		c.close()
	}
}

// writeSynth writes every synthetic fixture into dir.
func writeSynth(dir string) error {
	for _, sc := range synthCases {
		s := &synth{name: sc.name, now: time.Unix(1_700_000_000, 123456789), golden: synthGolden{Port: 18180}}
		sc.build(s)
		if err := s.write(dir); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}
