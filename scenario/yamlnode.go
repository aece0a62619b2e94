package scenario

import (
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits that keep hostile input (alias bombs, deep nesting) bounded.
const (
	maxDepth = 64
	maxNodes = 200_000
)

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data into its document's root node. A syntax error
// becomes a diagnostic with the line yaml.v3 reports.
func parseYAML(file string, data []byte) (*yaml.Node, *Diagnostic) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, &Diagnostic{Pos{file, 1, 1}, "scenario is empty"}
	}
	if err != nil {
		return nil, yamlDiag(file, data, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &Diagnostic{Pos{file, next.Line, next.Column}, "a scenario file holds one YAML document; found another"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlDiag(file, data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, &Diagnostic{Pos{file, 1, 1}, "scenario is empty"}
		}
		root = root.Content[0]
	}
	return root, nil
}

// yamlDiag turns a yaml.v3 syntax error into a diagnostic at the position
// of the problem (see locateSyntaxError): yaml.v3 only gives a line, often
// the line of the enclosing structure, one line early.
func yamlDiag(file string, data []byte, err error) *Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	l, c, extra := locateSyntaxError(data, line, msg)
	return &Diagnostic{Pos{file, l, c}, "YAML syntax: " + msg + extra}
}

// resolveAlias follows alias nodes to the node they name.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// pair is one key and value of a mapping, merge keys expanded.
type pair struct {
	Key, Value *yaml.Node
}

// pairs returns a mapping's entries in order with YAML merge keys (<<)
// expanded: merged entries come first, explicit entries override them.
func pairs(n *yaml.Node) []pair {
	budget := maxMerged
	return pairsDepth(n, 0, &budget)
}

// maxMerged bounds the entries merge keys may pull into one mapping, so
// nested merges of merges stay cheap.
const maxMerged = 10_000

func pairsDepth(n *yaml.Node, depth int, budget *int) []pair {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode || depth > maxDepth {
		return nil
	}
	if *budget -= len(n.Content)/2 + 1; *budget < 0 {
		return nil
	}
	var merged, own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			v = resolveAlias(v)
			if v == nil {
				continue
			}
			switch v.Kind {
			case yaml.MappingNode:
				merged = append(merged, pairsDepth(v, depth+1, budget)...)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					merged = append(merged, pairsDepth(m, depth+1, budget)...)
				}
			}
			continue
		}
		own = append(own, pair{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	seen := make(map[string]bool, len(own))
	for _, p := range own {
		seen[p.Key.Value] = true
	}
	out := make([]pair, 0, len(merged)+len(own))
	for _, p := range merged {
		if !seen[p.Key.Value] {
			out = append(out, p)
			seen[p.Key.Value] = true
		}
	}
	return append(out, own...)
}

// lookup returns the value and key nodes of key in mapping n (the last
// one when the key repeats).
func lookup(n *yaml.Node, key string) (value, keyNode *yaml.Node) {
	for _, p := range pairs(n) {
		if p.Key.Value == key {
			value, keyNode = p.Value, p.Key
		}
	}
	return resolveAlias(value), keyNode
}

// toAny converts a node tree into the JSON-like values the schema validator
// takes: map[string]any, []any, string, int64, float64, bool, nil.
func toAny(n *yaml.Node) (any, error) {
	budget := maxNodes
	return toAnyDepth(n, 0, &budget)
}

var errTooLarge = errors.New("scenario too large or too deeply nested (check YAML aliases)")

func toAnyDepth(n *yaml.Node, depth int, budget *int) (any, error) {
	*budget--
	if depth > maxDepth || *budget < 0 {
		return nil, errTooLarge
	}
	n = resolveAlias(n)
	if n == nil {
		return nil, errTooLarge
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toAnyDepth(n.Content[0], depth+1, budget)
	case yaml.MappingNode:
		m := make(map[string]any)
		for _, p := range pairs(n) {
			v, err := toAnyDepth(p.Value, depth+1, budget)
			if err != nil {
				return nil, err
			}
			m[p.Key.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toAnyDepth(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		return scalarValue(n), nil
	}
	return nil, fmt.Errorf("unsupported YAML node kind %d", n.Kind)
}

// scalarValue types a scalar by its (resolved) tag. Timestamps stay strings;
// NaN and infinities become strings so no consumer sees them as numbers.
func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				// 8.0 and 1e3 are integers, as JSON Schema (and so every
				// editor checking the schema) counts them: a field that
				// takes an integer takes them as 8 and 1000.
				return int64(f)
			}
			return f
		}
	}
	return n.Value
}

// isNull reports whether n is absent or a null scalar.
func isNull(n *yaml.Node) bool {
	n = resolveAlias(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// walkNodes calls fn once for every distinct node under n (aliases followed
// once), depth-first, within the node budget.
func walkNodes(n *yaml.Node, fn func(*yaml.Node)) {
	seen := map[*yaml.Node]bool{}
	var walk func(*yaml.Node, int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || seen[n] || depth > maxDepth || len(seen) > maxNodes {
			return
		}
		seen[n] = true
		fn(n)
		if n.Kind == yaml.AliasNode {
			walk(n.Alias, depth+1)
			return
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
}

// duplicateReadKeys reports the mapping keys that repeat once ${…} is read
// in them ("${JOB:-replay}" next to "replay"): one of the two would be
// silently lost. orig is each changed key's text as written.
func duplicateReadKeys(file string, root *yaml.Node, changed map[*yaml.Node]bool, orig map[*yaml.Node]string) Diagnostics {
	var ds Diagnostics
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			return
		}
		first := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" {
				continue
			}
			f, ok := first[k.Value]
			if !ok {
				first[k.Value] = k
				continue
			}
			if !changed[k] && !changed[f] {
				continue // reported before interpolation
			}
			text := k.Value
			if raw, ok := orig[k]; ok && changed[k] {
				text = raw
			}
			ds = append(ds, Diagnostic{Pos{file, k.Line, k.Column},
				fmt.Sprintf("duplicate key: %s reads the same as the key at line %d, column %d; one of them would be lost", text, f.Line, f.Column)})
		}
	})
	return ds
}

// duplicateKeys reports every mapping key that repeats within its mapping,
// and every merge key (<<) whose value is not a mapping or a list of them
// (the merge would silently add nothing).
// collectionKeys reports the mapping keys that are collections (? [a, b]
// or ? {a: 1}): a scenario's keys are names, and such a key would be read
// as "" somewhere else.
func collectionKeys(file string, root *yaml.Node) Diagnostics {
	var ds Diagnostics
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if r := resolveAlias(k); r != nil && (r.Kind == yaml.SequenceNode || r.Kind == yaml.MappingNode) {
				ds = append(ds, Diagnostic{Pos{file, k.Line, k.Column}, "a key must be a name, not a [ ] or { } collection"})
			}
		}
	})
	return ds
}

func duplicateKeys(file string, root *yaml.Node) Diagnostics {
	var ds Diagnostics
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			return
		}
		first := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" {
				if !mergeable(n.Content[i+1]) {
					v := n.Content[i+1]
					ds = append(ds, Diagnostic{Pos{file, v.Line, v.Column},
						"a merge key (<<) takes a mapping or a list of mappings, such as *defaults"})
				}
				continue
			}
			if f, ok := first[k.Value]; ok {
				ds = append(ds, Diagnostic{Pos{file, k.Line, k.Column},
					fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, f.Line)})
				continue
			}
			first[k.Value] = k
		}
	})
	return ds
}

// mergeable says whether v may follow a merge key: a mapping, or a list of
// mappings (aliases resolved).
func mergeable(v *yaml.Node) bool {
	v = resolveAlias(v)
	switch {
	case v == nil:
		return false
	case v.Kind == yaml.MappingNode:
		return true
	case v.Kind == yaml.SequenceNode:
		for _, m := range v.Content {
			if m = resolveAlias(m); m == nil || m.Kind != yaml.MappingNode {
				return false
			}
		}
		return true
	}
	return false
}

// yaml12Int and yaml12Float are the plain numbers of YAML 1.2's core schema,
// which editors and most other readers use. gopkg.in/yaml.v3 also reads some
// YAML 1.1 forms as numbers (010 as octal 8, 1_000, 0b101) that those readers
// take as 10 or as strings.
var (
	yaml12Int   = regexp.MustCompile(`^([-+]?(0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$`)
	yaml12Float = regexp.MustCompile(`^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$`)
)

// ambiguousNumbers reports the plain numbers that YAML 1.1 and YAML 1.2
// read differently (workers: 010 is 8 here and 10 in an editor): the same
// file would mean two things. orig is the text of a scalar as written, when
// a ${VAR} reference was read into it.
func ambiguousNumbers(file string, root *yaml.Node, orig map[*yaml.Node]string) Diagnostics {
	var ds Diagnostics
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind != yaml.ScalarNode || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return
		}
		switch n.ShortTag() {
		case "!!int":
			if yaml12Int.MatchString(n.Value) {
				return
			}
		case "!!float":
			if yaml12Float.MatchString(n.Value) {
				return
			}
		default:
			return
		}
		msg := fmt.Sprintf("%s reads as %v here (YAML 1.1) but not in YAML 1.2, as editors read it: write %v, or quote it for a string", n.Value, scalarValue(n), scalarValue(n))
		if o, ok := orig[n]; ok {
			// The value came from the environment: named by its reference.
			msg = fmt.Sprintf("the value of %s is a number YAML 1.1 and YAML 1.2 read differently (a leading 0, a _ or 0b): write it in decimal digits", o)
		}
		ds = append(ds, Diagnostic{Pos{file, n.Line, n.Column}, msg})
	})
	return ds
}
