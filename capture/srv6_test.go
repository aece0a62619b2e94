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
// sees it: the destination field holds the next segment, via, and the
// routing header the packet's final destination (the one frame has, which
// its TCP checksum covers): the last address of type 0, the home address
// of type 2, Segment List[0] of a segment routing header (type 4).
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
// to the one computed with the destination field's address (the next
// segment), not the final destination: what a sender that ignores the
// routing header writes, and a receiver drops.
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

// TestRoutingHeaderFinalDestination reads an HTTP exchange captured
// between two segments of a route the sender chose (an IPv6 routing
// header with segments left: SRv6 in insert mode, type 0, Mobile IPv6's
// type 2). The TCP checksum covers the final destination, in the routing
// header (RFC 8200 §8.1), not the destination field: a RST so computed
// ends the stream, and one computed against the destination field (which
// the receiver drops) is bogus. The connection is between the endpoints,
// whatever segment each packet is on its way to: the request and the
// response pair. tshark, the reference, agrees on each checksum.
func TestRoutingHeaderFinalDestination(t *testing.T) {
	const req = "GET /sr HTTP/1.1\r\nHost: x\r\n\r\n"
	const resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	toServer, toClient := netip.MustParseAddr("2001:db8:5::1"), netip.MustParseAddr("2001:db8:5::2")
	c := testIP6Conn
	for _, tt := range []struct {
		name  string
		rtype byte
	}{{"segment routing header", 4}, {"type 0", 0}, {"type 2", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			frame := func(fromClient bool, seq, ack uint32, flags, payload string) []byte {
				via := toServer
				if !fromClient {
					via = toClient
				}
				return withRoutingHeader(c.ip6ExtFrame(t, "", fromClient, seq, ack, flags, payload), tt.rtype, via)
			}
			frames := [][]byte{
				frame(true, 100, 0, "S", ""),
				frame(false, 500, 101, "SA", ""),
				frame(true, 101, 501, "A", ""),
				frame(true, 101, 501, "A", req),
				frame(false, 501, 101+uint32(len(req)), "A", resp),
				checksumAgainst(t, frame(false, 501+uint32(len(resp)), 101+uint32(len(req)), "R", "")),
				frame(false, 501+uint32(len(resp)), 101+uint32(len(req)), "R", ""),
			}
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
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
			st := a.Stats()
			if len(msgs) != 2 || string(msgs[0].Raw) != req || string(msgs[1].Raw) != resp || msgs[0].ID != msgs[1].ID {
				t.Errorf("%d messages, want the request and its response, paired (%v)", len(msgs), st)
			}
			if st["bogus-rst"] != 1 || st["packets-ignored"] != 0 || st["decode-errors"] != 0 {
				t.Errorf("bogus RSTs %d (want 1: the one against the destination field), packets-ignored %d, decode-errors %d (want 0)",
					st["bogus-rst"], st["packets-ignored"], st["decode-errors"])
			}
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
