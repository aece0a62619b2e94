package capture

import (
	"bytes"
	"strings"
	"sync"
)

// Limits of the HTTP/1.x splitter that are not configurable: a start line or
// a chunk-size/trailer line longer than maxLine, or a header block longer than
// maxHeader, is not HTTP as far as we are concerned.
const (
	maxLine   = 8 << 10
	maxHeader = 64 << 10
)

type splitState uint8

const (
	stIdle      splitState = iota // waiting for a start line
	stResync                      // lost: looking for a checked start line at a line or segment start
	stHeaders                     // reading header lines
	stBody                        // Content-Length body, remain bytes left
	stChunkSize                   // reading a chunk-size line
	stChunkData                   // chunk data, remain bytes left
	stChunkEnd                    // the CRLF (or bare LF) after chunk data
	stTrailers                    // reading trailer lines
	stToClose                     // response body delimited by the end of the stream
	stDead                        // upgraded or tunnelled: not HTTP any more
)

// timeSource tells about the packet that carried the byte at off in the
// data passed to feed.
type timeSource interface {
	// at is its capture time (Unix ns).
	at(off int) int64
	// seg identifies the TCP segment: a byte whose seg differs from the
	// previous byte's starts a segment.
	seg(off int) uint64
	// ack is the acknowledgement number the segment carried, if any.
	ack(off int) (uint32, bool)
}

// head is what the splitter learnt from a message's start line and headers.
type head struct {
	method     []byte // requests
	status     int    // responses
	connect    bool   // request method CONNECT
	upgrade    bool   // request carries an Upgrade header
	expect100  bool
	closeAfter bool // Connection: close
}

// splitEvents receives what a splitter finds. The connection implements it;
// tests implement it to collect messages.
type splitEvents interface {
	// headDone is called when a message's headers are complete. For a
	// response it returns the method of the request it answers when that
	// method changes how the response is delimited (HEAD, CONNECT), and
	// may return nil otherwise or when it is unknown.
	headDone(s *splitter, h *head) (reqMethod []byte)
	// messageDone hands over a complete message; raw is owned by the callee.
	messageDone(s *splitter, raw []byte, start int64, truncated bool)
	// count increments a counter.
	count(c counter, n int64)
}

// splitter cuts one direction of a TCP stream into HTTP/1.x messages, keeping
// their bytes exactly as they were on the wire.
type splitter struct {
	ev      splitEvents
	isResp  bool
	maxBody int64
	// maxKeep caps the bytes kept for one message (headers + body) and
	// total, when not nil, the bytes buffered by all splitters together.
	maxKeep  int64
	total    *int64
	totalCap int64

	st      splitState
	garbage bool // inside a run of garbage already counted
	// buf holds the message in progress. It is a scratch buffer from
	// scratchPool (bufp points at it), returned when the message is done:
	// the message itself gets an exact-size copy, so a held message costs
	// its length, not the scratch buffer's capacity.
	buf       []byte
	bufp      *[]byte
	start     int64
	lineStart int // start of the current header line in buf
	remain    int64
	bodyKept  int64
	truncated bool
	overflow  bool
	line      []byte // current chunk-size or trailer line
	h         head
	tunnel    bool // after this message the stream is not HTTP
	// holed: bytes of the body were lost (a hole of known size inside a
	// body whose length is known): the bytes after the hole are not kept,
	// the framing is, and the message is emitted as a truncated prefix.
	holed bool

	// Position in the stream: pos is the TCP sequence number of the next
	// byte fed (posOK when known); startSeq, endSeq and startAck are those
	// of the message in progress or just done.
	pos              uint32
	posOK            bool
	startSeq, endSeq uint32
	startAck         uint32
	startHasAck      bool
	// lost is set when whole messages may have been lost (a resync after a
	// hole, a parse error or a mid-stream start); the connection reads and
	// clears it to pair responses.
	lost bool

	// Resynchronisation (stResync): candidate says the next byte starts a
	// line; segNew says the next feed starts a segment; lastSeg is the
	// segment of the last byte fed.
	candidate bool
	segNew    bool
	lastSeg   uint64
	// lineResync: line starts are candidates too, not only segment
	// starts. It holds after a parse error, when the stream was in sync up
	// to the bad bytes; after a hole or a mid-stream start the bytes may be
	// any body, binary or text, where a line that looks like a start line
	// is no evidence.
	lineResync bool
	// onDead, when set, takes the bytes that follow the end of HTTP/1.x
	// on the stream (after a 101) within the data being fed.
	onDead func(s *splitter, data []byte, base int)
}

// Scratch buffers: scratchSize fits the headers of almost every message;
// buffers grown beyond scratchKeep are left to the garbage collector.
const (
	scratchSize = 2 << 10
	scratchKeep = 64 << 10
)

var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, scratchSize)
	return &b
}}

// release gives the scratch buffer back.
func (s *splitter) release() {
	if s.total != nil {
		*s.total -= int64(cap(s.buf))
	}
	if s.bufp != nil && cap(s.buf) <= scratchKeep {
		*s.bufp = s.buf[:0]
		scratchPool.Put(s.bufp)
	}
	s.buf, s.bufp = nil, nil
}

func (s *splitter) reset() {
	s.release()
	s.lineStart = 0
	s.remain = 0
	s.bodyKept = 0
	s.truncated = false
	s.overflow = false
	s.line = s.line[:0]
	s.h = head{}
	s.tunnel = false
	s.holed = false
	s.st = stIdle
}

// keep appends header or start-line bytes to the message buffer.
func (s *splitter) keep(b []byte) {
	if s.buf == nil {
		s.bufp = scratchPool.Get().(*[]byte)
		s.buf = (*s.bufp)[:0]
		if s.total != nil {
			*s.total += int64(cap(s.buf))
		}
	}
	if s.total != nil {
		before := cap(s.buf)
		s.buf = append(s.buf, b...)
		*s.total += int64(cap(s.buf) - before)
		return
	}
	s.buf = append(s.buf, b...)
}

// keepBody appends body bytes (chunk framing included) within the limits;
// bytes beyond them are dropped and the message marked truncated. Once cut,
// a body stays cut: bytes after the cut are not kept when room frees up,
// so a truncated message is always a prefix of what was sent.
func (s *splitter) keepBody(b []byte) {
	if s.holed || s.truncated {
		return
	}
	room := s.maxBody - s.bodyKept
	capped := false
	if r := s.maxKeep - int64(len(s.buf)); r < room {
		room, capped = r, true
	}
	if s.total != nil {
		if r := s.totalCap - *s.total + int64(cap(s.buf)-len(s.buf)); r < room {
			room, capped = r, true
		}
	}
	n := int64(len(b))
	if n > room {
		if room < 0 {
			room = 0
		}
		s.keep(b[:room])
		s.bodyKept += room
		s.truncated = true
		if capped && !s.overflow {
			s.overflow = true
			s.ev.count(cBufferOverflow, 1)
			s.ev.count(cBufferCut, 1)
		}
		return
	}
	s.keep(b)
	s.bodyKept += n
}

// bad abandons the message in progress as unparsable and resynchronises on
// the next checked start line. atLine says the next byte starts a line (the
// bad line is consumed).
func (s *splitter) bad(atLine bool) {
	if !s.garbage {
		s.ev.count(cUnparsable, 1)
	}
	s.resync(atLine)
	s.lineResync = true
	s.garbage = true
}

// headerTooLong abandons a message whose header block passes maxHeader: it
// is counted as header-too-long (not also as unparsable), and what follows
// is skipped up to the next checked start line.
func (s *splitter) headerTooLong(atLine bool) {
	s.ev.count(cHeaderTooLong, 1)
	s.garbage = true
	s.bad(atLine)
}

// resync abandons the message in progress (already counted) and looks for
// the next checked start line.
func (s *splitter) resync(atLine bool) {
	s.reset()
	s.st = stResync
	s.candidate = atLine
	s.lineResync = false
	s.lost = true
}

// end is called when the stream direction ends with a FIN: a response
// delimited by the end of the stream is complete.
func (s *splitter) end() { s.finish(true) }

// finish is called when the stream direction ends: with a FIN (fin), or
// without (a RST, idle expiry, the end of the capture), when a response
// delimited by the end of the stream is emitted truncated and counted
// incomplete. A message in progress otherwise is counted incomplete.
func (s *splitter) finish(fin bool) {
	switch s.st {
	case stToClose:
		if !fin {
			s.hole()
		}
		s.done(s.pos)
	case stIdle:
		if len(s.buf) > 0 {
			s.ev.count(cIncomplete, 1)
		}
	case stBody, stChunkSize, stChunkData, stChunkEnd, stTrailers:
		if s.isResp {
			// The stream ended (its end, a RST, the end of the capture)
			// in the body of a response whose head is whole: it is
			// emitted as the prefix seen, cut (counted incomplete), as
			// a hole inside a body is, so its request is answered (its
			// status is known). A request cut so was never whole on the
			// wire, and a replay could not send it: it is counted
			// incomplete only.
			s.hole()
			s.done(s.pos)
			return
		}
		s.ev.count(cIncomplete, 1)
	case stDead:
		// Not HTTP since an upgrade or a CONNECT: bytes handed over
		// after the end (held behind a hole when a RST ended the
		// connection, delivered at the capture's end) are not either.
		return
	case stResync:
	default:
		s.ev.count(cIncomplete, 1)
	}
	s.reset()
	s.garbage = false
}

// hole marks the message in progress as missing bytes of its body.
func (s *splitter) hole() {
	s.holed = true
	s.truncated = true
}

// gap is called when n bytes of the stream were lost (n <= 0: an unknown
// number). Inside a body whose length is known, the hole is skipped and the
// framing kept: the message is emitted as the prefix before the hole,
// truncated, and counted incomplete. Elsewhere the message in progress is
// incomplete and the splitter resynchronises on the next checked start line
// at a segment or line start.
func (s *splitter) gap(n int) {
	end := s.pos // the sequence number after the hole
	if n > 0 {
		// Whatever the state, pos follows the stream: finHoles and
		// lateClosed read it.
		s.pos += uint32(n)
	}
	if s.st == stDead {
		return
	}
	defer func() { s.segNew = true }()
	if n > 0 {
		switch s.st {
		case stBody, stChunkData:
			if int64(n) < s.remain {
				s.remain -= int64(n)
				s.hole()
				return
			}
			if int64(n) == s.remain {
				s.remain = 0
				s.hole()
				if s.st == stBody {
					s.done(s.pos)
				} else {
					s.st = stChunkEnd
				}
				return
			}
			if s.st == stBody {
				// The message ends inside the hole; what follows it was
				// lost up to the hole's end.
				s.hole()
				s.done(end + uint32(s.remain))
				s.resync(false)
				s.garbage = false
				return
			}
		case stToClose:
			s.hole()
			return
		}
	}
	if s.st != stIdle && s.st != stResync || len(s.buf) > 0 {
		s.ev.count(cIncomplete, 1)
		s.resync(false)
		s.garbage = true // the bytes up to the next start belong to it
		return
	}
	s.resync(false)
	s.garbage = false
}

// done hands over the message, which ends before the sequence number end.
func (s *splitter) done(end uint32) {
	// The message is handed over for good: it gets its own exact-size copy
	// and the scratch buffer is reused, unless the buffer grew too big to be
	// reused, in which case it is handed over as it is.
	raw := s.buf
	if cap(raw) <= scratchKeep {
		raw = bytes.Clone(raw)
	}
	s.release()
	switch {
	case s.holed:
		s.ev.count(cIncomplete, 1)
	case s.truncated:
		s.ev.count(cTruncated, 1)
	}
	s.endSeq = end
	tunnel := s.tunnel
	s.ev.messageDone(s, raw, s.start, s.truncated)
	s.reset()
	if tunnel {
		s.st = stDead
	}
}

func isTokenUpper(c byte) bool { return c >= 'A' && c <= 'Z' || c == '-' || c == '_' }

// feed parses data, which follows the bytes fed before.
func (s *splitter) feed(data []byte, ts timeSource) {
	seq0 := s.pos
	s.pos += uint32(len(data))
	off := 0
	for off < len(data) {
		switch s.st {
		case stDead:
			if s.onDead != nil {
				s.onDead(s, data[off:], off)
			}
			return
		case stResync:
			off = s.findStart(data, off, ts)
			s.segNew = false
		case stIdle:
			if len(s.buf) == 0 {
				// Empty lines between messages are allowed (RFC 9112 §2.2).
				for off < len(data) && (data[off] == '\r' || data[off] == '\n') {
					off++
				}
				if off == len(data) {
					continue
				}
				c := data[off]
				if s.isResp && c != 'H' || !s.isResp && !isTokenUpper(c) {
					s.bad(false)
					continue
				}
				s.start = ts.at(off)
				s.startSeq = seq0 + uint32(off)
				s.startAck, s.startHasAck = ts.ack(off)
			}
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				s.keep(data[off:])
				if len(s.buf) > maxLine {
					s.bad(false)
				}
				off = len(data)
				continue
			}
			s.keep(data[off : off+i+1])
			off += i + 1
			if s.isResp && !validStatusLine(s.buf, &s.h) || !s.isResp && !validRequestLine(s.buf, &s.h) {
				s.bad(true) // the line is consumed: look at the next one
				continue
			}
			s.garbage = false
			s.st = stHeaders
			s.lineStart = len(s.buf)
		case stHeaders:
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				s.keep(data[off:])
				if len(s.buf) > maxHeader {
					s.headerTooLong(false)
				}
				off = len(data)
				continue
			}
			s.keep(data[off : off+i+1])
			off += i + 1
			line := s.buf[s.lineStart:]
			if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
				s.headersDone(seq0 + uint32(off))
				continue
			}
			if len(s.buf) > maxHeader {
				s.headerTooLong(true)
				continue
			}
			s.lineStart = len(s.buf)
		case stBody, stChunkData:
			n := int64(len(data) - off)
			if n > s.remain {
				n = s.remain
			}
			s.keepBody(data[off : off+int(n)])
			off += int(n)
			s.remain -= n
			if s.remain == 0 {
				if s.st == stBody {
					s.done(seq0 + uint32(off))
				} else {
					s.st = stChunkEnd
				}
			}
		case stChunkEnd:
			// CRLF, or a bare LF as lenient servers accept.
			c := data[off]
			if c == '\r' && len(s.line) == 0 {
				s.line = append(s.line, c)
				s.keepBody(data[off : off+1])
				off++
				continue
			}
			if c != '\n' {
				s.bad(false)
				continue
			}
			s.line = s.line[:0]
			s.keepBody(data[off : off+1])
			off++
			s.st = stChunkSize
		case stChunkSize, stTrailers:
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				s.line = append(s.line, data[off:]...)
				s.keepBody(data[off:])
				if len(s.line) > maxLine {
					s.bad(false)
				}
				off = len(data)
				continue
			}
			s.line = append(s.line, data[off:off+i+1]...)
			s.keepBody(data[off : off+i+1])
			off += i + 1
			if len(s.line) > maxLine {
				s.bad(true)
				continue
			}
			line := s.line
			s.line = s.line[:0]
			if s.st == stTrailers {
				if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
					s.done(seq0 + uint32(off))
				}
				continue
			}
			size, ok := parseChunkSize(line)
			if !ok {
				s.bad(true)
				continue
			}
			if size == 0 {
				s.st = stTrailers
				continue
			}
			s.remain = size
			s.st = stChunkData
		case stToClose:
			s.keepBody(data[off:])
			off = len(data)
		}
	}
	if s.st == stResync && len(data) > 0 {
		s.lastSeg = ts.seg(len(data) - 1)
		s.candidate = data[len(data)-1] == '\n'
		s.segNew = false
	}
}

// findStart looks for the next checked start line in data from off, at a
// line start or a TCP segment start, and returns its offset (then the
// state is stIdle) or len(data). Bytes skipped are counted once per run:
// as incomplete (the rest of a message whose start was lost) or, after a
// parse error, already as unparsable.
func (s *splitter) findStart(data []byte, off int, ts timeSource) int {
	for off < len(data) {
		seg := uint64(0)
		segStart := false
		if off == 0 {
			seg = ts.seg(0)
			segStart = s.segNew || seg != s.lastSeg
		} else {
			seg = ts.seg(off)
			segStart = seg != ts.seg(off-1)
		}
		if s.candidate && s.lineResync || segStart {
			// Empty lines before a message are allowed.
			i := off
			for i < len(data) && (data[i] == '\r' || data[i] == '\n') {
				i++
			}
			if i == len(data) {
				return len(data)
			}
			if checkStart(data[i:], s.isResp) != startBad {
				s.st = stIdle
				s.candidate = false
				return i
			}
		}
		if !s.garbage {
			s.garbage = true
			s.ev.count(cIncomplete, 1)
		}
		// The next candidate: the next line start or segment start.
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		s.candidate = next < len(data)
		if b := nextSegStart(ts, off, next, seg); b < next {
			next, s.candidate = b, false
		}
		off = next
	}
	return off
}

// nextSegStart returns the first offset in (from, limit) where a segment
// other than seg (that of byte from) starts, or limit. The bytes of one
// segment are contiguous, so the search is a bisection.
func nextSegStart(ts timeSource, from, limit int, seg uint64) int {
	if limit-from <= 1 || ts.seg(limit-1) == seg {
		return limit
	}
	lo, hi := from, limit-1 // seg(lo) == seg, seg(hi) != seg
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if ts.seg(mid) == seg {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// Results of checkStart.
const (
	startBad  = iota // not a message start
	startOK          // a valid start line followed by the start of a header block
	startMore        // valid as far as data goes
)

// checkStart says whether b begins with a message: a full valid status line
// (responses) or request line (requests), followed by a header line start
// ("name:") or the empty line that ends the header block.
func checkStart(b []byte, resp bool) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > maxLine || !startPrefixOK(b, resp) {
			return startBad
		}
		return startMore
	}
	var h head
	if resp && !validStatusLine(b[:i+1], &h) || !resp && (!validRequestLine(b[:i+1], &h) || !registeredMethod(h.method)) {
		return startBad
	}
	rest := b[i+1:]
	if len(rest) == 0 {
		return startMore
	}
	if rest[0] == '\n' || rest[0] == '\r' && (len(rest) == 1 || rest[1] == '\n') {
		return startOK
	}
	for j, c := range rest {
		if c == ':' && j > 0 {
			return startOK
		}
		if !isTchar(c) || j > 256 {
			return startBad
		}
	}
	return startMore
}

// startPrefixOK says whether b, a start line without its end, can begin a
// valid start line.
func startPrefixOK(b []byte, resp bool) bool {
	if resp {
		const p = "HTTP/1.x 000 "
		for i, c := range b {
			switch {
			case i == 7 || i >= 9 && i < 12:
				if c < '0' || c > '9' {
					return false
				}
			case i == 12:
				if c != ' ' && c != '\r' {
					return false
				}
			case c != p[i]:
				return false
			}
			if i >= 12 {
				break
			}
		}
		return true
	}
	sp := bytes.IndexByte(b, ' ')
	if sp < 0 {
		sp = len(b)
	}
	if sp == 0 || sp > 20 {
		return false
	}
	for _, c := range b[:sp] {
		if !isTokenUpper(c) {
			return false
		}
	}
	if sp < len(b) {
		return registeredMethod(b[:sp])
	}
	for _, m := range resyncMethods {
		if strings.HasPrefix(m, string(b)) {
			return true
		}
	}
	return false
}

// resyncMethods are the methods a resynchronisation takes a request line
// for: the registered ones in use (RFC 9110, 5789, WebDAV). Any token is a
// method in a stream in sync, but after a hole "T /x HTTP/1.1" is likelier
// the tail of a "GET" than a method T.
var resyncMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH", "MKCALENDAR", "ACL", "PURGE"}

func registeredMethod(m []byte) bool {
	for _, k := range resyncMethods {
		if string(m) == k {
			return true
		}
	}
	return false
}

// isTchar reports whether c may appear in a header field name (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// headersDone decides how the body is delimited (RFC 9112 §6.3); end is
// the sequence number after the header block.
func (s *splitter) headersDone(end uint32) {
	const (
		noBody = iota
		byLength
		chunked
		toClose
	)
	h := &s.h
	framing, length, refused := s.framing()
	if refused != 0 {
		// The body cannot be delimited: counted with the reason, and the
		// stream resynchronised on the next checked start line.
		s.ev.count(refused, 1)
		s.bad(true)
		return
	}
	if s.isResp && h.status >= 100 && h.status < 200 && h.status != 101 {
		// An interim response (100 Continue, 103 Early Hints) is not the
		// answer to the request: it is counted and left out.
		s.ev.count(cInterim, 1)
		s.reset()
		return
	}
	method := s.ev.headDone(s, h)
	mode := noBody
	switch {
	case !s.isResp:
		if framing == chunked {
			mode = chunked
		} else if length > 0 {
			mode = byLength
		}
	case h.status == 101:
		s.tunnel = true
	case bytes.Equal(method, []byte("CONNECT")) && h.status >= 200 && h.status < 300:
		s.tunnel = true
	case bytes.Equal(method, []byte("HEAD")) || h.status == 204 || h.status == 304:
	case framing == chunked:
		mode = chunked
	case framing == byLength:
		if length > 0 {
			mode = byLength
		}
	default:
		mode = toClose
	}
	switch mode {
	case noBody:
		s.done(end)
	case byLength:
		s.remain = length
		s.st = stBody
	case chunked:
		s.st = stChunkSize
	case toClose:
		s.st = stToClose
	}
}

// framing reads the headers that delimit the body: it returns chunked,
// byLength (with the length) or 0 when neither is present, and the counter
// of the reason when they are malformed or contradictory (two different
// Content-Lengths, a request with a transfer coding other than chunked):
// framing them would desynchronise the stream. It also fills the connection
// flags of s.h.
func (s *splitter) framing() (int, int64, counter) {
	const (
		byLength = 1
		chunked  = 2
		other    = 3
	)
	hdr := s.buf
	// Skip the start line.
	i := bytes.IndexByte(hdr, '\n')
	hdr = hdr[i+1:]
	length := int64(-1)
	te := 0
	for len(hdr) > 0 {
		j := bytes.IndexByte(hdr, '\n')
		line := hdr[:j]
		hdr = hdr[j+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			if line[0] == ' ' || line[0] == '\t' {
				continue // obsolete line folding
			}
			return 0, 0, cBadHeader
		}
		name, value := line[:c], bytes.TrimSpace(line[c+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			// A list of identical values is one value (RFC 9110 §8.6).
			for len(value) > 0 {
				v := value
				if k := bytes.IndexByte(value, ','); k >= 0 {
					v, value = value[:k], value[k+1:]
				} else {
					value = nil
				}
				n, ok := parseDecimal(bytes.TrimSpace(v))
				if !ok || length >= 0 && n != length {
					return 0, 0, cBadContentLength
				}
				length = n
			}
		case asciiEqualFold(name, "transfer-encoding"):
			// The last coding applied, empty list elements ignored.
			last := lastListElem(value)
			switch {
			case len(last) == 0:
			case asciiEqualFold(last, "chunked"):
				te = chunked
			default:
				te = other
			}
		case asciiEqualFold(name, "connection"):
			if hasToken(value, "close") {
				s.h.closeAfter = true
			}
		case asciiEqualFold(name, "upgrade"):
			s.h.upgrade = true
		case asciiEqualFold(name, "expect"):
			if asciiEqualFold(value, "100-continue") {
				s.h.expect100 = true
			}
		}
	}
	switch {
	case te == chunked:
		return chunked, 0, 0
	case te == other:
		// A request with a transfer coding other than chunked cannot be
		// delimited; a response then runs to the end of the stream.
		if !s.isResp {
			return 0, 0, cBadTransferEncoding
		}
		return 0, 0, 0
	case length >= 0:
		return byLength, length, 0
	}
	return 0, 0, 0
}

// lastListElem returns the last non-empty element of a comma-separated
// list, trimmed.
func lastListElem(v []byte) []byte {
	for len(v) > 0 {
		k := bytes.LastIndexByte(v, ',')
		e := bytes.TrimSpace(v[k+1:])
		if len(e) > 0 {
			return e
		}
		if k < 0 {
			break
		}
		v = v[:k]
	}
	return nil
}

// validRequestLine checks "METHOD SP target SP HTTP/1.x CRLF", accepting
// runs of spaces between the three parts as common servers do.
func validRequestLine(line []byte, h *head) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 20 {
		return false
	}
	for _, c := range line[:sp] {
		if !isTokenUpper(c) {
			return false
		}
	}
	h.method = line[:sp]
	h.connect = string(h.method) == "CONNECT"
	rest := line[sp+1:]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return false
	}
	for _, c := range rest[:sp2] {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	rest = rest[sp2+1:]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return validVersionEOL(rest)
}

// validVersionEOL checks "HTTP/1.x" followed by CRLF or LF.
func validVersionEOL(b []byte) bool {
	if len(b) < 9 || string(b[:7]) != "HTTP/1." || b[7] < '0' || b[7] > '9' {
		return false
	}
	b = b[8:]
	return string(b) == "\r\n" || string(b) == "\n"
}

// validStatusLine checks "HTTP/1.x SP 3DIGIT [SP reason] CRLF".
func validStatusLine(line []byte, h *head) bool {
	if len(line) < 13 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' || line[8] != ' ' {
		return false
	}
	st := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		st = st*10 + int(c-'0')
	}
	switch line[12] {
	case ' ', '\r', '\n':
	default:
		return false
	}
	h.status = st
	return true
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses "HEX [; ext] CRLF".
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			if digits == 0 || c != ';' && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				return 0, false
			}
			return n, true
		}
		digits++
		if digits > 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return 0, false
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds tok (any case).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var part []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		if asciiEqualFold(bytes.TrimSpace(part), tok) {
			return true
		}
	}
	return false
}
