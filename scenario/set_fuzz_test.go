package scenario

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// suggestedSetRE matches an argument an ambiguity error suggests:
// --set 'PATH=…', shell-quoted.
var suggestedSetRE = regexp.MustCompile(`--set '((?:[^']|'\\'')*)'`)

// FuzzSetPath splits fuzzed --set paths and applies them to a scenario tree
// of fuzzed keys (a mapping of them, each holding a mapping of them):
//   - splitSetPath never panics, and a path it splits is written back
//     (setPathText) to one that splits the same and that SetPathKeys reads
//     as the same keys;
//   - keys written as a path (a key holding a dot quoted) are read back by
//     SetPathKeys;
//   - applySet's errors never show the value;
//   - each argument an ambiguity error suggests is read as one path, and
//     applied, is not ambiguous at the mapping the error names.
func FuzzSetPath(f *testing.F) {
	f.Add("r\nr.loop\nfor", "r.loop.for", "10m")
	f.Add("retention\nretention.ms\nx", `"retention".ms`, "1")
	f.Add("a\na.b\na.b.c\nb.c\nc", "a.b.c.c", "hunter2")
	f.Add("a b\n\"q\"\nx\"y\nx\"y.z", `x"y.z.a b`, "v")
	f.Add("jobs\nvars\n0", "jobs.jobs.0", "[1, 2]")
	f.Add("k\nk.\"\n.k", `"k"."k.""`, "s")
	f.Fuzz(fuzzSetPathBody)
}

func fuzzSetPathBody(t *testing.T, keyList, path, value string) {
	if len(keyList) > 200 || len(path) > 200 {
		return
	}
	// Round trips.
	if segs, err := splitSetPath(path); err == nil {
		text := setPathText(segs)
		again, err := splitSetPath(text)
		if err != nil || !slices.Equal(again, segs) {
			t.Fatalf("splitSetPath(%q) = %v, written %q, read back %v (%v)", path, segs, text, again, err)
		}
		if trimmed, err := splitSetPath(strings.TrimSpace(path)); err == nil {
			var names []string
			for _, s := range trimmed {
				names = append(names, s.name)
			}
			if got := SetPathKeys(path); !slices.Equal(got, names) {
				t.Fatalf("SetPathKeys(%q) = %q, want %q", path, got, names)
			}
		}
	}
	keys := strings.Split(keyList, "\n")
	if slices.ContainsFunc(keys, func(k string) bool { return k == "" || strings.Contains(k, `"`) }) {
		return
	}
	var written []string
	for _, k := range keys {
		if strings.Contains(k, ".") {
			k = SetKey(k, nil)
		}
		written = append(written, k)
	}
	if k := strings.Join(written, "."); strings.TrimSpace(k) == k {
		if got := SetPathKeys(k); !slices.Equal(got, keys) {
			t.Fatalf("SetPathKeys(%q) = %q, want %q", k, got, keys)
		}
	}
	// Overrides.
	tree := func() *yaml.Node {
		inner := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range keys {
			inner.Content = append(inner.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "leaf"})
		}
		root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range keys {
			m := *inner
			m.Content = slices.Clone(inner.Content)
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &m)
		}
		return root
	}
	secret := "Zq7Secr3t" + value
	err := applySet(tree(), path+"="+secret, 0, nil)
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, secret) || len(value) >= 3 && strings.Contains(msg, value) && !strings.Contains(path+keyList, value) {
		t.Fatalf("--set %q=%q: error shows the value: %s", path, secret, msg)
	}
	_, after, ambiguous := strings.Cut(msg, ": the path reads ")
	if !ambiguous {
		return
	}
	where := strings.SplitN(after, " has the keys ", 2)[0]
	where = where[strings.Index(where, ": ")+2:]
	args := suggestedSetRE.FindAllStringSubmatch(after, -1)
	if len(args) < 2 {
		t.Fatalf("--set %q: %d suggestions: %s", path, len(args), msg)
	}
	for _, m := range args {
		arg := strings.ReplaceAll(m[1], `'\''`, `'`)
		p, v, ok := strings.Cut(arg, "=")
		if !ok || v != "…" {
			t.Fatalf("--set %q: suggestion %q does not end with =…: %s", path, arg, msg)
		}
		if _, err := splitSetPath(strings.TrimSpace(p)); err != nil {
			t.Fatalf("--set %q: suggestion %q is not a path (%v): %s", path, p, err, msg)
		}
		err := applySet(tree(), p+"=x", 0, nil)
		if err != nil && strings.Contains(err.Error(), ": the path reads ") && strings.Contains(err.Error(), ": "+where+" has the keys ") {
			t.Fatalf("--set %q: suggestion %q is ambiguous again: %v\n(first: %s)", path, p, err, msg)
		}
	}
}
