// Package h2text is the textual form replayctl stores HTTP/2 messages in: an
// HTTP/1.1-style rendering with "HTTP/2.0" as the protocol, so that kcat
// users can read a recorded stream and filter, rewrite, redact and compare
// work on it unchanged. docs/http2.md describes the form; in short:
//
//	POST /grpc.health.v1.Health/Check HTTP/2.0\r\n     :method :path
//	Host: 127.0.0.1:50051\r\n                          :authority (capital H: from the pseudo-header)
//	content-type: application/grpc\r\n                 header fields in wire order, names as on
//	te: trailers\r\n                                   the wire (lower case)
//	Content-Length: 7\r\n                              capital C: added by replayctl (length of the DATA)
//	X-Replayctl-Trailer-grpc-status: 0\r\n             a trailer field (after the body on the wire)
//	\r\n
//	<the DATA bytes, exactly, gRPC 5-byte framing included>
//
// A response starts "HTTP/2.0 <:status> <reason>" (the reason phrase is the
// standard one; HTTP/2 has none). A lower-case content-length or host was on
// the wire and is sent again on replay; the capitalised Host and
// Content-Length lines are replayctl's and are not sent as header fields.
//
// ParseRequest reads a request for sending over HTTP/2; AppendHTTP1 turns
// one into an HTTP/1.1 request for a server that speaks HTTP/1.x.
package h2text

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/replayctl/replayctl/httpraw"
)

// Proto is the protocol name of the start line of an HTTP/2 message.
const Proto = "HTTP/2.0"

// TrailerPrefix prefixes the name of a trailer field rendered in the header
// section.
const TrailerPrefix = "X-Replayctl-Trailer-"

// Field is one header field as decoded from HPACK.
type Field struct{ Name, Value string }

// ErrField is wrapped by the errors of fields that cannot be rendered as a
// header line (a CR, LF or NUL in a value, an invalid name).
var ErrField = errors.New("h2text: field cannot be rendered")

// checkField refuses what would break the header-line form.
func checkField(f Field) error {
	if f.Name == "" {
		return fmt.Errorf("%w: empty name", ErrField)
	}
	// A token (RFC 9110 §5.1), as httpraw reads it back: HPACK itself
	// would carry any bytes, "a/b" or "a(b)" included.
	if !httpguts.ValidHeaderFieldName(f.Name) {
		return fmt.Errorf("%w: name %q", ErrField, f.Name)
	}
	if strings.ContainsAny(f.Value, "\r\n\x00") {
		return fmt.Errorf("%w: value of %q holds CR, LF or NUL", ErrField, f.Name)
	}
	return nil
}

// contentLength reads a content-length field's value: one length, or a
// list that agrees (as httpraw reads it back).
func contentLength(value string) (int64, error) {
	want := int64(-1)
	for part := range strings.SplitSeq(value, ",") {
		part = strings.Trim(part, " \t")
		v, err := strconv.ParseInt(part, 10, 64)
		if err != nil || !httpraw.IsDigits([]byte(part)) || (want >= 0 && v != want) { // digits only: not "+3", nor "-0"
			return 0, fmt.Errorf("%w: content-length %q is not one length", ErrField, value)
		}
		want = v
	}
	return want, nil
}

// LengthFrames reports (ErrField) a content-length field among fields that
// does not frame the n bytes of DATA of a whole message: RFC 9113 §8.1.1
// calls it malformed, and rendered, its head would promise bytes that are
// not there. A response may announce a length and carry none (to HEAD, a
// 304). A message whose body was cut when captured is not whole: its
// content-length is the one on the wire.
func LengthFrames(fields []Field, n int, response bool) error {
	for _, f := range fields {
		if f.Name != "content-length" {
			continue
		}
		want, err := contentLength(f.Value)
		if err != nil {
			return err
		}
		if want != int64(n) && !(response && n == 0) {
			return fmt.Errorf("%w: content-length %d does not frame the %d bytes of DATA", ErrField, want, n)
		}
	}
	return nil
}

func appendField(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, strings.Trim(value, " \t")...)
	return append(dst, "\r\n"...)
}

// appendFields writes regular fields, Content-Length when the fields have
// none and withLength is set, the trailers, and the blank line.
func appendFields(dst []byte, fields []Field, body []byte, size int64, withLength bool, trailers []Field) ([]byte, error) {
	hasLength := false
	for _, f := range fields {
		if f.Name != "" && f.Name[0] == ':' {
			continue
		}
		if err := checkField(f); err != nil {
			return dst, err
		}
		if f.Name == "content-length" {
			if _, err := contentLength(f.Value); err != nil {
				return dst, err
			}
			hasLength = true
		}
		dst = appendField(dst, f.Name, f.Value)
	}
	if !hasLength && withLength {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, size, 10)
		dst = append(dst, "\r\n"...)
	}
	for _, f := range trailers {
		if f.Name != "" && f.Name[0] == ':' {
			continue
		}
		if err := checkField(f); err != nil {
			return dst, err
		}
		dst = appendField(dst, TrailerPrefix+f.Name, f.Value)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...), nil
}

func pseudo(fields []Field, name string) (string, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f.Value, true
		}
		if f.Name == "" || f.Name[0] != ':' {
			break
		}
	}
	return "", false
}

// AppendRequest renders a request stream: fields are the decoded header
// block (pseudo-headers first), body the DATA bytes, trailers the trailer
// block (nil when none).
func AppendRequest(dst []byte, fields []Field, body []byte, trailers []Field) ([]byte, error) {
	method, ok := pseudo(fields, ":method")
	if !ok || !httpguts.ValidHeaderFieldName(method) { // a token, as a request line's method
		return dst, fmt.Errorf("%w: request without a valid :method", ErrField)
	}
	path, _ := pseudo(fields, ":path")
	if method == "CONNECT" && path == "" {
		path, _ = pseudo(fields, ":authority")
	}
	if !httpraw.ValidTarget(path) {
		return dst, fmt.Errorf("%w: request without a valid :path", ErrField)
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, path...)
	dst = append(dst, " HTTP/2.0\r\n"...)
	if a, ok := pseudo(fields, ":authority"); ok {
		if err := checkField(Field{"Host", a}); err != nil {
			return dst, err
		}
		dst = appendField(dst, "Host", a)
	}
	return appendFields(dst, fields, body, int64(len(body)), len(body) > 0, trailers)
}

// AppendResponse renders a response stream like AppendRequest.
func AppendResponse(dst []byte, fields []Field, body []byte, trailers []Field) ([]byte, error) {
	return AppendResponsePrefix(dst, fields, body, int64(len(body)), trailers)
}

// AppendResponsePrefix renders a response whose content is size bytes
// long, of which body holds only the first ones (a client that keeps a
// prefix of what it reads): the Content-Length it adds, when the fields
// have none, is size; the rendering ends with body.
func AppendResponsePrefix(dst []byte, fields []Field, body []byte, size int64, trailers []Field) ([]byte, error) {
	st, ok := pseudo(fields, ":status")
	code, err := strconv.Atoi(st)
	if !ok || err != nil || len(st) != 3 || code < 100 {
		return dst, fmt.Errorf("%w: response without a valid :status", ErrField)
	}
	dst = append(dst, "HTTP/2.0 "...)
	dst = append(dst, st...)
	if t := http.StatusText(code); t != "" {
		dst = append(dst, ' ')
		dst = append(dst, t...)
	}
	dst = append(dst, "\r\n"...)
	noBody := code < 200 || code == 204 || code == 304
	if noBody && size > 0 {
		// RFC 9110 §6.4.1: these carry no content; DATA makes the
		// response malformed (RFC 9113 §8.1.1), and its rendering would
		// not parse back.
		return dst, fmt.Errorf("%w: status %d carries no content, but %d bytes of DATA came", ErrField, code, size)
	}
	return appendFields(dst, fields, body, size, !noBody, trailers)
}

// IsH2 reports whether raw starts with the start line of an HTTP/2 message
// in this form.
func IsH2(raw []byte) bool {
	line := raw
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line = raw[:i]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	return bytes.HasSuffix(line, []byte(" "+Proto)) || bytes.HasPrefix(line, []byte(Proto+" "))
}

// Request is a request ready to go out as an HTTP/2 stream.
type Request struct {
	Method, Authority, Path string
	// Header holds the regular fields in order, names in lower case, without
	// the fields HTTP/2 forbids (Connection and the like).
	Header []Field
	Body   []byte
	// Trailer holds the trailer fields, in order, names in lower case,
	// without the fields a trailer may not carry (RFC 9110 §6.5.1: framing,
	// routing, authentication, request modifiers and content metadata, such
	// as Content-Length, Host, Authorization, TE, Trailer, Content-Type) nor
	// the connection-specific ones.
	Trailer []Field
}

// trailerOK says whether a trailer field named name (lower case) may go
// out in an HTTP/2 trailer section.
func trailerOK(name string) bool {
	return !hopByHop[name] && name != "" && name[0] != ':' && httpguts.ValidTrailerHeader(name)
}

// connection-specific fields that HTTP/2 forbids (RFC 9113 §8.2.2).
var hopByHop = map[string]bool{
	"connection": true, "proxy-connection": true, "keep-alive": true,
	"transfer-encoding": true, "upgrade": true, "http2-settings": true,
}

// ParseRequest reads a request in this form, or an HTTP/1.x request, for
// sending over HTTP/2. For an HTTP/2.0 request the capitalised Host and
// Content-Length lines become :authority and the DATA length; for an
// HTTP/1.x request any Host gives :authority, the connection-specific
// fields are left out, a chunked body is decoded and its trailer section
// gives the trailers. Trailer fields that may not be trailers are left out.
func ParseRequest(raw []byte) (*Request, error) {
	hr, err := httpraw.ParseRequest(raw)
	if err != nil {
		return nil, err
	}
	h2 := hr.Proto() == Proto
	r := &Request{Method: hr.Method(), Path: hr.Target()}
	if r.Body, err = hr.DecodedBody(); err != nil {
		return nil, err
	}
	hdrs := hr.Headers()
	r.Header = make([]Field, 0, len(hdrs))
	for _, f := range hdrs {
		switch {
		case h2 && f.Name == "Host", !h2 && strings.EqualFold(f.Name, "host"):
			if r.Authority == "" {
				r.Authority = f.Value
			}
		case h2 && f.Name == "Content-Length":
		case len(f.Name) > len(TrailerPrefix) && strings.EqualFold(f.Name[:len(TrailerPrefix)], TrailerPrefix):
			if name := strings.ToLower(f.Name[len(TrailerPrefix):]); trailerOK(name) {
				r.Trailer = append(r.Trailer, Field{name, f.Value})
			}
		default:
			name := strings.ToLower(f.Name)
			if hopByHop[name] || name == "te" && !strings.EqualFold(f.Value, "trailers") {
				continue
			}
			if !h2 && name == "content-length" && hr.Chunked() {
				continue
			}
			r.Header = append(r.Header, Field{name, f.Value})
		}
	}
	if !h2 && hr.Chunked() {
		for _, f := range hr.Trailers() {
			name := strings.ToLower(f.Name)
			if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(f.Value) {
				return nil, fmt.Errorf("h2text: invalid trailer field %q", f.Name)
			}
			if trailerOK(name) {
				r.Trailer = append(r.Trailer, Field{name, f.Value})
			}
		}
	}
	if !strings.HasPrefix(r.Path, "/") && r.Path != "*" && r.Method != "CONNECT" {
		// An absolute-form target: keep its path (with its query) and
		// authority, which ends at the first '/', '?' or '#' and loses
		// any userinfo (RFC 9113 §8.3.1: :authority carries none).
		// Read as httpraw reads the target.
		if auth, path, ok := httpraw.SplitAbsolute(r.Path); ok {
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			r.Authority, r.Path = auth, path
		}
	}
	return r, nil
}

// ErrGRPC is returned by AppendHTTP1 for a gRPC request (content type
// application/grpc, application/grpc+proto, …): gRPC needs HTTP/2 (its
// status travels in trailers, its framing in DATA), so it has no HTTP/1.x
// form. gRPC-Web (application/grpc-web…) is made for HTTP/1.1 and is not
// refused.
var ErrGRPC = errors.New("h2text: a gRPC request cannot go over HTTP/1.x (it needs HTTP/2)")

// IsGRPC reports whether a content type is gRPC's (application/grpc, alone
// or followed by "+" or ";"), not gRPC-Web's.
func IsGRPC(contentType string) bool {
	const p = "application/grpc"
	if len(contentType) < len(p) || !strings.EqualFold(contentType[:len(p)], p) {
		return false
	}
	rest := contentType[len(p):]
	return rest == "" || rest[0] == '+' || rest[0] == ';' || rest[0] == ' '
}

// isTrailerField reports whether name is a trailer rendered in the header
// section (TrailerPrefix, in any case), and returns the trailer's name.
func isTrailerField(name string) (string, bool) {
	if len(name) < len(TrailerPrefix) || !strings.EqualFold(name[:len(TrailerPrefix)], TrailerPrefix) {
		return "", false
	}
	return name[len(TrailerPrefix):], true
}

// http1Skip reports whether a header field of the stored form stays out of
// the HTTP/1.1 header section AppendHTTP1 writes: the fields it writes
// itself (Host, framing, the trailer declaration), the trailers, and what
// is connection-specific.
func http1Skip(f httpraw.Field) bool {
	if _, ok := isTrailerField(f.Name); ok {
		return true
	}
	if strings.EqualFold(f.Name, "te") {
		return !strings.EqualFold(f.Value, "trailers")
	}
	for _, name := range http1Own {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// http1Own are the fields AppendHTTP1 leaves out whatever their value: it
// writes Host and the framing itself, and the rest are connection-specific
// (hopByHop).
var http1Own = []string{"host", "content-length", "trailer",
	"connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade", "http2-settings"}

// AppendHTTP1 appends to dst the HTTP/1.1 request equivalent to raw, a
// request in this form ("METHOD PATH HTTP/2.0"), for a server that speaks
// HTTP/1.x:
//
//   - the start line is "METHOD PATH HTTP/1.1";
//   - Host is the capitalised Host line (:authority), or else the first
//     host field of the wire; there is always one (empty without an
//     authority, as RFC 9112 §3.2 asks);
//   - the regular fields follow in order, names as stored (HTTP/1.x names
//     are case-insensitive), several cookie fields joined into one with
//     "; " (RFC 9113 §8.2.3); connection-specific fields, a te other than
//     "trailers", the recorded content-length and trailer fields and the
//     X-Replayctl-Trailer- lines are left out;
//   - without trailers the body is framed by Content-Length, the body's
//     length (written for an empty body when the stream had a
//     content-length or the method is POST, PUT or PATCH);
//   - with trailers (those a trailer may carry, as for HTTP/2, see
//     Request.Trailer) the body is chunked ("Transfer-Encoding: chunked",
//     the trailers declared by a Trailer field) and the trailers follow
//     the last chunk.
//
// A gRPC request is refused with ErrGRPC; raw that does not parse, is not
// in this form, or has a field value with a control byte, is an error.
func AppendHTTP1(dst, raw []byte) ([]byte, error) {
	hr, err := httpraw.ParseRequest(raw)
	if err != nil {
		return dst, err
	}
	if hr.Proto() != Proto {
		return dst, fmt.Errorf("h2text: %s request, want %s", hr.Proto(), Proto)
	}
	body, err := hr.DecodedBody()
	if err != nil {
		return dst, err
	}
	hdrs := hr.Headers()
	host, hostSet, hadLength := "", false, false
	ntrailers := 0
	for _, f := range hdrs {
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			// As x/net refuses it for HTTP/2 (a control byte).
			return dst, fmt.Errorf("%w: value of %q", ErrField, f.Name)
		}
		switch {
		case f.Name == "Host":
			if !hostSet {
				host, hostSet = f.Value, true
			}
		case strings.EqualFold(f.Name, "content-type"):
			if IsGRPC(f.Value) {
				return dst, ErrGRPC
			}
		case strings.EqualFold(f.Name, "content-length"):
			hadLength = true
		default:
			if name, ok := isTrailerField(f.Name); ok && trailerOK(strings.ToLower(name)) {
				ntrailers++
			}
		}
	}
	if !hostSet {
		for _, f := range hdrs {
			if strings.EqualFold(f.Name, "host") {
				host = f.Value
				break
			}
		}
	}

	dst = append(dst, hr.Method()...)
	dst = append(dst, ' ')
	dst = append(dst, hr.Target()...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	cookies := false
	for i, f := range hdrs {
		if http1Skip(f) {
			continue
		}
		if strings.EqualFold(f.Name, "cookie") {
			if cookies {
				continue
			}
			cookies = true
			dst = append(dst, f.Name...)
			dst = append(dst, ": "...)
			dst = append(dst, f.Value...)
			for _, g := range hdrs[i+1:] {
				if strings.EqualFold(g.Name, "cookie") {
					dst = append(dst, "; "...)
					dst = append(dst, g.Value...)
				}
			}
			dst = append(dst, "\r\n"...)
			continue
		}
		dst = appendField(dst, f.Name, f.Value)
	}
	if ntrailers == 0 {
		if m := hr.Method(); len(body) > 0 || hadLength || m == "POST" || m == "PUT" || m == "PATCH" {
			dst = append(dst, "Content-Length: "...)
			dst = strconv.AppendInt(dst, int64(len(body)), 10)
			dst = append(dst, "\r\n"...)
		}
		dst = append(dst, "\r\n"...)
		return append(dst, body...), nil
	}
	dst = append(dst, "Transfer-Encoding: chunked\r\nTrailer: "...)
	sep := false
	for _, f := range hdrs {
		if name, ok := isTrailerField(f.Name); ok && trailerOK(strings.ToLower(name)) {
			if sep {
				dst = append(dst, ", "...)
			}
			dst, sep = append(dst, name...), true
		}
	}
	dst = append(dst, "\r\n\r\n"...)
	if len(body) > 0 {
		dst = strconv.AppendInt(dst, int64(len(body)), 16)
		dst = append(dst, "\r\n"...)
		dst = append(dst, body...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "0\r\n"...)
	for _, f := range hdrs {
		if name, ok := isTrailerField(f.Name); ok && trailerOK(strings.ToLower(name)) {
			dst = appendField(dst, name, f.Value)
		}
	}
	return append(dst, "\r\n"...), nil
}
