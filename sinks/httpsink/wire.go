package httpsink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/replayctl/replayctl/stats"
)

// Limits of the response parser.
const (
	maxHeaderLines = 1000
	readBufSize    = 16 << 10 // also the longest status, header or chunk-size line
	// DefaultKeepLimit is how many response bytes KeepResponse keeps by default.
	DefaultKeepLimit = 1 << 20
)

// reqInfo is what the sender needs to know about a raw request.
type reqInfo struct {
	head      bool // method HEAD: the response has no body
	close     bool // the request asks the server to close after responding
	hostStart int  // value span of the first Host header, -1 if none
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
	info.head = sp == 4 && string(line[:4]) == "HEAD"
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

// parser reads HTTP/1.x responses from a bufio.Reader without allocating.
type parser struct {
	br    *bufio.Reader
	keep  bool   // keep the bytes of the final response in out
	limit int    // keep at most this many bytes
	out   []byte // kept bytes
	trunc bool   // out was cut at limit
	n     int64  // bytes consumed
}

// response is what read learns about a final response.
type response struct {
	status    int
	keepAlive bool // the connection may carry another request
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{stats.ErrBadResponse}, args...)...)
}

func (p *parser) reset(br *bufio.Reader) {
	p.br, p.out, p.trunc, p.n = br, p.out[:0], false, 0
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

// line returns the next line, LF included; it is valid until the next read.
func (p *parser) line() ([]byte, error) {
	l, err := p.br.ReadSlice('\n')
	p.n += int64(len(l))
	p.save(l)
	switch {
	case err == nil:
		return l, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, badf("line longer than %d bytes", p.br.Size())
	case err == io.EOF && p.n > 0:
		return nil, io.ErrUnexpectedEOF
	}
	return nil, err
}

// skip consumes n body bytes.
func (p *parser) skip(n int64) error {
	for n > 0 {
		k := int(min(n, readBufSize))
		var (
			m   int
			err error
		)
		if p.keep {
			var b []byte
			b, err = p.br.Peek(min(k, max(p.br.Buffered(), 1)))
			m = len(b)
			p.save(b)
			_, _ = p.br.Discard(m)
		} else {
			m, err = p.br.Discard(k)
		}
		p.n += int64(m)
		n -= int64(m)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// toEOF consumes the body up to the end of the connection.
func (p *parser) toEOF() error {
	for {
		b, err := p.br.Peek(1)
		if len(b) > 0 {
			m := p.br.Buffered()
			if p.keep {
				b, _ = p.br.Peek(m)
				p.save(b)
			}
			_, _ = p.br.Discard(m)
			p.n += int64(m)
			continue
		}
		if err == io.EOF {
			return nil
		}
		return err
	}
}

// read reads one final response to a request (head: method HEAD), skipping
// 1xx interim responses other than 101.
func (p *parser) read(head bool) (response, error) {
	for {
		if p.keep {
			p.out, p.trunc = p.out[:0], false
		}
		l, err := p.line()
		if err != nil {
			return response{}, err
		}
		l = trimCR(l[:len(l)-1])
		// HTTP/1.x SP 3DIGIT [SP reason]
		if len(l) < 12 || string(l[:7]) != "HTTP/1." || !isDigit(l[7]) || l[8] != ' ' ||
			!isDigit(l[9]) || !isDigit(l[10]) || !isDigit(l[11]) || (len(l) > 12 && l[12] != ' ') {
			return response{}, badf("status line %q", clip(l))
		}
		r := response{status: int(l[9]-'0')*100 + int(l[10]-'0')*10 + int(l[11]-'0')}
		if r.status < 100 {
			return response{}, badf("status code %d", r.status)
		}
		http11 := l[7] != '0'
		var (
			length           int64 = -1
			chunked, te      bool
			closing, keepHdr bool
		)
		for i := 0; ; i++ {
			if i == maxHeaderLines {
				return response{}, badf("more than %d header lines", maxHeaderLines)
			}
			h, err := p.line()
			if err != nil {
				return response{}, err
			}
			h = trimCR(h[:len(h)-1])
			if len(h) == 0 {
				break
			}
			if h[0] == ' ' || h[0] == '\t' {
				continue // obsolete line folding: part of the previous value
			}
			c := bytes.IndexByte(h, ':')
			if c <= 0 {
				return response{}, badf("header line %q", clip(h))
			}
			name, value := h[:c], bytes.Trim(h[c+1:], " \t")
			switch {
			case equalFold(name, "content-length"):
				v, ok := parseLength(value)
				if !ok || (length >= 0 && v != length) {
					return response{}, badf("content-length %q", clip(value))
				}
				length = v
			case equalFold(name, "transfer-encoding"):
				te = true
				chunked = false
				forTokens(value, func(tok []byte) { chunked = equalFold(tok, "chunked") })
			case equalFold(name, "connection"):
				forTokens(value, func(tok []byte) {
					if equalFold(tok, "close") {
						closing = true
					} else if equalFold(tok, "keep-alive") {
						keepHdr = true
					}
				})
			}
		}
		if r.status < 200 && r.status != 101 {
			continue // interim response (100 Continue, 103 Early Hints)
		}
		r.keepAlive = !closing && (http11 || keepHdr)
		switch {
		case r.status == 101:
			r.keepAlive = false // the connection now speaks another protocol
			return r, nil
		case head || r.status == 204 || r.status == 304:
			return r, nil
		case chunked:
			return r, p.chunked()
		case te:
			r.keepAlive = false
			return r, p.toEOF()
		case length >= 0:
			return r, p.skip(length)
		default:
			r.keepAlive = false
			return r, p.toEOF()
		}
	}
}

// chunked consumes a chunked body and its trailers.
func (p *parser) chunked() error {
	for {
		l, err := p.line()
		if err != nil {
			return err
		}
		l = trimCR(l[:len(l)-1])
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
			for i := 0; ; i++ {
				if i == maxHeaderLines {
					return badf("more than %d trailer lines", maxHeaderLines)
				}
				t, err := p.line()
				if err != nil {
					return err
				}
				if len(trimCR(t[:len(t)-1])) == 0 {
					return nil
				}
			}
		}
		if err := p.skip(size); err != nil {
			return err
		}
		end, err := p.line()
		if err != nil {
			return err
		}
		if len(trimCR(end[:len(end)-1])) != 0 {
			return badf("chunk not followed by CRLF")
		}
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
