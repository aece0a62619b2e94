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

// Config says what to redact and how.
type Config struct {
	Headers  []string // header names, case-insensitive
	Defaults bool     // add DefaultHeaders
	Query    []string // query parameter names in the request target, case-insensitive
	Form     []string // field names of application/x-www-form-urlencoded bodies, case-insensitive
	JSON     []string // JSONPaths into JSON bodies
	Patterns []string // regular expressions over the (de-chunked) body; with a group, only group 1 is replaced
	Mode     string   // "mask" (default) or "hash"
	Mask     string   // default "REDACTED"
	Key      []byte   // HMAC key, required by "hash"
}

// Counts says how many secrets a message had redacted, by kind, and how many
// bodies were skipped (content-encoded, or declared JSON that does not parse).
type Counts struct {
	Headers  int
	Query    int
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
	c.Form += o.Form
	c.JSON += o.JSON
	c.Patterns += o.Patterns
	c.Skipped += o.Skipped
	c.BodiesCut += o.BodiesCut
}

// Redacted returns the number of secrets replaced (Skipped not included).
func (c Counts) Redacted() int { return c.Headers + c.Query + c.Form + c.JSON + c.Patterns }

// Redactor applies a Config; it is safe for concurrent use.
type Redactor struct {
	headers  map[string]bool // lower-case names
	query    map[string]bool
	form     map[string]bool
	json     []*jsonpath.Path
	patterns []*regexp.Regexp
	names    []string // keys of headers, for the allocation-free fast path
	hash     bool
	mask     string
	key      []byte
}

// New validates cfg and compiles its paths and patterns.
func New(cfg Config) (*Redactor, error) {
	r := &Redactor{
		headers: lowerSet(cfg.Headers),
		query:   lowerSet(cfg.Query),
		form:    lowerSet(cfg.Form),
		mask:    cfg.Mask,
		key:     cfg.Key,
	}
	if cfg.Defaults {
		for _, h := range DefaultHeaders {
			r.headers[strings.ToLower(h)] = true
		}
	}
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
	if len(r.query) > 0 {
		q := req.Query()
		if n := r.redactParams(q, r.query); n > 0 {
			if err := req.SetRawQuery(q.String()); err != nil {
				return nil, c, fmt.Errorf("redact: query: %w", err)
			}
			c.Query += n
		}
	}
	if err := r.redactBody(req, &c); err != nil {
		return nil, c, err
	}
	return req.Bytes(), c, nil
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
// redacted as by Request; the partial body is kept as it is, unless body
// rules are configured: a partial body cannot be parsed to apply them, so it
// is removed (Counts.BodiesCut). The framing headers are left as captured.
func (r *Redactor) RequestTruncated(raw []byte) ([]byte, Counts, error) {
	var c Counts
	req, err := httpraw.ParseRequestHead(raw)
	if err != nil {
		return nil, c, fmt.Errorf("redact: %w", err)
	}
	if err := r.redactHeaders(req, &c); err != nil {
		return nil, c, err
	}
	if len(r.query) > 0 {
		q := req.Query()
		if n := r.redactParams(q, r.query); n > 0 {
			if err := req.SetRawQuery(q.String()); err != nil {
				return nil, c, fmt.Errorf("redact: query: %w", err)
			}
			c.Query += n
		}
	}
	return r.cutBody(req.Bytes(), len(req.Body()), &c), c, nil
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
	return r.cutBody(resp.Bytes(), len(resp.Body()), &c), c, nil
}

// cutBody removes the last body bytes of out when body rules are configured.
func (r *Redactor) cutBody(out []byte, body int, c *Counts) []byte {
	if body == 0 || len(r.form) == 0 && len(r.json) == 0 && len(r.patterns) == 0 {
		return out
	}
	c.BodiesCut++
	return out[: len(out)-body : len(out)-body]
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
		if !names[strings.ToLower(p.Name())] {
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
	if len(r.form) == 0 && len(r.json) == 0 && len(r.patterns) == 0 {
		return nil
	}
	body, err := m.DecodedBody()
	if err != nil {
		return fmt.Errorf("redact: body: %w", err)
	}
	if len(body) == 0 {
		return nil
	}
	if ce, ok := m.Header("Content-Encoding"); ok && !strings.EqualFold(ce, "identity") {
		c.Skipped++ // skipped-encoded: we do not decompress, but we say so
		return nil
	}
	ct, _ := m.Header("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	out, changed := body, false
	if len(r.form) > 0 && mt == "application/x-www-form-urlencoded" {
		q := httpraw.ParseQuery(string(out))
		if n := r.redactParams(q, r.form); n > 0 {
			out, changed = []byte(q.String()), true
			c.Form += n
		}
	}
	if len(r.json) > 0 && isJSON(mt, out) {
		nb, n, err := r.redactJSON(out)
		if err != nil {
			c.Skipped++ // declared JSON that does not parse: patterns still run
		} else if n > 0 {
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
	for _, p := range r.json {
		doc, _ = p.Map(doc, func(v any) any {
			var s string
			switch v := v.(type) {
			case nil:
				return nil
			case string:
				s = v
			default:
				b, err := jsonpath.Encode(v)
				if err != nil {
					return r.mask
				}
				s = string(b)
			}
			nv := r.secret(s)
			if nv != s {
				changed++
				return nv
			}
			return v
		})
	}
	if changed == 0 {
		return body, 0, nil
	}
	out, err := jsonpath.Encode(doc)
	return out, changed, err
}

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
