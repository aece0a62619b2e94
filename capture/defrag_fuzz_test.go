package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/message"
)

// fragmentRange is the IPv4 fragment of an Ethernet + IPv4 frame that
// carries its payload's bytes [from, to) (from a multiple of 8), with IP
// Id id; more says whether more fragments follow.
func fragmentRange(frame []byte, from, to int, id uint16, more bool) []byte {
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	b := append(append([]byte{}, frame[:14+ihl]...), ip[ihl+from:ihl+to]...)
	h := b[14:]
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+to-from))
	binary.BigEndian.PutUint16(h[4:], id)
	fo := uint16(from / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], fo)
	ipChecksum(h[:ihl])
	return b
}

func ipChecksum(h []byte) {
	h[10], h[11] = 0, 0
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
}

// toSLL2 rewrites an Ethernet frame as a Linux cooked (SLL2) one.
func toSLL2(frame []byte) []byte {
	h := make([]byte, 20, 20+len(frame)-14)
	binary.BigEndian.PutUint16(h[0:], uint16(layers.EthernetTypeIPv4))
	binary.BigEndian.PutUint32(h[4:], 1)
	binary.BigEndian.PutUint16(h[8:], 1)
	h[11] = 6
	return append(h, frame[14:]...)
}

// FuzzIPv4Fragments builds a capture of one HTTP connection (two
// exchanges) whose packets plan splits into IPv4 fragments at fuzzed
// offsets, reorders, repeats, and, marking the capture lossy, overlaps
// with the same bytes (Linux drops the datagram), drops, cuts at the
// snaplen, delays past the reassembly timeout or gives another packet's
// IP Id. The capture is a
// pcap or a pcapng whose packets are on an Ethernet or a cooked (SLL2)
// interface. Reading it never panics, every packet and fragment is
// counted, the fragments held stay within maxFragBytes (none once
// closed; a packet of captured traffic left incomplete counted as
// fragments-incomplete), and every
// message is accounted for: a capture without loss gives the four
// messages whole and no loss counted; a lossy one gives only messages of
// the connection (whole, or a prefix with incomplete counted), and when
// one is missing a loss is counted (unless a SYN was lost: its direction
// starts at its first data captured, as in a capture begun mid-connection;
// or the server's last packets were: nothing acknowledges the last
// request, as at the end of a capture).
func FuzzIPv4Fragments(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 4, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0x0b, 3, 6, 0x11, 0x03, 0x02, 1, 0x21, 5, 0x41, 2})
	f.Add([]byte{0x80, 0, 0, 0, 0x07, 2, 4, 6, 0, 0x03, 1, 0x23, 5, 7, 0x09, 3, 0x43, 9})
	f.Add([]byte{0x81, 0, 0x05, 2, 0x85, 1, 0x15, 4, 8, 0x61, 3, 0x25, 6, 0x05, 1})
	f.Fuzz(func(t *testing.T, plan []byte) {
		if len(plan) > 200 {
			return
		}
		next := func() byte {
			if len(plan) == 0 {
				return 0
			}
			b := plan[0]
			plan = plan[1:]
			return b
		}
		head := next()
		ng, mixed := head&0x80 != 0, head&0x01 != 0
		const req2 = "GET /second HTTP/1.1\r\nHost: shop\r\nX-Pad: 0123456789abcdefghijklmnopqrstuvwxyz\r\n\r\n"
		fl := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
		segs := append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"},
			seg{true, uint32(len(req1)), req2, "A"}, seg{false, uint32(len(resp1)), resp1, "A"},
			seg{true, uint32(len(req1) + len(req2)), "", "FA"}, seg{false, uint32(2 * len(resp1)), "", "FA"})
		type rec struct {
			data   []byte
			ci     gopacket.CaptureInfo
			frag   bool
			length int // on the wire
		}
		var recs, late []rec
		lossy, startLost := false, false
		segLost := make([]bool, len(segs))
		for i, s := range segs {
			frame, ci := fl.packet(s)
			binary.BigEndian.PutUint16(frame[14+4:], uint16(100+i))
			ipChecksum(frame[14 : 14+20])
			op := next()
			segLossy := false
			if op&0x01 == 0 {
				recs = append(recs, rec{data: frame, ci: ci, length: len(frame)})
				continue
			}
			payload := int(binary.BigEndian.Uint16(frame[14+2:])) - 20 // not the Ethernet padding
			// Cut points: whole 8 byte units.
			var cuts []int
			for n := int(op>>1&3) + 1; n > 0; n-- {
				if c := int(next()) * 8; c > 0 && c < payload {
					cuts = append(cuts, c)
				}
			}
			slices.Sort(cuts)
			cuts = slices.Compact(cuts)
			bounds := append(append([]int{0}, cuts...), payload)
			var frags []rec
			id := uint16(100 + i)
			if op&0x80 != 0 {
				id = uint16(100 + int(next())%len(segs)) // another packet's Id
				segLossy = segLossy || id != uint16(100+i)
			}
			for k := 0; k+1 < len(bounds); k++ {
				b := fragmentRange(frame, bounds[k], bounds[k+1], id, k+2 < len(bounds))
				frags = append(frags, rec{data: b, ci: ci, frag: true, length: len(b)})
			}
			if len(frags) == 1 {
				// Offset 0 without more fragments is a whole packet.
				frags[0].frag = false
			}
			if op&0x08 != 0 && len(frags) > 1 {
				// The same bytes again, across a boundary.
				k := int(next()) % (len(bounds) - 2)
				from, to := bounds[k], bounds[k+2]
				if from%8 == 0 {
					// Linux drops the fragments of a datagram when one
					// overlaps another without repeating it exactly.
					segLossy = true
					frags = append(frags, rec{data: fragmentRange(frame, from, to, id, to < payload), ci: ci, frag: from > 0 || to < payload})
					frags[len(frags)-1].length = len(frags[len(frags)-1].data)
				}
			}
			if op&0x10 != 0 {
				frags = append(frags, frags[int(next())%len(frags)])
			}
			if op&0x20 != 0 {
				slices.Reverse(frags)
			}
			if op&0x40 != 0 && len(frags) > 1 {
				k := int(next()) % len(frags)
				switch next() % 3 {
				case 0: // lost
					frags = slices.Delete(frags, k, k+1)
				case 1: // cut by the snaplen
					fr := frags[k]
					fr.data = fr.data[:len(fr.data)-1]
					frags[k] = fr
				case 2: // past the reassembly timeout
					late = append(late, frags[k])
					frags = slices.Delete(frags, k, k+1)
				}
				segLossy = true
			}
			recs = append(recs, frags...)
			lossy = lossy || segLossy
			// A SYN (or SYN-ACK) lost leaves its direction to start at
			// its first data captured, as in a capture that began in the
			// middle of the connection: bytes lost before it are not
			// seen to be missing (an empty ACK starts no stream).
			startLost = startLost || i < 2 && segLossy
			segLost[i] = segLossy
		}
		end := recs[len(recs)-1].ci.Timestamp
		for i, r := range late {
			r.ci.Timestamp = end.Add(frag4Timeout + time.Duration(i+1)*time.Second)
			recs = append(recs, r)
		}
		var buf bytes.Buffer
		frags := 0
		if ng {
			w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 262144}, pcapgo.DefaultNgWriterOptions)
			if err != nil {
				t.Fatal(err)
			}
			sll2, err := w.AddInterface(pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeLinuxSLL2, SnapLength: 262144})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				data, length := r.data, r.length
				if mixed && i%2 == 1 {
					data, length, r.ci.InterfaceIndex = toSLL2(data), length+6, sll2
				}
				r.ci.CaptureLength, r.ci.Length = len(data), length
				if err := w.WritePacket(r.ci, data); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		} else {
			w := pcapgo.NewWriter(&buf)
			if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				r.ci.CaptureLength, r.ci.Length = len(r.data), r.length
				if err := w.WritePacket(r.ci, r.data); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, r := range recs {
			if r.frag {
				frags++
			}
		}
		var msgs []*message.Message
		a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
		if err := a.ReadFrom(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if a.defrag.bytes > maxFragBytes || a.defrag.bytes < 0 {
			t.Fatalf("fragments held: %d bytes", a.defrag.bytes)
		}
		st := a.Stats()
		if st["packets"] != int64(len(recs)) || st["ip-fragments"] != int64(frags) || st["fragments-incomplete"] > st["ip-fragments"] {
			t.Fatalf("packets %d, ip-fragments %d (incomplete %d); wrote %d packets, %d fragments", st["packets"], st["ip-fragments"], st["fragments-incomplete"], len(recs), frags)
		}
		if len(a.defrag.held) != 0 || a.defrag.bytes != 0 {
			t.Fatalf("closed, it still holds %d datagrams' fragments, %d bytes", len(a.defrag.held), a.defrag.bytes)
		}
		want := []string{req1, resp1, req2, resp1}
		var got []string
		for _, m := range msgs {
			got = append(got, string(m.Raw))
		}
		var losses []string
		for _, k := range []string{"holes", "gaps", "incomplete", "unanswered-requests", "unpaired-responses", "snaplen-cut", "decode-errors", "buffer-overflow", "unparsable", "late-packets", "truncated", "fragments-incomplete"} {
			if st[k] != 0 {
				losses = append(losses, k)
			}
		}
		if !lossy {
			// A fragment repeated after its packet was whole makes no
			// packet, and no loss.
			if !slices.Equal(got, want) || len(losses) != 0 {
				t.Fatalf("no loss: messages %q, losses %v (%v)", got, losses, st)
			}
			return
		}
		for _, g := range got {
			if !slices.Contains(want, g) && !(st["incomplete"] > 0 && slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(w, g) })) {
				t.Fatalf("a message not sent: %q (%v)", g, st)
			}
		}
		// The server's second response and its FIN lost: nothing it sent
		// after acknowledges the second request, whose loss, as at the
		// end of any capture, is not seen to be one (a hole nothing
		// acknowledged may be bytes still to come).
		tailLost := segLost[6] && segLost[8]
		if len(got) < len(want) && len(losses) == 0 && !startLost && !tailLost {
			t.Fatalf("%d of %d messages and no loss counted: %q (%v)", len(got), len(want), got, st)
		}
	})
}
