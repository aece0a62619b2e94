package scenario

import (
	"strings"
	"testing"
)

// TestYAMLSyntaxPositions: syntax errors point at the line and column of
// the problem, not at the enclosing structure one line early.
func TestYAMLSyntaxPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src, at, msg string
	}{
		{"bad indent", "version: 1\nname: x\njobs:\n  a:\n    source: {}\n   sink: {}\n", "6:4", "did not find expected key (check the indentation: the keys of one mapping, and the items of one list, start in one column"},
		{"deeper key after a value", "version: 1\njobs:\n  a:\n    source: x\n      sink: y\n", "5:11", "mapping values are not allowed in this context (this key is indented deeper than the line above it, which has a value"},
		{"colon in a plain value", "version: 1\nname: a: b\n", "2:8", `mapping values are not allowed in this context (a value with ": " in it must be quoted`},
		{"unclosed double quote", "version: 1\nname: \"abc\njobs: {}\n", "2:7", "unexpected end of stream"},
		{"unclosed single quote", "version: 1\ndescription: 'it''s\n", "2:14", "unexpected end of stream"},
		{"tab indent", "version: 1\njobs:\n\ta: 1\n", "3:1", "cannot start any token"},
		{"tab after spaces", "version: 1\njobs:\n  a:\n  \tb: 1\n", "4:3", "cannot start any token"},
		{"duplicate key", "version: 1\nname: a\nname: b\n", "3:1", `duplicate key "name" (first at line 2)`},
		{"unclosed flow sequence", "version: 1\nname: x\njobs:\n  a:\n    needs: [b, c\n    sink: {}\n", "6:5", "the [ at line 5, column 12 is not closed"},
		{"unclosed flow mapping", "version: 1\nsafety: {deny-targets: [a], allow-capture-hosts: true\nname: x\n", "3:1", "the { at line 2, column 9 is not closed"},
		{"unquoted reference in a flow mapping", "version: 1\nname: x\njobs: {a: {sink: {http: {target: t, workers: ${N}}}}}\n", "3:46", "a ${VAR} reference in a [ ] or { } collection must be quoted"},
		{"unquoted reference in a flow sequence", "version: 1\nname: x\njobs:\n  a:\n    needs: [b, ${JOB}]\n", "5:16", "must be quoted"},
		{"unclosed flow at the end", "version: 1\nname: x\njobs: {a: {needs: [b, c\n", "3:19", "this [ is not closed"},
		{"item where a key goes", "jobs:\n  - a\n  b: 1\n", "3:3", "did not find expected '-' indicator"},
		{"unknown alias", "version: 1\nname: *nope\n", "2:7", "unknown anchor 'nope'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := loadErr(t, tc.src, Options{Env: envOf(nil)})
			for _, d := range ds {
				if strings.TrimPrefix(d.Pos.String(), "s.yaml:") == tc.at && strings.Contains(d.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want a diagnostic at %s containing %q; got:\n%s", tc.at, tc.msg, ds.Error())
		})
	}
}
