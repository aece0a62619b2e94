package httpraw

import "bytes"

// CheckRequest reports whether raw is one whole HTTP/1.x request, by the
// rules of ParseRequest (the same errors), without allocating when it is:
// a replay checks every request it sends with it, so that what does not
// parse (a foreign producer's record, a damaged .gor payload) is counted
// and not sent, filter or not, instead of leaving a target waiting for
// bytes its head promises.
func CheckRequest(raw []byte) error {
	line, _, rest, ok := nextLine(raw)
	if !ok {
		return malformed("malformed request line (%d bytes): not terminated", len(raw))
	}
	method, after, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(after, []byte(" "))
	if !ok1 || !ok2 || bytes.IndexByte(proto, ' ') >= 0 || !IsToken(method) || !IsTarget(target) || !IsProto(proto) {
		return malformed("malformed request line (%d bytes, %d spaces): want METHOD TARGET HTTP/x.y", len(line), bytes.Count(line, []byte(" ")))
	}
	// The header block, as parseHead reads it.
	cl, chunked, te, fold := int64(-1), false, false, false
	var clErr error // told only without Transfer-Encoding, as frameBody does
	b := rest
	for ln := 2; ; ln++ {
		line, _, rest, ok := nextLine(b)
		if !ok {
			return malformed("header block not terminated by an empty line")
		}
		b = rest
		if len(line) == 0 {
			break
		}
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			return malformed("header line %d contains CR or NUL", ln)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if ln == 2 {
				return malformed("continuation line %d before any header", ln)
			}
			// A folded Content-Length or Transfer-Encoding is rare
			// enough to leave to ParseRequest.
			fold = true
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !IsToken(line[:colon]) {
			return malformed("header line %d: want name: value", ln)
		}
		name := line[:colon]
		if len(name) != len("Content-Length") && len(name) != len("Transfer-Encoding") {
			continue
		}
		value := bytes.Trim(line[colon+1:], " \t")
		switch {
		case equalFoldBytes(name, "Transfer-Encoding"):
			te = true
			last := value
			if i := bytes.LastIndexByte(value, ','); i >= 0 {
				last = bytes.Trim(value[i+1:], " \t")
			}
			chunked = equalFoldBytes(last, "chunked")
		case equalFoldBytes(name, "Content-Length") && clErr == nil:
			for part := range bytes.SplitSeq(value, []byte(",")) {
				part = bytes.Trim(part, " \t")
				n, ok := parseDigits(part)
				if !ok {
					clErr = malformed("invalid Content-Length (%d bytes): want digits", len(value))
					break
				}
				if cl >= 0 && n != cl {
					clErr = malformed("conflicting Content-Length values %d and %d", cl, n)
					break
				}
				cl = n
			}
		}
	}
	if fold {
		// Folded lines can continue a framing field: ParseRequest joins them.
		_, err := ParseRequest(raw)
		return err
	}
	switch {
	case te && chunked:
		_, _, err := dechunk(b, false)
		return err
	case te:
		return malformed("request Transfer-Encoding does not end with chunked")
	case clErr != nil:
		return clErr
	case cl >= 0 && int64(len(b)) == cl:
	case cl >= 0 && int64(len(b)) < cl:
		return malformed("body truncated: %d of Content-Length %d bytes", len(b), cl)
	case cl >= 0:
		return malformed("%d bytes after the Content-Length %d body", int64(len(b))-cl, cl)
	case len(b) != 0:
		return malformed("%d bytes of body in a request without Content-Length or Transfer-Encoding", len(b))
	}
	return nil
}

// tokenChars marks the bytes of an RFC 9110 token.
var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(c)) >= 0
	}
	return t
}()

// IsToken reports whether b is an RFC 9110 token (a method, a field name).
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// IsTarget reports whether b can be a request target: not empty, no byte
// <= ' ' or DEL.
func IsTarget(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// IsProto reports whether b is "HTTP/" followed by digits, '.' and digits.
func IsProto(b []byte) bool {
	v, ok := bytes.CutPrefix(b, []byte("HTTP/"))
	if !ok {
		return false
	}
	major, minor, ok := bytes.Cut(v, []byte("."))
	return ok && IsDigits(major) && IsDigits(minor)
}

// IsDigits reports whether b is one or more ASCII digits.
func IsDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseDigits parses a Content-Length value as strconv.ParseInt(s, 10, 64)
// does for digits only (no sign); ok is false past int64.
func parseDigits(b []byte) (int64, bool) {
	if !IsDigits(b) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func equalFoldBytes(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
