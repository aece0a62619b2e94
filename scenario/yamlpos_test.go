package scenario

import (
	"runtime"
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

// TestDeepNestingBounded: input nested past yaml.v3's depth limit (or too
// deep to ask goccy where an error is) is an error at its place, found
// with memory that does not grow with the square of the nesting (goccy,
// asked to place it, took 1.4GB for 30000 levels and died at 100000).
func TestDeepNestingBounded(t *testing.T) {
	const limit = 64 << 20
	for _, tc := range []struct {
		name, src, at, msg string
	}{
		{"flow 20000", "version: 1\nx: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n", "2:10004", "exceeded max depth of 10000 (this is nested more than 10000 levels deep"},
		{"flow 100000", "version: 1\nx: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n", "2:10004", "exceeded max depth of 10000 (this is nested more than 10000 levels deep"},
		{"flow mappings 100000 unclosed", "version: 1\nx: " + strings.Repeat("{a: ", 100000) + "\n", "2:40004", "exceeded max depth of 10000"},
		{"block 20000", "version: 1\nx:\n" + strings.Repeat("- ", 20000) + "a\n", "3:1", "exceeded max depth of 10000"},
		// Under yaml.v3's limit, too deep for goccy: yaml.v3's line.
		{"flow 9999 unclosed", "version: 1\nx: " + strings.Repeat("[", 9999) + strings.Repeat("]", 9998) + "\n", "1:1", "did not find expected ',' or ']'"},
		{"block 9000 then a bad line", "version: 1\nx:\n" + strings.Repeat("- ", 9000) + "a\n  b: c: d\n", "2:1", "did not find expected '-' indicator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ds := loadErr(t, tc.src, Options{Env: envOf(nil)})
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > limit {
				t.Errorf("allocated %d MiB, want under %d MiB", n>>20, limit>>20)
			}
			wantDiag(t, ds, tc.at, tc.msg)
		})
	}
}
