package capture

import (
	"slices"
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

// TestHoleAckedWithoutFIN: the client's last request and its FIN were not
// captured, while the server's FIN acknowledges them: the bytes it
// acknowledged past those captured are a hole, counted. Without a FIN of
// the client captured, the hole went uncounted: a request lost, no loss
// said (FuzzIPv4Fragments). The last byte acknowledged may be the FIN's: a
// FIN alone not captured is no hole.
func TestHoleAckedWithoutFIN(t *testing.T) {
	const req2 = "GET /second HTTP/1.1\r\nHost: shop\r\n\r\n"
	tests := []struct {
		name      string
		lost      []int // segments not captured
		finAcked  bool  // the server's FIN acknowledges the client's
		wantHoles int64
	}{
		{name: "request and FIN lost", lost: []int{5, 6}, wantHoles: 1},
		{name: "request and FIN lost, FIN acknowledged", lost: []int{5, 6}, finAcked: true, wantHoles: 1},
		{name: "FIN lost, acknowledged", lost: []int{6}, finAcked: true},
		{name: "FIN lost", lost: []int{6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
			segs := append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"},
				seg{true, uint32(len(req1)), req2, "A"}, seg{true, uint32(len(req1) + len(req2)), "", "FA"},
				seg{false, uint32(len(resp1)), "", "FA"})
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for i, s := range segs {
				if i == 7 && tt.finAcked {
					one := uint32(len(req1)+len(req2)) + 1
					f.ackOverride = &one
				}
				data, ci := f.packet(s)
				if slices.Contains(tt.lost, i) {
					continue
				}
				if err := a.Decode(data, ci, f.link.linkType()); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if len(msgs) < 2 || string(msgs[0].Raw) != req1 || string(msgs[1].Raw) != resp1 {
				t.Errorf("%d messages, want the first request and its response", len(msgs))
			}
			if st["holes"] != tt.wantHoles || st["gaps"] != tt.wantHoles {
				t.Errorf("holes %d gaps %d, want %d (%v)", st["holes"], st["gaps"], tt.wantHoles, st)
			}
		})
	}
}

// TestNoFalseHoleAfterUpgrade: a hole in the client's bytes after a 101
// (a WebSocket, not recorded) is one gap and no hole (no loss of HTTP),
// however the connection ends. The splitter of a stream no longer HTTP
// did not count the hole's bytes in its position, so at the end finHoles
// took the bytes the peer acknowledged past it for another gap (capture
// ends, no FIN) and, with a FIN, the splitter finished by then, for a
// hole too.
func TestNoFalseHoleAfterUpgrade(t *testing.T) {
	const up = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	const sw = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	frame := "\x81\x05hello"
	for _, end := range []string{"capture ends", "FIN", "RST"} {
		t.Run(end, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
			o := uint32(len(up))
			n := uint32(len(frame))
			segs := append(handshake(), seg{true, 0, up, "A"}, seg{false, 0, sw, "A"},
				seg{true, o, frame, "A"},
				seg{true, o + n, frame, "A"}, // lost: segment 6
				seg{true, o + 2*n, frame, "A"},
				seg{false, uint32(len(sw)), "", "A"}) // acknowledges the three frames
			switch end {
			case "FIN":
				segs = append(segs, seg{true, o + 3*n, "", "FA"}, seg{false, uint32(len(sw)), "", "FA"})
			case "RST":
				segs = append(segs, seg{false, uint32(len(sw)), "", "R"})
			}
			// The lost segment is serialized (the ACKs count it) and not fed.
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for i, s := range segs {
				data, ci := f.packet(s)
				if i == 6 {
					continue
				}
				if err := a.Decode(data, ci, f.link.linkType()); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if len(msgs) != 2 {
				t.Errorf("%d messages, want the upgrade and its 101", len(msgs))
			}
			if st["gaps"] != 1 || st["holes"] != 0 {
				t.Errorf("gaps %d holes %d, want 1 and 0 (%v)", st["gaps"], st["holes"], st)
			}
			// The frames are not HTTP, whenever they are handed over:
			// after a RST ended the stream, those held behind the hole
			// come at the capture's end, and were parsed as HTTP.
			if st["incomplete"] != 0 || st["unparsable"] != 0 {
				t.Errorf("incomplete %d unparsable %d, want 0: WebSocket frames taken for HTTP (%v)", st["incomplete"], st["unparsable"], st)
			}
		})
	}
}
