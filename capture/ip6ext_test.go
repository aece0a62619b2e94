package capture

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// ip6Conn is the connection of ip6ExtFrame's packets.
type ip6Conn struct{ client, server netip.AddrPort }

var testIP6Conn = ip6Conn{netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:8080")}

// ip6ExtFrame serializes an Ethernet + IPv6 + TCP packet of c whose IPv6
// header is followed by an extension header: "hbh" (hop-by-hop options)
// or "dst" (destination options), one PadN option each.
func (c ip6Conn) ip6ExtFrame(t *testing.T, ext string, fromClient bool, seq, ack uint32, flags, payload string) []byte {
	t.Helper()
	client, server := net.IP(c.client.Addr().AsSlice()), net.IP(c.server.Addr().AsSlice())
	ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: client, DstIP: server}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(c.client.Port()), DstPort: layers.TCPPort(c.server.Port()), Seq: seq, Ack: ack, Window: 65535}
	if !fromClient {
		ip.SrcIP, ip.DstIP = server, client
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
	}
	for _, c := range flags {
		switch c {
		case 'S':
			tcp.SYN = true
		case 'A':
			tcp.ACK = true
		case 'R':
			tcp.RST = true
		}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	pad := layers.IPv6HopByHopOption{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
	ls := []gopacket.SerializableLayer{eth, ip}
	switch ext {
	case "hbh":
		ip.NextHeader = layers.IPProtocolIPv6HopByHop
		h := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{&pad}}
		h.NextHeader = layers.IPProtocolTCP
		ip.HopByHop = h
	case "dst":
		ip.NextHeader = layers.IPProtocolIPv6Destination
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{(*layers.IPv6DestinationOption)(&pad)}}
		d.NextHeader = layers.IPProtocolTCP
		ls = append(ls, d)
	}
	ls = append(ls, tcp, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fragmentAfterDst splits a frame of ip6ExtFrame(…, "dst", …) in two IPv6
// fragments: a Fragment header after the destination options (they are
// part of every fragment), the payload cut at 8 bytes.
func fragmentAfterDst(frame []byte, id uint32) [][]byte {
	head, payload := frame[:14+40+8], frame[14+40+8:]
	var out [][]byte
	for _, r := range [][2]int{{0, 8}, {8, len(payload)}} {
		b := append([]byte{}, head...)
		b[14+40] = 44 // the destination options' next header: Fragment
		var fh [8]byte
		fh[0] = 6 // TCP
		off := uint16(r[0]/8) << 3
		if r[1] < len(payload) {
			off |= 1
		}
		binary.BigEndian.PutUint16(fh[2:], off)
		binary.BigEndian.PutUint32(fh[4:], id)
		b = append(append(b, fh[:]...), payload[r[0]:r[1]]...)
		binary.BigEndian.PutUint16(b[14+4:], uint16(len(b)-14-40))
		out = append(out, b)
	}
	return out
}

// TestIPv6ExtensionHeaders reads an HTTP exchange whose IPv6 packets carry
// an extension header before TCP: hop-by-hop options, destination
// options, and destination options before a Fragment header. Destination
// options were not decoded: every packet counted packets-ignored, not a
// loss, the exchange silently missing; the live filter rejected them all.
// The filter now accepts packets with these headers (their length varies)
// for the Assembler to test.
func TestIPv6ExtensionHeaders(t *testing.T) {
	const req = "GET /ext HTTP/1.1\r\nHost: x\r\n\r\n"
	const resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tt := range []struct {
		name, ext string
		fragment  bool
	}{
		{name: "hop-by-hop", ext: "hbh"},
		{name: "destination options", ext: "dst"},
		{name: "destination options, fragments", ext: "dst", fragment: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			frames := [][]byte{
				testIP6Conn.ip6ExtFrame(t, tt.ext, true, 100, 0, "S", ""),
				testIP6Conn.ip6ExtFrame(t, tt.ext, false, 500, 101, "SA", ""),
				testIP6Conn.ip6ExtFrame(t, tt.ext, true, 101, 501, "A", ""),
			}
			reqFrame := testIP6Conn.ip6ExtFrame(t, tt.ext, true, 101, 501, "A", req)
			if tt.fragment {
				frames = append(frames, fragmentAfterDst(reqFrame, 7)...)
			} else {
				frames = append(frames, reqFrame)
			}
			frames = append(frames, testIP6Conn.ip6ExtFrame(t, tt.ext, false, 501, 101+uint32(len(req)), "A", resp))
			decodeAndClose(t, a, frames)
			st := a.Stats()
			if len(msgs) != 2 || string(msgs[0].Raw) != req || string(msgs[1].Raw) != resp || msgs[0].ID != msgs[1].ID {
				t.Errorf("%d messages, want the request and its response, paired (%v)", len(msgs), st)
			}
			if st["packets-ignored"] != 0 || st["decode-errors"] != 0 {
				t.Errorf("packets-ignored %d decode-errors %d, want 0", st["packets-ignored"], st["decode-errors"])
			}
			// Live: the kernel filter accepts each packet, whatever port
			// the filter tests (the Assembler tests it).
			for _, ports := range [][]uint16{{8080}, {9999}} {
				vm := filterVM(t, filterOpts{ports: ports, snaplen: 65535, decap: true})
				for i, fr := range frames {
					if n, err := vm.Run(fr); err != nil || n == 0 {
						t.Errorf("filter of ports %v: packet %d rejected (%v)", ports, i, err)
					}
				}
			}
		})
	}
}

// decodeAndClose decodes Ethernet frames a millisecond apart, from
// 2026-01-01, and closes the Assembler.
func decodeAndClose(t *testing.T, a *Assembler, frames [][]byte) {
	t.Helper()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, fr := range frames {
		ts = ts.Add(time.Millisecond)
		if err := a.Decode(fr, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
