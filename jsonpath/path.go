// Package jsonpath implements the JSONPath subset replayctl uses to read,
// set, remove and redact values in JSON bodies, and to name fields in
// response comparison: $, .name, ['name'], [N] (negative counts from the
// end), [*], .*, and recursive descent ..name, ..*, ..[N], ..['name'].
//
// Documents are ordered values from Decode (Object keeps member order), so
// a document re-encoded with Encode keeps its keys in place. Editing methods
// return how many values they touched; when that is 0 the caller should
// keep the original bytes rather than re-encode. Set, Remove and Map may
// change the document they are given in place: use the returned value.
package jsonpath

import (
	"fmt"
	"strconv"
	"strings"
)

type segKind int

const (
	segName segKind = iota
	segIndex
	segWild
)

type segment struct {
	kind      segKind
	name      string
	index     int
	recursive bool // ..sel: the selector at this level and every level below
}

// Path is a compiled JSONPath; it is safe for concurrent use.
type Path struct {
	src  string
	segs []segment
}

// MustCompile is Compile that panics on error, for constant paths.
func MustCompile(p string) *Path {
	c, err := Compile(p)
	if err != nil {
		panic(err)
	}
	return c
}

// Compile parses p, which must start with "$".
func Compile(p string) (*Path, error) {
	c := &Path{src: p}
	errAt := func(i int, msg string) error {
		return fmt.Errorf("jsonpath: %s at position %d in %q", msg, i, p)
	}
	if !strings.HasPrefix(p, "$") {
		return nil, errAt(0, `path must start with "$"`)
	}
	i := 1
	for i < len(p) {
		var seg segment
		switch {
		case strings.HasPrefix(p[i:], ".."):
			seg.recursive = true
			i += 2
			if i < len(p) && p[i] == '[' {
				break // bracket selector parsed below
			}
			fallthrough
		case p[i] == '.':
			if !seg.recursive {
				i++
			}
			if i < len(p) && p[i] == '*' {
				seg.kind = segWild
				i++
				c.segs = append(c.segs, seg)
				continue
			}
			j := i
			for j < len(p) && !strings.ContainsRune(".[]'\" *", rune(p[j])) {
				j++
			}
			if j == i {
				return nil, errAt(i, "expected a member name or *")
			}
			seg.kind, seg.name = segName, p[i:j]
			i = j
			c.segs = append(c.segs, seg)
			continue
		case p[i] == '[':
		default:
			return nil, errAt(i, fmt.Sprintf("unexpected %q", p[i]))
		}
		// Bracket selector: p[i] == '['.
		if i >= len(p) || p[i] != '[' {
			return nil, errAt(i, `expected "["`)
		}
		i++
		switch {
		case i < len(p) && p[i] == '*':
			seg.kind = segWild
			i++
		case i < len(p) && (p[i] == '\'' || p[i] == '"'):
			name, n, err := parseQuoted(p[i:])
			if err != nil {
				return nil, errAt(i, err.Error())
			}
			seg.kind, seg.name = segName, name
			i += n
		default:
			j := i
			if j < len(p) && p[j] == '-' {
				j++
			}
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(p[i:j])
			if err != nil {
				return nil, errAt(i, "expected an index, a quoted name or *")
			}
			seg.kind, seg.index = segIndex, n
			i = j
		}
		if i >= len(p) || p[i] != ']' {
			return nil, errAt(i, `expected "]"`)
		}
		i++
		c.segs = append(c.segs, seg)
	}
	return c, nil
}

// parseQuoted reads a quoted name with \\ and \<quote> escapes and returns it
// with the number of bytes consumed.
func parseQuoted(s string) (string, int, error) {
	q := s[0]
	var sb strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated name")
			}
			i++
			sb.WriteByte(s[i])
		case q:
			return sb.String(), i + 1, nil
		default:
			sb.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated name")
}

// String returns the path as given to Compile.
func (p *Path) String() string { return p.src }

// simple reports whether the path is only member names (no wildcard, index
// or recursion), so Set may create missing members.
func (p *Path) simple() bool {
	for _, s := range p.segs {
		if s.kind != segName || s.recursive {
			return false
		}
	}
	return true
}

// Get returns the matched values in document order (for recursive descent, a
// node before its descendants).
func (p *Path) Get(doc any) []any {
	var out []any
	collect(doc, p.segs, &out)
	return out
}

func collect(node any, segs []segment, out *[]any) {
	if len(segs) == 0 {
		*out = append(*out, node)
		return
	}
	s := segs[0]
	forChildren(node, s, func(v any) { collect(v, segs[1:], out) })
	if s.recursive {
		forAll(node, func(v any) { collect(v, segs, out) })
	}
}

// forChildren calls fn on each child of node the selector s picks.
func forChildren(node any, s segment, fn func(any)) {
	switch n := node.(type) {
	case Object:
		for _, kv := range n {
			if s.kind == segWild || (s.kind == segName && kv.Key == s.name) {
				fn(kv.Value)
			}
		}
	case []any:
		switch s.kind {
		case segWild:
			for _, e := range n {
				fn(e)
			}
		case segIndex:
			if i, ok := index(s.index, len(n)); ok {
				fn(n[i])
			}
		}
	}
}

func forAll(node any, fn func(any)) {
	switch n := node.(type) {
	case Object:
		for _, kv := range n {
			fn(kv.Value)
		}
	case []any:
		for _, e := range n {
			fn(e)
		}
	}
}

func index(i, n int) (int, bool) {
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n
}

// editFunc returns the replacement of a matched value, or del to remove it.
type editFunc func(v any) (nv any, del bool)

// edit applies fn to every match below node, deepest first, and returns the
// new node and the number of matches.
func edit(node any, segs []segment, fn editFunc) (any, int) {
	if len(segs) == 0 {
		return node, 0 // root matches are handled by the callers
	}
	s := segs[0]
	n := 0
	if s.recursive {
		switch v := node.(type) {
		case Object:
			for i := range v {
				var k int
				v[i].Value, k = edit(v[i].Value, segs, fn)
				n += k
			}
		case []any:
			for i := range v {
				var k int
				v[i], k = edit(v[i], segs, fn)
				n += k
			}
		}
	}
	apply := func(child any) (any, bool, int) {
		if len(segs) == 1 {
			nv, del := fn(child)
			return nv, del, 1
		}
		nv, k := edit(child, segs[1:], fn)
		return nv, false, k
	}
	switch v := node.(type) {
	case Object:
		out := make(Object, 0, len(v))
		for _, kv := range v {
			if s.kind == segWild || (s.kind == segName && kv.Key == s.name) {
				nv, del, k := apply(kv.Value)
				n += k
				if del {
					continue
				}
				kv.Value = nv
			}
			out = append(out, kv)
		}
		return out, n
	case []any:
		out := make([]any, 0, len(v))
		for i, e := range v {
			match := s.kind == segWild
			if s.kind == segIndex {
				j, ok := index(s.index, len(v))
				match = ok && i == j
			}
			if match {
				nv, del, k := apply(e)
				n += k
				if del {
					continue
				}
				e = nv
			}
			out = append(out, e)
		}
		return out, n
	}
	return node, n
}

// Set replaces every match with value (maps from expressions become Objects
// with sorted keys). When nothing matches and the path is plain member names
// ($.a.b), missing members are created (appended) along the way; a non-object
// in the way is an error. Setting "$" replaces the document.
func (p *Path) Set(doc, value any) (any, int, error) {
	if len(p.segs) == 0 {
		return normalize(value), 1, nil
	}
	out, n := edit(doc, p.segs, func(any) (any, bool) { return normalize(value), false })
	if n > 0 || !p.simple() {
		return out, n, nil
	}
	created, err := create(doc, p.segs, normalize(value))
	if err != nil {
		return doc, 0, fmt.Errorf("jsonpath: set %s: %w", p.src, err)
	}
	return created, 1, nil
}

func create(node any, segs []segment, value any) (any, error) {
	obj, ok := node.(Object)
	if !ok {
		return nil, fmt.Errorf("cannot create member %q in a value of type %s", segs[0].name, typeName(node))
	}
	for i, kv := range obj {
		if kv.Key == segs[0].name {
			if len(segs) == 1 {
				obj[i].Value = value
				return obj, nil
			}
			v, err := create(kv.Value, segs[1:], value)
			if err != nil {
				return nil, err
			}
			obj[i].Value = v
			return obj, nil
		}
	}
	if len(segs) == 1 {
		return append(obj, KV{Key: segs[0].name, Value: value}), nil
	}
	v, err := create(Object{}, segs[1:], value)
	if err != nil {
		return nil, err
	}
	return append(obj, KV{Key: segs[0].name, Value: v}), nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}

// Remove deletes every matched member or element. The root ("$") cannot be
// removed: Remove returns doc and 0.
func (p *Path) Remove(doc any) (any, int) {
	if len(p.segs) == 0 {
		return doc, 0
	}
	return edit(doc, p.segs, func(any) (any, bool) { return nil, true })
}

// Map replaces every match v with fn(v), deepest first.
func (p *Path) Map(doc any, fn func(v any) any) (any, int) {
	if len(p.segs) == 0 {
		return fn(doc), 1
	}
	return edit(doc, p.segs, func(v any) (any, bool) { return fn(v), false })
}

// Match reports whether the concrete path (member names and array indexes in
// decimal, without the leading "$"; see Split) is one the pattern selects.
func (p *Path) Match(path []string) bool { return match(p.segs, path) }

func match(segs []segment, elems []string) bool {
	if len(segs) == 0 {
		return len(elems) == 0
	}
	s := segs[0]
	if s.recursive {
		for k := range elems {
			if matchOne(s, elems[k]) && match(segs[1:], elems[k+1:]) {
				return true
			}
		}
		return false
	}
	return len(elems) > 0 && matchOne(s, elems[0]) && match(segs[1:], elems[1:])
}

func matchOne(s segment, elem string) bool {
	switch s.kind {
	case segWild:
		return true
	case segIndex:
		return s.index >= 0 && elem == strconv.Itoa(s.index)
	}
	return elem == s.name
}

// Split turns a concrete path such as "$.items[3].updatedAt" into the
// elements Match takes: ["items", "3", "updatedAt"].
func Split(p string) ([]string, error) {
	c, err := Compile(p)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(c.segs))
	for i, s := range c.segs {
		switch {
		case s.recursive || s.kind == segWild || (s.kind == segIndex && s.index < 0):
			return nil, fmt.Errorf("jsonpath: %q is not a concrete path", p)
		case s.kind == segIndex:
			out[i] = strconv.Itoa(s.index)
		default:
			out[i] = s.name
		}
	}
	return out, nil
}
