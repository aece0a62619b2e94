package capture

import (
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// TestSnaplenCut reads packets cut short by the capture's snaplen
// (tcpdump -s 200: CaptureLength < Length): the bytes past the cut were on
// the wire, so each cut packet of a captured connection is counted
// (snaplen-cut), besides the hole it leaves, and a response whose head is
// cut is not recorded.
func TestSnaplenCut(t *testing.T) {
	body := strings.Repeat("x", 3000)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + body
	const req = "GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"
	fin := func(c, s int) []seg {
		return []seg{{true, uint32(c), "", "FA"}, {false, uint32(s), "", "FA"}}
	}
	tests := []struct {
		name     string
		segs     []seg
		cut      int // index in segs of the packet cut
		keep     int // bytes of its payload kept
		wantResp string
		wantCut  int64
	}{
		{name: "head cut before the FIN", segs: append(append(handshake(), seg{true, 0, req, "A"}, seg{false, 0, resp1, "A"}),
			fin(len(req), len(resp1))...), cut: 4, keep: 10, wantCut: 1},
		{name: "body cut, more follows", segs: append(append(handshake(), seg{true, 0, req, "A"},
			seg{false, 0, resp[:1000], "A"}, seg{false, 1000, resp[1000:2000], "A"}, seg{false, 2000, resp[2000:], "A"}),
			fin(len(req), len(resp))...), cut: 5, keep: 100, wantResp: resp[:1100], wantCut: 1},
		{name: "not cut", segs: append(append(handshake(), seg{true, 0, req, "A"}, seg{false, 0, resp1, "A"}),
			fin(len(req), len(resp1))...), cut: -1, wantResp: resp1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
			var msgs []*message.Message
			a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for i, s := range tt.segs {
				data, ci := f.packet(s)
				if i == tt.cut {
					data = data[:len(data)-len(s.data)+tt.keep]
					ci.CaptureLength = len(data)
				}
				if err := a.Decode(data, ci, f.link.linkType()); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if st["snaplen-cut"] != tt.wantCut || st["decode-errors"] != 0 {
				t.Errorf("snaplen-cut %d, want %d; decode-errors %d (%v)", st["snaplen-cut"], tt.wantCut, st["decode-errors"], st)
			}
			var gotResp *message.Message
			for _, m := range msgs {
				if m.Kind == message.Request && string(m.Raw) != req {
					t.Errorf("request %q", m.Raw)
				}
				if m.Kind == message.Response {
					gotResp = m
				}
			}
			switch {
			case tt.wantResp == "" && gotResp != nil:
				t.Errorf("response %q recorded, want none", gotResp.Raw)
			case tt.wantResp != "" && (gotResp == nil || string(gotResp.Raw) != tt.wantResp):
				t.Errorf("response %v, want %d bytes", gotResp, len(tt.wantResp))
			case tt.wantResp != "" && gotResp.Truncated != (tt.wantCut > 0):
				t.Errorf("response truncated %v", gotResp.Truncated)
			}
		})
	}
}
