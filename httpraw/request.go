package httpraw

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Request is a parsed HTTP/1.x request. Its methods edit the message in place;
// Bytes returns the result. A Request is not safe for concurrent use.
//
// Header, Values, Headers, SetHeader, SetHeaderAt, RemoveHeader, Body,
// Chunked, DecodedBody and SetBody are shared with Response.
type Request struct {
	message
	start  []byte // request line with its ending, as in the input or rebuilt
	method string
	target string
	proto  string
}

// ParseRequest parses one complete request. The Request keeps references into
// raw, which must not change while the Request is in use.
func ParseRequest(raw []byte) (*Request, error) { return parseRequest(raw, false) }

// ParseRequestHead parses a request's start line and header block and keeps
// whatever follows as the body, without checking it against the framing
// headers: for a message whose body was cut (truncated at a capture limit).
// Header and target edits work; SetBody is refused.
func ParseRequestHead(raw []byte) (*Request, error) { return parseRequest(raw, true) }

func parseRequest(raw []byte, headOnly bool) (*Request, error) {
	line, eol, rest, ok := nextLine(raw)
	if !ok {
		return nil, malformed("malformed request line (%d bytes): not terminated", len(raw))
	}
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || !validToken(string(parts[0])) || !ValidTarget(string(parts[1])) || !validProto(string(parts[2])) {
		return nil, malformed("malformed request line (%d bytes, %d spaces): want METHOD TARGET HTTP/x.y", len(line), bytes.Count(line, []byte(" ")))
	}
	r := &Request{
		start:  raw[: len(line)+len(eol) : len(line)+len(eol)],
		method: string(parts[0]),
		target: string(parts[1]),
		proto:  string(parts[2]),
	}
	r.raw, r.eol, r.isReq, r.headOnly = raw, string(eol), true, headOnly
	if err := r.parseHead(rest); err != nil {
		return nil, fmt.Errorf("%w (request %s %s)", err, clipString(r.method), clipString(r.Path()))
	}
	return r, nil
}

// Bytes returns the message with all edits applied. Without (effective) edits
// it is the slice given to ParseRequest.
func (r *Request) Bytes() []byte { return r.rebuild(r.start) }

// Method returns the request method.
func (r *Request) Method() string { return r.method }

// Target returns the request target as sent (origin-form "/p?q", absolute-form
// "http://h/p?q", authority-form "h:443" or "*").
func (r *Request) Target() string { return r.target }

// Proto returns the protocol version, such as "HTTP/1.1".
func (r *Request) Proto() string { return r.proto }

// Path returns the path of the target (without the query), "" when the target
// has no path (authority-form, "*").
func (r *Request) Path() string {
	t, _ := splitTarget(r.target)
	return t.path
}

// RawQuery returns the query string of the target without the '?'.
func (r *Request) RawQuery() string {
	t, _ := splitTarget(r.target)
	return t.query
}

// Query returns the parsed query string of the target.
func (r *Request) Query() Query { return ParseQuery(r.RawQuery()) }

// Host returns the Host header, or the authority of an absolute-form target
// when there is no Host header.
func (r *Request) Host() string {
	if h, ok := r.Header("Host"); ok {
		return h
	}
	t, _ := splitTarget(r.target)
	return t.authority()
}

// SetMethod replaces the method.
func (r *Request) SetMethod(method string) error {
	if !validToken(method) {
		return fmt.Errorf("httpraw: invalid method (%d bytes): want a token", len(method))
	}
	if method != r.method {
		r.method = method
		r.rebuildStart()
	}
	return nil
}

// SetTarget replaces the whole request target.
func (r *Request) SetTarget(target string) error {
	if !ValidTarget(target) {
		return fmt.Errorf("httpraw: invalid request target (%d bytes): empty, or with a space or control byte", len(target))
	}
	if target != r.target {
		r.target = target
		r.rebuildStart()
	}
	return nil
}

// SetPath replaces the path of the target and keeps its query (and the
// scheme and authority of an absolute-form target). path must start with '/'.
func (r *Request) SetPath(path string) error {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#") || !ValidTarget(path) {
		return fmt.Errorf("httpraw: invalid path (%d bytes): want /… without spaces, '?' or '#'", len(path))
	}
	t, ok := splitTarget(r.target)
	if !ok {
		return errors.New("httpraw: set path: the request target has no path (authority or asterisk form)")
	}
	t.path = path
	return r.SetTarget(t.String())
}

// SetPathAndQuery replaces the path and the query of the target with pq
// ("/path" or "/path?query"), keeping the scheme and authority of an
// absolute-form target.
func (r *Request) SetPathAndQuery(pq string) error {
	if !strings.HasPrefix(pq, "/") || strings.Contains(pq, "#") || !ValidTarget(pq) {
		return fmt.Errorf("httpraw: invalid path and query (%d bytes): want /path or /path?query without spaces or '#'", len(pq))
	}
	t, ok := splitTarget(r.target)
	if !ok {
		return errors.New("httpraw: set path and query: the request target has no path (authority or asterisk form)")
	}
	t.path, t.query, t.hasQuery = strings.Cut(pq, "?")
	return r.SetTarget(t.String())
}

// SetRawQuery replaces the query string (without '?'); "" removes the '?'.
func (r *Request) SetRawQuery(query string) error {
	if query != "" && !ValidTarget(query) {
		return fmt.Errorf("httpraw: invalid query (%d bytes): with a space or control byte", len(query))
	}
	t, ok := splitTarget(r.target)
	if !ok {
		return errors.New("httpraw: set query: the request target has no path (authority or asterisk form)")
	}
	if t.query == query && t.hasQuery == (query != "") {
		return nil
	}
	t.query, t.hasQuery = query, query != ""
	return r.SetTarget(t.String())
}

// SetQueryParam sets parameter name to value (see Query.Set): other
// parameters keep their order and encoding byte for byte.
func (r *Request) SetQueryParam(name, value string) error {
	t, ok := splitTarget(r.target)
	if !ok {
		return errors.New("httpraw: set query parameter: the request target has no path (authority or asterisk form)")
	}
	q, changed := ParseQuery(t.query).Set(name, value)
	if !changed {
		return nil
	}
	return r.SetRawQuery(q.String())
}

// RemoveQueryParam removes every parameter named name and returns how many it
// removed; when none is left the '?' goes too.
func (r *Request) RemoveQueryParam(name string) int {
	t, ok := splitTarget(r.target)
	if !ok {
		return 0
	}
	q, n := ParseQuery(t.query).Remove(name)
	if n > 0 {
		_ = r.SetRawQuery(q.String()) // remaining raw params were valid already
	}
	return n
}

// SetHost sets the Host header (see SetHeader) and, for an absolute-form
// target, its authority (keeping any userinfo).
func (r *Request) SetHost(host string) error { return r.setHost("", host, true) }

// Retarget points the request at another server, as a replay to a target
// does: an absolute-form target gets scheme and host as its scheme and
// authority (keeping any userinfo), and the first Host header, when there
// is one, gets host as its value (in place, as SetHeaderAt; a request
// without one is left without). Origin-form, authority-form (CONNECT) and
// asterisk-form targets are left as they are.
func (r *Request) Retarget(scheme, host string) error {
	if !validScheme(scheme) {
		return fmt.Errorf("httpraw: invalid scheme (%d bytes)", len(scheme))
	}
	return r.setHost(scheme, host, false)
}

// Userinfo returns the userinfo of an absolute-form target
// (http://user:password@host/…, without the '@'); ok is false when the
// target has none.
func (r *Request) Userinfo() (userinfo string, ok bool) {
	t, split := splitTarget(r.target)
	if !split || t.prefix == "" {
		return "", false
	}
	_, auth, _ := strings.Cut(t.prefix, "://")
	i := strings.LastIndexByte(auth, '@')
	if i < 0 {
		return "", false
	}
	return auth[:i], true
}

// SetUserinfo replaces the userinfo of an absolute-form target that has
// one (see Userinfo); u must not hold '@', '/', '?' or '#'.
func (r *Request) SetUserinfo(u string) error {
	if strings.ContainsAny(u, "@/?#") || u != "" && !ValidTarget(u) {
		return fmt.Errorf("httpraw: invalid userinfo (%d bytes)", len(u))
	}
	t, ok := splitTarget(r.target)
	if !ok || t.prefix == "" {
		return errors.New("httpraw: set userinfo: the request target is not in absolute form")
	}
	scheme, auth, _ := strings.Cut(t.prefix, "://")
	i := strings.LastIndexByte(auth, '@')
	if i < 0 {
		return errors.New("httpraw: set userinfo: the request target has none")
	}
	t.prefix = scheme + "://" + u + auth[i:]
	return r.SetTarget(t.String())
}

// setHost sets an absolute-form target's authority to host (keeping any
// userinfo) and, unless scheme is "", its scheme; then the Host header:
// with all set SetHeader does, or, without all, the first one's value
// alone, when there is one.
func (r *Request) setHost(scheme, host string, all bool) error {
	if host == "" || strings.ContainsAny(host, "/?#@") || !ValidTarget(host) {
		return fmt.Errorf("httpraw: invalid host (%d bytes)", len(host))
	}
	if t, ok := splitTarget(r.target); ok && t.prefix != "" {
		old, auth, _ := strings.Cut(t.prefix, "://")
		if scheme == "" {
			scheme = old
		}
		userinfo := auth[:strings.LastIndexByte(auth, '@')+1]
		t.prefix = scheme + "://" + userinfo + host
		if err := r.SetTarget(t.String()); err != nil {
			return err
		}
	}
	if all {
		return r.SetHeader("Host", host)
	}
	for i, f := range r.fields {
		if strings.EqualFold(f.name, "Host") {
			return r.SetHeaderAt(i, host)
		}
	}
	return nil
}

// HostSet reports whether an edit set the Host header (SetHost, or
// SetHeader or SetHeaderAt of Host), even to the value it had: the request
// then says which Host it is for.
func (r *Request) HostSet() bool { return r.hostSet }

func (r *Request) rebuildStart() {
	r.start = []byte(r.method + " " + r.target + " " + r.proto + r.eol)
	r.dirty = true
}

// target is a request target split into parts; String joins them back.
type target struct {
	prefix   string // "scheme://authority" for absolute-form, else ""
	path     string
	query    string
	hasQuery bool
}

func (t target) String() string {
	s := t.prefix + t.path
	if t.hasQuery {
		s += "?" + t.query
	}
	return s
}

func (t target) authority() string {
	_, auth, _ := strings.Cut(t.prefix, "://")
	return auth[strings.LastIndexByte(auth, '@')+1:]
}

// SplitAbsolute splits an absolute-form request target
// (scheme://authority/path?query) into its authority without any userinfo
// and the rest (the path and query; "" when the target has neither); ok is
// false for a target in any other form. It reads the target as the
// request's edits do.
func SplitAbsolute(target string) (authority, rest string, ok bool) {
	t, split := splitTarget(target)
	if !split || t.prefix == "" {
		return "", "", false
	}
	return t.authority(), strings.TrimPrefix(target, t.prefix), true
}

// splitTarget splits origin-form and absolute-form targets; ok is false for
// authority-form and asterisk-form.
func splitTarget(s string) (target, bool) {
	var t target
	rest := s
	if !strings.HasPrefix(s, "/") {
		i := strings.Index(s, "://")
		if i <= 0 || strings.ContainsAny(s[:i], "/?#") {
			return t, false
		}
		end := strings.IndexAny(s[i+3:], "/?#")
		if end < 0 {
			end = len(s) - i - 3
		}
		t.prefix, rest = s[:i+3+end], s[i+3+end:]
	}
	t.path, t.query, t.hasQuery = strings.Cut(rest, "?")
	return t, true
}

// ValidTarget reports whether a request line can carry s as its target:
// not empty, no byte <= ' ' (controls, space) or DEL.
func ValidTarget(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// validScheme accepts an RFC 3986 scheme: a letter, then letters, digits,
// '+', '-' and '.'.
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		letter := c >= 'a' && c <= 'z'
		if !letter && (i == 0 || !isDigit(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.') {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validProto accepts "HTTP/" followed by digits, '.' and digits.
func validProto(s string) bool {
	v, ok := strings.CutPrefix(s, "HTTP/")
	if !ok {
		return false
	}
	major, minor, ok := strings.Cut(v, ".")
	return ok && digits(major) && digits(minor)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func clipString(s string) string { return string(clip([]byte(s))) }
