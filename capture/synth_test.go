package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// link says how synthetic packets are framed.
type link int

const (
	linkEthernet link = iota
	linkVLAN
	linkSLL2
	linkNull
	linkRaw
)

func (l link) linkType() layers.LinkType {
	switch l {
	case linkSLL2:
		return layers.LinkTypeLinuxSLL2
	case linkNull:
		return layers.LinkTypeNull
	case linkRaw:
		return layers.LinkTypeRaw
	}
	return layers.LinkTypeEthernet
}

// flow builds the packets of one TCP connection.
type flow struct {
	t              *testing.T
	link           link
	client, server netip.AddrPort
	cisn, sisn     uint32
	ts             time.Time
	// sent is how far each direction's stream went ([0] client, [1]
	// server): a packet acknowledges what the other side sent before it.
	sent [2]uint32
	// ackOverride, when set, replaces the next packet's acknowledgement
	// number (an offset in the other direction's stream).
	ackOverride *uint32
}

func newFlow(t *testing.T, l link, client, server string) *flow {
	return &flow{t: t, link: l, client: netip.MustParseAddrPort(client), server: netip.MustParseAddrPort(server),
		cisn: 1000, sisn: 5000, ts: time.Unix(1_700_000_000, 0)}
}

type seg struct {
	fromClient bool
	off        uint32 // byte offset in the direction's stream
	data       string
	flags      string // any of "SAFR"
}

// packet serializes one segment; it advances the clock by 1 ms.
func (f *flow) packet(s seg) ([]byte, gopacket.CaptureInfo) {
	src, dst, isn, ack := f.client, f.server, f.cisn, f.sisn+1+f.sent[1]
	me := 0
	if !s.fromClient {
		src, dst, isn, ack = f.server, f.client, f.sisn, f.cisn+1+f.sent[0]
		me = 1
	}
	if f.ackOverride != nil {
		ack = isnOf(f, !s.fromClient) + 1 + *f.ackOverride
		f.ackOverride = nil
	}
	if end := s.off + uint32(len(s.data)); end > f.sent[me] {
		f.sent[me] = end
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: isn + 1 + s.off, Window: 65535}
	for _, c := range s.flags {
		switch c {
		case 'S':
			tcp.SYN = true
			tcp.Seq = isn
		case 'A':
			tcp.ACK, tcp.Ack = true, ack
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		}
	}
	var netLayer gopacket.SerializableLayer
	etype, family := layers.EthernetTypeIPv4, layers.ProtocolFamilyIPv4
	if src.Addr().Is4() {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		tcp.SetNetworkLayerForChecksum(ip)
		netLayer = ip
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		tcp.SetNetworkLayerForChecksum(ip)
		netLayer, etype, family = ip, layers.EthernetTypeIPv6, layers.ProtocolFamilyIPv6Linux
	}
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: etype}
	switch f.link {
	case linkEthernet:
		ls = append(ls, eth)
	case linkVLAN:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: 42, Type: etype})
	case linkNull:
		ls = append(ls, &layers.Loopback{Family: family})
	}
	ls = append(ls, netLayer, tcp, gopacket.Payload(s.data))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		f.t.Fatal(err)
	}
	data := buf.Bytes()
	if f.link == linkSLL2 {
		h := make([]byte, 20, 20+len(data))
		binary.BigEndian.PutUint16(h[0:], uint16(etype))
		binary.BigEndian.PutUint32(h[4:], 1)
		binary.BigEndian.PutUint16(h[8:], 1)
		h[11] = 6
		data = append(h, data...)
	}
	f.ts = f.ts.Add(time.Millisecond)
	return data, gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(data), Length: len(data)}
}

// isnOf is the initial sequence number of the client's direction (or the
// server's).
func isnOf(f *flow, client bool) uint32 {
	if client {
		return f.cisn
	}
	return f.sisn
}

func handshake() []seg {
	return []seg{{fromClient: true, flags: "S"}, {fromClient: false, flags: "SA"}, {fromClient: true, flags: "A"}}
}

// run feeds the segments of f into a fresh Assembler and returns the
// messages and counters.
func run(t *testing.T, cfg Config, flows ...struct {
	f    *flow
	segs []seg
}) ([]*message.Message, Stats) {
	t.Helper()
	var msgs []*message.Message
	a := NewAssembler(cfg, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	for _, fl := range flows {
		for _, s := range fl.segs {
			data, ci := fl.f.packet(s)
			if err := a.Decode(data, ci, fl.f.link.linkType()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return msgs, a.Stats()
}

func one(f *flow, segs []seg) []struct {
	f    *flow
	segs []seg
} {
	return []struct {
		f    *flow
		segs []seg
	}{{f, segs}}
}

const (
	req1  = "POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 11\r\n\r\nhello world"
	resp1 = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
)

func TestSynthetic(t *testing.T) {
	hs := handshake()
	fin := []seg{{fromClient: true, off: uint32(len(req1)), flags: "FA"}, {fromClient: false, off: uint32(len(resp1)), flags: "FA"}}
	response := seg{fromClient: false, data: resp1, flags: "A"}
	cat := func(parts ...[]seg) []seg {
		var out []seg
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name      string
		link      link
		client    string
		segs      []seg
		wantReq   string
		wantStats map[string]int64
		wantResp  bool
	}{
		{name: "in order", segs: cat(hs, []seg{{true, 0, req1, "A"}, response}, fin), wantReq: req1, wantResp: true},
		{name: "out of order", segs: cat(hs, []seg{
			{true, 30, req1[30:], "A"}, {true, 0, req1[:10], "A"}, {true, 10, req1[10:30], "A"}, response}, fin),
			wantReq: req1, wantResp: true},
		{name: "retransmission", segs: cat(hs, []seg{
			{true, 0, req1[:20], "A"}, {true, 0, req1[:20], "A"}, {true, 20, req1[20:], "A"}, {true, 20, req1[20:], "A"}, response}, fin),
			wantReq: req1, wantResp: true},
		{name: "overlap", segs: cat(hs, []seg{
			{true, 0, req1[:20], "A"}, {true, 10, req1[10:40], "A"}, {true, 35, req1[35:], "A"}, response}, fin),
			wantReq: req1, wantResp: true},
		{name: "no handshake", segs: []seg{{true, 0, req1, "A"}, response}, wantReq: req1, wantResp: true},
		{name: "RST mid-message", segs: cat(hs, []seg{{true, 0, req1[:50], "A"}, {true, 50, "", "RA"}}),
			wantStats: map[string]int64{"incomplete": 1, "requests": 0}},
		{name: "VLAN", link: linkVLAN, segs: cat(hs, []seg{{true, 0, req1, "A"}, response}, fin), wantReq: req1, wantResp: true},
		{name: "SLL2", link: linkSLL2, segs: cat(hs, []seg{{true, 0, req1, "A"}, response}, fin), wantReq: req1, wantResp: true},
		{name: "Null loopback IPv6", link: linkNull, client: "[::1]:40000", segs: cat(hs, []seg{{true, 0, req1, "A"}, response}, fin), wantReq: req1, wantResp: true},
		{name: "raw IP", link: linkRaw, segs: cat(hs, []seg{{true, 0, req1, "A"}, response}, fin), wantReq: req1, wantResp: true},
		{name: "garbage then request", segs: cat(hs, []seg{{true, 0, "\x16\x03\x01garbage\n" + req1, "A"}}),
			wantReq: req1, wantStats: map[string]int64{"unparsable": 1, "unpaired-responses": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := "10.0.0.1:40000", "10.0.0.2:8080"
			if tt.client != "" {
				client, server = tt.client, "[::1]:8080"
			}
			f := newFlow(t, tt.link, client, server)
			msgs, st := run(t, Config{Ports: []uint16{8080}, Responses: true}, one(f, tt.segs)...)
			for k, v := range tt.wantStats {
				if st[k] != v {
					t.Errorf("stats[%s] = %d, want %d (%v)", k, st[k], v, st)
				}
			}
			if tt.wantReq == "" {
				if len(msgs) != 0 {
					t.Errorf("got %d messages, want none", len(msgs))
				}
				return
			}
			if len(msgs) == 0 || string(msgs[0].Raw) != tt.wantReq || msgs[0].Kind != message.Request {
				t.Fatalf("messages %d, first %q", len(msgs), firstRaw(msgs))
			}
			if msgs[0].Src.String() != client || msgs[0].Dst.Port() != 8080 {
				t.Errorf("src %v dst %v", msgs[0].Src, msgs[0].Dst)
			}
			if tt.wantResp {
				if len(msgs) != 2 || string(msgs[1].Raw) != resp1 || msgs[1].ID != msgs[0].ID || msgs[1].Latency <= 0 {
					t.Errorf("response: %d messages, %q", len(msgs), firstRaw(msgs[1:]))
				}
			}
			if st["unparsable"] != tt.wantStats["unparsable"] || st["incomplete"] != tt.wantStats["incomplete"] {
				t.Errorf("stats %v", st)
			}
		})
	}
}

func firstRaw(ms []*message.Message) string {
	if len(ms) == 0 {
		return ""
	}
	return string(ms[0].Raw)
}

// TestMessageTime checks that a message's time is its first packet's.
func TestMessageTime(t *testing.T) {
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	segs := append(handshake(), seg{true, 0, req1[:10], "A"}, seg{true, 10, req1[10:], "A"}, seg{false, 0, resp1, "A"})
	msgs, _ := run(t, Config{Ports: []uint16{8080}, Responses: true}, one(f, segs)...)
	start := time.Unix(1_700_000_000, 0)
	if len(msgs) != 2 || msgs[0].Time != start.Add(4*time.Millisecond).UnixNano() || msgs[1].Latency != int64(2*time.Millisecond) {
		t.Fatalf("times: %+v", msgs)
	}
	if want := "10.0.0.1:40000-10.0.0.2:8080-" + fmt.Sprint(start.Add(time.Millisecond).UnixNano()); msgs[0].ConnID != want {
		t.Errorf("ConnID %q, want %q", msgs[0].ConnID, want)
	}
}

// TestBufferLimitInBytes holds bytes in 100-byte segments behind a hole
// that is then filled: the per-connection limit (MaxStreamBytes, 3500)
// counts bytes, not reassembly pages, so 2000 bytes held lose nothing. Past
// the limit, the hole is skipped and counted, and the message after it is
// whole.
func TestBufferLimitInBytes(t *testing.T) {
	req1 := "POST /a HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("a", 1000)
	req2 := "POST /b HTTP/1.1\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("b", 3000)
	stream := req1 + req2
	for _, tt := range []struct {
		name  string
		held  int // bytes sent behind the hole before it is filled
		gaps  int64
		whole [2]bool
	}{
		{"within the limit", 2000, 0, [2]bool{true, true}},
		{"over the limit", len(stream), 1, [2]bool{false, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
			segs := handshake()
			segs = append(segs, seg{true, 0, stream[:100], "A"})
			for off := 200; off < 200+tt.held && off < len(stream); off += 100 {
				segs = append(segs, seg{true, uint32(off), stream[off:min(off+100, len(stream))], "A"})
			}
			segs = append(segs, seg{true, 100, stream[100:200], "A"}) // the hole, filled
			for off := 200 + tt.held; off < len(stream); off += 100 {
				segs = append(segs, seg{true, uint32(off), stream[off:min(off+100, len(stream))], "A"})
			}
			msgs, st := run(t, Config{Ports: []uint16{8080}, MaxStreamBytes: 3500}, one(f, segs)...)
			var whole [2]bool
			for _, m := range msgs {
				whole[0] = whole[0] || string(m.Raw) == req1
				whole[1] = whole[1] || string(m.Raw) == req2
			}
			if st["gaps"] != tt.gaps || whole != tt.whole {
				t.Errorf("gaps %d, whole requests %v; want %d, %v (stats %v)", st["gaps"], whole, tt.gaps, tt.whole, st)
			}
		})
	}
}

// TestIdleExpiryThenMore expires a keep-alive connection while idle, then
// sends more on it: the next request is captured (not taken for a late
// packet of the expired connection).
func TestIdleExpiryThenMore(t *testing.T) {
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true, IdleTimeout: time.Second}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	send := func(segs ...seg) {
		for _, s := range segs {
			data, ci := f.packet(s)
			if err := a.Decode(data, ci, layers.LinkTypeEthernet); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"})...)
	f.ts = f.ts.Add(5 * time.Second)
	if err := a.Flush(f.ts); err != nil {
		t.Fatal(err)
	}
	send(seg{true, uint32(len(req1)), req1, "A"}, seg{false, uint32(len(resp1)), resp1, "A"})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if len(msgs) != 4 || st["late-packets"] != 0 || st["streams"] != 2 || msgs[3].ID != msgs[2].ID {
		t.Errorf("%d messages, stats %v", len(msgs), st)
	}
}

// TestHolesAreLossesMidstreamIsNot: a hole in an HTTP stream whose start
// was seen, which the receiver acknowledged past (bytes on the wire the
// capture lacks), counts in holes, the loss the record job reports. A
// connection first seen in its middle, a hole still open when the capture
// ends (a segment late or reordered at that instant) and a hole in bytes
// that are not HTTP are not losses. A response whose head is whole and
// whose body the capture's end cuts is emitted cut, so its request is
// answered.
func TestHolesAreLossesMidstreamIsNot(t *testing.T) {
	cfg := Config{Ports: []uint16{80}, Responses: true}
	const body = "0123456789"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n" + body + body + body
	head := len(resp) - 30
	next := "GET /next HTTP/1.1\r\nHost: shop\r\n\r\n"
	tlsHello := "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\xab", 200)
	tests := []struct {
		name                   string
		segs                   []seg
		holes, gaps, responses int64
		unanswered, incomplete int64
		wantRespPrefix         string
		wantTruncated          bool
	}{
		{"hole in a body, acknowledged past", append(handshake(),
			seg{fromClient: true, data: req1, flags: "A"},
			seg{fromClient: false, data: resp[:head+10], flags: "A"},
			// resp[head+10:head+20] never captured
			seg{fromClient: false, off: uint32(head + 20), data: resp[head+20:], flags: "A"},
			seg{fromClient: true, off: uint32(len(req1)), data: next, flags: "A"},
			seg{fromClient: false, off: uint32(len(resp)), data: resp1, flags: "A"},
		), 1, 1, 2, 0, 1, resp[:head+10], true},
		{"hole still open at the capture's end", append(handshake(),
			seg{fromClient: true, data: req1, flags: "A"},
			seg{fromClient: false, data: resp[:head+10], flags: "A"},
			seg{fromClient: false, off: uint32(head + 20), data: resp[head+20:], flags: "A"},
		), 0, 1, 1, 0, 1, resp[:head+10], true},
		{"hole in TLS bytes", append(handshake(),
			seg{fromClient: true, data: tlsHello[:60], flags: "A"},
			seg{fromClient: true, off: 110, data: tlsHello[110:], flags: "A"},
			seg{fromClient: false, data: "\x16\x03\x03\x00\x10", flags: "A"},
			seg{fromClient: true, off: uint32(len(tlsHello)), data: "\x17\x03\x03\x00\x01x", flags: "A"},
		), 0, 1, 0, 0, 1, "", false},
		{"midstream", []seg{
			{fromClient: false, off: 100, data: "tail of an earlier body", flags: "A"},
			{fromClient: true, off: 50, data: req1, flags: "A"},
			{fromClient: false, off: 123, data: resp, flags: "A"},
		}, 0, 0, 1, 0, 1, resp, false},
		{"response cut by the end of the capture", append(handshake(),
			seg{fromClient: true, data: req1, flags: "A"},
			seg{fromClient: false, data: resp[:head+10], flags: "A"},
		), 0, 0, 1, 0, 1, resp[:head+10], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:80")
			msgs, st := run(t, cfg, one(f, tt.segs)...)
			var resps []*message.Message
			for _, m := range msgs {
				if m.Kind == message.Response {
					resps = append(resps, m)
				}
			}
			if st["holes"] != tt.holes || st["gaps"] != tt.gaps || int64(len(resps)) != tt.responses ||
				st["unanswered-requests"] != tt.unanswered || st["incomplete"] != tt.incomplete {
				t.Errorf("holes %d gaps %d responses %d unanswered %d incomplete %d; want %d, %d, %d, %d, %d",
					st["holes"], st["gaps"], len(resps), st["unanswered-requests"], st["incomplete"],
					tt.holes, tt.gaps, tt.responses, tt.unanswered, tt.incomplete)
			}
			if len(resps) > 0 && (string(resps[0].Raw) != tt.wantRespPrefix || resps[0].Truncated != tt.wantTruncated) {
				t.Errorf("response %q truncated %v, want %q truncated %v", resps[0].Raw, resps[0].Truncated, tt.wantRespPrefix, tt.wantTruncated)
			}
		})
	}
}
