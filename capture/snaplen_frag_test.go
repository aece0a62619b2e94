package capture

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/replayctl/replayctl/message"
)

// TestSnaplenCutFragments: a fragment cut by the snaplen is a loss only of
// captured traffic, and once. A first fragment tells by its ports whether
// its packet is captured (snaplen-cut when it is); a later one has no
// ports: a live filter passes such fragments to any port, so a cut one is
// counted only through its packet, fragments-incomplete when its first
// fragment was of captured traffic, nothing when it was another port's.
// Before, every cut fragment counted snaplen-cut: a pcap taken with a
// small snaplen of traffic to other ports failed its run.
func TestSnaplenCutFragments(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		client, server, other := "10.0.0.1:40000", "10.0.0.2:8080", "10.0.0.2:22"
		frag := func(t *testing.T, data []byte, at ...int) [][]byte { return fragment(t, data, at...) }
		if v6 {
			client, server, other = "[2001:db8::1]:40000", "[2001:db8::2]:8080", "[2001:db8::2]:22"
			frag = func(t *testing.T, data []byte, at ...int) [][]byte { return fragment6(t, data, 7, at...) }
		}
		name := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		for _, tt := range []struct {
			name           string
			ours           bool
			cut            int // the fragment cut
			wantCut        int64
			wantIncomplete int64
		}{
			{"captured, first cut", true, 0, 1, 0},
			{"captured, second cut", true, 1, 0, 1},
			{"other port, first cut", false, 0, 0, 0},
			{"other port, second cut", false, 1, 0, 0},
		} {
			t.Run(name+" "+tt.name, func(t *testing.T) {
				a := NewAssembler(Config{Ports: []uint16{8080}}, func(*message.Message) error { return nil })
				dst := server
				if !tt.ours {
					dst = other
				}
				f := newFlow(t, linkEthernet, client, dst)
				data, _ := f.packet(seg{true, 0, req1, "A"})
				for i, fr := range frag(t, data, 24) {
					ci := gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(fr), Length: len(fr)}
					if i == tt.cut {
						fr = fr[:len(fr)-5]
						ci.CaptureLength = len(fr)
					}
					if err := a.Decode(fr, ci, f.link.linkType()); err != nil {
						t.Fatal(err)
					}
				}
				f.ts = f.ts.Add(time.Minute)
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				st := a.Stats()
				if st["snaplen-cut"] != tt.wantCut || st["fragments-incomplete"] != tt.wantIncomplete {
					t.Errorf("snaplen-cut %d, fragments-incomplete %d; want %d, %d (%v)", st["snaplen-cut"], st["fragments-incomplete"], tt.wantCut, tt.wantIncomplete, st)
				}
			})
		}
	}
}
