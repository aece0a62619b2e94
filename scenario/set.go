package scenario

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/internal/shquote"
)

// applySet applies one --set path.to.key=value override to the tree. Path
// segments are separated by '.'; in a mapping a run of segments may name
// an existing key holding dots (topics.t.config.retention.ms=1 finds the
// key "retention.ms"), and a path that can name two keys of one mapping
// (jobs r and r.loop for jobs.r.loop.for) is an error: a segment in double
// quotes (jobs."r.loop".for) is one key, named exactly. A numeric segment
// indexes a sequence (the length appends). Missing mapping keys are created, except a new entry of jobs,
// targets, topics or windows from a longer path. The value is parsed as YAML.
//
// Errors name the override by its path and the nodes by their paths and
// lines: they never quote the override's value or a value in the file (either
// may be a secret).
//
// Nodes it creates have no line: their Column is index+1 (setMark), so that
// Load names the override in diagnostics about them (see setNotes).
// onReplace, when not nil, is told the position of a value the override
// replaced (the new value takes it).
func applySet(root *yaml.Node, set string, index int, onReplace func(line, col int)) error {
	path, raw, ok := strings.Cut(set, "=")
	if !ok {
		return fmt.Errorf("--set %q: no \"=\"; want path.to.key=value", set)
	}
	path = strings.TrimSpace(path)
	if path == "" {
		return fmt.Errorf("--set with an empty path (want path.to.key=value)")
	}
	set = path // what errors show: the value may be a secret
	segs, err := splitSetPath(path)
	if err != nil {
		return fmt.Errorf("--set %q: %w", set, err)
	}
	var value *yaml.Node
	if credentialKeys[strings.ToLower(segs[len(segs)-1].name)] {
		// A password is the text given: *Hunter2 or &x y read as YAML
		// would be an alias, an anchor or a number.
		value = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: raw}
	} else if value, err = parseSetValue(raw); err != nil {
		return fmt.Errorf("--set %q: %w", set, err)
	}
	n := root
	var walked []string // the keys (and indexes) consumed so far
	var done []setSeg   // the path's segments consumed so far, as written
	for len(segs) > 0 {
		n = resolveAlias(n)
		if n == nil {
			return fmt.Errorf("--set %q: unresolvable alias", set)
		}
		last := len(segs) == 1
		switch n.Kind {
		case yaml.MappingNode:
			// A key may hold dots: every run of unquoted segments that
			// names a key of the mapping is a reading of the path. One is
			// taken; two or more (jobs r and r.loop for jobs.r.loop.for)
			// are an error that shows how to quote the key meant.
			var matches []int // the runs' lengths, longest first
			idxOf := map[int]int{}
			for k := runLen(segs); k >= 1; k-- {
				key := joinSegs(segs[:k])
				for i := len(n.Content) - 2; i >= 0; i -= 2 {
					if n.Content[i].Value == key {
						matches = append(matches, k)
						idxOf[k] = i + 1
						break
					}
				}
			}
			if len(matches) > 1 {
				return ambiguousSet(set, walked, done, segs, matches)
			}
			used, idx := 0, -1
			if len(matches) == 1 {
				used, idx = matches[0], idxOf[matches[0]]
			}
			if idx < 0 && len(walked) == 1 && namedCollections[walked[0]] != "" {
				// jobs.nojob.speed=4 would create a job with only a speed,
				// and jobs.new={…} a job the file does not have.
				names := mapKeys(n)
				msg := fmt.Sprintf("--set %q: the scenario has no %s %q", set, namedCollections[walked[0]], segs[0].name)
				if s := suggest(segs[0].name, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				if len(names) == 0 {
					return fmt.Errorf("%s (it has no %s:)", msg, walked[0])
				}
				return fmt.Errorf("%s (%s: %s)", msg, walked[0], strings.Join(names, ", "))
			}
			if idx < 0 && len(walked) == 1 && walked[0] == "vars" && !referenced(root)[segs[0].name] {
				// vars.TARGT=… would add a variable nothing reads and leave
				// TARGET as it was. A name the file reads as ${NAME} is
				// fine: the override gives it its value.
				names := mapKeys(n)
				msg := fmt.Sprintf("--set %q: the scenario declares no variable %q", set, segs[0].name)
				if len(names) == 0 {
					return fmt.Errorf("%s (it has no vars:)", msg)
				}
				if s := suggest(segs[0].name, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				return fmt.Errorf("%s (vars: %s)", msg, strings.Join(names, ", "))
			}
			if idx < 0 && len(walked) == 3 && walked[0] == "topics" && walked[2] == "config" {
				// Kafka topic configs are dotted names: retention.ms is one key.
				segs = []setSeg{{name: joinSegs(segs)}}
				last = true
			}
			if idx < 0 {
				key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: segs[0].name, Column: setMark(index)}
				var child *yaml.Node
				switch {
				case last:
					child = value
				case segs[1].name == "0":
					// jobs.replay.assert.0=… on a job without assert: a list.
					child = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
				default:
					child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				}
				placeSet(child, index)
				n.Content = append(n.Content, key, child)
				idx, used = len(n.Content)-1, 1
			} else if used == len(segs) {
				if onReplace != nil {
					onReplace(n.Content[idx].Line, n.Content[idx].Column)
				}
				place(value, n.Content[idx])
				n.Content[idx] = value
			}
			walked = append(walked, joinSegs(segs[:used]))
			done = append(done, segs[:used]...)
			segs = segs[used:]
			n = n.Content[idx]
		case yaml.SequenceNode:
			i, err := strconv.Atoi(segs[0].name)
			if err != nil || i < 0 || i > len(n.Content) {
				return fmt.Errorf("--set %q: %q is not an index of %s, a list of %s at line %d (%s)", set, segs[0].name, pathName(walked), items(len(n.Content)), n.Line, indexes(len(n.Content)))
			}
			if i == len(n.Content) {
				var child *yaml.Node
				if last {
					child = value
				} else {
					child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				}
				placeSet(child, index)
				n.Content = append(n.Content, child)
			} else if last {
				if onReplace != nil {
					onReplace(n.Content[i].Line, n.Content[i].Column)
				}
				place(value, n.Content[i])
				n.Content[i] = value
			}
			walked = append(walked, segs[0].name)
			done = append(done, segs[0])
			segs = segs[1:]
			n = n.Content[i]
		case yaml.ScalarNode:
			if isNull(n) {
				// an empty value (key:) becomes a mapping
				n.Kind, n.Tag, n.Value, n.Style = yaml.MappingNode, "!!map", "", 0
				continue
			}
			// The scalar's value is not shown: it may be a password.
			return fmt.Errorf("--set %q: %s is a scalar (line %d, column %d): it has no %q inside", set, pathName(walked), n.Line, n.Column, segs[0].name)
		default:
			return fmt.Errorf("--set %q: cannot descend into YAML node kind %d", set, n.Kind)
		}
	}
	return nil
}

// setSeg is one segment of a --set path: a key's name (or part of one,
// when a key holds dots), or a list's index. A quoted one ("r.loop") is
// one key, named exactly so.
type setSeg struct {
	name   string
	quoted bool
}

// splitSetPath splits a --set path at its dots, except inside a segment
// written in double quotes (jobs."r.loop".for), which names one key, dots
// included: that is how a path that reads two ways picks one.
func splitSetPath(path string) ([]setSeg, error) {
	var segs []setSeg
	for rest := path; ; {
		var seg setSeg
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf(`unterminated quote: a quoted key ends with a '"' (jobs."r.loop".for)`)
			}
			seg, rest = setSeg{name: rest[1 : end+1], quoted: true}, rest[end+2:]
			if rest != "" && rest[0] != '.' {
				return nil, fmt.Errorf(`a quoted key is a whole segment: '.' or the end must follow its closing '"' (jobs."r.loop".for)`)
			}
		} else {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				i = len(rest)
			}
			seg, rest = setSeg{name: rest[:i]}, rest[i:]
		}
		if seg.name == "" {
			return nil, fmt.Errorf("empty path segment (a dot at an end or two in a row); want path.to.key=value")
		}
		segs = append(segs, seg)
		if rest == "" {
			return segs, nil
		}
		rest = rest[1:] // the dot
		if rest == "" {
			return nil, fmt.Errorf("empty path segment (a dot at an end or two in a row); want path.to.key=value")
		}
	}
}

// SetKey writes name, one of keys (the names of a mapping's keys), as one
// segment of a --set path: quoted where a path through it would read two
// ways otherwise (with jobs r and r.stop, jobs.r.stop.after; with
// jobs."r".stop.after and jobs."r.stop".after each reads one), as is
// elsewhere, so that a replayctl that does not know quotes (an agent of
// an older version) reads it. Names hold no '"'.
func SetKey(name string, keys []string) string {
	if strings.Contains(name, ".") || slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, name+".") }) {
		return `"` + name + `"`
	}
	return name
}

// SetPathKeys returns the segments of a --set path as applySet reads them:
// the names, without the quotes of a quoted one (jobs."r.loop".for is
// jobs, r.loop, for). A path applySet refuses is split at every dot.
func SetPathKeys(path string) []string {
	segs, err := splitSetPath(strings.TrimSpace(path))
	if err != nil {
		return strings.Split(strings.TrimSpace(path), ".")
	}
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.name
	}
	return out
}

// runLen is how many segments from the first may join into one key: up
// to the first quoted one (a quoted segment is a key of its own).
func runLen(segs []setSeg) int {
	if segs[0].quoted {
		return 1
	}
	for i, s := range segs {
		if s.quoted {
			return i
		}
	}
	return len(segs)
}

// joinSegs is the key the segments name together.
func joinSegs(segs []setSeg) string {
	names := make([]string, len(segs))
	for i, s := range segs {
		names[i] = s.name
	}
	return strings.Join(names, ".")
}

// setPathText writes segments as a --set path: a quoted one quoted.
func setPathText(segs []setSeg) string {
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = s.name
		if s.quoted {
			parts[i] = `"` + s.name + `"`
		}
	}
	return strings.Join(parts, ".")
}

// ambiguousSet is the error for a path that names several keys of one
// mapping (matches: the lengths of the runs of segs that do): it names the
// keys and gives, for each, the path with that key quoted, as an argument
// to paste into a POSIX shell. The value is shown as "…": it may be a
// secret.
func ambiguousSet(set string, walked []string, done, segs []setSeg, matches []int) error {
	keys := make([]string, len(matches))
	args := make([]string, len(matches))
	for i, k := range matches {
		key := joinSegs(segs[:k])
		keys[len(matches)-1-i] = strconv.Quote(key)
		p := slices.Concat(done, []setSeg{{name: key, quoted: true}}, segs[k:])
		args[i] = "--set " + shquote.Quote(setPathText(p)+"=…")
	}
	where := "the top level"
	if len(walked) > 0 {
		where = pathName(walked)
	}
	return fmt.Errorf("--set %q: the path reads %d ways: %s has the keys %s; quote the key meant: %s", set, len(matches), where, strings.Join(keys, " and "), strings.Join(args, " or "))
}

// namedCollections are the top-level mappings whose keys are names the rest
// of the scenario refers to, each with what one entry is called: --set does
// not invent new entries in them from a longer path (a typo in the name
// would silently create one).
var namedCollections = map[string]string{"jobs": "job", "targets": "target", "topics": "topic", "windows": "window"}

// mapKeys returns the keys of the mapping n, in order.
func mapKeys(n *yaml.Node) []string {
	var names []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		names = append(names, n.Content[i].Value)
	}
	return names
}

// pathName is the scenario path of the segments walked, quoted as --set
// errors quote paths ("the top level" for none).
func pathName(walked []string) string {
	if len(walked) == 0 {
		return "the top level"
	}
	return strconv.Quote(strings.Join(walked, "."))
}

// items is "1 item" or "N items".
func items(n int) string {
	if n == 1 {
		return "1 item"
	}
	return strconv.Itoa(n) + " items"
}

// indexes says which indexes a list of n items takes from --set.
func indexes(n int) string {
	switch n {
	case 0:
		return "0 appends an item"
	case 1:
		return "0 replaces its item, 1 appends one"
	}
	return fmt.Sprintf("0 to %d replace an item, %d appends one", n-1, n)
}

// parseSetValue parses an override's value as one YAML value (scalar or flow
// collection); an empty value is the empty string.
func parseSetValue(raw string) (*yaml.Node, error) {
	if strings.TrimSpace(raw) == "" {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: raw}, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		// yaml's message may quote the value (an anchor's name, say).
		return nil, fmt.Errorf("the value is not valid YAML%s; quote it to pass it as text: --set 'PATH=\"…\"'", yamlErrWhere(err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: raw}, nil
	}
	anchored := false
	walkNodes(doc.Content[0], func(n *yaml.Node) { anchored = anchored || n.Anchor != "" || n.Kind == yaml.AliasNode })
	if anchored {
		// "&x y" would silently be y.
		return nil, fmt.Errorf("the value holds a YAML anchor (&) or alias (*); quote it to pass it as text: --set 'PATH=\"…\"'")
	}
	return doc.Content[0], nil
}

// yamlErrWhere is the position part of a YAML error (" at line 1"), without
// its text, which may quote the value.
func yamlErrWhere(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, _, ok := strings.Cut(rest, ":"); ok {
			return " (line " + n + " of the value)"
		}
	}
	return ""
}

// credentialKeys are the scenario keys that hold a credential as text: a
// --set of one takes the value as given (*Hunter2 would be a YAML alias).
var credentialKeys = map[string]bool{"password": true, "username": true, "key": true}

// place gives an override's nodes the position of the node they replace (or
// the mapping they join), so diagnostics still point into the file.
// setMark is the Column of the nodes the index-th --set creates (they have
// no line in the file).
func setMark(index int) int { return index + 1 }

// placeSet marks n and its children as created by the index-th --set.
func placeSet(n *yaml.Node, index int) {
	walkNodes(n, func(c *yaml.Node) { c.Line, c.Column = 0, setMark(index) })
}

// setNotes names the override in the diagnostics about nodes an override
// created (no line, Column setMark(i)): `--set "jobs.replay.sped": …`, and
// in those at a value an override replaced (replaced: its line and column →
// the override's index): `… (the value of --set "jobs.replay.speed")`.
func setNotes(ds Diagnostics, sets []string, replaced map[[2]int]int) Diagnostics {
	pathOf := func(i int) string {
		path, _, _ := strings.Cut(sets[i], "=")
		return strings.TrimSpace(path)
	}
	for i, d := range ds {
		if d.Line == 0 && d.Col >= 1 && d.Col <= len(sets) {
			path := pathOf(d.Col - 1)
			ds[i].Col = 0
			// A warning stays one: "warning: --set "PATH": …", its path
			// said once.
			msg, warning := strings.CutPrefix(d.Message, "warning: ")
			msg = hideSetValue(strings.TrimPrefix(msg, path+": "), sets[d.Col-1])
			ds[i].Message = fmt.Sprintf("--set %q: %s", path, msg)
			if warning {
				ds[i].Message = "warning: " + ds[i].Message
			}
		} else if j, ok := replaced[[2]int{d.Line, d.Col}]; ok && d.Line > 0 {
			ds[i].Message = hideSetValue(d.Message, sets[j]) + fmt.Sprintf(" (the value of --set %q)", pathOf(j))
		}
	}
	return ds
}

// gotRE matches the "(got …)" a range or type error ends with.
var gotRE = regexp.MustCompile(`\(got ([^()]*)\)`)

// hideSetValue replaces, in msg (a diagnostic about the value of set), the
// quoted texts that are the override's value or one of its scalars ("…"),
// and a "(got N)" that is a number or such a scalar ("(got …)"): errors
// never quote what a --set gave. A "(got string)" names a type and stays.
func hideSetValue(msg, set string) string {
	_, raw, _ := strings.Cut(set, "=")
	vals := map[string]bool{raw: true, strings.TrimSpace(raw): true}
	if v, err := parseSetValue(raw); err == nil {
		walkNodes(v, func(n *yaml.Node) {
			if n.Kind == yaml.ScalarNode {
				vals[n.Value] = true
			}
		})
	}
	delete(vals, "")
	msg = quotedRE.ReplaceAllStringFunc(msg, func(q string) string {
		if u, err := strconv.Unquote(q); err == nil && vals[u] {
			return `"…"`
		}
		return q
	})
	return gotRE.ReplaceAllStringFunc(msg, func(g string) string {
		got := gotRE.FindStringSubmatch(g)[1]
		if _, err := strconv.ParseFloat(got, 64); err == nil || vals[got] {
			return "(got …)"
		}
		return g
	})
}

func place(n, at *yaml.Node) {
	line, col := at.Line, at.Column
	walkNodes(n, func(c *yaml.Node) { c.Line, c.Column = line, col })
}

// referenced returns the names the scalars under root read as ${NAME}, in
// defaults and past a ${NAME:?message} too (refNames).
func referenced(root *yaml.Node) map[string]bool {
	names := map[string]bool{}
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			refNames(n.Value, func(k string) { names[k] = true })
		}
	})
	return names
}
