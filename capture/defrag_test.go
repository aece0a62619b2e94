package capture

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// fragment splits an Ethernet + IPv4 frame into IPv4 fragments whose
// payloads start at the offsets at (multiples of 8, after 0).
func fragment(t *testing.T, frame []byte, at ...int) [][]byte {
	t.Helper()
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	payload := ip[ihl:]
	bounds := append(append([]int{0}, at...), len(payload))
	var out [][]byte
	for i := 0; i+1 < len(bounds); i++ {
		from, to := bounds[i], bounds[i+1]
		b := append(append([]byte{}, frame[:14+ihl]...), payload[from:to]...)
		h := b[14:]
		binary.BigEndian.PutUint16(h[2:], uint16(ihl+to-from))
		fo := uint16(from / 8)
		if to < len(payload) {
			fo |= 0x2000 // more fragments
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		h[10], h[11] = 0, 0
		var sum uint32
		for i := 0; i < ihl; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(h[i:]))
		}
		for sum>>16 != 0 {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
		out = append(out, b)
	}
	return out
}

// TestIPv4Fragments reads requests and responses carried in IPv4
// fragments (a path with a small MTU, a VPN, a tunnel that fragments):
// the fragments are reassembled, as the receiver and tshark do, and the
// messages recorded whole and paired. They were ignored (ip-fragments):
// a request sent so was lost, counted at best as a hole (capture-gaps,
// "not in the capture", which is not why), not at all when it was the
// connection's last.
func TestIPv4Fragments(t *testing.T) {
	const req2 = "GET /second HTTP/1.1\r\nHost: shop\r\n\r\n"
	tests := []struct {
		name    string
		frag    int   // index in segs of the packet fragmented
		at      []int // where
		reverse bool  // fragments in reverse order
	}{
		{name: "first request", frag: 3, at: []int{32}},
		{name: "last request, three fragments, reversed", frag: 5, at: []int{24, 48}, reverse: true},
		{name: "response", frag: 4, at: []int{40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
			segs := append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"},
				seg{true, uint32(len(req1)), req2, "A"}, seg{false, uint32(len(resp1)), resp1, "A"})
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for i, s := range segs {
				data, ci := f.packet(s)
				frames := [][]byte{data}
				if i == tt.frag {
					frames = fragment(t, data, tt.at...)
					if tt.reverse {
						for l, r := 0, len(frames)-1; l < r; l, r = l+1, r-1 {
							frames[l], frames[r] = frames[r], frames[l]
						}
					}
				}
				decodeFrames(t, a, f.link.linkType(), ci, frames...)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			var got []string
			ids := map[string]int{}
			for _, m := range msgs {
				got = append(got, string(m.Raw))
				ids[m.ID]++
			}
			want := []string{req1, resp1, req2, resp1}
			if len(got) != len(want) {
				t.Fatalf("%d messages %q, want %d (%v)", len(got), got, len(want), st)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("message %d: %q, want %q", i, got[i], want[i])
				}
			}
			if len(ids) != 2 || msgs[0].ID != msgs[1].ID || msgs[2].ID != msgs[3].ID {
				t.Errorf("pairing: ids %v", ids)
			}
			if st["ip-fragments"] != int64(len(tt.at)+1) || st["holes"] != 0 || st["gaps"] != 0 || st["decode-errors"] != 0 || st["unpaired-responses"] != 0 {
				t.Errorf("ip-fragments %d (want %d), holes %d, gaps %d, decode-errors %d, unpaired %d", st["ip-fragments"], len(tt.at)+1, st["holes"], st["gaps"], st["decode-errors"], st["unpaired-responses"])
			}
		})
	}
}

// TestIPv4FragmentFloodBounded sends first fragments that never complete,
// each with its own Id: the bytes held stay under maxFragBytes (those held
// are dropped past it, counted as buffer-overflow), and a fragmented
// request after the flood is still reassembled.
func TestIPv4FragmentFloodBounded(t *testing.T) {
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	big := seg{true, 0, string(make([]byte, 1400)), "A"}
	data, ci := f.packet(big)
	first := fragment(t, data, 1000)[0]
	n := (16<<20)/(len(first)-14) + 100 // past maxFragBytes of IPv4 bytes held
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint16(first[14+4:], uint16(i))      // Id
		binary.BigEndian.PutUint16(first[14+12:], uint16(i>>16)) // and source address, as Ids wrap
		ci.CaptureLength, ci.Length = len(first), len(first)
		if err := a.Decode(first, ci, f.link.linkType()); err != nil {
			t.Fatal(err)
		}
	}
	if st := a.Stats(); st["buffer-overflow"] != 1 {
		t.Errorf("buffer-overflow %d, want 1", st["buffer-overflow"])
	}
	g := newFlow(t, linkEthernet, "10.0.0.3:40000", "10.0.0.2:8080")
	for i, s := range append(handshake(), seg{true, 0, req1, "A"}) {
		data, ci := g.packet(s)
		frames := [][]byte{data}
		if i == 3 {
			frames = fragment(t, data, 32)
		}
		for _, fr := range frames {
			ci.CaptureLength, ci.Length = len(fr), len(fr)
			if err := a.Decode(fr, ci, g.link.linkType()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Raw) != req1 {
		t.Errorf("%d messages after the flood, want the request", len(msgs))
	}
}

// TestBPFFilterFragments runs the kernel filter of a live capture on IPv4
// fragments of TCP: the first is tested by its ports, the others, which
// have none, are accepted, so that the Assembler gets every fragment of a
// packet to a captured port. It rejected them all: live, a packet sent in
// fragments never became whole.
func TestBPFFilterFragments(t *testing.T) {
	for _, dgram := range []bool{false, true} {
		vm := filterVM(t, filterOpts{ports: []uint16{8080}, dgram: dgram, snaplen: 65535})
		for _, tt := range []struct {
			dst  string
			want []bool // each fragment accepted
		}{
			{"10.0.0.2:8080", []bool{true, true, true}},
			{"10.0.0.2:22", []bool{false, true, true}},
		} {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", tt.dst)
			data, _ := f.packet(seg{true, 0, req1, "A"})
			for i, fr := range fragment(t, data, 24, 48) {
				if dgram {
					fr = fr[14:]
				}
				n, err := vm.Run(fr)
				if err != nil {
					t.Fatal(err)
				}
				if (n > 0) != tt.want[i] {
					t.Errorf("dgram=%v %s fragment %d: accepted=%v, want %v", dgram, tt.dst, i, n > 0, tt.want[i])
				}
			}
		}
	}
}

// TestIPv4FragmentsOfTwoPacketsOneId: the SYN's first fragment is lost,
// and the handshake's ACK is sent in fragments with the same IP Id (Ids
// are reused; a fast sender wraps them within the 30 s fragments wait).
// The SYN's last fragment and the ACK's first make a datagram that was
// never sent, a SYN at the ACK's sequence number, whose TCP checksum
// fails: it is dropped (decode-errors), as the receiver drops it. It was
// decoded: the stream started one byte later, and the request was lost,
// or recorded without its first byte ("OST /orders …", FuzzIPv4Fragments),
// with no loss counted.
func TestIPv4FragmentsOfTwoPacketsOneId(t *testing.T) {
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	for i, s := range append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"}) {
		data, ci := f.packet(s)
		binary.BigEndian.PutUint16(data[14+4:], 7) // one Id for all
		frames := [][]byte{data}
		switch i {
		case 0: // the SYN, its first fragment lost
			frames = fragment(t, data, 8)[1:]
		case 2: // the ACK
			frames = fragment(t, data, 8)
		}
		decodeFrames(t, a, f.link.linkType(), ci, frames...)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if len(msgs) != 2 || string(msgs[0].Raw) != req1 || string(msgs[1].Raw) != resp1 {
		var got []string
		for _, m := range msgs {
			got = append(got, string(m.Raw))
		}
		t.Errorf("messages %q, want the request and its response (%v)", got, st)
	}
	if st["decode-errors"] != 1 {
		t.Errorf("decode-errors %d, want 1: the datagram never sent", st["decode-errors"])
	}
}

// TestFragmentRepeatedAfterWhole: a fragment seen again after its packet
// was made whole (a link-level repeat, a capture that sees it on two
// interfaces) makes no packet and is no loss; it was held alone and, at
// its timeout or the capture's end, counted as fragments-incomplete, a
// loss that never was (FuzzIPv4Fragments). A fragment with the Id of a
// packet made whole and other bytes (the Id used again) is another
// packet's: never completed, it is a loss.
func TestFragmentRepeatedAfterWhole(t *testing.T) {
	tests := []struct {
		name       string
		client     string
		server     string
		repeat     int  // which fragment comes again, after the packet is whole
		other      bool // with other bytes
		incomplete int64
	}{
		{name: "IPv4 first fragment", client: "10.0.0.1:40000", server: "10.0.0.2:8080", repeat: 0},
		{name: "IPv4 last fragment", client: "10.0.0.1:40000", server: "10.0.0.2:8080", repeat: 1},
		{name: "IPv6 first fragment", client: "[2001:db8::1]:40000", server: "[2001:db8::2]:8080", repeat: 0},
		{name: "IPv6 last fragment", client: "[2001:db8::1]:40000", server: "[2001:db8::2]:8080", repeat: 1},
		{name: "IPv4 Id used again", client: "10.0.0.1:40000", server: "10.0.0.2:8080", repeat: 0, other: true, incomplete: 1},
		{name: "IPv6 Id used again", client: "[2001:db8::1]:40000", server: "[2001:db8::2]:8080", repeat: 0, other: true, incomplete: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, tt.client, tt.server)
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for i, s := range append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"}) {
				data, ci := f.packet(s)
				frames := [][]byte{data}
				if i == 3 {
					var fr [][]byte
					if tt.server[0] == '[' {
						fr = fragment6(t, data, 7, 32)
					} else {
						fr = fragment(t, data, 32)
					}
					again := slices.Clone(fr[tt.repeat])
					if tt.other {
						// Another segment's bytes, further on in the
						// stream: never delivered (a segment already
						// delivered would be TCP's sending it again).
						tcp := 14 + 20
						if tt.server[0] == '[' {
							tcp = 14 + 40 + 8
						}
						binary.BigEndian.PutUint32(again[tcp+4:], binary.BigEndian.Uint32(again[tcp+4:])+1000)
						again[len(again)-1] ^= 0xff
					}
					frames = append(fr, again)
				}
				decodeFrames(t, a, f.link.linkType(), ci, frames...)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if len(msgs) != 2 || string(msgs[0].Raw) != req1 || string(msgs[1].Raw) != resp1 {
				t.Errorf("%d messages, want the request and its response whole (%v)", len(msgs), st)
			}
			if st["fragments-incomplete"] != tt.incomplete || st["decode-errors"] != 0 || st["ip-fragments"] != 3 {
				t.Errorf("fragments-incomplete %d (want %d), decode-errors %d, ip-fragments %d (want 3)", st["fragments-incomplete"], tt.incomplete, st["decode-errors"], st["ip-fragments"])
			}
		})
	}
}

// TestFragmentRepeatedAfterOverflow: the packets made whole are still
// known after a flood of fragments overflowed the bytes held (the
// packets held are dropped, not what is known of those made whole, which
// costs none of those bytes): a fragment of one, repeated after the flood,
// is no loss. The overflow forgot them, and the repeat, held alone, was
// counted as fragments-incomplete at the capture's end.
func TestFragmentRepeatedAfterOverflow(t *testing.T) {
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	decode := func(fr []byte, ci gopacket.CaptureInfo) {
		t.Helper()
		ci.CaptureLength, ci.Length = len(fr), len(fr)
		if err := a.Decode(fr, ci, f.link.linkType()); err != nil {
			t.Fatal(err)
		}
	}
	var again []byte
	for i, s := range append(handshake(), seg{true, 0, req1, "A"}) {
		data, ci := f.packet(s)
		frames := [][]byte{data}
		if i == 3 {
			frames = fragment(t, data, 32)
			again = slices.Clone(frames[0])
		}
		for _, fr := range frames {
			decode(fr, ci)
		}
	}
	// A flood of fragments after the first, which never complete (of no
	// known connection: no loss), past maxFragBytes.
	g := newFlow(t, linkEthernet, "10.0.0.9:40000", "10.0.0.2:8080")
	data, ci := g.packet(seg{true, 0, string(make([]byte, 1400)), "A"})
	later := fragment(t, data, 8)[1]
	for i := 0; i < (16<<20)/(len(later)-14)+100; i++ {
		binary.BigEndian.PutUint16(later[14+4:], uint16(i))      // Id
		binary.BigEndian.PutUint16(later[14+12:], uint16(i>>16)) // and source address, as Ids wrap
		decode(later, ci)
	}
	decode(again, ci) // the request's first fragment, seen again
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if len(msgs) != 1 || string(msgs[0].Raw) != req1 {
		t.Errorf("%d messages, want the request", len(msgs))
	}
	if st["buffer-overflow"] != 1 || st["fragments-incomplete"] != 0 {
		t.Errorf("buffer-overflow %d fragments-incomplete %d, want 1 and 0", st["buffer-overflow"], st["fragments-incomplete"])
	}
}

// TestFragmentLostThenResent: the network lost the last fragment of a
// request; the receiver dropped the packet and TCP sent the request again
// (another packet, another Id). The capture lost nothing: the first
// fragment, left alone, is not counted fragments-incomplete once its bytes
// have reached the stream, whether it times out while the connection is
// open or is dropped at the capture's end. It was a loss, and a record job
// that lost nothing failed. Not sent again, it is one.
func TestFragmentLostThenResent(t *testing.T) {
	tests := []struct {
		name       string
		client     string
		server     string
		resent     bool
		late       bool // the capture goes on past the fragments' timeout, the connection open
		closed     bool // the connection ends (FINs) before the capture does
		incomplete int64
	}{
		{name: "IPv4 resent", client: "10.0.0.1:40000", server: "10.0.0.2:8080", resent: true},
		{name: "IPv4 resent, timed out while open", client: "10.0.0.1:40000", server: "10.0.0.2:8080", resent: true, late: true},
		{name: "IPv6 resent", client: "[2001:db8::1]:40000", server: "[2001:db8::2]:8080", resent: true},
		{name: "IPv4 resent, connection ended", client: "10.0.0.1:40000", server: "10.0.0.2:8080", resent: true, closed: true},
		{name: "IPv4 not resent", client: "10.0.0.1:40000", server: "10.0.0.2:8080", incomplete: 1},
		{name: "IPv6 not resent", client: "[2001:db8::1]:40000", server: "[2001:db8::2]:8080", incomplete: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, tt.client, tt.server)
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			feed := func(frames [][]byte, ci gopacket.CaptureInfo) {
				t.Helper()
				decodeFrames(t, a, f.link.linkType(), ci, frames...)
			}
			for _, s := range handshake() {
				data, ci := f.packet(s)
				feed([][]byte{data}, ci)
			}
			data, ci := f.packet(seg{true, 0, req1, "A"})
			var frs [][]byte
			if tt.server[0] == '[' {
				frs = fragment6(t, data, 5, 32)
			} else {
				frs = fragment(t, data, 32)
			}
			feed(frs[:1], ci) // the last fragment is lost
			if tt.resent {
				data, ci = f.packet(seg{true, 0, req1, "A"})
				feed([][]byte{data}, ci)
			}
			data, ci = f.packet(seg{false, 0, resp1, "A"})
			feed([][]byte{data}, ci)
			if tt.closed {
				for _, s := range []seg{{true, uint32(len(req1)), "", "FA"}, {false, uint32(len(resp1)), "", "FA"}} {
					data, ci = f.packet(s)
					feed([][]byte{data}, ci)
				}
				if st := a.Stats(); st["streams-active"] != 0 {
					t.Fatalf("the connection has not ended: %v", st)
				}
			}
			if tt.late {
				// An ACK 40 s later: the fragment times out (30 s) while the
				// connection is open.
				data, ci = f.packet(seg{true, uint32(len(req1)), "", "A"})
				ci.Timestamp = ci.Timestamp.Add(40 * time.Second)
				feed([][]byte{data}, ci)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if st["fragments-incomplete"] != tt.incomplete {
				t.Errorf("fragments-incomplete %d, want %d (%v)", st["fragments-incomplete"], tt.incomplete, st)
			}
			if tt.resent && (len(msgs) != 2 || string(msgs[0].Raw) != req1 || string(msgs[1].Raw) != resp1) {
				t.Errorf("%d messages, want the request and its response", len(msgs))
			}
		})
	}
}

// decodeFrames feeds frames to a, each with ci (its lengths set).
func decodeFrames(t *testing.T, a *Assembler, lt layers.LinkType, ci gopacket.CaptureInfo, frames ...[]byte) {
	t.Helper()
	for _, fr := range frames {
		ci.CaptureLength, ci.Length = len(fr), len(fr)
		if err := a.Decode(fr, ci, lt); err != nil {
			t.Fatal(err)
		}
	}
}
