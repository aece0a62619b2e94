package capture

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// collector records what a splitter pair finds.
type collector struct {
	msgs    [][]byte
	trunc   []bool
	methods []string
	counts  [nCounters]int64
}

func (c *collector) headDone(s *splitter, h *head) []byte {
	if !s.isResp {
		c.methods = append(c.methods, string(h.method))
		return nil
	}
	if len(c.methods) == 0 {
		return nil
	}
	m := c.methods[0]
	c.methods = c.methods[1:]
	return []byte(m)
}

func (c *collector) messageDone(s *splitter, raw []byte, start int64, truncated bool) {
	c.msgs = append(c.msgs, raw)
	c.trunc = append(c.trunc, truncated)
}

func (c *collector) count(ct counter, n int64) { c.counts[ct] += n }

type zeroTime struct{}

func (zeroTime) at(int) int64 { return 0 }

func (zeroTime) seg(int) uint64 { return 0 }

func (zeroTime) ack(int) (uint32, bool) { return 0, false }

func newSplitter(ev splitEvents, resp bool, maxBody int64) *splitter {
	return &splitter{ev: ev, isResp: resp, maxBody: maxBody, maxKeep: maxBody + maxHeader}
}

func TestSplitter(t *testing.T) {
	tests := []struct {
		name     string
		resp     bool
		methods  []string // requests answered, for responses
		in       string
		want     []string
		maxBody  int64
		counts   map[counter]int64
		truncate bool
	}{
		{name: "pipelined", in: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
			want: []string{"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "GET /b HTTP/1.1\r\n\r\n"}},
		{name: "content-length", in: "PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\n\n",
			want: []string{"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "GET / HTTP/1.0\n\n"}},
		{name: "chunked with extension and trailer",
			in:   "POST / HTTP/1.1\r\ntransfer-encoding: gzip, Chunked\r\n\r\n3;name=v\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
			want: []string{"POST / HTTP/1.1\r\ntransfer-encoding: gzip, Chunked\r\n\r\n3;name=v\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"}},
		{name: "leading empty lines", in: "\r\n\r\nGET / HTTP/1.1\r\n\r\n", want: []string{"GET / HTTP/1.1\r\n\r\n"}},
		{name: "garbage resync", in: "\x00\x01binary\nnot a request line\r\nGET / HTTP/1.1\r\n\r\n",
			want: []string{"GET / HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cUnparsable: 1}},
		{name: "bad content-length", in: "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
			want: []string{"GET /ok HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cUnparsable: 1}},
		{name: "truncated body", maxBody: 4, in: "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\n\r\n",
			want: []string{"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123", "GET / HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cTruncated: 1}},
		{name: "incomplete", in: "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n01", counts: map[counter]int64{cIncomplete: 1}},
		{name: "HEAD 204 304 responses", resp: true, methods: []string{"HEAD", "GET", "GET", "GET"},
			in:   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
			want: []string{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"}},
		{name: "interim", resp: true, methods: []string{"POST"}, in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			want: []string{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}, counts: map[counter]int64{cInterim: 1}},
		{name: "read to close", resp: true, methods: []string{"GET"}, in: "HTTP/1.0 200 OK\r\n\r\nall of it",
			want: []string{"HTTP/1.0 200 OK\r\n\r\nall of it"}},
		{name: "header block too long", in: "GET /big HTTP/1.1\r\nX-Big: " + strings.Repeat("a", maxHeader) + "\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
			want: []string{"GET /ok HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cHeaderTooLong: 1, cUnparsable: 0}},
		{name: "many header lines", in: "GET /big HTTP/1.1\r\n" + strings.Repeat("X-H: 0123456789\r\n", maxHeader/16) + "\r\nGET /ok HTTP/1.1\r\n\r\n",
			want: []string{"GET /ok HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cHeaderTooLong: 1, cUnparsable: 0}},
		{name: "upgrade", resp: true, methods: []string{"GET"}, in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
			want: []string{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"}},
		{name: "spaces after the method", in: "GET  /a HTTP/1.1\r\n\r\nPUT\t/b HTTP/1.1\r\n\r\nGET /c  HTTP/1.1\r\n\r\n",
			want: []string{"GET  /a HTTP/1.1\r\n\r\n", "GET /c  HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cUnparsable: 1}},
		{name: "bare LF after chunk data", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n2\nde\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			want: []string{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n2\nde\r\n0\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"}},
		{name: "chunk data not followed by a line end", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
			want: []string{"GET / HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cUnparsable: 1}},
		{name: "transfer-encoding list with empty elements", in: "POST / HTTP/1.1\r\nTransfer-Encoding: , gzip,, chunked ,\r\n\r\n0\r\n\r\n",
			want: []string{"POST / HTTP/1.1\r\nTransfer-Encoding: , gzip,, chunked ,\r\n\r\n0\r\n\r\n"}},
		{name: "empty transfer-encoding ignored", in: "POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 2\r\n\r\nhi",
			want: []string{"POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 2\r\n\r\nhi"}},
		{name: "same content-length twice", in: "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nhi",
			want: []string{"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nhi"}},
		{name: "two content-lengths refused", in: "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nhiGET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
			want: []string{"GET /next HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cUnparsable: 1, cBadContentLength: 1}},
		{name: "request transfer coding refused", in: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []string{"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"}, counts: map[counter]int64{cUnparsable: 1, cBadTransferEncoding: 1}},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 7, 1 << 20} {
			c := &collector{methods: tt.methods}
			mb := tt.maxBody
			if mb == 0 {
				mb = 1 << 20
			}
			s := newSplitter(c, tt.resp, mb)
			in := []byte(tt.in)
			for len(in) > 0 {
				n := min(chunk, len(in))
				s.feed(in[:n], zeroTime{})
				in = in[n:]
			}
			s.end()
			var got []string
			for _, m := range c.msgs {
				got = append(got, string(m))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("%s (chunks of %d):\n got %q\nwant %q", tt.name, chunk, got, tt.want)
			}
			for k, v := range tt.counts {
				if c.counts[k] != v {
					t.Errorf("%s (chunks of %d): %s = %d, want %d", tt.name, chunk, counterNames[k], c.counts[k], v)
				}
			}
		}
	}
}

// FuzzHTTPSplitter feeds arbitrary bytes in random chunkings (segments),
// with holes, sometimes starting mid-stream: the splitter never panics,
// keeps bounded memory, and every message it emits is a piece of the input
// found after the previous one.
func FuzzHTTPSplitter(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"), uint64(1), false)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n"), uint64(2), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.0 200 OK\r\n\r\nrest"), uint64(3), true)
	f.Add([]byte("\x16\x03\x01\x00garbage\nGET / HTTP/1.1\r\n\r\n"), uint64(4), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n3\r\nabc\n0\r\n\r\n\xff\xd9HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), uint64(6), true)
	f.Add([]byte("POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloGET  /b HTTP/1.1\r\n\r\n"), uint64(9), false)
	f.Fuzz(func(t *testing.T, in []byte, seed uint64, resp bool) {
		c := &collector{methods: []string{"GET", "HEAD", "CONNECT"}}
		var total int64
		s := newSplitter(c, resp, 1<<20)
		s.total, s.totalCap = &total, 1<<22
		r := rand.New(rand.NewPCG(seed, seed))
		whole := seed%3 != 0 // from the stream's start, without holes
		if seed%3 == 0 {
			// A capture started mid-stream.
			s.resync(false)
			s.segNew = true
		}
		ts := &segTime{}
		rest := in
		for len(rest) > 0 {
			n := 1 + r.IntN(len(rest))
			ts.feed++
			if r.IntN(8) == 0 {
				// A hole: n bytes lost.
				s.gap(n)
				whole = false
				rest = rest[n:]
				continue
			}
			ts.bounds = ts.bounds[:0]
			if n > 2 && r.IntN(2) == 0 {
				ts.bounds = append(ts.bounds, 1+r.IntN(n-1)) // two segments in one feed
			}
			s.feed(rest[:n], ts)
			rest = rest[n:]
			if int64(cap(s.buf)) > 2*(1<<20+maxHeader) || len(s.line) > 2*maxLine {
				t.Fatalf("splitter holds %d bytes", cap(s.buf))
			}
		}
		s.end()
		pos := 0
		var skipped []byte
		for _, m := range c.msgs {
			i := bytes.Index(in[pos:], m)
			if i < 0 {
				t.Fatalf("message %q is not in the input after offset %d", m, pos)
			}
			skipped = append(skipped, in[pos:pos+i]...)
			pos += i + len(m)
		}
		skipped = append(skipped, in[pos:]...)
		// Nothing is lost silently: bytes of a whole stream that are in no
		// message (other than empty lines between messages) are counted.
		if whole && len(bytes.Trim(skipped, "\r\n")) > 0 {
			var n int64
			for _, v := range c.counts {
				n += v
			}
			if n == 0 {
				t.Fatalf("%q of the input in no message, and nothing counted", skipped)
			}
		}
		if total != 0 {
			t.Fatalf("buffered bytes not released: %d", total)
		}
	})
}

// TestBPFFilter runs the kernel filter in x/net/bpf's VM.
func TestBPFFilter(t *testing.T) {
	type pkt struct {
		name string
		l    link
		dst  string
		want bool
	}
	for _, dgram := range []bool{false, true} {
		vm := filterVM(t, filterOpts{ports: []uint16{8080, 9090}, dgram: dgram, snaplen: 65535})
		for _, p := range []pkt{
			{"ipv4 8080", linkEthernet, "10.0.0.2:8080", true},
			{"ipv4 9090", linkEthernet, "10.0.0.2:9090", true},
			{"ipv4 other port", linkEthernet, "10.0.0.2:22", false},
			{"ipv6 8080", linkEthernet, "[::2]:8080", true},
			{"ipv6 other", linkEthernet, "[::2]:443", false},
			{"vlan ipv4", linkVLAN, "10.0.0.2:8080", true},
			{"vlan ipv6", linkVLAN, "[::2]:8080", true},
			{"vlan other", linkVLAN, "10.0.0.2:81", false},
		} {
			if dgram && p.l != linkEthernet {
				continue
			}
			l := p.l
			if dgram {
				l = linkRaw
			}
			client := "10.0.0.1:40000"
			if strings.HasPrefix(p.dst, "[") {
				client = "[::1]:40000"
			}
			f := newFlow(t, l, client, p.dst)
			data, _ := f.packet(seg{true, 0, "GET / HTTP/1.1\r\n\r\n", "A"})
			n, err := vm.Run(data)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != p.want {
				t.Errorf("dgram=%v %s: accepted=%v, want %v", dgram, p.name, n > 0, p.want)
			}
			// The reply direction (source port) is accepted too.
			f2 := newFlow(t, l, p.dst, client)
			data, _ = f2.packet(seg{true, 0, "x", "A"})
			if n, _ := vm.Run(data); (n > 0) != p.want {
				t.Errorf("dgram=%v %s reply: accepted=%v", dgram, p.name, n > 0)
			}
		}
	}
}

// segTime is a timeSource whose feeds are TCP segments: seg changes at
// every offset in bounds and from one feed to the next.
type segTime struct {
	feed   uint64
	bounds []int
}

func (t *segTime) at(int) int64 { return 0 }

func (t *segTime) seg(off int) uint64 {
	n := uint64(0)
	for _, b := range t.bounds {
		if off >= b {
			n++
		}
	}
	return t.feed<<16 | n
}

func (t *segTime) ack(int) (uint32, bool) { return 0, false }

// TestSplitterResync feeds streams cut by holes or started mid-message,
// a segment per string: the framing is kept where the length is known,
// otherwise the next message is found at a segment start, not at a line
// start inside a body.
func TestSplitterResync(t *testing.T) {
	const hole = "\x00HOLE:" // a segment starting with it is lost (its length after the colon)
	tests := []struct {
		name      string
		resp      bool
		midStream bool
		segs      []string
		want      []string
		trunc     []bool
		counts    map[counter]int64
	}{
		{name: "hole inside a content-length body",
			segs:  []string{"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n012", hole + "4", "789GET /b HTTP/1.1\r\n\r\n"},
			want:  []string{"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n012", "GET /b HTTP/1.1\r\n\r\n"},
			trunc: []bool{true, false}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "hole up to the end of the body",
			segs:  []string{"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n012", hole + "7", "GET /b HTTP/1.1\r\n\r\n"},
			want:  []string{"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n012", "GET /b HTTP/1.1\r\n\r\n"},
			trunc: []bool{true, false}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "hole past the end of the body",
			segs:  []string{"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n012", hole + "12", "T /lost HTTP/1.1\r\n\r\n", "GET /c HTTP/1.1\r\n\r\n"},
			want:  []string{"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n012", "GET /c HTTP/1.1\r\n\r\n"},
			trunc: []bool{true, false}, counts: map[counter]int64{cIncomplete: 2}},
		{name: "hole inside chunk data",
			segs: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab", hole + "3", "fgh\r\n0\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n"},
			resp: true, want: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab", "HTTP/1.1 204 No Content\r\n\r\n"},
			trunc: []bool{true, false}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "hole over a chunk size: resync at a segment start",
			segs: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab", hole + "6", "cdef\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n"},
			resp: true, want: []string{"HTTP/1.1 204 No Content\r\n\r\n"}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "mid-stream: a status line after a binary body, at a segment start",
			midStream: true, resp: true,
			segs: []string{"\x10\x11\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\xff\xd9", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"},
			want: []string{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"}, counts: map[counter]int64{cIncomplete: 1, cUnparsable: 0}},
		{name: "mid-stream: a status line glued to a body is not found",
			midStream: true, resp: true,
			segs: []string{"...uery);HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "HTTP/1.1 304 Not Modified\r\n\r\n"},
			want: []string{"HTTP/1.1 304 Not Modified\r\n\r\n"}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "mid-stream: a start line without a header block is not taken",
			midStream: true,
			segs:      []string{"GET / HTTP/1.1\r\n\x00\x01", "GET /real HTTP/1.1\r\nHost: a\r\n\r\n"},
			want:      []string{"GET /real HTTP/1.1\r\nHost: a\r\n\r\n"}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "mid-stream at a message start", midStream: true,
			segs: []string{"GET /a HTTP/1.1\r\n\r\n"}, want: []string{"GET /a HTTP/1.1\r\n\r\n"}},
		{name: "unknown hole in the headers", segs: []string{"GET /a HTTP/1.1\r\nHo", hole + "0", "st: a\r\n\r\n", "GET /b HTTP/1.1\r\n\r\n"},
			want: []string{"GET /b HTTP/1.1\r\n\r\n"}, counts: map[counter]int64{cIncomplete: 1}},
		{name: "read to close cut by a hole", resp: true, segs: []string{"HTTP/1.0 200 OK\r\n\r\nabc", hole + "5", "def"},
			want: []string{"HTTP/1.0 200 OK\r\n\r\nabc"}, trunc: []bool{true}, counts: map[counter]int64{cIncomplete: 1}},
	}
	for _, tt := range tests {
		c := &collector{methods: []string{"GET", "GET", "GET"}}
		s := newSplitter(c, tt.resp, 1<<20)
		if tt.midStream {
			s.resync(false)
			s.segNew = true
		}
		ts := &segTime{}
		for _, seg := range tt.segs {
			ts.feed++
			if n, ok := strings.CutPrefix(seg, hole); ok {
				k, _ := strconv.Atoi(n)
				s.gap(k)
				continue
			}
			s.feed([]byte(seg), ts)
		}
		s.end()
		var got []string
		for _, m := range c.msgs {
			got = append(got, string(m))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		for i, tr := range tt.trunc {
			if i < len(c.trunc) && c.trunc[i] != tr {
				t.Errorf("%s: message %d truncated=%v, want %v", tt.name, i, c.trunc[i], tr)
			}
		}
		for k, v := range tt.counts {
			if c.counts[k] != v {
				t.Errorf("%s: %s = %d, want %d", tt.name, counterNames[k], c.counts[k], v)
			}
		}
	}
}

// TestBPFFilterTunnels runs the kernel filter on the tunnelled packets of
// the synthetic fixtures: accepted with decap, rejected without; a UDP
// packet to another port is rejected either way.
func TestBPFFilterTunnels(t *testing.T) {
	for _, decap := range []bool{true, false} {
		vm := filterVM(t, filterOpts{ports: []uint16{9999}, decap: decap, snaplen: 65535})
		for _, name := range []string{"vxlan", "geneve", "gre", "erspan1", "erspan2", "erspan3"} {
			frames := readFrames(t, filepath.Join("testdata", "synth-"+name+".pcap"))
			for i, fr := range frames {
				n, err := vm.Run(fr)
				if err != nil {
					t.Fatal(err)
				}
				if (n > 0) != decap {
					t.Errorf("decap=%v %s frame %d: accepted=%v", decap, name, i, n > 0)
				}
			}
			// The same frame with the UDP destination port changed.
			if name == "vxlan" || name == "geneve" {
				fr := append([]byte(nil), frames[0]...)
				fr[14+20+2], fr[14+20+3] = 0, 53
				if n, _ := vm.Run(fr); n > 0 {
					t.Errorf("decap=%v: UDP to port 53 accepted", decap)
				}
			}
		}
	}
}
