package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
)

// locateSyntaxError finds the line and column of a YAML syntax error that
// yaml.v3 reported at line (0: unknown) with msg. yaml.v3 keeps the exact
// position to itself and prints the line of the structure the error is in
// (0-based, so one line early) or, for scanner errors, the problem's line.
// So the text is parsed again with goccy/go-yaml, whose errors carry the
// position of the token at fault; its answer is taken when it is not before
// yaml.v3's line (the problem is never before the structure it is in), then
// refined for the messages where the token is not the fault. extra, when
// set, is more to say (where an unclosed flow collection was opened).
//
// goccy is not asked when the error is yaml.v3's depth limit, when data is
// larger than goccyMaxBytes, or when it nests deeper than goccyMaxNesting:
// goccy builds a path string for each level it enters, so what it allocates
// grows with the square of the nesting (a 60KB "x: [[[[…" nested 30000 deep
// took 1.4GB).
func locateSyntaxError(data []byte, line int, msg string) (l, c int, extra string) {
	lines := strings.Split(string(data), "\n")
	if strings.HasPrefix(msg, "exceeded max depth of ") {
		l, c = line, firstNonBlank(lines, line)
		if line < 1 {
			l, c = 1, 1
		}
		if off := flowDeeperThan(data, maxYAMLDepth); off >= 0 {
			l, c = lineCol(data, off)
		} else if bl := blockWiderThan(data, maxYAMLDepth); bl > 0 {
			// Each block level is indented at least one column more.
			l, c = bl, firstNonBlank(lines, bl)
		}
		return l, c, fmt.Sprintf(" (this is nested more than %d levels deep; a scenario needs a handful)", maxYAMLDepth)
	}
	gl, gc := 0, 0
	if len(data) <= goccyMaxBytes && nesting(data) <= goccyMaxNesting {
		gl, gc = goccyPosition(data)
	}
	if gl > 0 && gl >= line {
		l, c = gl, gc
	} else if line > 0 {
		l, c = line, firstNonBlank(lines, line)
	} else {
		l, c = 1, 1
	}
	switch {
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		// The fault is the ':' of "key: value" where no mapping can start:
		// on yaml.v3's line (a scanner error: its line is right).
		if line > 0 && line <= len(lines) {
			from := 0
			if l == line {
				from = c - 1
			}
			if i := colonAfter(lines[line-1], from); i >= 0 {
				if k := colonAfter(lines[line-1], 0); k >= 0 && k < i {
					// name: a: b
					return line, i + 1, ` (a value with ": " in it must be quoted: key: 'a: b')`
				}
				// A key indented deeper than the key above it, whose
				// value this line would continue.
				return line, i + 1, " (this key is indented deeper than the line above it, which has a value: keys of one mapping start in one column)"
			}
		}
	case strings.HasPrefix(msg, "did not find expected key"):
		// A key indented less, or more, than the keys before it.
		extra = " (check the indentation: the keys of one mapping, and the items of one list, start in one column, and a key's value on the lines below it is indented more than the key)"
	case strings.HasPrefix(msg, "found character that cannot start any token"):
		if line > 0 && line <= len(lines) && l != line {
			l, c = line, firstNonBlank(lines, line)
			if i := strings.IndexByte(lines[line-1], '\t'); i >= 0 {
				c = i + 1
			}
		}
		if off := offsetOf(data, l, c); off < len(data) && data[off] == '\t' {
			extra = " (a tab: YAML indents with spaces only; replace it with spaces)"
		}
	case strings.HasPrefix(msg, "did not find expected ',' or ']'"), strings.HasPrefix(msg, "did not find expected ',' or '}'"):
		open := byte('[')
		if strings.HasSuffix(msg, "'}'") {
			open = '{'
		}
		if rl, rc := unquotedRefInFlow(data, l, c); rl > 0 {
			// ${ in a flow collection opens one: the brackets look balanced.
			return rl, rc, " (a ${VAR} reference in a [ ] or { } collection must be quoted: \"${VAR}\")"
		}
		if ol, oc := unclosed(data, open, l, c); ol > 0 {
			extra = fmt.Sprintf(" (the %c at line %d, column %d is not closed)", open, ol, oc)
		} else if off := offsetOf(data, l, c); off < len(data) && data[off] == open {
			extra = fmt.Sprintf(" (this %c is not closed)", open)
		}
	}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := findAlias(data, m[1]); i >= 0 {
			l, c = lineCol(data, i)
		}
	}
	return l, c, extra
}

// maxYAMLDepth is yaml.v3's bound on the nesting of flow collections and
// of block indentation.
const maxYAMLDepth = 10000

// Bounds on the input goccy is asked to place an error in (see
// locateSyntaxError): at goccyMaxNesting it allocates about 2MiB.
const (
	goccyMaxBytes   = 1 << 20
	goccyMaxNesting = 1000
)

// nesting returns, cheaply, a bound on how deep data nests: the deepest
// flow collection ([ and { not in quotes or comments) plus the widest
// block indentation (the spaces and "- ", "? ", ": " indicators a line
// starts with), each block level being indented at least one more column.
func nesting(data []byte) int {
	flow, maxFlow := 0, 0
	scanPlain(data, len(data), func(_ int, ch byte) bool {
		switch ch {
		case '[', '{':
			flow++
			maxFlow = max(maxFlow, flow)
		case ']', '}':
			if flow > 0 {
				flow--
			}
		}
		return false
	})
	maxBlock := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		maxBlock = max(maxBlock, blockLead(line))
	}
	return maxFlow + maxBlock
}

// blockLead returns how many bytes of line are block indentation: spaces
// and the indicators "- ", "? " and ": ".
func blockLead(line []byte) int {
	i := 0
	for i < len(line) {
		if line[i] == ' ' {
			i++
		} else if (line[i] == '-' || line[i] == '?' || line[i] == ':') && (i+1 == len(line) || line[i+1] == ' ') {
			i += 2
		} else {
			break
		}
	}
	return i
}

// blockWiderThan returns the first line (from 1) whose block indentation
// (see blockLead) is wider than width, or 0.
func blockWiderThan(data []byte, width int) int {
	n := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		n++
		if blockLead(line) > width {
			return n
		}
	}
	return 0
}

// flowDeeperThan returns the offset of the first [ or { (not in quotes or a
// comment) that opens a flow collection nested deeper than depth, or -1.
func flowDeeperThan(data []byte, depth int) int {
	flow, at := 0, -1
	scanPlain(data, len(data), func(i int, ch byte) bool {
		switch ch {
		case '[', '{':
			if flow++; flow > depth {
				at = i
				return true
			}
		case ']', '}':
			if flow > 0 {
				flow--
			}
		}
		return false
	})
	return at
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '([^']*)' referenced`)

// goccyPosition returns the position goccy/go-yaml gives the first syntax
// error in data (0, 0 when it finds none).
func goccyPosition(data []byte) (l, c int) {
	defer func() {
		if recover() != nil {
			l, c = 0, 0 // a second opinion is not worth a crash
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if err == nil || !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil {
		return 0, 0
	}
	return se.Token.Position.Line, se.Token.Position.Column
}

func firstNonBlank(lines []string, line int) int {
	if line < 1 || line > len(lines) {
		return 1
	}
	s := lines[line-1]
	return len(s) - len(strings.TrimLeft(s, " \t")) + 1
}

// colonAfter returns the index of the first ':' at or after from in s that
// is followed by a space, a tab or the end of the line, outside quotes.
func colonAfter(s string, from int) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return -1
		case c == ':' && i >= from && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t' || s[i+1] == '\r'):
			return i
		}
	}
	return -1
}

// unclosed returns the position of the last open bracket (not in a quoted
// string or a comment) before line l, column c that is not closed there.
func unclosed(data []byte, open byte, l, c int) (int, int) {
	closeB := byte(']')
	if open == '{' {
		closeB = '}'
	}
	var stack []int
	scanPlain(data, offsetOf(data, l, c), func(i int, ch byte) bool {
		switch {
		case ch == open:
			stack = append(stack, i)
		case ch == closeB && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
		return false
	})
	if len(stack) == 0 {
		return 0, 0
	}
	return lineCol(data, stack[len(stack)-1])
}

// unquotedRefInFlow returns the position of the first ${ (not in a quoted
// string or a comment) inside a flow collection before line l, column c.
func unquotedRefInFlow(data []byte, l, c int) (int, int) {
	depth, at := 0, -1
	scanPlain(data, offsetOf(data, l, c), func(i int, ch byte) bool {
		switch {
		case ch == '$' && depth > 0 && i+1 < len(data) && data[i+1] == '{':
			at = i
			return true
		case ch == '[' || ch == '{':
			depth++
		case (ch == ']' || ch == '}') && depth > 0:
			depth--
		}
		return false
	})
	if at < 0 {
		return 0, 0
	}
	return lineCol(data, at)
}

// scanPlain calls f with each byte of data before end (and within data)
// that is not in a quoted string or a comment, until f returns true.
func scanPlain(data []byte, end int, f func(i int, ch byte) (stop bool)) {
	var quote byte
	for i := 0; i < end && i < len(data); i++ {
		ch := data[i]
		switch {
		case quote != 0:
			if ch == '\\' && quote == '"' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			if i == 0 || bytes.IndexByte([]byte(" \t\n[{,:"), data[i-1]) >= 0 {
				quote = ch
			}
		case ch == '#' && (i == 0 || data[i-1] == ' ' || data[i-1] == '\n'):
			for i < len(data) && data[i] != '\n' {
				i++
			}
		default:
			if f(i, ch) {
				return
			}
		}
	}
}

// findAlias returns the offset of the first alias *name in data.
func findAlias(data []byte, name string) int {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("*"+name))
		if j < 0 {
			return -1
		}
		j += i
		after := j + 1 + len(name)
		if after >= len(data) || bytes.IndexByte([]byte(" \t\r\n,]}"), data[after]) >= 0 {
			return j
		}
		i = j + 1
	}
}

func offsetOf(data []byte, l, c int) int {
	off := 0
	for line := 1; line < l; line++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	return min(off+c-1, len(data))
}

func lineCol(data []byte, off int) (int, int) {
	l := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return l, len([]rune(string(data[start:off]))) + 1
}
