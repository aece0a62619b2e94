package httpraw

import (
	"bytes"
	"fmt"
	"strconv"
)

// Response is a parsed HTTP/1.x response; see Request for the shared header
// and body methods. A Response is not safe for concurrent use.
type Response struct {
	message
	start  []byte // status line with its ending
	proto  string
	code   int
	reason string
}

// ParseResponse parses one complete response. The Response keeps references
// into raw, which must not change while the Response is in use.
func ParseResponse(raw []byte) (*Response, error) { return parseResponse(raw, false) }

// ParseResponseHead is ParseRequestHead for a response.
func ParseResponseHead(raw []byte) (*Response, error) { return parseResponse(raw, true) }

func parseResponse(raw []byte, headOnly bool) (*Response, error) {
	line, eol, rest, ok := nextLine(raw)
	if !ok {
		return nil, malformed("malformed status line (%d bytes): not terminated", len(raw))
	}
	proto, after, _ := bytes.Cut(line, []byte(" "))
	codeText, reason, _ := bytes.Cut(after, []byte(" "))
	if !validProto(string(proto)) || len(codeText) != 3 || !digits(string(codeText)) ||
		bytes.IndexByte(reason, '\r') >= 0 || bytes.IndexByte(reason, 0) >= 0 {
		return nil, malformed("malformed status line (%d bytes): want HTTP/x.y CODE REASON", len(line))
	}
	code, _ := strconv.Atoi(string(codeText))
	r := &Response{
		start:  raw[: len(line)+len(eol) : len(line)+len(eol)],
		proto:  string(proto),
		code:   code,
		reason: string(reason),
	}
	r.raw, r.eol, r.headOnly = raw, string(eol), headOnly
	r.noBody = code < 200 || code == 204 || code == 304
	if err := r.parseHead(rest); err != nil {
		return nil, fmt.Errorf("%w (response %d)", err, code)
	}
	return r, nil
}

// Bytes returns the message with all edits applied. Without (effective) edits
// it is the slice given to ParseResponse.
func (r *Response) Bytes() []byte { return r.rebuild(r.start) }

// Proto returns the protocol version, such as "HTTP/1.1".
func (r *Response) Proto() string { return r.proto }

// StatusCode returns the three-digit status code.
func (r *Response) StatusCode() int { return r.code }

// Reason returns the reason phrase (may be empty).
func (r *Response) Reason() string { return r.reason }
