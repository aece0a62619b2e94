package capture

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/message"
)

// h2side writes the frames of one direction with its own HPACK encoder.
type h2side struct {
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newH2side(client bool) *h2side {
	s := &h2side{}
	if client {
		s.buf.WriteString(http2.ClientPreface)
	}
	s.fr = http2.NewFramer(&s.buf, nil)
	s.enc = hpack.NewEncoder(&s.hb)
	return s
}

// block encodes "name: value" pairs.
func (s *h2side) block(kv ...string) []byte {
	s.hb.Reset()
	for i := 0; i < len(kv); i += 2 {
		_ = s.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(s.hb.Bytes())
}

func (s *h2side) headers(id uint32, end bool, pad uint8, kv ...string) {
	_ = s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: s.block(kv...), EndStream: end, EndHeaders: true, PadLength: pad})
}

// segs cuts the bytes of both sides into segments of at most size bytes,
// client first, then server.
func h2segs(c, s []byte, size int) []seg {
	segs := handshake()
	for _, d := range []struct {
		b    []byte
		from bool
	}{{c, true}, {s, false}} {
		for off := 0; off < len(d.b); off += size {
			end := min(off+size, len(d.b))
			segs = append(segs, seg{fromClient: d.from, off: uint32(off), data: string(d.b[off:end]), flags: "A"})
		}
	}
	return append(segs, seg{fromClient: true, off: uint32(len(c)), flags: "FA"}, seg{fromClient: false, off: uint32(len(s)), flags: "FA"})
}

// interleaved is two streams whose frames interleave, with CONTINUATION,
// padding, a request and a response trailer, and an interim 100.
func interleaved() (c, s []byte) {
	cl, sv := newH2side(true), newH2side(false)
	_ = cl.fr.WriteSettings()
	_ = sv.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192})
	blk := cl.block(":method", "POST", ":scheme", "http", ":path", "/pkg.Svc/Upload", ":authority", "api:50051",
		"content-type", "application/grpc", "x-long", strings.Repeat("v", 300))
	_ = cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:10]})
	_ = cl.fr.WriteContinuation(1, false, blk[10:100])
	_ = cl.fr.WriteContinuation(1, true, blk[100:])
	cl.headers(3, true, 0, ":method", "GET", ":scheme", "http", ":path", "/status?x=1", ":authority", "api:50051", "accept", "*/*")
	_ = cl.fr.WriteDataPadded(1, false, []byte("\x00\x00\x00\x00\x03abc"), []byte{0, 0, 0, 0})
	_ = cl.fr.WriteData(1, false, []byte("\x00\x00\x00\x00\x02de"))
	_ = cl.fr.WriteSettingsAck()
	_ = cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: cl.block("x-req-trailer", "t1"), EndStream: true, EndHeaders: true})

	_ = sv.fr.WriteSettingsAck()
	sv.headers(1, false, 0, ":status", "100")
	sv.headers(3, false, 7, ":status", "200", "content-type", "text/plain")
	sv.headers(1, false, 0, ":status", "200", "content-type", "application/grpc")
	_ = sv.fr.WriteDataPadded(1, false, []byte("\x00\x00\x00\x00\x01z"), []byte{0, 0})
	_ = sv.fr.WriteData(3, true, []byte("fine"))
	_ = sv.fr.WriteWindowUpdate(0, 1000)
	sv.headers(1, true, 0, "grpc-status", "0", "grpc-message", "")
	_ = sv.fr.WriteGoAway(3, http2.ErrCodeNo, nil)
	return cl.buf.Bytes(), sv.buf.Bytes()
}

func TestH2Synthetic(t *testing.T) {
	c, s := interleaved()
	wantReq := map[string]string{
		"/pkg.Svc/Upload": "POST /pkg.Svc/Upload HTTP/2.0\r\nHost: api:50051\r\ncontent-type: application/grpc\r\nx-long: " + strings.Repeat("v", 300) +
			"\r\nContent-Length: 15\r\nX-Replayctl-Trailer-x-req-trailer: t1\r\n\r\n\x00\x00\x00\x00\x03abc\x00\x00\x00\x00\x02de",
		"/status?x=1": "GET /status?x=1 HTTP/2.0\r\nHost: api:50051\r\naccept: */*\r\n\r\n",
	}
	wantResp := map[string]string{
		"/pkg.Svc/Upload": "HTTP/2.0 200 OK\r\ncontent-type: application/grpc\r\nContent-Length: 6\r\nX-Replayctl-Trailer-grpc-status: 0\r\nX-Replayctl-Trailer-grpc-message: \r\n\r\n\x00\x00\x00\x00\x01z",
		"/status?x=1":     "HTTP/2.0 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 4\r\n\r\nfine",
	}
	for _, size := range []int{1, 7, 100, 1 << 20} {
		f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
		msgs, st := run(t, Config{Responses: true}, one(f, h2segs(c, s, size))...)
		if st["requests"] != 2 || st["responses"] != 2 || st["interim-responses"] != 1 || st["h2-goaway"] != 1 || st["incomplete"] != 0 || st["h2-frame-errors"] != 0 {
			t.Fatalf("size %d: stats %v", size, st)
		}
		paths := map[string]string{}
		for _, m := range msgs {
			if m.Kind == message.Request {
				r, err := httpraw.ParseRequest(m.Raw)
				if err != nil {
					t.Fatal(err)
				}
				paths[m.ID] = r.Target()
				if string(m.Raw) != wantReq[r.Target()] {
					t.Errorf("size %d: request\n%q\nwant\n%q", size, m.Raw, wantReq[r.Target()])
				}
			}
		}
		for _, m := range msgs {
			if m.Kind == message.Response {
				p := paths[m.ID]
				if string(m.Raw) != wantResp[p] {
					t.Errorf("size %d: response to %s\n%q\nwant\n%q", size, p, m.Raw, wantResp[p])
				}
				if m.Latency <= 0 || m.Src != f.server {
					t.Errorf("response latency %d src %s", m.Latency, m.Src)
				}
			}
		}
	}
}

func TestH2Losses(t *testing.T) {
	get := []string{":method", "GET", ":scheme", "http", ":path", "/a", ":authority", "h"}
	tests := []struct {
		name  string
		build func(cl, sv *h2side)
		hs    bool // with handshake and preface
		want  map[string]int64
	}{
		{"rst-stream", func(cl, sv *h2side) {
			cl.headers(1, true, 0, get...)
			sv.headers(1, false, 0, ":status", "200")
			_ = sv.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		}, true, map[string]int64{"requests": 1, "responses": 0, "h2-rst-stream": 1, "incomplete": 1}},
		{"request-cut-by-close", func(cl, sv *h2side) {
			cl.headers(1, false, 0, get...)
			_ = cl.fr.WriteData(1, false, []byte("part"))
		}, true, map[string]int64{"requests": 0, "incomplete": 1}},
		{"bad-preface", func(cl, sv *h2side) {
			cl.buf.Reset()
			cl.buf.WriteString("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
			cl.headers(1, true, 0, get...)
		}, true, map[string]int64{"requests": 0, "h2-bad-preface": 1}},
		{"push-promise-keeps-hpack-in-step", func(cl, sv *h2side) {
			cl.headers(1, true, 0, get...)
			_ = sv.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: sv.block(":method", "GET", ":path", "/pushed", "x-pushed", "yes"), EndHeaders: true})
			sv.headers(1, true, 0, ":status", "200", "x-pushed", "yes")
		}, true, map[string]int64{"requests": 1, "responses": 1, "h2-push-promises": 1, "h2-hpack-errors": 0}},
		{"midstream-hpack-unknown", func(cl, sv *h2side) {
			// The first block (not captured) fills the dynamic table; the
			// captured one refers to it: it cannot be decoded.
			cl.block(":method", "GET", ":path", "/a", ":authority", "h", "x-custom", "abc")
			cl.buf.Reset()
			cl.headers(3, true, 0, ":method", "GET", ":path", "/a", ":authority", "h", "x-custom", "abc")
			cl.headers(5, true, 0, ":method", "GET", ":path", "/b", ":authority", "h")
		}, false, map[string]int64{"requests": 0, "h2-midstream-connections": 1, "h2-hpack-unknown": 2}},
		{"extended-connect-protocol-counted", func(cl, sv *h2side) {
			cl.headers(1, true, 0, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/chat", ":authority", "h")
			sv.headers(1, true, 0, ":status", "200")
		}, true, map[string]int64{"requests": 1, "responses": 1, "h2-pseudo-dropped": 1}},
		{"midstream-decodable", func(cl, sv *h2side) {
			cl.buf.Reset()
			cl.headers(3, true, 0, ":method", "GET", ":path", "/a", ":authority", "h", "x-new", "1")
			sv.headers(3, true, 0, ":status", "204")
		}, false, map[string]int64{"requests": 1, "responses": 1, "h2-midstream-connections": 1, "h2-hpack-unknown": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, sv := newH2side(true), newH2side(false)
			if tt.hs {
				_ = sv.fr.WriteSettings()
			}
			tt.build(cl, sv)
			segs := h2segs(cl.buf.Bytes(), sv.buf.Bytes(), 50)
			if !tt.hs {
				segs = segs[3:]
			}
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
			_, st := run(t, Config{Responses: true, Ports: []uint16{50051}}, one(f, segs)...)
			for k, v := range tt.want {
				if st[k] != v {
					t.Errorf("%s = %d, want %d (%v)", k, st[k], v, st)
				}
			}
		})
	}
}

// TestH2Gap: bytes lost in a direction end its HTTP/2 parsing, counted.
func TestH2Gap(t *testing.T) {
	c, s := interleaved()
	segs := h2segs(c, s, 40)
	var kept []seg
	for i, sg := range segs {
		if i == 6 { // a client segment inside stream 1's header block
			continue
		}
		kept = append(kept, sg)
	}
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
	_, st := run(t, Config{Responses: true, IdleTimeout: 1}, one(f, kept)...)
	if st["h2-lost-sync"] != 1 || st["gaps"] != 1 || st["requests"] != 0 {
		t.Fatalf("stats %v", st)
	}
}

// FuzzH2 feeds arbitrary bytes to both directions of an HTTP/2 connection,
// after a real preface and in a mid-stream one: nothing panics, and what
// is emitted parses as HTTP, and every byte held is released at the end.
func FuzzH2(f *testing.F) {
	c, s := interleaved()
	f.Add(c[len(http2.ClientPreface):], s, uint8(10))
	f.Add([]byte{0, 0, 4, 1, 4, 0, 0, 0, 1, 0x82, 0x84, 0x86, 0xbe}, []byte{0, 0, 1, 1, 5, 0, 0, 0, 1, 0x88}, uint8(3))
	f.Fuzz(func(t *testing.T, cb, sb []byte, cut uint8) {
		for _, mid := range []bool{false, true} {
			a := NewAssembler(Config{Responses: true, OrderWindow: -1, MaxBody: 1 << 16}, func(m *message.Message) error {
				var err error
				if m.Kind == message.Request {
					_, err = httpraw.ParseRequest(m.Raw)
				} else {
					_, err = httpraw.ParseResponse(m.Raw)
				}
				if err != nil {
					t.Fatalf("emitted %q: %v", m.Raw, err)
				}
				return nil
			})
			conn := &conn{a: a, id: "x"}
			h := newH2conn(conn, mid)
			conn.h2 = h
			if !mid {
				h.feed(true, []byte(http2.ClientPreface), 0, zeroTime{})
			}
			k := min(int(cut), len(cb))
			h.feed(true, cb[:k], 0, zeroTime{})
			h.feed(false, sb, 0, zeroTime{})
			h.feed(true, cb[k:], 0, zeroTime{})
			h.close()
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if a.total != 0 {
				t.Fatalf("%d bytes still accounted after the end", a.total)
			}
		}
	})
}

// TestH2Bounds: the bodies held by a connection's open streams are bounded
// by MaxStreamBytes (each cut counted, both messages marked truncated), and
// all of them are released at the end.
func TestH2Bounds(t *testing.T) {
	cl, sv := newH2side(true), newH2side(false)
	_ = sv.fr.WriteSettings()
	post := func(id uint32) {
		cl.headers(id, false, 0, ":method", "POST", ":scheme", "http", ":path", "/up", ":authority", "h")
	}
	post(1)
	post(3)
	chunk := bytes.Repeat([]byte("x"), 3000)
	for range 3 {
		_ = cl.fr.WriteData(1, false, chunk)
		_ = cl.fr.WriteData(3, false, chunk)
	}
	_ = cl.fr.WriteData(1, true, nil)
	_ = cl.fr.WriteData(3, true, nil)
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
	var msgs []*message.Message
	a := NewAssembler(Config{Responses: true, MaxBody: 1 << 20, MaxStreamBytes: 10000}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	for _, s := range h2segs(cl.buf.Bytes(), sv.buf.Bytes(), 1000) {
		data, ci := f.packet(s)
		if err := a.Decode(data, ci, linkEthernet.linkType()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st["requests"] != 2 || st["truncated"] != 2 || st["buffer-overflow"] != 2 || a.total != 0 {
		t.Fatalf("stats %v, %d bytes still accounted", st, a.total)
	}
	kept := 0
	for _, m := range msgs {
		r, err := httpraw.ParseRequest(m.Raw)
		if err != nil {
			t.Fatal(err)
		}
		kept += len(r.Body())
	}
	if kept != 10000 {
		t.Errorf("bodies kept %d bytes, want the 10000 of MaxStreamBytes", kept)
	}
}

// TestH2Bidi: a bidirectional stream (gRPC bidi streaming) whose request
// and response messages alternate gives one request with all the client's
// messages and one response with all the server's, paired.
func TestH2Bidi(t *testing.T) {
	cl, sv := newH2side(true), newH2side(false)
	_ = sv.fr.WriteSettings()
	f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
	segs := handshake()
	var coff, soff uint32
	send := func(client bool, write func()) {
		s := sv
		off := &soff
		if client {
			s, off = cl, &coff
		}
		write()
		b := s.buf.Bytes()
		segs = append(segs, seg{fromClient: client, off: *off, data: string(b), flags: "A"})
		*off += uint32(len(b))
		s.buf.Reset()
	}
	send(false, func() {})
	send(true, func() {
		cl.headers(1, false, 0, ":method", "POST", ":scheme", "http", ":path", "/chat.Chat/Talk", ":authority", "h", "content-type", "application/grpc")
		_ = cl.fr.WriteData(1, false, []byte("\x00\x00\x00\x00\x02hi"))
	})
	send(false, func() {
		sv.headers(1, false, 0, ":status", "200", "content-type", "application/grpc")
		_ = sv.fr.WriteData(1, false, []byte("\x00\x00\x00\x00\x03yo!"))
	})
	send(true, func() { _ = cl.fr.WriteData(1, true, []byte("\x00\x00\x00\x00\x03bye")) })
	send(false, func() {
		_ = sv.fr.WriteData(1, false, []byte("\x00\x00\x00\x00\x02ok"))
		sv.headers(1, true, 0, "grpc-status", "0")
	})
	msgs, st := run(t, Config{Responses: true}, one(f, segs)...)
	if st["requests"] != 1 || st["responses"] != 1 || len(msgs) != 2 {
		t.Fatalf("stats %v", st)
	}
	req, resp := msgs[0], msgs[1]
	if req.Kind != message.Request || resp.ID != req.ID || resp.Latency <= 0 ||
		!strings.HasSuffix(string(req.Raw), "\r\n\r\n\x00\x00\x00\x00\x02hi\x00\x00\x00\x00\x03bye") ||
		!strings.HasSuffix(string(resp.Raw), "X-Replayctl-Trailer-grpc-status: 0\r\n\r\n\x00\x00\x00\x00\x03yo!\x00\x00\x00\x00\x02ok") {
		t.Fatalf("messages %q %q", req.Raw, resp.Raw)
	}
}

// TestH2CUpgrade: a connection switched by Upgrade: h2c gives the upgraded
// request as the HTTP/1.1 message it was, answered by stream 1 in HTTP/2
// form, then the HTTP/2 streams; without responses, the client's preface
// is the switch.
func TestH2CUpgrade(t *testing.T) {
	const up = "GET /first HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
	cl, sv := newH2side(true), newH2side(false)
	sv.buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	_ = sv.fr.WriteSettings()
	sv.headers(1, true, 0, ":status", "200", "x-first", "1")
	_ = cl.fr.WriteSettings()
	cl.headers(3, true, 0, ":method", "GET", ":scheme", "http", ":path", "/second", ":authority", "h")
	first := sv.buf.String()
	sv.headers(3, true, 0, ":status", "204")
	second := sv.buf.String()[len(first):]
	c := append([]byte(up), cl.buf.Bytes()...)
	for _, responses := range []bool{true, false} {
		f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
		segs := handshake()
		segs = append(segs, seg{fromClient: true, data: up, flags: "A"}, seg{fromClient: false, data: first, flags: "A"},
			seg{fromClient: true, off: uint32(len(up)), data: string(c[len(up):]), flags: "A"},
			seg{fromClient: false, off: uint32(len(first)), data: second, flags: "A"})
		msgs, st := run(t, Config{Responses: responses, Ports: []uint16{8080}}, one(f, segs)...)
		var got []string
		for _, m := range msgs {
			line, _, _ := strings.Cut(string(m.Raw), "\r\n")
			got = append(got, m.Kind.String()+" "+line)
		}
		want := "[request GET /first HTTP/1.1 response HTTP/2.0 200 OK request GET /second HTTP/2.0 response HTTP/2.0 204 No Content]"
		if !responses {
			want = "[request GET /first HTTP/1.1 request GET /second HTTP/2.0]"
		}
		if fmt.Sprint(got) != want || st["h2c-upgrades"] != 1 || st["unparsable"] != 0 || st["incomplete"] != 0 {
			t.Errorf("responses %v: %v, stats %v", responses, got, st)
		}
	}
}

// TestH2ContentLength: a whole message whose content-length does not frame
// its DATA is malformed (RFC 9113 §8.1.1) and counted unrenderable, a loss;
// one whose body was cut at MaxBody keeps the content-length of the wire
// and is recorded, marked truncated.
func TestH2ContentLength(t *testing.T) {
	tests := []struct {
		name         string
		length       string
		data         int
		maxBody      int64
		requests     int64
		truncated    int64
		unrenderable int64
	}{
		{"frames its DATA", "3000", 3000, 1 << 20, 1, 0, 0},
		{"announces more than its DATA", "5000", 3000, 1 << 20, 0, 0, 1},
		{"empty", "", 3000, 1 << 20, 0, 0, 1},
		{"body cut at max-body", "3000", 3000, 1000, 1, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl, sv := newH2side(true), newH2side(false)
			_ = sv.fr.WriteSettings()
			cl.headers(1, false, 0, ":method", "POST", ":scheme", "http", ":path", "/up", ":authority", "h", "content-length", tc.length)
			_ = cl.fr.WriteData(1, true, bytes.Repeat([]byte("x"), tc.data))
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:50051")
			var msgs []*message.Message
			a := NewAssembler(Config{Responses: true, MaxBody: tc.maxBody}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
			for _, s := range h2segs(cl.buf.Bytes(), sv.buf.Bytes(), 1000) {
				data, ci := f.packet(s)
				if err := a.Decode(data, ci, linkEthernet.linkType()); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			st := a.Stats()
			if st["requests"] != tc.requests || st["truncated"] != tc.truncated || st["h2-unrenderable"] != tc.unrenderable {
				t.Fatalf("requests %d truncated %d h2-unrenderable %d, want %d %d %d (stats %v)",
					st["requests"], st["truncated"], st["h2-unrenderable"], tc.requests, tc.truncated, tc.unrenderable, st)
			}
			for _, m := range msgs {
				if !m.Truncated {
					if _, err := httpraw.ParseRequest(m.Raw); err != nil {
						t.Errorf("recorded %q does not parse: %v", m.Raw[:min(len(m.Raw), 200)], err)
					}
				}
			}
		})
	}
}
