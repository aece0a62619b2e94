package capture

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/replayctl/replayctl/message"
)

// TestIPv4FragmentsTimedOutGiveBackBytes: fragments that never complete
// (live, the later fragments of packets to other ports pass the kernel
// filter, their first does not) are dropped after fragTimeout, and what
// they held no longer counts against maxFragBytes: at most 30 s of them
// are held at once, far under it. The bytes of every fragment ever held
// counted (only a whole packet's payload was given back), so after 16 MiB
// of such fragments the defragmenter was dropped, counted buffer-overflow,
// and with it the first fragment of a request to the captured port: the
// request was lost.
func TestIPv4FragmentsTimedOutGiveBackBytes(t *testing.T) {
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	// A later fragment (offset 1000) of a packet to port 22: its first
	// never comes.
	o := newFlow(t, linkEthernet, "10.0.0.9:40000", "10.0.0.2:22")
	data, ci := o.packet(seg{true, 0, string(make([]byte, 1400)), "A"})
	later := fragment(t, data, 1000)[1]
	at := time.Unix(1_700_000_000, 0)
	n := (16<<20)/(len(later)-14) + 100 // past maxFragBytes in all, 10 ms apart
	g := newFlow(t, linkEthernet, "10.0.0.3:40000", "10.0.0.2:8080")
	var reqFrags [][]byte
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint16(later[14+4:], uint16(i))
		binary.BigEndian.PutUint16(later[14+12:], uint16(i>>16))
		at = at.Add(10 * time.Millisecond)
		ci.Timestamp, ci.CaptureLength, ci.Length = at, len(later), len(later)
		if err := a.Decode(later, ci, o.link.linkType()); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if err := a.Flush(at); err != nil {
				t.Fatal(err)
			}
		}
		if i == n-200 {
			// The handshake and the first fragment of a request.
			for j, s := range append(handshake(), seg{true, 0, req1, "A"}) {
				d, gci := g.packet(s)
				frames := [][]byte{d}
				if j == 3 {
					reqFrags = fragment(t, d, 32)
					frames = reqFrags[:1]
				}
				for _, fr := range frames {
					gci.Timestamp, gci.CaptureLength, gci.Length = at, len(fr), len(fr)
					if err := a.Decode(fr, gci, g.link.linkType()); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	_, gci := g.packet(seg{true, 0, "", "A"})
	gci.Timestamp, gci.CaptureLength, gci.Length = at, len(reqFrags[1]), len(reqFrags[1])
	if err := a.Decode(reqFrags[1], gci, g.link.linkType()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st["buffer-overflow"] != 0 {
		t.Errorf("buffer-overflow %d, want 0: no more than 30 s of fragments were ever held", st["buffer-overflow"])
	}
	if len(msgs) != 1 || string(msgs[0].Raw) != req1 {
		t.Errorf("%d messages, want the fragmented request (stats %v)", len(msgs), st)
	}
}
