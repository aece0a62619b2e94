package httpsink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/replayctl/replayctl/stats"
)

// Limits of the response parser.
const (
	maxHeaderLines = 1000
	readBufSize    = 16 << 10 // also the longest status, header or chunk-size line
	// DefaultKeepLimit is how many response bytes KeepResponse keeps by default.
	DefaultKeepLimit = 1 << 20
)

// method is what the response parser needs to know of a request's method.
type method uint8

const (
	methodOther   method = iota
	methodHead           // HEAD: the response has no body
	methodConnect        // CONNECT: a 2xx response is a head alone, then a tunnel
)

// reqInfo is what the sender needs to know about a raw request.
type reqInfo struct {
	method method
	close  bool // the request asks the server to close after responding
	// replayable: the request may be sent again when a pooled connection
	// fails before any answer (RFC 9110 §9.2.2: an idempotent method, or
	// an Idempotency-Key header, as Go's client decides): the target may
	// have read it and acted on it before closing.
	replayable bool
	absolute   bool // the request target is absolute-form (scheme://authority…)
	// hostStart, hostEnd: the value span of the first Host header, which
	// the sender replaces with the target's; -1 when there is none, or
	// when the Host is kept (Send).
	hostStart int
	hostEnd   int
}

// inspect scans the request line and headers of raw without copying. A
// malformed request is sent as it is; inspect only finds what it can.
func inspect(raw []byte) reqInfo {
	info := reqInfo{hostStart: -1, hostEnd: -1}
	nl := bytes.IndexByte(raw, '\n')
	if nl < 0 {
		return info
	}
	line := trimCR(raw[:nl])
	sp := bytes.IndexByte(line, ' ')
	switch {
	case sp == 4 && string(line[:4]) == "HEAD":
		info.method = methodHead
		info.replayable = true
	case sp == 7 && string(line[:7]) == "CONNECT":
		info.method = methodConnect
	case sp > 0:
		info.replayable = idempotent(line[:sp])
	}
	if sp > 0 && sp+1 < len(line) && line[sp+1] != '/' { // not origin-form
		target := line[sp+1:]
		if i := bytes.IndexByte(target, ' '); i >= 0 {
			target = target[:i]
		}
		i := bytes.Index(target, []byte("://"))
		info.absolute = i > 0 && bytes.IndexAny(target[:i], "/?#") < 0
	}
	http10 := bytes.HasSuffix(line, []byte("HTTP/1.0"))
	keepAlive := false
	for pos := nl + 1; pos < len(raw); {
		end := bytes.IndexByte(raw[pos:], '\n')
		if end < 0 {
			break
		}
		end += pos
		l := trimCR(raw[pos:end])
		if len(l) == 0 {
			break
		}
		if c := bytes.IndexByte(l, ':'); c > 0 {
			name := l[:c]
			switch {
			case equalFold(name, "host") && info.hostStart < 0:
				vs := pos + c + 1
				ve := pos + len(l)
				for vs < ve && (raw[vs] == ' ' || raw[vs] == '\t') {
					vs++
				}
				for ve > vs && (raw[ve-1] == ' ' || raw[ve-1] == '\t') {
					ve--
				}
				info.hostStart, info.hostEnd = vs, ve
			case equalFold(name, "idempotency-key"), equalFold(name, "x-idempotency-key"):
				info.replayable = true
			case equalFold(name, "connection"):
				forTokens(l[c+1:], func(tok []byte) {
					if equalFold(tok, "close") {
						info.close = true
					} else if equalFold(tok, "keep-alive") {
						keepAlive = true
					}
				})
			}
		}
		pos = end + 1
	}
	if http10 && !keepAlive {
		info.close = true
	}
	return info
}

// idempotent reports whether a request method is idempotent (RFC 9110
// §9.2.2): sending it twice has the effect of sending it once.
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// notResent says why a request that failed on a pooled connection before
// any answer was not sent again.
func notResent(err error) error {
	return fmt.Errorf("%w (not sent again: its method is not idempotent, and the target may have acted on it)", err)
}

// parser parses HTTP/1.x responses without allocating. It is a state
// machine fed with bytes as they arrive (feed, then eof at the end of the
// connection), so the same code serves the goroutine workers, which read
// through a bufio.Reader (read), and the event loop, which reads
// nonblocking sockets into a buffer of its own.
type parser struct {
	br    *bufio.Reader // read's source
	keep  bool          // keep the bytes of the final response in out
	limit int           // keep at most this many bytes
	out   []byte        // kept bytes
	trunc bool          // out was cut at limit
	n     int64         // bytes consumed

	// the response being parsed
	st                  pstate
	method              method // of the request answered
	resp                response
	http11, chunked, te bool
	closing, keepHdr    bool
	length, rem         int64 // Content-Length; body or chunk bytes left
	lines               int   // header or trailer lines so far
}

// pstate is where the parser is in a response.
type pstate uint8

const (
	stStatus    pstate = iota // status line
	stHeader                  // header lines
	stBody                    // rem body bytes (Content-Length)
	stChunkSize               // chunk-size line
	stChunkData               // rem chunk bytes
	stChunkEnd                // the CRLF after a chunk
	stTrailer                 // trailer lines
	stToEOF                   // body up to the end of the connection
	stDone                    // the final response is complete
)

// response is what read learns about a final response.
type response struct {
	status    int
	keepAlive bool // the connection may carry another request
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{stats.ErrBadResponse}, args...)...)
}

// reset starts a response read from br (nil for feed), counting and
// keeping from zero.
func (p *parser) reset(br *bufio.Reader) {
	p.br, p.out, p.trunc, p.n = br, p.out[:0], false, 0
}

// begin starts parsing the response to a request with method m.
func (p *parser) begin(m method) {
	p.st, p.method, p.resp = stStatus, m, response{}
}

func (p *parser) save(b []byte) {
	if !p.keep {
		return
	}
	room := p.limit - len(p.out)
	if len(b) > room {
		b, p.trunc = b[:max(room, 0)], true
	}
	p.out = append(p.out, b...)
}

// take accounts for consumed bytes.
func (p *parser) take(b []byte) {
	p.n += int64(len(b))
	p.save(b)
}

// errLineTooLong is the error of a line that does not fit the read buffer.
func errLineTooLong(size int) error { return badf("line longer than %d bytes", size) }

// read reads one final response to a request with method m from p.br,
// skipping 1xx interim responses other than 101. It returns once the
// response is complete, reading nothing past it.
func (p *parser) read(m method) (response, error) {
	p.begin(m)
	for {
		if n := p.br.Buffered(); n > 0 {
			b, _ := p.br.Peek(n)
			k, done, err := p.feed(b)
			_, _ = p.br.Discard(k)
			if err != nil {
				return response{}, err
			}
			if done {
				return p.resp, nil
			}
		}
		// More bytes are needed: those left are a partial line.
		have := p.br.Buffered()
		_, err := p.br.Peek(have + 1)
		if p.br.Buffered() > have {
			continue
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			return response{}, errLineTooLong(p.br.Size())
		case err == io.EOF:
			if err := p.eof(have > 0); err != nil {
				return response{}, err
			}
			return p.resp, nil
		}
		return response{}, err
	}
}

// eof ends the response at the end of the connection; partial tells that
// bytes of an incomplete line were left unconsumed. It returns nil when the
// body runs to the end of the connection, io.EOF when no byte of a response
// came, io.ErrUnexpectedEOF otherwise.
func (p *parser) eof(partial bool) error {
	switch {
	case p.st == stToEOF:
		p.st = stDone
		return nil
	case p.n == 0 && !partial:
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// feed parses the bytes of b and returns how many it consumed and whether
// the final response is complete (then nothing past it is consumed). When
// it is not, the bytes left (a partial line) must be offered again with
// more after them.
func (p *parser) feed(b []byte) (int, bool, error) {
	off := 0
	for {
		switch p.st {
		case stDone:
			return off, true, nil
		case stToEOF:
			p.take(b[off:])
			return len(b), false, nil
		case stBody, stChunkData:
			k := int(min(p.rem, int64(len(b)-off)))
			p.take(b[off : off+k])
			off += k
			p.rem -= int64(k)
			if p.rem > 0 {
				return off, false, nil
			}
			if p.st == stBody {
				p.st = stDone
				return off, true, nil
			}
			p.st = stChunkEnd
			continue
		}
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return off, false, nil
		}
		l := b[off : off+i+1]
		if p.st == stStatus && p.keep {
			p.out, p.trunc = p.out[:0], false
		}
		p.take(l)
		off += i + 1
		if err := p.line(trimCR(l[:len(l)-1])); err != nil {
			return off, false, err
		}
	}
}

// line moves the parser on by one line (without its line end).
func (p *parser) line(l []byte) error {
	switch p.st {
	case stStatus:
		// HTTP/1.x SP 3DIGIT [SP reason]
		if len(l) < 12 || string(l[:7]) != "HTTP/1." || !isDigit(l[7]) || l[8] != ' ' ||
			!isDigit(l[9]) || !isDigit(l[10]) || !isDigit(l[11]) || (len(l) > 12 && l[12] != ' ') {
			return badf("status line %q", clip(l))
		}
		p.resp = response{status: int(l[9]-'0')*100 + int(l[10]-'0')*10 + int(l[11]-'0')}
		if p.resp.status < 100 {
			return badf("status code %d", p.resp.status)
		}
		p.http11 = l[7] != '0'
		p.length, p.chunked, p.te, p.closing, p.keepHdr, p.lines = -1, false, false, false, false, 0
		p.st = stHeader
	case stHeader:
		if p.lines == maxHeaderLines {
			return badf("more than %d header lines", maxHeaderLines)
		}
		p.lines++
		if len(l) == 0 {
			p.endHead()
			return nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil // obsolete line folding: part of the previous value
		}
		c := bytes.IndexByte(l, ':')
		if c <= 0 {
			return badf("header line %q", clip(l))
		}
		name, value := l[:c], bytes.Trim(l[c+1:], " \t")
		switch {
		case equalFold(name, "content-length"):
			v, ok := parseLength(value)
			if !ok || (p.length >= 0 && v != p.length) {
				return badf("content-length %q", clip(value))
			}
			p.length = v
		case equalFold(name, "transfer-encoding"):
			p.te = true
			p.chunked = false
			forTokens(value, func(tok []byte) { p.chunked = equalFold(tok, "chunked") })
		case equalFold(name, "connection"):
			forTokens(value, func(tok []byte) {
				if equalFold(tok, "close") {
					p.closing = true
				} else if equalFold(tok, "keep-alive") {
					p.keepHdr = true
				}
			})
		}
	case stChunkSize:
		if i := bytes.IndexAny(l, "; \t"); i >= 0 {
			l = l[:i]
		}
		if len(l) == 0 || len(l) > 15 {
			return badf("chunk size %q", clip(l))
		}
		var size int64
		for _, c := range l {
			d, ok := unhex(c)
			if !ok {
				return badf("chunk size %q", clip(l))
			}
			size = size<<4 | int64(d)
		}
		if size == 0 {
			p.st, p.lines = stTrailer, 0
		} else {
			p.st, p.rem = stChunkData, size
		}
	case stChunkEnd:
		if len(l) != 0 {
			return badf("chunk not followed by CRLF")
		}
		p.st = stChunkSize
	case stTrailer:
		if p.lines == maxHeaderLines {
			return badf("more than %d trailer lines", maxHeaderLines)
		}
		p.lines++
		if len(l) == 0 {
			p.st = stDone
		}
	}
	return nil
}

// endHead decides, at the end of a response head, what comes next: another
// response (1xx interim ones other than 101 are skipped), a body, or the end.
func (p *parser) endHead() {
	r := &p.resp
	if r.status < 200 && r.status != 101 {
		p.st = stStatus // interim response (100 Continue, 103 Early Hints)
		return
	}
	r.keepAlive = !p.closing && (p.http11 || p.keepHdr)
	switch {
	case r.status == 101:
		r.keepAlive = false // the connection now speaks another protocol
		p.st = stDone
	case p.method == methodConnect && r.status < 300:
		// The connection is now a tunnel (RFC 9110 §9.3.6): the answer
		// ends at its head, whatever its Content-Length or
		// Transfer-Encoding, and the connection carries no other request.
		r.keepAlive = false
		p.st = stDone
	case p.method == methodHead || r.status == 204 || r.status == 304:
		p.st = stDone
	case p.chunked:
		p.st = stChunkSize
	case p.te:
		r.keepAlive = false
		p.st = stToEOF
	case p.length > 0:
		p.st, p.rem = stBody, p.length
	case p.length == 0:
		p.st = stDone
	default:
		r.keepAlive = false
		p.st = stToEOF
	}
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseLength parses a Content-Length value (decimal, at most 18 digits).
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// equalFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// forTokens calls f for each comma-separated, trimmed token of v.
func forTokens(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		tok := v
		if i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if tok = bytes.Trim(tok, " \t"); len(tok) > 0 {
			f(tok)
		}
	}
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// peerClosed reports whether the peer of an idle connection has closed it
// (an end or an error is waiting to be read), without reading: a peek that
// does not wait. Bytes waiting (a TLS session ticket) are not an end.
func peerClosed(nc net.Conn) bool {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
			case err != nil, n == 0:
				closed = true
			}
			return true
		}
	})
	return closed
}
