package httpraw

import (
	"net/url"
	"strings"
)

// Param is one '&'-separated element of a query string or form body, kept in
// its raw (encoded) form so unedited parameters are written back byte for byte.
type Param struct {
	Key   string // raw, as in the input
	Value string // raw, as in the input
	HasEq bool   // whether "=" was present
}

// Name returns the decoded key (the raw key when it does not decode).
func (p Param) Name() string { return unescape(p.Key) }

// Decoded returns the decoded value (the raw value when it does not decode).
func (p Param) Decoded() string { return unescape(p.Value) }

func (p Param) String() string {
	if p.HasEq {
		return p.Key + "=" + p.Value
	}
	return p.Key
}

// Query is a parsed query string or application/x-www-form-urlencoded body.
// String of ParseQuery(s) is s, whatever s is.
type Query []Param

// ParseQuery splits raw on '&' (';' is not a separator) without decoding.
func ParseQuery(raw string) Query {
	if raw == "" {
		return nil
	}
	parts := strings.Split(raw, "&")
	q := make(Query, len(parts))
	for i, part := range parts {
		k, v, eq := strings.Cut(part, "=")
		q[i] = Param{Key: k, Value: v, HasEq: eq}
	}
	return q
}

// String joins the parameters with '&'.
func (q Query) String() string {
	var sb strings.Builder
	for i, p := range q {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(p.String())
	}
	return sb.String()
}

// Get returns the decoded value of the first parameter whose decoded name is name.
func (q Query) Get(name string) (string, bool) {
	for _, p := range q {
		if p.Name() == name {
			return p.Decoded(), true
		}
	}
	return "", false
}

// Set sets the first parameter named name to value (query-escaped) keeping its
// raw key and position, removes later ones, or appends name=value. changed is
// false when the first parameter already decodes to value and has no duplicates.
func (q Query) Set(name, value string) (out Query, changed bool) {
	out = make(Query, 0, len(q)+1)
	found := false
	for _, p := range q {
		if p.Name() != name {
			out = append(out, p)
			continue
		}
		if found {
			changed = true
			continue
		}
		found = true
		if !p.HasEq || p.Decoded() != value {
			p.Value, p.HasEq, changed = url.QueryEscape(value), true, true
		}
		out = append(out, p)
	}
	if !found {
		out = append(out, Param{Key: url.QueryEscape(name), Value: url.QueryEscape(value), HasEq: true})
		changed = true
	}
	return out, changed
}

// Remove drops every parameter named name and returns how many it dropped.
func (q Query) Remove(name string) (Query, int) {
	out := make(Query, 0, len(q))
	for _, p := range q {
		if p.Name() != name {
			out = append(out, p)
		}
	}
	return out, len(q) - len(out)
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return d
}
