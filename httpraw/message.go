// Package httpraw parses one complete HTTP/1.x message held as raw bytes and
// edits it in place: every byte an edit does not touch stays as it was
// (header order, name case, line endings, spacing). Bytes of an unedited
// message are the input slice itself.
//
// Unlike net/http, it never round-trips through a parsed model, so a replayed
// request is byte-faithful to the captured one except for declared edits.
//
// Body framing follows RFC 9112: Transfer-Encoding chunked wins over
// Content-Length; a request with neither has no body; a response with neither
// is read until close (everything after the header block is the body); 1xx,
// 204 and 304 responses have no body. A response whose Content-Length or
// chunked Transfer-Encoding is not matched by an empty body (HEAD and
// 304-like responses) is accepted.
//
// SetBody on a chunked message keeps chunked framing: the new body is written
// as one chunk followed by the last chunk and the original trailers, so the
// header block is left alone. Content-Encoding is never decoded.
package httpraw

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every parse error, so callers can count bad input.
var ErrMalformed = errors.New("httpraw: malformed message")

// Field is one header field as it appears in the message.
type Field struct {
	// Name keeps its original case.
	Name string
	// Value is trimmed of surrounding whitespace; obs-folded lines are joined
	// with one space.
	Value string
}

// field is a header line (or several, with obs-fold) and its parsed parts.
type field struct {
	raw   []byte // the line(s) including line endings
	name  string
	sep   string // whitespace between the colon and the value on the first line
	value string
}

// message holds the parts shared by requests and responses.
type message struct {
	raw      []byte // the input, or the last rebuilt bytes when clean
	dirty    bool   // an edit changed something since raw was built
	eol      string // the start line's line ending, used for new lines
	fields   []field
	blank    []byte // the empty line ending the header block
	body     []byte // raw body bytes (chunked encoding included)
	chunked  bool
	trailers []byte // chunked: trailer section including its final empty line
	noBody   bool   // response status that cannot carry a body
	isReq    bool
	headOnly bool // parsed by Parse*Head: the body is kept as it is, unframed
	hostSet  bool // an edit set the Host header (see Request.HostSet)
}

// rebuild returns the message with all edits applied behind the start line
// start; without (effective) edits it is raw as parsed.
func (m *message) rebuild(start []byte) []byte {
	if !m.dirty {
		return m.raw
	}
	n := len(start) + len(m.blank) + len(m.body)
	for _, f := range m.fields {
		n += len(f.raw)
	}
	out := append(make([]byte, 0, n), start...)
	m.raw, m.dirty = m.appendRest(out), false
	return m.raw
}

// parseError is a parse error; it matches ErrMalformed with errors.Is.
type parseError struct{ msg string }

func (e *parseError) Error() string        { return "httpraw: " + e.msg }
func (e *parseError) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return &parseError{msg: fmt.Sprintf(format, args...)}
}

// nextLine returns the line starting at b[0] without its ending, the ending,
// and the rest. ok is false when no '\n' is found.
func nextLine(b []byte) (line, eol, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, b, false
	}
	end := i
	if end > 0 && b[end-1] == '\r' {
		end--
	}
	return b[:end], b[end : i+1], b[i+1:], true
}

// parseHead parses the header block after the start line and frames the body.
func (m *message) parseHead(b []byte) error {
	for ln := 2; ; ln++ { // ln: the line number in the message (the start line is 1)
		line, eol, rest, ok := nextLine(b)
		if !ok {
			return malformed("header block not terminated by an empty line")
		}
		if len(line) == 0 {
			m.blank = b[:len(eol)]
			b = rest
			break
		}
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			return malformed("header line %d contains CR or NUL", ln)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(m.fields) == 0 {
				return malformed("continuation line %d before any header", ln)
			}
			f := &m.fields[len(m.fields)-1]
			f.raw = f.raw[:len(f.raw)+len(line)+len(eol)] // raw lines are contiguous in the input
			if v := trimOWS(string(line)); v != "" {
				if f.value == "" {
					f.value = v
				} else {
					f.value += " " + v
				}
			}
			b = rest
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validToken(string(line[:colon])) {
			return malformed("header line %d: want name: value", ln)
		}
		v := line[colon+1:]
		n := 0
		for n < len(v) && (v[n] == ' ' || v[n] == '\t') {
			n++
		}
		m.fields = append(m.fields, field{
			raw:   b[: len(line)+len(eol) : len(line)+len(eol)+len(rest)],
			name:  string(line[:colon]),
			sep:   string(v[:n]),
			value: trimOWS(string(v)),
		})
		b = rest
	}
	// Cap raw slices now that extension through obs-fold is done.
	for i := range m.fields {
		r := m.fields[i].raw
		m.fields[i].raw = r[:len(r):len(r)]
	}
	return m.frameBody(b)
}

func (m *message) frameBody(b []byte) error {
	m.body = b
	if m.headOnly {
		return nil
	}
	isReq := m.isReq
	if m.noBody {
		if len(b) != 0 {
			return malformed("%d bytes of body in a response whose status has no body", len(b))
		}
		return nil
	}
	if te, chunked := m.transferEncoding(); te {
		if chunked {
			if !isReq && len(b) == 0 {
				// A response to HEAD (or a 304-like one) announces a
				// chunked body but carries none, as with Content-Length.
				return nil
			}
			m.chunked = true
			_, trailers, err := dechunk(b, false)
			if err != nil {
				return err
			}
			m.trailers = trailers
			return nil
		}
		if isReq {
			return malformed("request Transfer-Encoding does not end with chunked")
		}
		return nil // response read until close
	}
	cl, ok, err := m.contentLength()
	if err != nil {
		return err
	}
	switch {
	case ok && int64(len(b)) == cl:
	case ok && !isReq && len(b) == 0:
		// A response to HEAD (or similar) announces a length but carries no body.
	case ok && int64(len(b)) < cl:
		return malformed("body truncated: %d of Content-Length %d bytes", len(b), cl)
	case ok:
		return malformed("%d bytes after the Content-Length %d body", int64(len(b))-cl, cl)
	case isReq && len(b) != 0:
		return malformed("%d bytes of body in a request without Content-Length or Transfer-Encoding", len(b))
	}
	return nil
}

// transferEncoding reports whether the message has a Transfer-Encoding
// field and whether its last coding is chunked (ASCII case only, as net/http
// and servers read it: a Kelvin sign is no K).
func (m *message) transferEncoding() (te, chunked bool) {
	v, te := m.joined("Transfer-Encoding")
	if !te {
		return false, false
	}
	codings := strings.Split(v, ",")
	return true, equalFoldBytes([]byte(trimOWS(codings[len(codings)-1])), "chunked")
}

// contentLength returns the Content-Length; several fields or a list must agree.
func (m *message) contentLength() (int64, bool, error) {
	var cl int64 = -1
	for _, f := range m.fields {
		if !strings.EqualFold(f.name, "Content-Length") {
			continue
		}
		for _, part := range strings.Split(f.value, ",") {
			part = trimOWS(part)
			n, err := strconv.ParseInt(part, 10, 64)
			if err != nil || !digits(part) { // digits only: not "+3", nor "-0"
				return 0, false, malformed("invalid Content-Length (%d bytes): want digits", len(f.value))
			}
			if cl >= 0 && n != cl {
				return 0, false, malformed("conflicting Content-Length values %d and %d", cl, n)
			}
			cl = n
		}
	}
	return cl, cl >= 0, nil
}

// joined returns the values of all fields named name joined with ", ".
func (m *message) joined(name string) (string, bool) {
	var vals []string
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			vals = append(vals, f.value)
		}
	}
	return strings.Join(vals, ", "), vals != nil
}

// Header returns the value of the first field named name (case-insensitive).
func (m *message) Header(name string) (string, bool) {
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// Values returns the values of every field named name, in order.
func (m *message) Values(name string) []string {
	var vals []string
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			vals = append(vals, f.value)
		}
	}
	return vals
}

// Headers returns every header field in order, duplicates included.
func (m *message) Headers() []Field {
	out := make([]Field, len(m.fields))
	for i, f := range m.fields {
		out[i] = Field{Name: f.name, Value: f.value}
	}
	return out
}

// SetHeader sets the first field named name to value in place (keeping its
// position, name case and spacing), removes later fields of that name, and
// appends "name: value" before the empty line when there is none. value is
// trimmed of surrounding whitespace. Setting the value a field already has
// changes nothing.
func (m *message) SetHeader(name, value string) error {
	value = trimOWS(value)
	if err := checkField(name, value); err != nil {
		return err
	}
	m.hostSet = m.hostSet || m.isReq && strings.EqualFold(name, "Host")
	first := -1
	for i := 0; i < len(m.fields); i++ {
		if !strings.EqualFold(m.fields[i].name, name) {
			continue
		}
		if first < 0 {
			first = i
			m.setFieldValue(i, value)
			continue
		}
		m.fields = append(m.fields[:i:i], m.fields[i+1:]...)
		m.dirty = true
		i--
	}
	if first < 0 {
		m.fields = append(m.fields[:len(m.fields):len(m.fields)], field{
			raw: []byte(name + ": " + value + m.eol), name: name, sep: " ", value: value,
		})
		m.dirty = true
	}
	return nil
}

// SetHeaderAt sets the value of the i-th field (as numbered by Headers),
// keeping its name case and position.
func (m *message) SetHeaderAt(i int, value string) error {
	if i < 0 || i >= len(m.fields) {
		return fmt.Errorf("httpraw: header index %d out of range [0,%d)", i, len(m.fields))
	}
	value = trimOWS(value)
	if err := checkField(m.fields[i].name, value); err != nil {
		return err
	}
	m.hostSet = m.hostSet || m.isReq && strings.EqualFold(m.fields[i].name, "Host")
	m.setFieldValue(i, value)
	return nil
}

func (m *message) setFieldValue(i int, value string) {
	f := &m.fields[i]
	if f.value == value {
		return
	}
	eol := "\r\n"
	if r := f.raw; len(r) < 2 || r[len(r)-2] != '\r' {
		eol = "\n"
	}
	f.raw = []byte(f.name + ":" + f.sep + value + eol)
	f.value = value
	m.dirty = true
}

// RemoveHeader removes every field named name and reports how many it removed.
func (m *message) RemoveHeader(name string) int {
	n := 0
	kept := make([]field, 0, len(m.fields))
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			n++
			continue
		}
		kept = append(kept, f)
	}
	if n > 0 {
		m.fields = kept
		m.dirty = true
	}
	return n
}

// Body returns the raw body bytes as on the wire (still chunk-encoded when
// the message is chunked).
func (m *message) Body() []byte { return m.body }

// Chunked reports whether the body uses chunked transfer coding.
func (m *message) Chunked() bool { return m.chunked }

// DecodedBody returns the body without chunked framing. Content-Encoding
// (gzip, …) is not decoded.
func (m *message) DecodedBody() ([]byte, error) {
	if !m.chunked {
		return m.body, nil
	}
	data, _, err := dechunk(m.body, true)
	return data, err
}

// SetBody replaces the body with b and keeps the framing right: a
// Content-Length field is updated in place; a chunked body becomes one chunk
// plus the last chunk and the original trailers; a request without either
// gains "Content-Length" when b is not empty; a read-until-close response
// just gets the new bytes. Setting the body the message already has changes
// nothing.
func (m *message) SetBody(b []byte) error {
	if m.headOnly {
		return errors.New("httpraw: set body: the message was parsed without its body framing")
	}
	if m.noBody {
		if len(b) == 0 {
			return nil
		}
		return errors.New("httpraw: set body: this response status cannot carry a body")
	}
	// A response to HEAD (or a 304-like one) may announce a chunked body
	// and carry none: its new body is chunked too, or it would not parse.
	_, teChunked := m.transferEncoding()
	if m.chunked || teChunked {
		old, err := m.DecodedBody()
		if err == nil && bytes.Equal(old, b) {
			return nil
		}
		trailers := m.trailers
		if !m.chunked {
			trailers = []byte(m.eol) // no trailer fields: the final empty line
		}
		var nb []byte
		if len(b) > 0 {
			nb = append(nb, strconv.FormatInt(int64(len(b)), 16)...)
			nb = append(nb, m.eol...)
			nb = append(nb, b...)
			nb = append(nb, m.eol...)
		}
		nb = append(nb, '0')
		nb = append(nb, m.eol...)
		nb = append(nb, trailers...)
		m.body = nb
		m.chunked, m.trailers = true, nb[len(nb)-len(trailers):len(nb):len(nb)]
		m.dirty = true
		return nil
	}
	_, hasCL, _ := m.contentLength()
	if bytes.Equal(m.body, b) && (hasCL || len(b) == 0) {
		return nil
	}
	if hasCL || m.isReq {
		if err := m.SetHeader("Content-Length", strconv.Itoa(len(b))); err != nil {
			return err
		}
	}
	m.body = append([]byte(nil), b...)
	m.dirty = true
	return nil
}

// appendRest appends the header fields, the empty line and the body.
func (m *message) appendRest(out []byte) []byte {
	for _, f := range m.fields {
		out = append(out, f.raw...)
	}
	out = append(out, m.blank...)
	return append(out, m.body...)
}

func checkField(name, value string) error {
	if !validToken(name) {
		return fmt.Errorf("httpraw: invalid header name %q", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("httpraw: header %s: value contains CR, LF or NUL", name)
	}
	return nil
}

// ValidHeaderName reports whether name can name a header field (an RFC
// 9110 token): what a rewrite step that sets or removes one must give.
func ValidHeaderName(name string) bool { return validToken(name) }

// validToken reports whether s is an RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

// clip shortens b for error messages.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:60:60], "..."...)
	}
	return b
}
