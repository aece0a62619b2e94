package capture

import (
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// TestHoleBeforeFIN reads connections whose last data before the FIN was
// not captured (a capture that dropped it), while the FIN's sequence
// number and the peer's ACK of it say it was on the wire. gopacket keeps no
// page for a FIN without payload queued past a hole: the hole was never
// handed over, so it was not counted (gaps 0, holes 0) and the response
// it carried was dropped with no loss, only an unanswered request. It is a
// hole like any other: counted, and a body of known length it ends is
// emitted as the prefix seen, cut.
func TestHoleBeforeFIN(t *testing.T) {
	long := "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("y", 3000)
	tests := []struct {
		name      string
		segs      []seg
		wantResps []string // responses recorded, in order
		wantTrunc bool     // the last one is cut
	}{
		{name: "whole response lost", segs: append(handshake(),
			seg{true, 0, req1, "A"}, seg{true, uint32(len(req1)), req1, "A"},
			seg{false, 0, resp1, "A"}, // the second response, resp1 at len(resp1), is lost
			seg{false, uint32(2 * len(resp1)), "", "FA"}, seg{true, uint32(2 * len(req1)), "", "FA"}),
			wantResps: []string{resp1}},
		{name: "end of a body lost", segs: append(handshake(),
			seg{true, 0, req1, "A"}, seg{false, 0, long[:1500], "A"}, // long[1500:] is lost
			seg{false, uint32(len(long)), "", "FA"}, seg{true, uint32(len(req1)), "", "FA"}),
			wantResps: []string{long[:1500]}, wantTrunc: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
			msgs, st := run(t, Config{Ports: []uint16{8080}, Responses: true}, one(f, tt.segs)...)
			var resps []*message.Message
			for _, m := range msgs {
				if m.Kind == message.Response {
					resps = append(resps, m)
				}
			}
			if len(resps) != len(tt.wantResps) {
				t.Fatalf("%d responses, want %d (%v)", len(resps), len(tt.wantResps), st)
			}
			for i, m := range resps {
				if string(m.Raw) != tt.wantResps[i] {
					t.Errorf("response %d: %d bytes %q…, want %d bytes", i, len(m.Raw), m.Raw[:min(len(m.Raw), 40)], len(tt.wantResps[i]))
				}
			}
			if last := resps[len(resps)-1]; last.Truncated != tt.wantTrunc {
				t.Errorf("last response truncated %v, want %v", last.Truncated, tt.wantTrunc)
			}
			if st["holes"] != 1 || st["gaps"] != 1 {
				t.Errorf("holes %d gaps %d, want 1 and 1 (%v)", st["holes"], st["gaps"], st)
			}
		})
	}
	// A FIN past a hole that nothing acknowledged (the capture ends right
	// after it: the bytes may come late) is not counted as a loss, as a
	// hole skipped at the capture's end is not.
	t.Run("not acknowledged", func(t *testing.T) {
		f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
		segs := append(handshake(), seg{true, 0, req1, "A"}, seg{true, uint32(len(req1)), req1, "A"},
			seg{false, 0, resp1, "A"}, seg{false, uint32(2 * len(resp1)), "", "FA"})
		_, st := run(t, Config{Ports: []uint16{8080}, Responses: true}, one(f, segs)...)
		if st["holes"] != 0 {
			t.Errorf("holes %d, want 0 (%v)", st["holes"], st)
		}
	})
}
