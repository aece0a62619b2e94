package compare

import (
	"strings"
)

// Endpoint groups requests: the upper-cased method, a space, and the path
// with the query and fragment dropped and identifier-like segments folded
// into placeholders:
//
//   - only digits → {id}
//   - a UUID (8-4-4-4-12 hex digits) → {uuid}
//   - only hex digits, at least 16 → {hex}
//   - at least 12 of [A-Za-z0-9_-] with letters and digits mixed (a
//     quarter or more digits, or at least two letter/digit changes) →
//     {token}
//
// An absolute-form target (http://host/p) keeps only its path; an empty
// path is "/". Example: Endpoint("get", "/users/123/orders/9f8a…?x=1") is
// "GET /users/{id}/orders/{uuid}".
func Endpoint(method, path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if i := strings.Index(path, "://"); i >= 0 {
		rest := path[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			path = rest[j:]
		} else {
			path = "/"
		}
	}
	if path == "" {
		path = "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = foldSegment(s)
	}
	m := strings.ToUpper(strings.TrimSpace(method))
	if m == "" {
		m = "-"
	}
	return m + " " + strings.Join(segs, "/")
}

func foldSegment(s string) string {
	if s == "" {
		return s
	}
	var digits, letters, hex, other, changes int
	prev := 0 // 1 letter, 2 digit
	for i := 0; i < len(s); i++ {
		c := s[i]
		cur := 0
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
			cur = 2
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
			if c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
				hex++
			}
			cur = 1
		case c == '-' || c == '_':
			prev = 0 // a separator starts a new word
		default:
			other++
		}
		if cur != 0 {
			if prev != 0 && cur != prev {
				changes++
			}
			prev = cur
		}
	}
	switch {
	case digits == len(s):
		return "{id}"
	case isUUID(s):
		return "{uuid}"
	case hex == len(s) && len(s) >= 16:
		return "{hex}"
	case other == 0 && len(s) >= 12 && letters > 0 && digits > 0 &&
		(digits*4 >= len(s) || changes >= 2):
		return "{token}"
	}
	return s
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
