package capture

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// TestOverflowCutKeepsAPrefix: a body cut because the capture's buffers
// were full (buffer-overflow) stays cut when room frees up later: the
// message is the prefix captured before the cut, marked truncated, not
// that prefix with the bytes after the free room spliced on (the body then
// was pieces of the original under a marker that says "a cut prefix").
func TestOverflowCutKeepsAPrefix(t *testing.T) {
	body := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%07d,", i)
		}
		return b.String()[:n]
	}
	post := func(path string, n int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", path, n, body(n))
	}
	reqA, reqB := post("/a", 4500), post("/b", 10000)
	a, b := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080"), newFlow(t, linkEthernet, "10.0.0.3:40000", "10.0.0.2:8080")
	splitA, splitB := len(reqA)-500, len(reqB)-1000
	var steps []struct {
		f *flow
		s seg
	}
	add := func(f *flow, segs ...seg) {
		for _, s := range segs {
			steps = append(steps, struct {
				f *flow
				s seg
			}{f, s})
		}
	}
	add(a, handshake()...)
	add(b, handshake()...)
	chunks := func(f *flow, stream string, from, to int) {
		for off := from; off < to; off += 1000 {
			add(f, seg{true, uint32(off), stream[off:min(off+1000, to)], "A"})
		}
	}
	chunks(a, reqA, 0, splitA)         // A held, not complete
	chunks(b, reqB, 0, splitB)         // B fills the buffers: cut
	chunks(a, reqA, splitA, len(reqA)) // A ends: its room is free again
	chunks(b, reqB, splitB, len(reqB)) // B's last bytes: not kept
	var msgs []*message.Message
	asm := NewAssembler(Config{Ports: []uint16{8080}, MaxBufferedBytes: 10000}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	for _, st := range steps {
		data, ci := st.f.packet(st.s)
		if err := asm.Decode(data, ci, linkEthernet.linkType()); err != nil {
			t.Fatal(err)
		}
	}
	if err := asm.Close(); err != nil {
		t.Fatal(err)
	}
	var got *message.Message
	for _, m := range msgs {
		if bytes.HasPrefix(m.Raw, []byte("POST /b ")) {
			got = m
		}
	}
	if got == nil {
		t.Fatalf("no message of request B among %d (stats %v)", len(msgs), asm.Stats())
	}
	if !got.Truncated || len(got.Raw) >= len(reqB) {
		t.Fatalf("request B: %d of %d bytes, truncated %v; want a cut", len(got.Raw), len(reqB), got.Truncated)
	}
	if !strings.HasPrefix(reqB, string(got.Raw)) {
		t.Errorf("request B's %d bytes are not a prefix of what was sent: its body ends %q", len(got.Raw), got.Raw[max(len(got.Raw)-24, 0):])
	}
	if st := asm.Stats(); st["buffer-overflow"] < 1 || st["truncated"] < 1 {
		t.Errorf("stats %v: want the cut counted as buffer-overflow and truncated", st)
	}
}

// TestH2OverflowCutKeepsAPrefix is TestOverflowCutKeepsAPrefix for HTTP/2:
// a stream's body cut by MaxStreamBytes stays cut when another stream of
// the connection ends and frees its room.
func TestH2OverflowCutKeepsAPrefix(t *testing.T) {
	cl, sv := newH2side(true), newH2side(false)
	_ = sv.fr.WriteSettings()
	for _, id := range []uint32{1, 3} {
		cl.headers(id, false, 0, ":method", "POST", ":scheme", "http", ":path", "/up", ":authority", "h")
	}
	a, b := bytes.Repeat([]byte("a"), 4000), bytes.Repeat([]byte("b"), 7000)
	_ = cl.fr.WriteData(1, false, a)
	_ = cl.fr.WriteData(3, false, b) // 6000 of its 7000 kept: cut
	_ = cl.fr.WriteData(1, true, nil)
	_ = cl.fr.WriteData(3, true, []byte("after the cut"))
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
	var msgs []*message.Message
	asm := NewAssembler(Config{Responses: true, MaxBody: 1 << 20, MaxStreamBytes: 10000}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	for _, s := range h2segs(cl.buf.Bytes(), sv.buf.Bytes(), 1000) {
		data, ci := f.packet(s)
		if err := asm.Decode(data, ci, linkEthernet.linkType()); err != nil {
			t.Fatal(err)
		}
	}
	if err := asm.Close(); err != nil {
		t.Fatal(err)
	}
	var cut *message.Message
	for _, m := range msgs {
		if m.Truncated {
			cut = m
		}
	}
	if cut == nil {
		t.Fatalf("no message cut among %d (stats %v)", len(msgs), asm.Stats())
	}
	if bytes.Contains(cut.Raw, []byte("after the cut")) {
		t.Errorf("the cut body has the bytes sent after its cut: %q…", cut.Raw[max(len(cut.Raw)-24, 0):])
	}
}
