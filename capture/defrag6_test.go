package capture

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/replayctl/replayctl/message"
)

// fragment6 splits an Ethernet + IPv6 frame into IPv6 fragments (a
// Fragment header, Id id) whose payloads start at the offsets at
// (multiples of 8, after 0).
func fragment6(t *testing.T, frame []byte, id uint32, at ...int) [][]byte {
	t.Helper()
	if binary.BigEndian.Uint16(frame[12:]) != 0x86dd {
		t.Fatal("fragment6: not IPv6")
	}
	hdr, payload := frame[14:54], frame[54:]
	bounds := append(append([]int{0}, at...), len(payload))
	var out [][]byte
	for i := 0; i+1 < len(bounds); i++ {
		from, to := bounds[i], bounds[i+1]
		b := append(append([]byte{}, frame[:14]...), hdr...)
		var fh [8]byte
		fh[0] = hdr[6] // the next header, TCP
		off := uint16(from/8) << 3
		if to < len(payload) {
			off |= 1 // more fragments
		}
		binary.BigEndian.PutUint16(fh[2:], off)
		binary.BigEndian.PutUint32(fh[4:], id)
		b = append(append(b, fh[:]...), payload[from:to]...)
		b[14+6] = 44 // Fragment
		binary.BigEndian.PutUint16(b[14+4:], uint16(8+to-from))
		out = append(out, b)
	}
	return out
}

// TestIPv6Fragments reads requests and responses carried in IPv6
// fragments (a Fragment header: a sender whose path MTU is smaller than
// its packets, a tunnel): the fragments are reassembled, as the receiver
// and tshark do, and the messages recorded whole and paired. They were
// counted as packets-ignored, not a loss: a request sent so was silently
// lost, or counted at best as a hole.
func TestIPv6Fragments(t *testing.T) {
	const req2 = "GET /second HTTP/1.1\r\nHost: shop\r\n\r\n"
	tests := []struct {
		name    string
		frag    int   // index in segs of the packet fragmented
		at      []int // where
		reverse bool  // fragments in reverse order
		dup     bool  // the first fragment twice
	}{
		{name: "first request", frag: 3, at: []int{32}},
		{name: "last request, three fragments, reversed", frag: 5, at: []int{24, 48}, reverse: true},
		{name: "response, first fragment repeated", frag: 4, at: []int{40}, dup: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "[2001:db8::1]:40000", "[2001:db8::2]:8080")
			segs := append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"},
				seg{true, uint32(len(req1)), req2, "A"}, seg{false, uint32(len(resp1)), resp1, "A"})
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for i, s := range segs {
				data, ci := f.packet(s)
				frames := [][]byte{data}
				if i == tt.frag {
					frames = fragment6(t, data, 0x1234, tt.at...)
					if tt.dup {
						frames = append([][]byte{frames[0]}, frames...)
					}
					if tt.reverse {
						for l, r := 0, len(frames)-1; l < r; l, r = l+1, r-1 {
							frames[l], frames[r] = frames[r], frames[l]
						}
					}
				}
				for _, fr := range frames {
					ci.CaptureLength, ci.Length = len(fr), len(fr)
					if err := a.Decode(fr, ci, f.link.linkType()); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Raw))
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
			if msgs[0].ID != msgs[1].ID || msgs[2].ID != msgs[3].ID || msgs[0].Src.String() != "[2001:db8::1]:40000" {
				t.Errorf("pairing or addresses: %s %s %s %s %v", msgs[0].ID, msgs[1].ID, msgs[2].ID, msgs[3].ID, msgs[0].Src)
			}
			n := int64(len(tt.at) + 1)
			if tt.dup {
				n++
			}
			if st["ip-fragments"] != n || st["packets-ignored"] != 0 || st["holes"] != 0 || st["gaps"] != 0 || st["decode-errors"] != 0 || st["fragments-incomplete"] != 0 {
				t.Errorf("ip-fragments %d (want %d), packets-ignored %d, holes %d, gaps %d, decode-errors %d, fragments-incomplete %d",
					st["ip-fragments"], n, st["packets-ignored"], st["holes"], st["gaps"], st["decode-errors"], st["fragments-incomplete"])
			}
		})
	}
}

// TestFragmentsIncomplete sends, in IPv4 and in IPv6, a request of a
// captured connection in fragments of which one never comes: the packet
// is counted as a loss (fragments-incomplete), when its fragments time out
// in capture time (30 s for IPv4, 60 s for IPv6, as Linux) or at the end
// of the capture, not as packets-ignored. Fragments whose first never came
// (of no known connection) and fragments the receiver refuses
// (overlapping) are not counted as lost; a packet whose rest comes within
// the timeout is reassembled.
func TestFragmentsIncomplete(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		client, server, other := "10.0.0.1:40000", "10.0.0.2:8080", "10.0.0.2:22"
		frag := func(t *testing.T, data []byte, at ...int) [][]byte { return fragment(t, data, at...) }
		timeout := 30 * time.Second
		if v6 {
			client, server, other = "[2001:db8::1]:40000", "[2001:db8::2]:8080", "[2001:db8::2]:22"
			frag = func(t *testing.T, data []byte, at ...int) [][]byte { return fragment6(t, data, 7, at...) }
			timeout = 60 * time.Second
		}
		name := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		feed := func(t *testing.T, a *Assembler, f *flow, frames ...[]byte) {
			t.Helper()
			for _, fr := range frames {
				ci := gopacketCI(f.ts, len(fr))
				if err := a.Decode(fr, ci, f.link.linkType()); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Run(name+" first fragment only, timed out", func(t *testing.T) {
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			f := newFlow(t, linkEthernet, client, server)
			for _, s := range handshake() {
				data, _ := f.packet(s)
				feed(t, a, f, data)
			}
			data, _ := f.packet(seg{true, 0, req1, "A"})
			feed(t, a, f, frag(t, data, 24)[0])
			// Of another connection: the fragment after the first only.
			g := newFlow(t, linkEthernet, "10.0.0.9:40000", other)
			if v6 {
				g = newFlow(t, linkEthernet, "[2001:db8::9]:40000", other)
			}
			data, _ = g.packet(seg{true, 0, req1, "A"})
			feed(t, a, f, frag(t, data, 24)[1])
			f.ts = f.ts.Add(timeout - 2*time.Second)
			data, _ = f.packet(seg{true, 0, "", "A"}) // a keep-alive: still held
			feed(t, a, f, data)
			if st := a.Stats(); st["fragments-incomplete"] != 0 {
				t.Fatalf("fragments-incomplete %d before the timeout", st["fragments-incomplete"])
			}
			f.ts = f.ts.Add(3 * time.Second)
			data, _ = f.packet(seg{true, 0, "", "A"})
			feed(t, a, f, data)
			st := a.Stats()
			if st["fragments-incomplete"] != 1 {
				t.Errorf("fragments-incomplete %d after the timeout, want 1", st["fragments-incomplete"])
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st = a.Stats()
			if st["fragments-incomplete"] != 1 || st["packets-ignored"] != 0 || st["ip-fragments"] != 2 || len(msgs) != 0 {
				t.Errorf("fragments-incomplete %d (want 1), packets-ignored %d, ip-fragments %d, %d messages", st["fragments-incomplete"], st["packets-ignored"], st["ip-fragments"], len(msgs))
			}
		})
		t.Run(name+" rest within the timeout, then one cut by the end", func(t *testing.T) {
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			f := newFlow(t, linkEthernet, client, server)
			for _, s := range handshake() {
				data, _ := f.packet(s)
				feed(t, a, f, data)
			}
			data, _ := f.packet(seg{true, 0, req1, "A"})
			frames := frag(t, data, 24)
			feed(t, a, f, frames[0])
			f.ts = f.ts.Add(timeout - time.Second)
			data, _ = f.packet(seg{true, 0, "", "A"})
			feed(t, a, f, data, frames[1])
			data, _ = f.packet(seg{true, uint32(len(req1)), req1, "A"})
			feed(t, a, f, frag(t, data, 24)[0])
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if len(msgs) != 1 || string(msgs[0].Raw) != req1 || st["fragments-incomplete"] != 1 {
				t.Errorf("%d messages, fragments-incomplete %d: want the first request, 1 lost at the end", len(msgs), st["fragments-incomplete"])
			}
		})
		t.Run(name+" overlapping fragments refused", func(t *testing.T) {
			a := NewAssembler(Config{Ports: []uint16{8080}}, func(m *message.Message) error { return nil })
			f := newFlow(t, linkEthernet, client, server)
			data, _ := f.packet(seg{true, 0, req1, "A"})
			a1 := frag(t, data, 24)
			a2 := frag(t, data, 32)
			feed(t, a, f, a1[0], a2[0]) // [0,32) overlaps [0,24) past it
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if st["decode-errors"] != 1 || st["fragments-incomplete"] != 0 {
				t.Errorf("decode-errors %d (want 1), fragments-incomplete %d (want 0: the receiver drops them too, TCP sends again)", st["decode-errors"], st["fragments-incomplete"])
			}
		})
	}
}

// TestIPv6FragmentFloodBounded sends IPv6 first fragments that never
// complete, each with its own Id: the bytes held stay under maxFragBytes
// (those held are dropped past it, counted as buffer-overflow and, being
// of a captured connection, as fragments-incomplete), and a fragmented
// request after the flood is still reassembled.
func TestIPv6FragmentFloodBounded(t *testing.T) {
	f := newFlow(t, linkEthernet, "[2001:db8::1]:40000", "[2001:db8::2]:8080")
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	data, _ := f.packet(seg{true, 0, string(make([]byte, 1400)), "A"})
	first := fragment6(t, data, 0, 1000)[0]
	n := (16<<20)/(len(first)-14) + 100
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(first[14+40+4:], uint32(i))
		if err := a.Decode(first, gopacketCI(f.ts, len(first)), f.link.linkType()); err != nil {
			t.Fatal(err)
		}
	}
	st := a.Stats()
	if st["buffer-overflow"] != 1 || st["fragments-incomplete"] == 0 || st["fragments-incomplete"] >= int64(n) {
		t.Errorf("buffer-overflow %d, want 1; fragments-incomplete %d, want those dropped", st["buffer-overflow"], st["fragments-incomplete"])
	}
	g := newFlow(t, linkEthernet, "[2001:db8::3]:40000", "[2001:db8::2]:8080")
	for i, s := range append(handshake(), seg{true, 0, req1, "A"}) {
		data, ci := g.packet(s)
		frames := [][]byte{data}
		if i == 3 {
			frames = fragment6(t, data, 1<<31, 32)
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
	if st := a.Stats(); st["fragments-incomplete"] != int64(n) {
		t.Errorf("fragments-incomplete %d at the end, want all %d of the flood", st["fragments-incomplete"], n)
	}
}

func gopacketCI(ts time.Time, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: n}
}
