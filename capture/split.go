package capture

import (
	"bytes"
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
	stSkipLine                    // discarding garbage up to the next '\n'
	stHeaders                     // reading header lines
	stBody                        // Content-Length body, remain bytes left
	stChunkSize                   // reading a chunk-size line
	stChunkData                   // chunk data + CRLF, remain bytes left
	stTrailers                    // reading trailer lines
	stToClose                     // response body delimited by the end of the stream
	stDead                        // upgraded or tunnelled: not HTTP any more
)

// timeSource gives the capture time (Unix ns) of the byte at off in the data
// passed to feed.
type timeSource interface {
	at(off int) int64
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
// bytes beyond them are dropped and the message marked truncated.
func (s *splitter) keepBody(b []byte) {
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
		}
		return
	}
	s.keep(b)
	s.bodyKept += n
}

// bad abandons the message in progress as unparsable and resynchronises on
// the next start line. skipLine says the current line is not consumed yet.
func (s *splitter) bad(skipLine bool) {
	if !s.garbage {
		s.ev.count(cUnparsable, 1)
	}
	s.reset()
	s.garbage = true
	if skipLine {
		s.st = stSkipLine
	}
}

// end is called when the stream direction ends (FIN, RST, idle expiry).
func (s *splitter) end() {
	switch s.st {
	case stToClose:
		s.done()
	case stIdle:
		if len(s.buf) > 0 {
			s.ev.count(cIncomplete, 1)
		}
	case stDead, stSkipLine:
	default:
		s.ev.count(cIncomplete, 1)
	}
	s.reset()
	s.garbage = false
}

// gap is called when bytes of the stream were lost: the message in
// progress is incomplete and what follows is skipped up to a start line.
func (s *splitter) gap() {
	if s.st == stDead {
		return
	}
	if s.st != stIdle && s.st != stSkipLine || len(s.buf) > 0 {
		s.ev.count(cIncomplete, 1)
	}
	s.reset()
	s.garbage = true
}

func (s *splitter) done() {
	// The message is handed over for good: it gets its own exact-size copy
	// and the scratch buffer is reused, unless the buffer grew too big to be
	// reused, in which case it is handed over as it is.
	raw := s.buf
	if cap(raw) <= scratchKeep {
		raw = bytes.Clone(raw)
	}
	s.release()
	if s.truncated {
		s.ev.count(cTruncated, 1)
	}
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
	off := 0
	for off < len(data) {
		switch s.st {
		case stDead:
			if s.onDead != nil {
				s.onDead(s, data[off:], off)
			}
			return
		case stSkipLine:
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				return
			}
			off += i + 1
			s.st = stIdle
		case stIdle:
			if len(s.buf) == 0 {
				// Empty lines between messages are allowed (RFC 9112 §2.2).
				for off < len(data) && (data[off] == '\r' || data[off] == '\n') {
					off++
				}
				if off == len(data) {
					return
				}
				c := data[off]
				if s.isResp && c != 'H' || !s.isResp && !isTokenUpper(c) {
					s.bad(true)
					continue
				}
				s.start = ts.at(off)
			}
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				s.keep(data[off:])
				if len(s.buf) > maxLine {
					s.bad(true)
				}
				return
			}
			s.keep(data[off : off+i+1])
			off += i + 1
			if s.isResp && !validStatusLine(s.buf, &s.h) || !s.isResp && !validRequestLine(s.buf, &s.h) {
				s.bad(false) // the line is consumed: look at the next one
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
					s.bad(true)
				}
				return
			}
			s.keep(data[off : off+i+1])
			off += i + 1
			line := s.buf[s.lineStart:]
			if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
				s.headersDone()
				continue
			}
			if len(s.buf) > maxHeader {
				s.bad(false)
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
					s.done()
				} else {
					s.st = stChunkSize
				}
			}
		case stChunkSize, stTrailers:
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				s.line = append(s.line, data[off:]...)
				s.keepBody(data[off:])
				if len(s.line) > maxLine {
					s.bad(true)
				}
				return
			}
			s.line = append(s.line, data[off:off+i+1]...)
			s.keepBody(data[off : off+i+1])
			off += i + 1
			if len(s.line) > maxLine {
				s.bad(false)
				continue
			}
			line := s.line
			s.line = s.line[:0]
			if s.st == stTrailers {
				if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
					s.done()
				}
				continue
			}
			size, ok := parseChunkSize(line)
			if !ok {
				s.bad(false)
				continue
			}
			if size == 0 {
				s.st = stTrailers
				continue
			}
			s.remain = size + 2 // data and its CRLF
			s.st = stChunkData
		case stToClose:
			s.keepBody(data[off:])
			return
		}
	}
}

// headersDone decides how the body is delimited (RFC 9112 §6.3).
func (s *splitter) headersDone() {
	const (
		noBody = iota
		byLength
		chunked
		toClose
	)
	h := &s.h
	framing, length, ok := s.framing()
	if !ok {
		s.bad(false)
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
		s.done()
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
// byLength (with the length) or 0 when neither is present, and false when
// they are malformed. It also fills the connection flags of s.h.
func (s *splitter) framing() (int, int64, bool) {
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
			return 0, 0, false
		}
		name, value := line[:c], bytes.TrimSpace(line[c+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || length >= 0 && n != length {
				return 0, 0, false
			}
			length = n
		case asciiEqualFold(name, "transfer-encoding"):
			last := value
			if k := bytes.LastIndexByte(value, ','); k >= 0 {
				last = bytes.TrimSpace(value[k+1:])
			}
			if asciiEqualFold(last, "chunked") {
				te = chunked
			} else {
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
		return chunked, 0, true
	case te == other:
		// A request with a transfer coding other than chunked cannot be
		// delimited; a response then runs to the end of the stream.
		return 0, 0, s.isResp
	case length >= 0:
		return byLength, length, true
	}
	return 0, 0, true
}

// validRequestLine checks "METHOD SP target SP HTTP/1.x CRLF".
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
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return false
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return validVersionEOL(rest[sp2+1:])
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
