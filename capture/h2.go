package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/gopacket/gopacket/reassembly"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/message"
)

// HTTP/2 (cleartext) capture. A connection becomes HTTP/2 when its client
// sends the connection preface (prior knowledge, as gRPC without TLS does),
// when its server's first bytes are a SETTINGS frame, when a request with
// "Upgrade: h2c" is answered 101, or, for a connection whose start was not
// captured, when its first bytes parse as HTTP/2 frames. Each direction has
// its own framer (golang.org/x/net/http2) and its own HPACK decoder; every
// stream gives one request and one response message in h2text's form.

// h2Preface is the client connection preface (RFC 9113 §3.4).
const h2Preface = http2.ClientPreface

// h2counter names one HTTP/2 statistic; they are merged into Stats.
type h2counter int

const (
	hConns h2counter = iota
	hUpgrades
	hMidstream
	hStreams
	hFrames
	hFrameErrors
	hBadPreface
	hHPACKUnknown
	hHPACKErrors
	hRST
	hGoAway
	hPush
	hUnrenderable
	hUnknownStream
	hLostSync
	hPseudoDropped
	hWindowUpdates
	nH2Counters
)

var h2CounterNames = [nH2Counters]string{
	hConns:         "h2-connections",
	hUpgrades:      "h2c-upgrades",
	hMidstream:     "h2-midstream-connections",
	hStreams:       "h2-streams",
	hFrames:        "h2-frames",
	hFrameErrors:   "h2-frame-errors",
	hBadPreface:    "h2-bad-preface",
	hHPACKUnknown:  "h2-hpack-unknown",
	hHPACKErrors:   "h2-hpack-errors",
	hRST:           "h2-rst-stream",
	hGoAway:        "h2-goaway",
	hPush:          "h2-push-promises",
	hUnrenderable:  "h2-unrenderable",
	hUnknownStream: "h2-frames-unknown-stream",
	hLostSync:      "h2-lost-sync",
	hPseudoDropped: "h2-pseudo-dropped",
	hWindowUpdates: "h2-window-updates",
}

type h2counters [nH2Counters]atomic.Int64

func (h *h2counters) addTo(s Stats) {
	for i := range nH2Counters {
		s[h2CounterNames[i]] = h[i].Load()
	}
}

// Limits of the HTTP/2 decoder.
const (
	h2MaxStreams     = 4096    // open streams tracked per connection
	h2MaxHeaderBlock = 1 << 20 // bytes of one header block (HEADERS + CONTINUATION)
	h2MaxFrame       = 1<<24 - 1
)

// h2conn decodes one HTTP/2 connection.
type h2conn struct {
	c         *conn
	dir       [2]h2dir // 0: client → server, 1: server → client
	streams   map[uint32]*h2stream
	midstream bool // started without its preface: HPACK state unknown
	closed    bool
}

// h2dir is one direction: frames are cut from the byte stream, then read
// by a Framer, and header blocks decoded by the direction's HPACK decoder.
type h2dir struct {
	h          *h2conn
	server     bool // server → client
	preface    int  // bytes of the client preface still expected
	buf        []byte
	bufTime    int64
	rd         bytes.Reader
	fr         *http2.Framer
	dec        *hpack.Decoder
	block      []byte
	blockID    uint32
	blockEnd   bool // END_STREAM on the HEADERS frame
	blockPush  bool // the block is a PUSH_PROMISE's
	blockTime  int64
	hpackBroke bool           // HPACK state lost: every later header block is unknown
	dead       bool           // framing lost: nothing more is read
	kept       int64          // body bytes held by the open streams of this direction
	fields     []h2text.Field // scratch: the fields of the block being decoded
}

func (d *h2dir) emit(f hpack.HeaderField) {
	d.fields = append(d.fields, h2text.Field{Name: f.Name, Value: f.Value})
}

type h2half struct {
	started, done, bad, truncated bool
	overflow                      bool // cut by MaxStreamBytes/MaxBufferedBytes (counted once)
	time                          int64
	fields                        []h2text.Field
	body                          []byte
	trailers                      []h2text.Field
}

type h2stream struct {
	id        uint32
	msgID     string
	req, resp h2half
}

func newH2conn(c *conn, midstream bool) *h2conn {
	h := &h2conn{c: c, streams: map[uint32]*h2stream{}, midstream: midstream}
	for i := range h.dir {
		d := &h.dir[i]
		d.h = h
		d.server = i == 1
		d.fr = http2.NewFramer(nil, &d.rd)
		d.dec = hpack.NewDecoder(4096, d.emit)
		d.dec.SetMaxStringLength(int(h2MaxHeaderBlock))
	}
	if !midstream {
		h.dir[0].preface = len(h2Preface)
	}
	c.a.h2count(hConns, 1)
	if midstream {
		c.a.h2count(hMidstream, 1)
	}
	return h
}

func (a *Assembler) h2count(c h2counter, n int64) { a.h2[c].Add(n) }

// h2sniff decides, on a connection's first bytes, whether it is HTTP/2.
// It returns true when the data was consumed as HTTP/2 (or held until
// there are enough bytes to decide).
func (c *conn) h2sniff(isReq bool, data []byte, ts timeSource) bool {
	const line = "PRI * HTTP/2.0" // the preface's first line; "PRI" is no HTTP/1.x method
	if !isReq && len(c.sniffBuf) > 0 {
		return false // still waiting for the client's bytes
	}
	if isReq && len(c.sniffBuf)+len(data) < len(line) && strings.HasPrefix(line, string(c.sniffBuf)+string(data)) && len(data) > 0 {
		// Too few bytes to tell: hold them.
		if len(c.sniffBuf) == 0 {
			c.sniffTime, c.sniffSeg = ts.at(0), ts.seg(0)
			c.sniffAck, c.sniffAckOK = ts.ack(0)
		}
		c.sniffBuf = append(c.sniffBuf, data...)
		return true
	}
	c.sniffed = true
	held := c.sniffBuf
	c.sniffBuf = nil
	if len(held) > 0 {
		data = append(held, data...)
		ts = heldTime{held: len(held), t: c.sniffTime, sg: c.sniffSeg, ackNum: c.sniffAck, ackOK: c.sniffAckOK, rest: ts}
	}
	switch {
	case isReq && len(data) >= len(line) && string(data[:len(line)]) == line:
		c.h2 = newH2conn(c, false)
	case !isReq && !c.midstream && len(data) >= 9 && data[3] == byte(http2.FrameSettings) && binary.BigEndian.Uint32(data[5:9])&0x7fffffff == 0 && data[0] == 0:
		// The server speaks first (SETTINGS): the client preface follows.
		c.h2 = newH2conn(c, false)
	case c.midstream && looksLikeFrames(data):
		c.h2 = newH2conn(c, true)
	default:
		if len(held) > 0 {
			// Not HTTP/2: the HTTP/1.x splitter reads the held bytes; the
			// caller feeds it the rest.
			c.req.feed(held, ts)
		}
		return false
	}
	c.h2.feed(isReq, data, 0, ts)
	return true
}

// heldTime gives the capture time of bytes held by h2sniff followed by
// those of the current segment.
type heldTime struct {
	held   int
	t      int64
	sg     uint64 // the segment of the held bytes
	ackNum uint32
	ackOK  bool
	rest   timeSource
}

func (h heldTime) at(off int) int64 {
	if off < h.held {
		return h.t
	}
	return h.rest.at(off - h.held)
}

func (h heldTime) seg(off int) uint64 {
	if off < h.held {
		return h.sg
	}
	return h.rest.seg(off - h.held)
}

func (h heldTime) ack(off int) (uint32, bool) {
	if off < h.held {
		return h.ackNum, h.ackOK
	}
	return h.rest.ack(off - h.held)
}

// looksLikeFrames says whether data starts with HTTP/2 frame headers: a
// known type, a length within the default maximum frame size (text such as
// an HTTP/1.x start line gives millions), the reserved bit clear, and the
// next frame, when data holds it, alike.
func looksLikeFrames(data []byte) bool {
	n := 0
	for len(data) >= 9 && n < 2 {
		length := int(data[0])<<16 | int(data[1])<<8 | int(data[2])
		if length > 16384 || data[3] > byte(http2.FrameContinuation) || data[5]&0x80 != 0 {
			return false
		}
		n++
		if len(data) < 9+length {
			break
		}
		data = data[9+length:]
	}
	return n > 0
}

// h2Upgrade reports whether raw is a 101 answer switching to h2c; then the
// connection continues as HTTP/2 with stream 1 answering the upgraded
// request (which was emitted as the HTTP/1.1 message it was).
func (c *conn) h2Upgrade(raw []byte) bool {
	if len(raw) < 12 || string(raw[9:12]) != "101" || !isH2CUpgrade(raw) {
		return false
	}
	c.h2 = newH2conn(c, false)
	c.a.h2count(hUpgrades, 1)
	st := &h2stream{id: 1, msgID: c.respID}
	st.req = h2half{started: true, done: true, time: c.respReqTime}
	c.h2.streams[1] = st
	c.a.h2count(hStreams, 1)
	return true
}

// isH2CUpgrade finds an "Upgrade: h2c" field in a response head.
func isH2CUpgrade(raw []byte) bool {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i]
	}
	for _, line := range bytes.Split(head, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && asciiEqualFold(bytes.TrimSpace(name), "upgrade") && hasToken(bytes.TrimSpace(value), "h2c") {
			return true
		}
	}
	return false
}

// h2rest takes the bytes that followed a 101 in the same segment.
func (c *conn) h2rest(s *splitter, data []byte, base int) {
	if c.h2 != nil && len(data) > 0 {
		c.h2.feed(!s.isResp, data, base, &c.sgt)
	}
}

// feed parses data, the bytes of one direction following those fed before;
// the capture time of data[i] is ts.at(base+i).
func (h *h2conn) feed(isReq bool, data []byte, base int, ts timeSource) {
	d := &h.dir[1]
	if isReq {
		d = &h.dir[0]
	}
	if d.dead || h.closed {
		return
	}
	off := 0
	if d.preface > 0 {
		done := len(h2Preface) - d.preface
		n := min(d.preface, len(data))
		if string(data[:n]) != h2Preface[done:done+n] {
			h.c.a.h2count(hBadPreface, 1)
			d.kill()
			return
		}
		d.preface -= n
		off = n
	}
	for off < len(data) {
		if len(d.buf) == 0 && len(data)-off >= 9 {
			// A frame entirely within data is read where it is.
			if end := off + 9 + (int(data[off])<<16 | int(data[off+1])<<8 | int(data[off+2])); end <= len(data) {
				d.bufTime = ts.at(base + off)
				d.frame(data[off:end])
				if d.dead {
					return
				}
				off = end
				continue
			}
		}
		if len(d.buf) == 0 {
			d.bufTime = ts.at(base + off)
		}
		need := 9
		if len(d.buf) >= 9 {
			need += int(d.buf[0])<<16 | int(d.buf[1])<<8 | int(d.buf[2])
		}
		n := min(need-len(d.buf), len(data)-off)
		if before := cap(d.buf); len(d.buf)+n > before {
			// The partial frame is held: it counts against the capture's
			// buffer limit like any buffered bytes.
			a := h.c.a
			if a.total+int64(need) > a.cfg.MaxBufferedBytes {
				a.count(cBufferOverflow, 1)
				h.c.a.h2count(hLostSync, 1)
				d.kill()
				return
			}
			d.buf = append(d.buf, data[off:off+n]...)
			a.total += int64(cap(d.buf) - before)
		} else {
			d.buf = append(d.buf, data[off:off+n]...)
		}
		off += n
		if len(d.buf) == 9 && need == 9 {
			if l := int(d.buf[0])<<16 | int(d.buf[1])<<8 | int(d.buf[2]); l > 0 {
				continue // now read the payload
			}
		}
		if len(d.buf) == need {
			d.frame(d.buf)
			if d.dead {
				return
			}
			if cap(d.buf) > 64<<10 {
				d.releaseBuf()
			} else {
				d.buf = d.buf[:0]
			}
		}
	}
}

// kill stops reading a direction whose framing is lost; the streams it was
// carrying are incomplete.
func (d *h2dir) kill() {
	d.dead = true
	d.releaseBuf()
	h := d.h
	for id, st := range h.streams {
		half := &st.req
		if d.server {
			half = &st.resp
		}
		if half.started && !half.done {
			h.c.count(cIncomplete, 1)
			half.done, half.bad = true, true
		}
		d.free(half)
		if st.req.done && (st.resp.done || !h.c.a.cfg.Responses) {
			delete(h.streams, id)
		}
	}
}

// releaseBuf gives back the partial-frame buffer.
func (d *h2dir) releaseBuf() {
	d.h.c.a.total -= int64(cap(d.buf))
	d.buf = nil
}

// frame reads the complete frame b.
func (d *h2dir) frame(b []byte) {
	h, a := d.h, d.h.c.a
	a.h2count(hFrames, 1)
	d.rd.Reset(b)
	f, err := d.fr.ReadFrame()
	if err != nil {
		a.h2count(hFrameErrors, 1)
		var ce http2.ConnectionError
		if errors.As(err, &ce) && d.block != nil {
			// A broken header block: the HPACK state is lost with it.
			d.block = nil
			d.hpackBroke = true
		}
		return
	}
	if d.server && !a.cfg.Responses {
		if sf, ok := f.(*http2.SettingsFrame); ok {
			d.settings(sf)
		}
		return
	}
	switch f := f.(type) {
	case *http2.HeadersFrame:
		d.block = append(d.block[:0], f.HeaderBlockFragment()...)
		d.blockID, d.blockEnd, d.blockPush, d.blockTime = f.StreamID, f.StreamEnded(), false, d.bufTime
		if f.HeadersEnded() {
			d.headerBlock()
		}
	case *http2.PushPromiseFrame:
		a.h2count(hPush, 1)
		d.block = append(d.block[:0], f.HeaderBlockFragment()...)
		d.blockID, d.blockEnd, d.blockPush, d.blockTime = f.StreamID, false, true, d.bufTime
		if f.HeadersEnded() {
			d.headerBlock()
		}
	case *http2.ContinuationFrame:
		if len(d.block)+len(f.HeaderBlockFragment()) > h2MaxHeaderBlock {
			a.h2count(hFrameErrors, 1)
			d.block = nil
			d.hpackBroke = true
			return
		}
		d.block = append(d.block, f.HeaderBlockFragment()...)
		if f.HeadersEnded() {
			d.headerBlock()
		}
	case *http2.DataFrame:
		st := h.streams[f.StreamID]
		half := d.half(st)
		if half == nil || !half.started || half.done {
			a.h2count(hUnknownStream, 1)
			return
		}
		if !half.bad {
			d.keepBody(half, f.Data())
		}
		if f.StreamEnded() {
			d.complete(st, half)
		}
	case *http2.RSTStreamFrame:
		a.h2count(hRST, 1)
		if st := h.streams[f.StreamID]; st != nil {
			for i, half := range []*h2half{&st.req, &st.resp} {
				if half.started && !half.done {
					a.count(cIncomplete, 1)
				}
				h.dir[i].free(half)
			}
			delete(h.streams, f.StreamID)
		}
	case *http2.GoAwayFrame:
		a.h2count(hGoAway, 1)
	case *http2.WindowUpdateFrame:
		a.h2count(hWindowUpdates, 1) // flow control: read, counted, no effect on what was sent
	case *http2.SettingsFrame:
		d.settings(f)
	}
}

// keepBody appends DATA to a message within the limits: MaxBody for the
// message, MaxStreamBytes for the direction's open streams together, and
// MaxBufferedBytes for everything the capture holds; beyond them the body
// is cut and the message marked truncated (and the cut counted as
// buffer-overflow when a buffer limit, not MaxBody, caused it). Once cut,
// a body stays cut, a prefix of what was sent.
func (d *h2dir) keepBody(half *h2half, data []byte) {
	if half.truncated {
		return
	}
	a := d.h.c.a
	room := a.cfg.MaxBody - int64(len(half.body))
	capped := false
	if r := a.cfg.MaxStreamBytes - d.kept; r < room {
		room, capped = r, true
	}
	if r := a.cfg.MaxBufferedBytes - a.total; r < room {
		room, capped = r, true
	}
	if int64(len(data)) > room {
		data = data[:max(room, 0)]
		half.truncated = true
		if capped && !half.overflow {
			half.overflow = true
			a.count(cBufferOverflow, 1)
			a.count(cBufferCut, 1)
		}
	}
	half.body = append(half.body, data...)
	d.kept += int64(len(data))
	a.total += int64(len(data))
}

// free releases a message's body from the accounting.
func (d *h2dir) free(half *h2half) {
	n := int64(len(half.body))
	d.kept -= n
	d.h.c.a.total -= n
	half.body = nil
}

// settings applies a peer's SETTINGS_HEADER_TABLE_SIZE to the decoder of
// the headers that peer receives: the other direction's.
func (d *h2dir) settings(f *http2.SettingsFrame) {
	if f.IsAck() {
		return
	}
	other := &d.h.dir[0]
	if !d.server {
		other = &d.h.dir[1]
	}
	if v, ok := f.Value(http2.SettingHeaderTableSize); ok {
		other.dec.SetAllowedMaxDynamicTableSize(v)
	}
}

// half returns the part of st this direction carries.
func (d *h2dir) half(st *h2stream) *h2half {
	if st == nil {
		return nil
	}
	if d.server {
		return &st.resp
	}
	return &st.req
}

// headerBlock decodes a complete header block and gives it to its stream.
func (d *h2dir) headerBlock() {
	h, a := d.h, d.h.c.a
	block := d.block
	d.block = d.block[:0]
	d.fields = d.fields[:0]
	ok := !d.hpackBroke
	if ok {
		_, err := d.dec.Write(block)
		if err == nil {
			err = d.dec.Close()
		}
		if err != nil {
			// The decoder's table is now unknown: so is every later block.
			d.hpackBroke, ok = true, false
		}
	}
	if !ok {
		if h.midstream {
			a.h2count(hHPACKUnknown, 1)
		} else {
			a.h2count(hHPACKErrors, 1)
		}
	}
	if d.blockPush {
		return
	}
	st := h.streams[d.blockID]
	if st == nil {
		if d.server && h.c.a.cfg.Responses || !d.server {
			if len(h.streams) >= h2MaxStreams {
				a.count(cPendingOverflow, 1)
				return
			}
			st = &h2stream{id: d.blockID}
			if d.server {
				// A response to a request we did not see.
				a.count(cUnpaired, 1)
				st.msgID = a.newID()
				st.req = h2half{started: true, done: true, time: d.blockTime}
			} else {
				st.msgID = a.newID()
			}
			h.streams[d.blockID] = st
			a.h2count(hStreams, 1)
		}
	}
	half := d.half(st)
	if half.done {
		a.h2count(hUnknownStream, 1)
		return
	}
	conv := make([]h2text.Field, len(d.fields))
	copy(conv, d.fields)
	for _, f := range conv {
		if len(f.Name) > 0 && f.Name[0] == ':' {
			switch f.Name {
			case ":method", ":path", ":authority", ":status", ":scheme":
			default:
				a.h2count(hPseudoDropped, 1) // not in the stored form
			}
		}
	}
	switch {
	case !half.started:
		half.started, half.time, half.fields = true, d.blockTime, conv
		if d.server && ok && len(conv) > 0 && conv[0].Name == ":status" && len(conv[0].Value) == 3 && conv[0].Value[0] == '1' {
			// An interim response (100, 103): left out, like in HTTP/1.x.
			a.count(cInterim, 1)
			*half = h2half{}
			return
		}
	default:
		half.trailers = conv
	}
	if !ok {
		half.bad = true
	}
	if d.blockEnd {
		d.complete(st, half)
	}
}

// complete emits a finished half of a stream.
func (d *h2dir) complete(st *h2stream, half *h2half) {
	h := d.h
	c, a := h.c, h.c.a
	half.done = true
	if st.req.done && (st.resp.done || !a.cfg.Responses) {
		delete(h.streams, st.id)
	}
	if half.bad {
		d.free(half)
		return
	}
	size := len(half.body) + 64
	for _, f := range half.fields {
		size += len(f.Name) + len(f.Value) + 4
	}
	for _, f := range half.trailers {
		size += len(h2text.TrailerPrefix) + len(f.Name) + len(f.Value) + 4
	}
	raw := make([]byte, 0, size)
	var err error
	if !half.truncated {
		// A whole message's content-length frames its DATA; a cut one's
		// is the one on the wire.
		err = h2text.LengthFrames(half.fields, len(half.body), d.server)
	}
	switch {
	case err != nil:
	case d.server:
		raw, err = h2text.AppendResponse(raw, half.fields, half.body, half.trailers)
	default:
		raw, err = h2text.AppendRequest(raw, half.fields, half.body, half.trailers)
	}
	if err != nil {
		a.h2count(hUnrenderable, 1)
		d.free(half)
		return
	}
	m := &message.Message{ConnID: c.id, ID: st.msgID, Time: half.time, Raw: raw, Truncated: half.truncated, Host: a.cfg.Host}
	if half.truncated {
		a.count(cTruncated, 1)
	}
	if d.server {
		m.Kind, m.Latency, m.Src, m.Dst = message.Response, half.time-st.req.time, c.server, c.client
	} else {
		m.Kind, m.Src, m.Dst = message.Request, c.client, c.server
	}
	d.free(half)
	*half = h2half{started: true, done: true, time: half.time}
	a.deliver(m)
}

// gap is called when bytes of a direction were lost: its framing and HPACK
// state are gone.
func (h *h2conn) gap(isReq bool) {
	d := &h.dir[1]
	if isReq {
		d = &h.dir[0]
	}
	if !d.dead {
		h.c.a.h2count(hLostSync, 1)
		d.kill()
	}
}

// h2end is called when the connection ends.
func (c *conn) h2end() {
	if c.h2 != nil {
		c.h2.close()
	}
	if len(c.sniffBuf) > 0 {
		c.count(cIncomplete, 1)
		c.sniffBuf = nil
	}
}

// close ends the connection: streams in progress are incomplete.
func (h *h2conn) close() {
	if h.closed {
		return
	}
	h.closed = true
	h.dir[0].releaseBuf()
	h.dir[1].releaseBuf()
	for _, st := range h.streams {
		for i, half := range []*h2half{&st.req, &st.resp} {
			if half.started && !half.done {
				h.c.count(cIncomplete, 1)
			}
			h.dir[i].free(half)
		}
	}
	h.streams = nil
}

// h2Segment takes a reassembled segment of a connection that is, or may
// turn out to be, HTTP/2. It returns false when the HTTP/1.x splitters are
// to read it.
func (c *conn) h2Segment(isReq bool, sg reassembly.ScatterGather, skip int) bool {
	n, _ := sg.Lengths()
	if c.h2 == nil && c.sniffed {
		// Without responses the 101 of an h2c upgrade is not seen: the
		// client's preface, after HTTP/1.x requests, is the switch.
		const line = "PRI * HTTP/2.0\r\n"
		if skip > 0 || n < len(line) || string(sg.Fetch(len(line))) != line {
			return false
		}
		c.h2 = newH2conn(c, false)
		c.a.h2count(hUpgrades, 1)
		c.req.reset()
		c.req.st = stDead
	}
	if c.h2 == nil {
		if n == 0 || skip > 0 {
			return false
		}
		c.sgt.set(sg)
		ok := c.h2sniff(isReq, sg.Fetch(n), &c.sgt)
		c.sgt.set(nil)
		return ok
	}
	if skip > 0 {
		c.a.count(cGaps, 1)
		if c.a.holeLost(!isReq && !c.a.cfg.Responses) {
			c.a.count(cHoles, 1) // in a direction recorded
		}
		c.h2.gap(isReq)
	}
	if n > 0 {
		c.sgt.set(sg)
		c.h2.feed(isReq, sg.Fetch(n), 0, &c.sgt)
		c.sgt.set(nil)
	}
	return true
}
