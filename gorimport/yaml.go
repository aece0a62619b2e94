package gorimport

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The scenario is built as yaml.v3 nodes so that key order is fixed and
// every string is typed and quoted as the encoder sees fit.

// escapeVars doubles the "$" that the scenario loader would read as the
// start of ${VAR} (before "{") or as an escaped "$$" (before "$"), so every
// string reaches the scenario exactly as gor had it.
func escapeVars(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '$' && i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '$') {
			b.WriteByte('$')
		}
	}
	return b.String()
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: escapeVars(s)}
}

// exprNode is an expr-lang expression, single-quoted where YAML allows it,
// so the double quotes of its string literals need no escaping.
func exprNode(s string) *yaml.Node {
	n := strNode(s)
	n.Style = yaml.SingleQuotedStyle
	return n
}

func intNode(n int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10)}
}

// numNode is an integer when f is whole, else a float.
func numNode(f float64) *yaml.Node {
	if f == float64(int64(f)) {
		return intNode(int64(f))
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: fmtNum(f)}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func seqNode(flow bool, items ...*yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func strSeq(flow bool, ss ...string) *yaml.Node {
	n := seqNode(flow)
	for _, s := range ss {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

// mapNode builds a mapping in the given key order.
func mapNode(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

// set appends key: value to mapping m and returns m.
func set(m *yaml.Node, key string, v *yaml.Node) *yaml.Node {
	m.Content = append(m.Content, strNode(key), v)
	return m
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// quoteExpr returns s as an expr-lang string literal.
func quoteExpr(s string) string { return strconv.Quote(s) }
