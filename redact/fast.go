package redact

import (
	"bytes"

	"github.com/replayctl/replayctl/httpraw"
)

// The fast path. Most recorded messages carry nothing to redact, and parsing
// them with httpraw costs dozens of allocations only to return the input. clean
// scans the raw bytes once, without allocating, and answers true only when the
// full path would return raw itself with zero counts and no error: the
// message parses exactly as httpraw parses it (same start-line, header and
// framing rules) and nothing configured can match. Anything unusual (obs-fold
// lines, Content-Encoding with body rules, chunked bodies with body rules,
// Content-Length forms httpraw accepts but this scan does not bother with)
// answers false, and the full path decides. FuzzFastPathAgrees checks that
// both paths agree.

// clean reports whether raw, a request when isReq or else a response, is
// left unchanged by r with zero counts and no error.
func (r *Redactor) clean(raw []byte, isReq bool) bool {
	line, b, ok := cutLine(raw)
	if !ok {
		return false
	}
	noBody := false
	if isReq {
		if !requestLine(line) || r.defaults && hasUserinfo(line) {
			return false
		}
		// The method and protocol cannot hold '?': any '?' is in the
		// target, and the query httpraw finds (if any) is what follows the
		// first one.
		if len(r.query) > 0 {
			if q := bytes.IndexByte(line, '?'); q >= 0 {
				end := bytes.LastIndexByte(line, ' ')
				if end < q || !r.paramsClean(line[q+1:end], r.qnames) {
					return false
				}
			}
		}
	} else {
		code, ok := statusLine(line)
		if !ok {
			return false
		}
		noBody = code < 200 || code == 204 || code == 304
	}

	// Header block, as httpraw.parseHead reads it.
	var (
		te, hasTE        = []byte(nil), false // value of the last Transfer-Encoding field
		cl               = int64(-1)
		clBad            bool // a Content-Length this scan does not accept
		ce, formCT, jsCT bool
	)
	for {
		line, rest, ok := cutLine(b)
		if !ok {
			return false
		}
		b = rest
		if len(line) == 0 {
			break
		}
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			return false
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false // obs-fold, or an error before any field
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !httpraw.IsToken(line[:colon]) {
			return false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if r.isHeader(name) {
			return false
		}
		switch {
		case equalFold(name, "transfer-encoding"):
			te, hasTE = value, true
		case equalFold(name, "content-length"):
			if !contentLength(value, &cl) {
				clBad = true
			}
		case equalFold(name, "content-type"):
			formCT = formCT || containsFold(value, "x-www-form-urlencoded")
			jsCT = jsCT || containsFold(value, "json")
		case equalFold(name, "content-encoding"):
			ce = true
		}
	}

	// Body framing, as httpraw.frameBody does it.
	body := b
	var (
		decoded [64]byte // the first decoded bytes of a chunked body
		nd      int
	)
	switch {
	case noBody:
		return len(body) == 0
	case hasTE:
		if i := bytes.LastIndexByte(te, ','); i >= 0 {
			te = te[i+1:]
		}
		if equalFold(trimOWS(te), "chunked") {
			if !isReq && len(body) == 0 {
				return true // a response to HEAD: no body, as httpraw reads it
			}
			var ok bool
			if nd, ok = r.validChunked(body, &decoded); !ok {
				return false
			}
			// The decoded body is not scanned here: with rules that need
			// it the full path decides.
			switch {
			case !r.userBody && !r.defaults, nd == 0:
				return true
			case r.userBody, formCT, jsCT:
				return false
			}
			return !looksJSON(decoded[:nd])
		}
		if isReq {
			return false
		}
	default:
		if clBad {
			return false
		}
		switch {
		case cl >= 0 && int64(len(body)) == cl:
		case cl >= 0 && !isReq && len(body) == 0:
		case cl >= 0:
			return false
		case isReq && len(body) != 0:
			return false
		}
	}
	if !r.userBody && !r.defaults || len(body) == 0 {
		return true
	}
	// Rules and a body (not chunked): patterns always need the full path,
	// an encoded body is counted as skipped, and form or JSON rules apply
	// when the content type (or, for JSON, the body's first byte) says so.
	js := jsCT || looksJSON(body)
	if r.userBody {
		switch {
		case len(r.patterns) > 0, ce:
			return false
		case len(r.json) > 0 && js:
			return false
		}
	}
	switch {
	case ce:
		return !formCT && !js
	case formCT && !r.paramsClean(body, r.fnames):
		return false
	case js && r.defaults && !r.keysClean(body):
		return false
	}
	return true
}

// paramsClean reports whether no '&'-separated parameter of q has a name
// in names (normName'd); a name with '%' or '+' (which would decode) is
// not clean.
func (r *Redactor) paramsClean(q []byte, names nameList) bool {
	if len(names) == 0 {
		return true
	}
	for len(q) > 0 {
		p := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			p, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		if i := bytes.IndexByte(p, '='); i >= 0 {
			p = p[:i]
		}
		if bytes.IndexByte(p, '%') >= 0 || bytes.IndexByte(p, '+') >= 0 || inNames(p, names) {
			return false
		}
	}
	return true
}

// keysClean reports whether body has no JSON member named by r.keys, by
// the scan the full path falls back on; a name with an escape is not clean.
func (r *Redactor) keysClean(body []byte) bool {
	clean := true
	jsonKeys(body, func(key []byte, _ int) bool {
		if bytes.IndexByte(key, '\\') >= 0 || inNames(key, r.knames) {
			clean = false
		}
		return clean
	})
	return clean
}

// inNames reports whether normName(b) is one of names.
func inNames(b []byte, names nameList) bool {
	if len(b) >= len(names) {
		return false
	}
	for _, n := range names[len(b)] {
		i := 0
		for i < len(b) && normByte(b[i]) == n[i] {
			i++
		}
		if i == len(b) {
			return true
		}
	}
	return false
}

// isHeader reports whether name (a token) is a configured header name.
func (r *Redactor) isHeader(name []byte) bool {
	for _, h := range r.names {
		if len(h) == len(name) && equalFold(name, h) {
			return true
		}
	}
	return false
}

// cutLine is httpraw's nextLine: the line without its ending and the rest.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	end := i
	if end > 0 && b[end-1] == '\r' {
		end--
	}
	return b[:end], b[i+1:], true
}

// requestLine reports whether line is "METHOD TARGET HTTP/x.y" as httpraw
// accepts it: exactly two spaces.
func requestLine(line []byte) bool {
	s1 := bytes.IndexByte(line, ' ')
	if s1 < 0 {
		return false
	}
	s2 := bytes.IndexByte(line[s1+1:], ' ')
	if s2 < 0 {
		return false
	}
	s2 += s1 + 1
	if bytes.IndexByte(line[s2+1:], ' ') >= 0 {
		return false
	}
	return httpraw.IsToken(line[:s1]) && httpraw.IsTarget(line[s1+1:s2]) && httpraw.IsProto(line[s2+1:])
}

// statusLine parses "HTTP/x.y CODE REASON" as httpraw accepts it.
func statusLine(line []byte) (int, bool) {
	proto, after, _ := bytes.Cut(line, []byte(" "))
	code, reason, _ := bytes.Cut(after, []byte(" "))
	if !httpraw.IsProto(proto) || len(code) != 3 || !httpraw.IsDigits(code) ||
		bytes.IndexByte(reason, '\r') >= 0 || bytes.IndexByte(reason, 0) >= 0 {
		return 0, false
	}
	return int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0'), true
}

// contentLength folds one Content-Length field value into *cl as httpraw
// does (a list whose parts all agree with each other and with earlier
// fields). It accepts only plain digit strings of up to 18 digits; anything
// else (a sign, an overflow) is left to the full path.
func contentLength(v []byte, cl *int64) bool {
	for {
		part, rest, more := bytes.Cut(v, []byte(","))
		part = trimOWS(part)
		if len(part) == 0 || len(part) > 18 || !httpraw.IsDigits(part) {
			return false
		}
		var n int64
		for _, c := range part {
			n = n*10 + int64(c-'0')
		}
		if *cl >= 0 && n != *cl {
			return false
		}
		*cl = n
		if !more {
			return true
		}
		v = rest
	}
}

// validChunked reports whether b is a complete chunked body as httpraw's
// dechunk accepts it (chunks, the last chunk, trailers, nothing after) whose
// trailer fields are not configured headers. It copies the first decoded
// bytes into prefix and returns their count.
func (r *Redactor) validChunked(b []byte, prefix *[64]byte) (int, bool) {
	nd := 0
	for {
		line, rest, ok := cutLine(b)
		if !ok {
			return 0, false
		}
		size := line
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			size = line[:i]
		}
		size = bytes.TrimRight(size, " \t")
		n, ok := httpraw.ParseChunkSize(size)
		if !ok {
			return 0, false
		}
		b = rest
		if n == 0 {
			break
		}
		if n > int64(len(b)) {
			return 0, false
		}
		nd += copy(prefix[nd:], b[:n])
		b = b[n:]
		switch {
		case len(b) >= 2 && b[0] == '\r' && b[1] == '\n':
			b = b[2:]
		case len(b) >= 1 && b[0] == '\n':
			b = b[1:]
		default:
			return 0, false
		}
	}
	for first := true; ; first = false {
		line, rest, ok := cutLine(b)
		if !ok {
			return 0, false
		}
		b = rest
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 && line[0] != ' ' && line[0] != '\t' || first && (line[0] == ' ' || line[0] == '\t') {
			return 0, false
		}
		if c > 0 && line[0] != ' ' && line[0] != '\t' && r.isHeader(line[:c]) {
			return 0, false
		}
	}
	return nd, len(b) == 0
}

// looksJSON is isJSON's sniffing for bodies without a media type.
func looksJSON(body []byte) bool {
	t := bytes.TrimLeft(body[:min(len(body), 64)], " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with lower, an ASCII lower-case string, ignoring ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether b contains lower (ASCII lower case),
// ignoring ASCII case.
func containsFold(b []byte, lower string) bool {
	for i := 0; i+len(lower) <= len(b); i++ {
		if equalFold(b[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}

// hasUserinfo reports whether a request line's target is in absolute form
// with a userinfo (GET http://user:pw@host/ HTTP/1.1), which the defaults
// redact.
func hasUserinfo(line []byte) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	t := line[sp+1:]
	i := bytes.Index(t, []byte("://"))
	if i <= 0 || bytes.IndexByte(t[:i], '/') >= 0 {
		return false
	}
	auth := t[i+3:]
	if end := bytes.IndexAny(auth, "/?# "); end >= 0 {
		auth = auth[:end]
	}
	return bytes.IndexByte(auth, '@') >= 0
}
