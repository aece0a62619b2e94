package scenario

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// LookupFunc looks a variable up, like os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// interpolate expands ${VAR}, ${VAR:-default}, ${VAR:?message} and $$ in s.
// As in a shell, :- and :? treat an empty value as unset. Defaults may hold
// further references. whole reports whether s was exactly one ${...}.
func interpolate(s string, lookup LookupFunc) (out string, whole bool, err error) {
	return interpolateEmpty(s, lookup, nil)
}

// interpolateEmpty is interpolate; onEmpty, when not nil, is told the name
// of every reference that put an empty value in: a variable set to "", or
// one without a value whose default is empty too.
func interpolateEmpty(s string, lookup LookupFunc, onEmpty func(name string)) (out string, whole bool, err error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	i := 0
	refs, literal := 0, false
	for i < len(s) {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			literal = true
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			literal = true
			i += 2
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte('$')
			literal = true
			i++
			continue
		}
		end := matchBrace(s, i+2)
		if end < 0 {
			return "", false, fmt.Errorf("unterminated ${ in %q", s)
		}
		v, err := expandRef(s[i+2:end], lookup, onEmpty)
		if err != nil {
			return "", false, err
		}
		b.WriteString(v)
		refs++
		i = end + 1
	}
	return b.String(), refs == 1 && !literal, nil
}

// matchBrace returns the index of the } closing the ${ whose body starts at
// from, or -1.
func matchBrace(s string, from int) int {
	depth := 1
	for j := from; j < len(s); j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			depth++
			j++
		case s[j] == '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// splitRef splits the body of ${…} into the variable's name, the operator
// (":-", ":?" or "" for none) and the text after it.
func splitRef(body string) (name, op, arg string) {
	name = body
	if i := strings.Index(body, ":"); i >= 0 {
		name, op, arg = body[:i], body[i:min(i+2, len(body))], body[min(i+2, len(body)):]
	}
	return name, op, arg
}

// refNames calls add with the name of every variable that interpolate may
// look up in s, whatever the values: in a default or a message too, and
// past a ${NAME:?message} (where interpolate stops when NAME is unset).
// References that interpolate refuses are left out.
func refNames(s string, add func(name string)) {
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++ // $$ is a literal $
			continue
		}
		if s[i+1] != '{' {
			continue
		}
		end := matchBrace(s, i+2)
		if end < 0 {
			return
		}
		name, op, arg := splitRef(s[i+2 : end])
		if validVarName(name) && (op == "" || op == ":-" || op == ":?") {
			add(name)
			refNames(arg, add)
		}
		i = end
	}
}

func expandRef(body string, lookup LookupFunc, onEmpty func(string)) (string, error) {
	name, op, arg := splitRef(body)
	if !validVarName(name) {
		if i := strings.IndexAny(body, "?+="); i > 0 && validVarName(body[:i]) {
			// ${X?msg}, ${X+alt}, ${X=def}: shell forms without the colon.
			n := body[:i]
			return "", fmt.Errorf("invalid variable reference ${%s} (want ${%s}, ${%s:-default} or ${%s:?message})", body, n, n, n)
		}
		return "", fmt.Errorf("invalid variable reference ${%s}", body)
	}
	v, ok := lookup(name)
	switch op {
	case "":
		if !ok {
			return "", &unsetVarError{name, unsetText(name)}
		}
		if v == "" && onEmpty != nil {
			onEmpty(name)
		}
		return v, nil
	case ":-":
		if ok && v != "" {
			return v, nil
		}
		d, _, err := interpolateEmpty(arg, lookup, onEmpty)
		if err == nil && d == "" && onEmpty != nil {
			onEmpty(name)
		}
		return d, err
	case ":?":
		if ok && v != "" {
			return v, nil
		}
		if arg == "" {
			return "", &unsetVarError{name, unsetText(name)}
		}
		// The message names the variable, as a shell's does (NAME:
		// message). References in it are shown as written, ${OTHER}, not
		// read: their values may be secrets.
		msg, _, err := interpolate(arg, func(n string) (string, bool) { return "${" + n + "}", true })
		if err != nil {
			return "", fmt.Errorf("${%s:?…}: its message: %w", name, err)
		}
		return "", &unsetVarError{name, name + ": " + msg}
	}
	return "", fmt.Errorf("invalid variable reference ${%s} (want ${%s}, ${%s:-default} or ${%s:?message})", body, name, name, name)
}

// unsetText is the error for ${NAME} without a value: what to do about it.
func unsetText(name string) string {
	if i := strings.IndexByte(name, '-'); i > 0 && validVarName(name[:i]) {
		// A name may hold '-', so ${X-d} names X-d; the shell's ${X-d}
		// is a default.
		n := name[:i]
		return fmt.Sprintf("${%s} is not set: set it where the scenario runs (environment, --env-file); for a default, write ${%s:-%s}", name, n, name[i+1:])
	}
	return fmt.Sprintf("${%s} is not set: set it where the scenario runs (environment, --env-file), or give it a default: ${%s:-…}", name, name)
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// interpolateTree expands references in every scalar (keys included) of the
// tree in place. vars: entries are expanded from env first and then looked up
// before env. A whole-reference plain scalar is re-typed from its new value
// (so speed: ${SPEED:-2} is a number); other expanded scalars are strings.
// changed collects the nodes whose text changed.
// Scalars that could not be interpolated are added to failed, so later checks
// do not report their raw ${…} text a second time.
//
// denied, when set, returns (and forgets) the variables a restricted lookup
// refused since it was last called: a scalar that needed one (no default)
// is an error that says why.
// unsetVarError is a reference to a variable with no value and no default:
// "${NAME} is not set", or "NAME: message" for ${NAME:?message}.
type unsetVarError struct{ name, msg string }

func (e *unsetVarError) Error() string { return e.msg }

// varValue is a variable's value that ${NAME} put into a scalar.
type varValue struct{ name, value string }

// empty collects, for every scalar, the references that put an empty value
// in it (interpolateEmpty), so that an error about it can name them.
func interpolateTree(file string, root *yaml.Node, env LookupFunc, changed, whole, failed map[*yaml.Node]bool, values map[*yaml.Node][]varValue, empty map[*yaml.Node][]string, denied func() []string, onUnset func(Pos, string)) Diagnostics {
	var ds Diagnostics
	readFailed := false // the lookup read a vars: entry that failed (already reported)
	expand := func(n *yaml.Node, lookup LookupFunc) {
		if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") || changed[n] {
			return
		}
		readFailed = false
		var read []varValue
		var empties []string
		out, isWhole, err := interpolateEmpty(n.Value, func(name string) (string, bool) {
			v, ok := lookup(name)
			if ok && v != "" {
				read = append(read, varValue{name, v})
			}
			return v, ok
		}, func(name string) {
			if !slices.Contains(empties, name) {
				empties = append(empties, name)
			}
		})
		if err == nil && len(empties) > 0 {
			empty[n] = empties
		}
		if readFailed {
			failed[n] = true
			return
		}
		if denied != nil {
			names := denied()
			slices.Sort(names)
			// A refused variable reads as unset: its default applies, and
			// only a reference without one is an error.
			if names = slices.Compact(names); len(names) > 0 && err != nil {
				err = fmt.Errorf("${%s} cannot be read: a restricted scenario reads only vars:, --env-file variables and those --env-allow names", strings.Join(names, "}, ${"))
			}
		}
		if err != nil {
			var unset *unsetVarError
			if onUnset != nil && errors.As(err, &unset) {
				onUnset(Pos{file, n.Line, n.Column}, unset.name)
			}
			ds = append(ds, Diagnostic{Pos{file, n.Line, n.Column}, err.Error()})
			failed[n] = true
			return
		}
		if out == n.Value {
			return
		}
		n.Value = out
		changed[n] = true
		whole[n] = isWhole
		values[n] = read
		if isWhole && n.Style == 0 {
			n.Tag = ""
			n.Tag = n.ShortTag()
		} else {
			n.Tag = "!!str"
		}
	}

	vars := map[string]string{}
	failedVars := map[string]bool{}
	if varsNode, _ := lookup(root, "vars"); varsNode != nil {
		for _, p := range pairs(varsNode) {
			v := resolveAlias(p.Value)
			if v == nil || v.Kind != yaml.ScalarNode {
				continue
			}
			expand(v, env)
			vars[p.Key.Value] = v.Value
			if failed[v] {
				failedVars[p.Key.Value] = true
			}
		}
	}
	lookupAll := func(name string) (string, bool) {
		if failedVars[name] {
			// Its error is reported at the vars: entry; a scalar that
			// reads it is not checked again with the raw ${…} text.
			readFailed = true
			return "", true
		}
		if v, ok := vars[name]; ok {
			return v, true
		}
		return env(name)
	}
	walkNodes(root, func(n *yaml.Node) { expand(n, lookupAll) })
	return ds
}

// emptyHints adds to each diagnostic at a scalar that a reference made
// (partly) empty which variable did, and how to give it a value: an empty
// ${TARGET} read "targets.t.url: must not be empty", which did not say
// where the emptiness came from. Names only, never values.
func emptyHints(file string, root *yaml.Node, empty map[*yaml.Node][]string, ds Diagnostics) Diagnostics {
	if len(empty) == 0 {
		return ds
	}
	at := map[Pos][]string{}
	for n, names := range empty {
		at[Pos{file, n.Line, n.Column}] = names
	}
	vars := map[string]*yaml.Node{}
	if varsNode, _ := lookup(root, "vars"); varsNode != nil {
		for _, p := range pairs(varsNode) {
			vars[p.Key.Value] = resolveAlias(p.Value)
		}
	}
	for i, d := range ds {
		names := at[d.Pos]
		if len(names) == 0 || d.Line == 0 {
			continue
		}
		var hs []string
		for _, name := range names {
			v, isVar := vars[name]
			switch {
			case isVar && len(empty[v]) > 0:
				// tgt: ${TARGET}, TARGET empty: vars: entries read the
				// environment, not --set vars.TARGET.
				inner := empty[v]
				hs = append(hs, fmt.Sprintf("${%s} is empty: vars.%s reads ${%s}, which is empty; give %s a value in the environment or an --env-file, or set the entry: --set vars.%s=…", name, name, strings.Join(inner, "}, ${"), strings.Join(inner, ", "), name))
			case isVar:
				hs = append(hs, fmt.Sprintf("${%s} is empty: vars.%s is empty; give it a value in the file or with --set vars.%s=…", name, name, name))
			default:
				hs = append(hs, fmt.Sprintf("${%s} is empty: give %s a value in the environment or an --env-file, or with --set vars.%s=…", name, name, name))
			}
		}
		ds[i].Message += " (" + strings.Join(hs, "; ") + ")"
	}
	return ds
}

// envReads returns the variables the scenario's ${…} references look up in
// the environment (--env-file included), on every branch of their defaults
// (refNames), as interpolateTree resolves them: every name in a vars:
// value, and every other name that is not a vars: entry. shadowed holds
// the names of vars: entries referenced outside vars: (those read the
// entry, not the environment). Call it before interpolateTree, which
// replaces the references with their values.
func envReads(root *yaml.Node) (env, shadowed map[string]bool) {
	env, shadowed = map[string]bool{}, map[string]bool{}
	vars := map[string]bool{}
	inVars := map[*yaml.Node]bool{}
	if varsNode, _ := lookup(root, "vars"); varsNode != nil {
		for _, p := range pairs(varsNode) {
			v := resolveAlias(p.Value)
			if v == nil || v.Kind != yaml.ScalarNode {
				continue
			}
			vars[p.Key.Value], inVars[v] = true, true
			refNames(v.Value, func(name string) { env[name] = true })
		}
	}
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind != yaml.ScalarNode || inVars[n] {
			return
		}
		refNames(n.Value, func(name string) {
			if vars[name] {
				shadowed[name] = true
			} else {
				env[name] = true
			}
		})
	})
	return env, shadowed
}

// envKey is where an env file sets a variable.
type envKey struct{ line, col int }

// readEnvFile parses KEY=VALUE lines: blank lines and # comments are
// skipped, an optional "export " prefix is allowed, and values may be
// wrapped in single or double quotes (double quotes understand \n, \" and \\).
// keys says where each variable is set.
func readEnvFile(path string) (vals map[string]string, keys map[string]envKey, ds Diagnostics) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, Diagnostics{{Pos{File: path}, fmt.Sprintf("env file: %v", err)}}
	}
	// A byte order mark, as some editors save a UTF-8 file, is not part
	// of the first key.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	vals, keys = map[string]string{}, map[string]envKey{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		col := len(sc.Text()) - len(strings.TrimLeft(sc.Text(), " \t")) + 1
		if rest, ok := strings.CutPrefix(text, "export "); ok {
			text = rest
			col += len("export ") + len(rest) - len(strings.TrimLeft(rest, " \t"))
		}
		key, val, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		if !ok || !validVarName(key) {
			// The line is not shown: it may hold a secret.
			ds = append(ds, Diagnostic{Pos{path, line, 1}, "env file: want KEY=VALUE (KEY: letters, digits, _, . or -, not starting with a digit)"})
			continue
		}
		val, err := unquoteEnv(strings.TrimSpace(val))
		if err != nil {
			ds = append(ds, Diagnostic{Pos{path, line, len(key) + 2}, "env file: " + err.Error()})
			continue
		}
		if first, dup := keys[key]; dup {
			// As a scenario's duplicate key: one of the two values would
			// be lost without a word.
			ds = append(ds, Diagnostic{Pos{path, line, col}, fmt.Sprintf("env file: %s is set again (first at line %d): give it once", key, first.line)})
			continue
		}
		vals[key] = val
		keys[key] = envKey{line, col}
	}
	if err := sc.Err(); err != nil {
		ds = append(ds, Diagnostic{Pos{path, line + 1, 1}, fmt.Sprintf("env file: %v", err)})
	}
	return vals, keys, ds
}

func unquoteEnv(v string) (string, error) {
	if v == "" {
		return v, nil
	}
	q := v[0]
	if q != '"' && q != '\'' {
		if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		return v, nil
	}
	end := strings.LastIndexByte(v, q)
	if end == 0 {
		return "", fmt.Errorf("unterminated quote (%c)", q)
	}
	if rest := strings.TrimSpace(v[end+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
		return "", fmt.Errorf("unexpected text after the closing quote")
	}
	body := v[1:end]
	if q == '\'' {
		return body, nil
	}
	r := strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`, `\t`, "\t")
	return r.Replace(body), nil
}
