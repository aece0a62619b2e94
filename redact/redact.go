// Package redact removes secrets from raw HTTP messages before they leave the
// host: header values (each cookie separately), query parameters, form
// fields, JSON members and regular-expression matches in bodies. A secret is
// replaced by a mask ("REDACTED") or, in hash mode, by "hmac:" and the first
// 16 hex digits of HMAC-SHA256(key, value), so equal secrets stay equal and
// grouping and comparison still work.
//
// Edits go through httpraw, so every other byte is kept and Content-Length
// or chunked framing stays right. Content-encoded (gzip, …) bodies are left
// alone and counted as skipped, as are bodies that claim JSON but do not
// parse: nothing is passed through silently. Multipart bodies are only
// covered by Patterns.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"strings"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
)

// DefaultHeaders are the header names Config.Defaults adds.
var DefaultHeaders = []string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization", "X-Api-Key"}

// DefaultNames are the query parameter, form field and JSON member names
// whose values Config.Defaults redacts. Names match case-insensitively, with
// '-' and '_' equal ("Api-Key" is "api_key").
//
// Source: the default denylist of Sentry's Python SDK (sentry_sdk/scrubber.py,
// DEFAULT_DENYLIST, itself "stolen from relay", Sentry's server-side
// scrubber), without x_forwarded_for (an address, not a secret), plus the
// OAuth 2.0 / OpenID Connect token and client credentials (RFC 6749, OIDC
// Core) and common request-signature parameters (AWS SigV4, GCS).
var DefaultNames = []string{
	// sentry_sdk/scrubber.py DEFAULT_DENYLIST
	"password", "passwd", "secret", "api_key", "apikey", "auth", "credentials",
	"mysql_pwd", "privatekey", "private_key", "token", "session",
	"csrftoken", "sessionid", "x_csrftoken", "set_cookie", "cookie",
	"authorization", "x_api_key", "aiohttp_session", "connect.sid",
	"csrf_token", "csrf", "_csrf", "_csrf_token", "PHPSESSID", "_session",
	"symfony", "user_session", "_xsrf", "XSRF-TOKEN",
	// OAuth 2.0 and OpenID Connect
	"access_token", "refresh_token", "id_token", "client_secret", "code_verifier",
	// request signatures
	"signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
}

// normName folds a parameter or member name for matching against names:
// ASCII lower case, '-' as '_'.
func normName(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = normByte(c)
	}
	return string(b)
}

func normByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '-':
		return '_'
	}
	return c
}

// Config says what to redact and how.
type Config struct {
	Headers  []string // header names, case-insensitive (request headers and chunked trailers)
	Defaults bool     // add DefaultHeaders, and DefaultNames as query, form and JSON member names
	Query    []string // query parameter names in the request target (case-insensitive, '-' = '_')
	Form     []string // field names of application/x-www-form-urlencoded bodies (as Query)
	JSON     []string // JSONPaths into JSON bodies
	Patterns []string // regular expressions over the (de-chunked) body; with a group, only group 1 is replaced
	Mode     string   // "mask" (default) or "hash"
	Mask     string   // default "REDACTED"
	Key      []byte   // HMAC key, required by "hash"
}

// Counts says how many secrets a message had redacted, by kind, and how many
// bodies were skipped (content-encoded, or declared JSON that does not parse).
type Counts struct {
	Headers int
	Query   int
	// Userinfo counts the credentials of absolute-form targets
	// (http://user:password@host/…) masked, with the defaults.
	Userinfo int
	Form     int
	JSON     int
	Patterns int
	Skipped  int
	// BodiesCut counts bodies of truncated messages removed because body
	// rules (form, json, patterns) cannot be applied to a partial body.
	BodiesCut int
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Headers += o.Headers
	c.Query += o.Query
	c.Userinfo += o.Userinfo
	c.Form += o.Form
	c.JSON += o.JSON
	c.Patterns += o.Patterns
	c.Skipped += o.Skipped
	c.BodiesCut += o.BodiesCut
}

// Redacted returns the number of secrets replaced (Skipped not included).
func (c Counts) Redacted() int {
	return c.Headers + c.Query + c.Userinfo + c.Form + c.JSON + c.Patterns
}

// Redactor applies a Config; it is safe for concurrent use.
type Redactor struct {
	headers  map[string]bool // lower-case names
	query    map[string]bool // normName'd names
	form     map[string]bool // normName'd names
	json     []*jsonpath.Path
	patterns []*regexp.Regexp
	names    []string // keys of headers, for the allocation-free fast path
	hash     bool
	mask     string
	key      []byte

	// defaults: DefaultNames are also JSON member names, at any depth.
	defaults bool
	userBody bool            // the Config names form fields, JSON paths or patterns
	keys     map[string]bool // normName'd DefaultNames
	// Name lists of query, form and keys for the fast path.
	qnames, fnames, knames nameList
}

// New validates cfg and compiles its paths and patterns.
func New(cfg Config) (*Redactor, error) {
	r := &Redactor{
		headers:  lowerSet(cfg.Headers),
		query:    normSet(cfg.Query),
		form:     normSet(cfg.Form),
		keys:     map[string]bool{},
		mask:     cfg.Mask,
		key:      cfg.Key,
		defaults: cfg.Defaults,
		userBody: len(cfg.Form) > 0 || len(cfg.JSON) > 0 || len(cfg.Patterns) > 0,
	}
	if cfg.Defaults {
		for _, h := range DefaultHeaders {
			r.headers[strings.ToLower(h)] = true
		}
		for _, n := range DefaultNames {
			n = normName(n)
			r.query[n], r.form[n], r.keys[n] = true, true, true
		}
	}
	r.qnames, r.fnames, r.knames = newNameList(r.query), newNameList(r.form), newNameList(r.keys)
	if r.mask == "" {
		r.mask = "REDACTED"
	}
	if strings.ContainsAny(r.mask, "\r\n\x00") {
		return nil, errors.New("redact: mask contains CR, LF or NUL")
	}
	switch cfg.Mode {
	case "", "mask":
	case "hash":
		if len(cfg.Key) == 0 {
			return nil, errors.New(`redact: mode "hash" needs a key`)
		}
		r.hash = true
	default:
		return nil, fmt.Errorf(`redact: unknown mode %q (want "mask" or "hash")`, cfg.Mode)
	}
	for h := range r.headers {
		r.names = append(r.names, h)
	}
	for _, p := range cfg.JSON {
		c, err := jsonpath.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact: json: %w", err)
		}
		r.json = append(r.json, c)
	}
	for _, p := range cfg.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact: pattern %q: %w", p, err)
		}
		r.patterns = append(r.patterns, re)
	}
	return r, nil
}

func normSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[normName(n)] = true
	}
	return m
}

// nameList holds normName'd names by length, for matching raw bytes
// without allocating.
type nameList [][]string

func newNameList(m map[string]bool) nameList {
	var l nameList
	for k := range m {
		for len(l) <= len(k) {
			l = append(l, nil)
		}
		l[len(k)] = append(l[len(k)], k)
	}
	return l
}

func lowerSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

// message is what Request and Response have in common.
type message interface {
	Headers() []httpraw.Field
	Header(name string) (string, bool)
	SetHeaderAt(i int, value string) error
	DecodedBody() ([]byte, error)
	SetBody(b []byte) error
	Chunked() bool
	Trailers() []httpraw.Field
	SetTrailerAt(i int, value string) error
}

// Request redacts a raw request. When nothing matches, it returns raw itself.
// A request that does not parse is an error: callers must not pass it on.
//
// A cheap scan first decides whether anything configured can match; when
// nothing can, raw is returned without parsing or allocating (see clean).
func (r *Redactor) Request(raw []byte) ([]byte, Counts, error) {
	if r.clean(raw, true) {
		return raw, Counts{}, nil
	}
	return r.request(raw)
}

// request is Request without the fast path.
func (r *Redactor) request(raw []byte) ([]byte, Counts, error) {
	var c Counts
	req, err := httpraw.ParseRequest(raw)
	if err != nil {
		return nil, c, fmt.Errorf("redact: %w", err)
	}
	if err := r.redactHeaders(req, &c); err != nil {
		return nil, c, err
	}
	if err := r.redactQuery(req, &c); err != nil {
		return nil, c, err
	}
	if err := r.redactBody(req, &c); err != nil {
		return nil, c, err
	}
	return req.Bytes(), c, nil
}

// redactQuery masks the query parameters named by the rules (with the
// defaults, those named as secrets) in req's target, and, with the
// defaults, the credentials of an absolute-form target (redactUserinfo).
func (r *Redactor) redactQuery(req *httpraw.Request, c *Counts) error {
	if err := r.redactUserinfo(req, c); err != nil {
		return err
	}
	if len(r.query) == 0 {
		return nil
	}
	q := req.Query()
	if n := r.redactParams(q, r.query); n > 0 {
		if err := req.SetRawQuery(q.String()); err != nil {
			return fmt.Errorf("redact: query: %w", err)
		}
		c.Query += n
	}
	return nil
}

// redactUserinfo masks, with the defaults, the userinfo of an absolute-form
// target, as proxies receive it: the password of user:password, or the
// whole of a userinfo without one (a token given as the user name, as in
// https://TOKEN@host/). It is a credential as an Authorization header is.
func (r *Redactor) redactUserinfo(req *httpraw.Request, c *Counts) error {
	if !r.defaults {
		return nil
	}
	u, ok := req.Userinfo()
	if !ok || u == "" {
		return nil
	}
	nu := userinfoEscape(r.secret(u))
	if user, pw, found := strings.Cut(u, ":"); found {
		nu = user + ":" + userinfoEscape(r.secret(pw))
		if pw == "" {
			return nil
		}
	}
	if nu == u {
		return nil
	}
	if err := req.SetUserinfo(nu); err != nil {
		return fmt.Errorf("redact: userinfo: %w", err)
	}
	c.Userinfo++
	return nil
}

// userinfoEscape percent-encodes what RFC 3986 does not allow in a
// userinfo's password (a mask given with a space or an '@').
func userinfoEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte("-._~!$&'()*+,;=:%", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

// Response redacts a raw response (headers and body). When nothing matches,
// it returns raw itself. It has the same fast path as Request.
func (r *Redactor) Response(raw []byte) ([]byte, Counts, error) {
	if r.clean(raw, false) {
		return raw, Counts{}, nil
	}
	return r.response(raw)
}

// response is Response without the fast path.
func (r *Redactor) response(raw []byte) ([]byte, Counts, error) {
	var c Counts
	resp, err := httpraw.ParseResponse(raw)
	if err != nil {
		return nil, c, fmt.Errorf("redact: %w", err)
	}
	if err := r.redactHeaders(resp, &c); err != nil {
		return nil, c, err
	}
	if err := r.redactBody(resp, &c); err != nil {
		return nil, c, err
	}
	return resp.Bytes(), c, nil
}

// RequestTruncated redacts a request whose body was cut at a capture limit
// (message.Truncated): its head must be complete. Headers and query are
// redacted as by Request; the partial body is handled by cutBody (default
// secret names masked by their text; removed when the scenario's own body
// rules would have to parse it). The framing headers are left as captured.
func (r *Redactor) RequestTruncated(raw []byte) ([]byte, Counts, error) {
	var c Counts
	req, err := httpraw.ParseRequestHead(raw)
	if err != nil {
		return nil, c, fmt.Errorf("redact: %w", err)
	}
	if err := r.redactHeaders(req, &c); err != nil {
		return nil, c, err
	}
	if err := r.redactQuery(req, &c); err != nil {
		return nil, c, err
	}
	return r.cutBody(req.Bytes(), len(req.Body()), headerOf(req, "Content-Type"), encoded(req), &c), c, nil
}

// ResponseTruncated is RequestTruncated for a response.
func (r *Redactor) ResponseTruncated(raw []byte) ([]byte, Counts, error) {
	var c Counts
	resp, err := httpraw.ParseResponseHead(raw)
	if err != nil {
		return nil, c, fmt.Errorf("redact: %w", err)
	}
	if err := r.redactHeaders(resp, &c); err != nil {
		return nil, c, err
	}
	return r.cutBody(resp.Bytes(), len(resp.Body()), headerOf(resp, "Content-Type"), encoded(resp), &c), c, nil
}

// cutBody handles the partial body (its last body bytes) of a truncated
// message out. The scenario's own body rules (form fields, JSON paths,
// patterns) need a whole body, so with them the partial body is removed
// (Counts.BodiesCut). With the defaults alone, members and form fields named
// as secrets are still found by their text and masked; a partial body whose
// secret values cannot be told apart (a nested value under a secret name,
// an encoded body) is removed too.
func (r *Redactor) cutBody(out []byte, body int, ct string, enc bool, c *Counts) []byte {
	if body == 0 || !r.userBody && !r.defaults {
		return out
	}
	head, b := out[:len(out)-body:len(out)-body], out[len(out)-body:]
	cut := func() []byte {
		c.BodiesCut++
		return head
	}
	if r.userBody {
		return cut()
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/x-www-form-urlencoded":
		if enc {
			return cut()
		}
		q := httpraw.ParseQuery(string(b))
		if n := r.redactParams(q, r.form); n > 0 {
			c.Form += n
			return append(head, q.String()...)
		}
	case isJSON(mt, b) && !r.keysClean(b):
		if enc {
			return cut()
		}
		nb, n, skipped := r.redactJSONText(b)
		if skipped {
			return cut()
		}
		if n > 0 {
			c.JSON += n
			return append(head, nb...)
		}
	}
	return out
}

// secret returns the replacement of v; values that are empty or already
// redacted (the mask, or an "hmac:" digest) are returned unchanged.
func (r *Redactor) secret(v string) string {
	if v == "" || v == r.mask || isDigest(v) {
		return v
	}
	if !r.hash {
		return r.mask
	}
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(v))
	return "hmac:" + hex.EncodeToString(m.Sum(nil))[:16]
}

func isDigest(v string) bool {
	h, ok := strings.CutPrefix(v, "hmac:")
	if !ok || len(h) != 16 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func (r *Redactor) redactHeaders(m message, c *Counts) error {
	if len(r.headers) == 0 {
		return nil
	}
	for i, f := range m.Headers() {
		name := strings.ToLower(f.Name)
		if !r.headers[name] {
			continue
		}
		var v string
		var n int
		switch name {
		case "cookie":
			v, n = r.cookies(f.Value, false)
		case "set-cookie":
			v, n = r.cookies(f.Value, true)
		default:
			if v = r.secret(f.Value); v != f.Value {
				n = 1
			}
		}
		if n == 0 {
			continue
		}
		if err := m.SetHeaderAt(i, v); err != nil {
			return fmt.Errorf("redact: header %s: %w", f.Name, err)
		}
		c.Headers += n
	}
	if !m.Chunked() {
		return nil
	}
	// Trailer fields are header fields too (RFC 9110 section 6.5).
	for i, f := range m.Trailers() {
		if !r.headers[strings.ToLower(f.Name)] {
			continue
		}
		v := r.secret(f.Value)
		if v == f.Value {
			continue
		}
		if err := m.SetTrailerAt(i, v); err != nil {
			return fmt.Errorf("redact: trailer %d: %w", i, err)
		}
		c.Headers++
	}
	return nil
}

// cookies redacts the value of each "name=value" pair of a Cookie header, or
// only the first pair of a Set-Cookie header (the rest are attributes).
func (r *Redactor) cookies(v string, set bool) (string, int) {
	parts := strings.Split(v, ";")
	n := 0
	for i, p := range parts {
		if set && i > 0 {
			break
		}
		name, val := "", strings.TrimSpace(p)
		if eq := strings.IndexByte(p, '='); eq >= 0 {
			name, val = p[:eq+1], strings.TrimSpace(p[eq+1:])
		} else {
			name = leadingSpace(p)
		}
		if nv := r.secret(val); nv != val {
			parts[i] = name + nv
			n++
		}
	}
	return strings.Join(parts, ";"), n
}

func leadingSpace(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// redactParams redacts, in place, the values of parameters whose names are
// in names and returns how many changed.
func (r *Redactor) redactParams(q httpraw.Query, names map[string]bool) int {
	n := 0
	for i, p := range q {
		if !names[normName(p.Name())] {
			continue
		}
		old := p.Decoded()
		if nv := r.secret(old); nv != old {
			q[i].Value, q[i].HasEq = url.QueryEscape(nv), true
			n++
		}
	}
	return n
}

func (r *Redactor) redactBody(m message, c *Counts) error {
	user := r.userBody
	if !user && !r.defaults {
		return nil
	}
	body, err := m.DecodedBody()
	if err != nil {
		return fmt.Errorf("redact: body: %w", err)
	}
	if len(body) == 0 {
		return nil
	}
	ct, _ := m.Header("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	isForm := mt == "application/x-www-form-urlencoded"
	if encoded(m) {
		// We do not decompress, but we say so: always for rules the scenario
		// names, and for the default names where they would have applied.
		if user || isForm || isJSON(mt, body) {
			c.Skipped++
		}
		return nil
	}
	out, changed := body, false
	if len(r.form) > 0 && isForm {
		q := httpraw.ParseQuery(string(out))
		if n := r.redactParams(q, r.form); n > 0 {
			out, changed = []byte(q.String()), true
			c.Form += n
		}
	}
	// Without JSON paths, the scan for named members decides whether the
	// body needs decoding at all.
	if (len(r.json) > 0 || r.defaults && !r.keysClean(out)) && isJSON(mt, out) {
		nb, n, err := r.redactJSON(out)
		switch {
		case err != nil && r.defaults:
			// Not JSON after all (or cut short by max-body): members named
			// as secrets are still found by their text.
			var skipped bool
			nb, n, skipped = r.redactJSONText(out)
			if len(r.json) > 0 || skipped {
				c.Skipped++
			}
		case err != nil:
			c.Skipped++ // declared JSON that does not parse: patterns still run
		}
		if n > 0 {
			out, changed = nb, true
			c.JSON += n
		}
	}
	for _, re := range r.patterns {
		var n int
		out, n = r.redactPattern(re, out)
		c.Patterns += n
		changed = changed || n > 0
	}
	if !changed {
		return nil
	}
	if err := m.SetBody(out); err != nil {
		return fmt.Errorf("redact: body: %w", err)
	}
	return nil
}

// headerOf returns the value of header name in m, or "".
func headerOf(m message, name string) string {
	v, _ := m.Header(name)
	return v
}

// encoded reports whether m's body has a Content-Encoding other than identity.
func encoded(m message) bool {
	ce, ok := m.Header("Content-Encoding")
	return ok && !strings.EqualFold(ce, "identity")
}

func isJSON(mt string, body []byte) bool {
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return true
	}
	if mt != "" {
		return false
	}
	t := strings.TrimLeft(string(body[:min(len(body), 64)]), " \t\r\n")
	return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")
}

func (r *Redactor) redactJSON(body []byte) ([]byte, int, error) {
	doc, err := jsonpath.Decode(body)
	if err != nil {
		return nil, 0, err
	}
	changed := 0
	if len(r.keys) > 0 {
		doc = r.redactMembers(doc, &changed, 0)
	}
	for _, p := range r.json {
		doc, _ = p.Map(doc, func(v any) any {
			nv, ok := r.secretValue(v)
			if ok {
				changed++
			}
			return nv
		})
	}
	if changed == 0 {
		return body, 0, nil
	}
	out, err := jsonpath.Encode(doc)
	return out, changed, err
}

// redactMembers replaces the value of every object member whose name is one
// of r.keys, at any depth.
func (r *Redactor) redactMembers(v any, changed *int, depth int) any {
	if depth > 10000 {
		return v
	}
	switch v := v.(type) {
	case jsonpath.Object:
		for i, kv := range v {
			if !r.keys[normName(kv.Key)] {
				v[i].Value = r.redactMembers(kv.Value, changed, depth+1)
				continue
			}
			if nv, ok := r.secretValue(kv.Value); ok {
				v[i].Value = nv
				*changed++
			}
		}
	case []any:
		for i, e := range v {
			v[i] = r.redactMembers(e, changed, depth+1)
		}
	}
	return v
}

// secretValue is secret for a decoded JSON value: strings are replaced,
// other values (numbers, booleans, objects, arrays) by the replacement of
// their JSON text; null stays null. It reports whether v was replaced.
func (r *Redactor) secretValue(v any) (any, bool) {
	var s string
	switch v := v.(type) {
	case nil:
		return nil, false
	case string:
		s = v
	default:
		b, err := jsonpath.Encode(v)
		if err != nil {
			return r.mask, true
		}
		s = string(b)
	}
	if nv := r.secret(s); nv != s {
		return nv, true
	}
	return v, false
}

// redactJSONText redacts, in a body that does not parse as JSON, the string
// and scalar values of members named by r.keys, found by the same scan as
// the fast path. skipped reports a named member whose value is an object or
// an array, which only a parse could redact.
func (r *Redactor) redactJSONText(b []byte) (out []byte, n int, skipped bool) {
	last := 0
	jsonKeys(b, func(key []byte, after int) bool {
		if !r.keys[normName(string(key))] {
			return true
		}
		s := after
		for s < len(b) && isJSONSpace(b[s]) {
			s++
		}
		if s >= len(b) {
			return true
		}
		var e int
		var val string
		switch c := b[s]; {
		case c == '{' || c == '[':
			skipped = true
			return true
		case c == '"':
			e = stringEnd(b, s)
			if e < 0 {
				e = len(b)
				val = string(b[s+1:])
			} else {
				val = string(b[s+1 : e])
				e++
			}
		default:
			e = s
			for e < len(b) && !isJSONSpace(b[e]) && b[e] != ',' && b[e] != '}' && b[e] != ']' {
				e++
			}
			val = string(b[s:e])
			if val == "null" || val == "" {
				return true
			}
		}
		nv := r.secret(val)
		if nv == val {
			return true
		}
		enc, err := jsonpath.Encode(nv)
		if err != nil {
			return true
		}
		out = append(out, b[last:s]...)
		out = append(out, enc...)
		last = e
		n++
		return true
	})
	if n == 0 {
		return b, 0, skipped
	}
	return append(out, b[last:]...), n, skipped
}

// jsonKeys calls fn for each member name in b: a string followed by
// optional white space and a colon. key is the name's bytes between the
// quotes (escapes not decoded), after the index following the colon. It
// stops when fn returns false or at an unterminated string. For valid JSON
// it finds exactly the object member names; for anything else it still
// finds every "name": it can.
func jsonKeys(b []byte, fn func(key []byte, after int) bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		e := stringEnd(b, i)
		if e < 0 {
			return
		}
		k := e + 1
		for k < len(b) && isJSONSpace(b[k]) {
			k++
		}
		if k < len(b) && b[k] == ':' {
			if !fn(b[i+1:e], k+1) {
				return
			}
		}
		i = e
	}
}

// stringEnd returns the index of the quote closing the string that starts
// at b[s], or -1.
func stringEnd(b []byte, s int) int {
	for j := s + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// redactPattern replaces each match of re (or its first group) in b.
func (r *Redactor) redactPattern(re *regexp.Regexp, b []byte) ([]byte, int) {
	locs := re.FindAllSubmatchIndex(b, -1)
	if locs == nil {
		return b, 0
	}
	var out []byte
	last, n := 0, 0
	for _, loc := range locs {
		s, e := loc[0], loc[1]
		if len(loc) >= 4 {
			s, e = loc[2], loc[3]
		}
		if s < 0 || s == e {
			continue
		}
		old := string(b[s:e])
		nv := r.secret(old)
		if nv == old {
			continue
		}
		out = append(out, b[last:s]...)
		out = append(out, nv...)
		last = e
		n++
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}
