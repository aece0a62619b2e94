package capture

import (
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/message"
)

// withRoutingHeader inserts an IPv6 routing header of type rtype with one
// segment left after the IPv6 header of frame (Ethernet, IPv6, TCP, made
// by ip6ExtFrame with no extension), as a capture between two segments
// sees it: the destination field holds the next segment, via (for type 2,
// the mobile node's care-of address), and the routing header the packet's
// final destination (the one frame has, which its TCP checksum covers):
// the last address of type 0, the home address of type 2, Segment List[0]
// of a segment routing header (type 4).
func withRoutingHeader(frame []byte, rtype byte, via netip.Addr) []byte {
	const eth, ip6 = 14, 40
	final := append([]byte{}, frame[eth+24:eth+40]...)
	rh := []byte{byte(layers.IPProtocolTCP), 0, rtype, 1, 0, 0, 0, 0}
	switch rtype {
	case 4:
		rh[4] = 1 // last entry: Segment List[1], the next segment
		rh = append(append(rh, final...), via.AsSlice()...)
	default:
		rh = append(rh, final...)
	}
	rh[1] = byte(len(rh)/8 - 1)
	out := append(append(append([]byte{}, frame[:eth+ip6]...), rh...), frame[eth+ip6:]...)
	out[eth+6] = byte(layers.IPProtocolIPv6Routing)
	binary.BigEndian.PutUint16(out[eth+4:], uint16(len(out)-eth-ip6))
	copy(out[eth+24:eth+40], via.AsSlice())
	return out
}

// checksumAgainst sets the TCP checksum of a frame of withRoutingHeader
// or withHomeAddress to the one computed with its address fields, not the
// connection's addresses: what a sender that ignores the extension header
// writes, and a receiver drops.
func checksumAgainst(t *testing.T, frame []byte) []byte {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("not IPv6 and TCP: %v", p)
	}
	plain := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: ip.SrcIP, DstIP: ip.DstIP}
	if err := tcp.SetNetworkLayerForChecksum(plain); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload)); err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, frame...)
	copy(out[len(out)-len(buf.Bytes()):], buf.Bytes())
	return out
}

// withHomeAddress puts a destination options header with a Home Address
// option (RFC 6275 §6.3) after the IPv6 header of frame (Ethernet, IPv6,
// TCP, made by ip6ExtFrame with no extension), and sets the source field
// to the care-of address coa: a mobile node away from home sends so. The
// option holds the home address, frame's source, which its TCP checksum
// covers.
func withHomeAddress(frame []byte, coa netip.Addr) []byte {
	const eth, ip6 = 14, 40
	// PadN to put the option at 8n+6, as its alignment asks.
	do := append([]byte{byte(layers.IPProtocolTCP), 2, 1, 2, 0, 0, 201, 16}, frame[eth+8:eth+24]...)
	out := append(append(append([]byte{}, frame[:eth+ip6]...), do...), frame[eth+ip6:]...)
	out[eth+6] = byte(layers.IPProtocolIPv6Destination)
	binary.BigEndian.PutUint16(out[eth+4:], uint16(len(out)-eth-ip6))
	copy(out[eth+8:eth+24], coa.AsSlice())
	return out
}

// fragmentAfterExt splits a frame with one extension header after its
// IPv6 header (withRoutingHeader) in two fragments: a Fragment header
// after the extension header (part of every fragment), the rest cut at 8
// bytes.
func fragmentAfterExt(frame []byte, id uint32) [][]byte {
	const eth, ip6 = 14, 40
	n := (int(frame[eth+ip6+1]) + 1) * 8
	head, payload := frame[:eth+ip6+n], frame[eth+ip6+n:]
	var out [][]byte
	for _, r := range [][2]int{{0, 8}, {8, len(payload)}} {
		b := append([]byte{}, head...)
		b[eth+ip6] = 44 // the extension header's next header: Fragment
		var fh [8]byte
		fh[0] = byte(layers.IPProtocolTCP)
		off := uint16(r[0]/8) << 3
		if r[1] < len(payload) {
			off |= 1
		}
		binary.BigEndian.PutUint16(fh[2:], off)
		binary.BigEndian.PutUint32(fh[4:], id)
		b = append(append(b, fh[:]...), payload[r[0]:r[1]]...)
		binary.BigEndian.PutUint16(b[eth+4:], uint16(len(b)-eth-ip6))
		out = append(out, b)
	}
	return out
}

// TestIPv6ConnectionEndpoints reads HTTP exchanges whose packets do not
// carry their connection's addresses in their address fields: captured
// between two segments of a route the sender chose (an IPv6 routing
// header with segments left: SRv6 in insert mode, type 0), or to and from
// a mobile node away from home (Mobile IPv6: a type 2 routing header to
// it, a Home Address option from its care-of address). The TCP checksum
// covers the connection's addresses (RFC 8200 §8.1, RFC 6275): a RST so
// computed ends the stream, and one computed against the address fields
// (which the receiver drops) is bogus. The request and the response pair,
// also when the request came in fragments. tshark, the reference, agrees
// on each checksum.
func TestIPv6ConnectionEndpoints(t *testing.T) {
	const req = "GET /sr HTTP/1.1\r\nHost: x\r\n\r\n"
	const resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	toServer, toClient := netip.MustParseAddr("2001:db8:5::1"), netip.MustParseAddr("2001:db8:5::2")
	c := testIP6Conn
	for _, tt := range []struct {
		name      string
		rtype     byte
		mobile    bool // the client is a mobile node away from home
		fragments bool // the request in two fragments
	}{
		{name: "segment routing header", rtype: 4},
		{name: "segment routing header, request in fragments", rtype: 4, fragments: true},
		{name: "type 0", rtype: 0},
		{name: "mobile IPv6", rtype: 2, mobile: true},
		{name: "mobile IPv6, request in fragments", rtype: 2, mobile: true, fragments: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame := func(fromClient bool, seq, ack uint32, flags, payload string) []byte {
				f := c.ip6ExtFrame(t, "", fromClient, seq, ack, flags, payload)
				switch {
				case tt.mobile && fromClient:
					return withHomeAddress(f, toClient) // toClient: its care-of address
				case tt.mobile:
					return withRoutingHeader(f, tt.rtype, toClient)
				case fromClient:
					return withRoutingHeader(f, tt.rtype, toServer)
				}
				return withRoutingHeader(f, tt.rtype, toClient)
			}
			frames := [][]byte{
				frame(true, 100, 0, "S", ""),
				frame(false, 500, 101, "SA", ""),
				frame(true, 101, 501, "A", ""),
			}
			if r := frame(true, 101, 501, "A", req); tt.fragments {
				frames = append(frames, fragmentAfterExt(r, 7)...)
			} else {
				frames = append(frames, r)
			}
			frames = append(frames,
				frame(false, 501, 101+uint32(len(req)), "A", resp),
				checksumAgainst(t, frame(false, 501+uint32(len(resp)), 101+uint32(len(req)), "R", "")),
				frame(false, 501+uint32(len(resp)), 101+uint32(len(req)), "R", ""))
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			decodeAndClose(t, a, frames)
			st := a.Stats()
			if len(msgs) != 2 || string(msgs[0].Raw) != req || string(msgs[1].Raw) != resp || msgs[0].ID != msgs[1].ID {
				t.Errorf("%d messages, want the request and its response, paired (%v)", len(msgs), st)
			}
			if st["bogus-rst"] != 1 || st["packets-ignored"] != 0 || st["decode-errors"] != 0 {
				t.Errorf("bogus RSTs %d (want 1: the one against the address fields), packets-ignored %d, decode-errors %d (want 0)",
					st["bogus-rst"], st["packets-ignored"], st["decode-errors"])
			}
			// One status a TCP segment: fragments are one, once whole.
			tsharkChecksums(t, frames, "1,1,1,1,1,0,1")
		})
	}
}

// tsharkChecksums writes frames to a pcap and has tshark check each TCP
// checksum: want is the tcp.checksum.status of each packet, comma-joined
// (1 good, 0 bad).
func tsharkChecksums(t *testing.T, frames [][]byte, want string) {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark (the reference dissector; Debian package tshark) is not installed:", err)
	}
	path := filepath.Join(t.TempDir(), "sr.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, fr := range frames {
		ts = ts.Add(time.Millisecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd := exec.Command(tshark, "-r", path, "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "tcp.checksum.status")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	if got := strings.Join(strings.Fields(string(out)), ","); got != want {
		t.Errorf("tshark's checksum statuses %s, want %s", got, want)
	}
}
