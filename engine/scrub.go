package engine

import (
	"bytes"
	"strings"

	"github.com/replayctl/replayctl/internal/wordmap"
)

// scrubRequestValues returns an error's text about a request with every
// token (a run of letters, digits and _-.~+/=%:) of 4 bytes or more that
// occurs in the request (as sent, or with its %XX escapes decoded; case
// aside) replaced by xxxxx, and of the others every such word. The errors
// of filters, sample keys and rewrites quote the values they failed on
// ("int(Bearer abc…)"), and a record job logs them before any redaction:
// a production credential would be in the log. The names of the request's
// header fields and query parameters, and its method, are no secret and
// stay (req.header("X-User-Id")): what is left says what failed and where
// in the expression.
func scrubRequestValues(text string, raw []byte) string {
	const maxText = 2048
	if len(text) > maxText {
		text = text[:maxText] + "…"
	}
	lower := bytes.ToLower(raw)
	decoded := bytes.ToLower(percentDecoded(raw))
	names := requestNames(lower)
	inRequest := func(w string) bool {
		lw := []byte(strings.ToLower(w))
		return len(lw) >= 4 && !names[string(lw)] && (bytes.Contains(lower, lw) || bytes.Contains(decoded, lw))
	}
	return wordmap.Map(text, isTokenByte, func(tok string) string {
		if names[strings.ToLower(tok)] {
			return tok
		}
		if inRequest(tok) {
			return "xxxxx"
		}
		return wordmap.Map(tok, isWordByte, func(w string) string {
			if inRequest(w) {
				return "xxxxx"
			}
			return w
		})
	})
}

// requestNames returns the names of the header fields and query
// parameters of a request head (lower case), and its method.
func requestNames(lower []byte) map[string]bool {
	head, _, _ := bytes.Cut(lower, []byte("\r\n\r\n"))
	lines := bytes.Split(head, []byte("\n"))
	names := map[string]bool{}
	if method, rest, ok := bytes.Cut(lines[0], []byte(" ")); ok {
		names[string(method)] = true
		target, _, _ := bytes.Cut(rest, []byte(" "))
		if _, query, ok := bytes.Cut(target, []byte("?")); ok {
			for _, kv := range bytes.Split(query, []byte("&")) {
				if name, _, _ := bytes.Cut(kv, []byte("=")); len(name) > 0 {
					names[string(percentDecoded(name))] = true
				}
			}
		}
	}
	for _, l := range lines[1:] {
		if name, _, ok := bytes.Cut(l, []byte(":")); ok && len(name) > 0 && bytes.IndexByte(name, ' ') < 0 {
			names[string(name)] = true
		}
	}
	return names
}

// isTokenByte says whether c may be part of a value as a request holds
// it: a word's bytes and -.~+/=%:.
func isTokenByte(c byte) bool {
	return isWordByte(c) || strings.IndexByte("-.~+/=%:", c) >= 0
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// percentDecoded is raw with each valid %XX escape decoded and + read as a
// space (a query's values as req.param returns them).
func percentDecoded(raw []byte) []byte {
	if bytes.IndexByte(raw, '%') < 0 && bytes.IndexByte(raw, '+') < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			out = append(out, unhex(raw[i+1])<<4|unhex(raw[i+2]))
			i += 2
		case c == '+':
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
