package httpraw

import (
	"bytes"
	"fmt"
)

// trailerField is one field of a chunked body's trailer section: its bytes
// (continuation lines included) within m.trailers.
type trailerField struct {
	start, end int // byte range in m.trailers
	name       string
	value      string
}

// trailerFields parses the trailer section as dechunk framed it: each line
// with a colon starts a field (its name is the bytes before the colon, as
// written), a line starting with a space or tab continues the previous one.
func (m *message) trailerFields() []trailerField {
	var out []trailerField
	b, off := m.trailers, 0
	for {
		line, eol, rest, ok := nextLine(b)
		if !ok || len(line) == 0 {
			return out
		}
		n := len(line) + len(eol)
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) > 0 {
				f := &out[len(out)-1]
				f.end = off + n
				if v := trimOWS(string(line)); v != "" {
					if f.value == "" {
						f.value = v
					} else {
						f.value += " " + v
					}
				}
			}
		} else if c := bytes.IndexByte(line, ':'); c > 0 {
			out = append(out, trailerField{start: off, end: off + n, name: string(line[:c]), value: trimOWS(string(line[c+1:]))})
		}
		b, off = rest, off+n
	}
}

// Trailers returns the fields of a chunked body's trailer section, in order
// (nil for a message that is not chunked or has no trailers).
func (m *message) Trailers() []Field {
	fs := m.trailerFields()
	if len(fs) == 0 {
		return nil
	}
	out := make([]Field, len(fs))
	for i, f := range fs {
		out[i] = Field{Name: f.name, Value: f.value}
	}
	return out
}

// SetTrailerAt sets the value of the i-th trailer field (as numbered by
// Trailers), keeping its name as written; continuation lines are folded
// into the one new line.
func (m *message) SetTrailerAt(i int, value string) error {
	fs := m.trailerFields()
	if i < 0 || i >= len(fs) {
		return fmt.Errorf("httpraw: trailer index %d out of range [0,%d)", i, len(fs))
	}
	value = trimOWS(value)
	f := fs[i]
	if bytes.ContainsAny([]byte(value), "\r\n\x00") {
		return fmt.Errorf("httpraw: trailer %d: value contains CR, LF or NUL", i)
	}
	if f.value == value {
		return nil
	}
	eol := m.eol
	if r := m.trailers[:f.end]; len(r) >= 2 && r[len(r)-2] == '\r' {
		eol = "\r\n"
	} else if len(r) >= 1 {
		eol = "\n"
	}
	tr := make([]byte, 0, len(m.trailers)+len(value))
	tr = append(tr, m.trailers[:f.start]...)
	tr = append(tr, f.name+": "+value+eol...)
	tr = append(tr, m.trailers[f.end:]...)
	head := m.body[:len(m.body)-len(m.trailers)]
	body := append(append(make([]byte, 0, len(head)+len(tr)), head...), tr...)
	m.body = body
	m.trailers = body[len(head):len(body):len(body)]
	m.dirty = true
	return nil
}
