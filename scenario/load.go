// Package scenario loads replayctl scenario files: it parses the YAML,
// applies --set overrides, interpolates ${VAR} references, validates against
// the embedded JSON Schema and semantically (references, needs cycles,
// durations, sizes, URLs, expressions), and decodes into a typed model.
// Every problem is reported, each as FILE:LINE:COL: message.
package scenario

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/internal/wordmap"
)

// Options tune Load.
type Options struct {
	// Set holds --set path.to.key=value overrides, applied in order.
	Set []string
	// Env looks variables up; nil means os.LookupEnv.
	Env LookupFunc
	// OnUnset, when not nil, is told of every ${NAME} with no value and no
	// default (${NAME}, or ${NAME:?message}), at the position of the
	// diagnostic that reports it: a caller whose variables come later (the
	// fleet's agents, with their --var) may leave those diagnostics out.
	OnUnset func(pos Pos, name string)
	// EnvFile, when set, is a KEY=VALUE file overlaid on top of Env for
	// ${VAR}, and on top of the process environment for env("VAR") when the
	// scenario runs (Scenario.LookupEnv).
	EnvFile string

	// Restricted limits what the scenario may read from the environment:
	// ${VAR} only reads vars: entries, EnvFile variables and environment
	// variables whose names match an EnvAllow pattern (path.Match syntax,
	// "APP_*"); env("NAME") in expressions only literal names of EnvFile or
	// matching EnvAllow; and the files it reads are contained like the ones it
	// writes (see contain.go). Anything else is a validation error. The
	// fleet's agents always load scenarios restricted.
	Restricted bool
	EnvAllow   []string
	// Remote: the scenario is checked here to run elsewhere (serve checks
	// what its agents will run): messages name no directory of this
	// machine in their hints (--allow-paths DIR).
	Remote bool

	// OutputDir, when set, is the directory the paths the scenario writes
	// (reports, gor sinks, kafka.data-dir) resolve against and must stay
	// under, instead of the scenario file's directory. AllowPaths are more
	// directories they may be under (the command line's --allow-paths).
	OutputDir  string
	AllowPaths []string
}

// envAllowed reports whether name matches one of the patterns.
func envAllowed(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Load reads, checks and decodes the scenario file at path. On any problem
// it returns Diagnostics (as the error), all of them, sorted by position.
func Load(path string, opts Options) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{{Pos{File: path}, fmt.Sprintf("read scenario: %v", err)}}
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes is Load for a scenario already in memory; name is the file name
// used in diagnostics and to resolve relative paths.
func LoadBytes(name string, data []byte, opts Options) (*Scenario, error) {
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		dir = filepath.Dir(name)
	}
	root, diag := parseYAML(name, data)
	if diag != nil {
		return nil, Diagnostics{*diag}
	}
	if root.Kind != yaml.MappingNode {
		if isNull(root) {
			// An empty document ("---"): yaml places it past the text.
			return nil, Diagnostics{{Pos{name, 1, 1}, "scenario: the document is empty; want a mapping of keys (version, name, jobs, …)"}}
		}
		return nil, Diagnostics{{Pos{name, root.Line, root.Column}, "scenario: must be a mapping of keys (version, name, jobs, …)"}}
	}
	if ds := collectionKeys(name, root); len(ds) > 0 {
		return nil, ds
	}
	ds := duplicateKeys(name, root)

	replaced := map[[2]int]int{} // the positions of values --set replaced
	for i, set := range opts.Set {
		if err := applySet(root, set, i, func(line, col int) { replaced[[2]int{line, col}] = i }); err != nil {
			ds = append(ds, Diagnostic{Pos{File: name}, err.Error()})
		}
	}

	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	var (
		fileVals map[string]string
		fileKeys map[string]envKey
	)
	if opts.EnvFile != "" {
		vals, keys, eds := readEnvFile(opts.EnvFile)
		ds = append(ds, eds...)
		fileVals, fileKeys = vals, keys
		base := env
		env = func(k string) (string, bool) {
			if v, ok := vals[k]; ok {
				return v, true
			}
			return base(k)
		}
	}
	var denied func() []string
	if opts.Restricted {
		var names []string
		base := env
		env = func(k string) (string, bool) {
			if _, ok := fileVals[k]; ok || envAllowed(opts.EnvAllow, k) {
				return base(k)
			}
			names = append(names, k)
			return "", false
		}
		denied = func() []string {
			out := names
			names = nil
			return out
		}
	}
	// The text of every scalar that holds a reference, before interpolation:
	// diagnostics show it instead of the values read from the environment.
	orig := map[*yaml.Node]string{}
	walkNodes(root, func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			orig[n] = n.Value
		}
	})
	// The variables the references read, before they are replaced.
	envRead, viaVars := envReads(root)
	failed, changed, whole := map[*yaml.Node]bool{}, map[*yaml.Node]bool{}, map[*yaml.Node]bool{}
	values := map[*yaml.Node][]varValue{}
	empty := map[*yaml.Node][]string{}
	ds = append(ds, interpolateTree(name, root, env, changed, whole, failed, values, empty, denied, opts.OnUnset)...)
	ds = append(ds, duplicateReadKeys(name, root, changed, orig)...)

	sr := validateSchema(name, root)
	// A value read whole from ${VAR} takes the type the field needs: a
	// password of 123456 or a token "true" stays the string it is, and
	// workers: "${N}" (quoted, as a flow collection needs it) is a number.
	retagged := false
	for n := range sr.wantString {
		if whole[n] && n.Tag != "!!str" {
			n.Tag, retagged = "!!str", true
		}
	}
	// A field whose schema is one of several shapes (speed: a number or
	// "max"; loop: a count or {for: D}) gives no type error to go by: a
	// quoted whole reference it refused is tried as if written plain too.
	for n := range whole {
		if sr.bad[n] && !sr.wantString[n] && n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			plain := yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}
			switch plain.ShortTag() {
			case "!!int", "!!float", "!!bool":
				sr.wantScalar[n] = true
			}
		}
	}
	for n := range sr.wantScalar {
		if whole[n] {
			// Resolved as if written plain: the quotes were for YAML.
			n.Tag, n.Style = "", 0
			if n.Tag = n.ShortTag(); n.Tag != "!!str" {
				retagged = true
			}
		}
	}
	if retagged {
		sr = validateSchema(name, root)
	}
	for n := range failed {
		// Its ${…} error is the one to read; the raw text's shape is not.
		sr.bad[n] = true
		pos := Pos{name, n.Line, n.Column}
		sr.diags = slices.DeleteFunc(sr.diags, func(d Diagnostic) bool { return d.Pos == pos })
	}
	sr.diags = misplacedJobKeys(name, root, sr.diags)
	ds = append(ds, sr.diags...)
	ds = append(ds, ambiguousNumbers(name, root, orig)...)

	d := &decoder{
		file:       name,
		dir:        dir,
		outDir:     dir,
		lines:      strings.Split(string(data), "\n"),
		sr:         sr,
		s:          &Scenario{File: name, Dir: dir},
		restricted: opts.Restricted,
		remote:     opts.Remote,
		envAllowed: func(k string) bool { return envAllowed(opts.EnvAllow, k) },
	}
	secret := secretReads(root, values)
	for _, vs := range values {
		for _, v := range vs {
			if secret(v) && v.value != "" && !slices.Contains(d.s.secrets, v) {
				d.s.secrets = append(d.s.secrets, v)
			}
		}
	}
	for n, vs := range values {
		if slices.ContainsFunc(vs, secret) {
			if d.secretWritten == nil {
				d.secretWritten = map[*yaml.Node]string{}
			}
			d.secretWritten[n] = orig[n]
			if t, ok := secretTemplate(orig[n], vs, secret); ok {
				if d.secretTemplate == nil {
					d.secretTemplate = map[*yaml.Node]string{}
				}
				d.secretTemplate[n] = t
			}
		}
	}
	if fileVals != nil {
		// env("NAME") reads the --env-file variables, as ${NAME} does.
		d.envAllowed = func(k string) bool { _, ok := fileVals[k]; return ok || envAllowed(opts.EnvAllow, k) }
	}
	if opts.OutputDir != "" {
		d.outDir, d.outDirFlag = absClean(opts.OutputDir), true
	}
	for _, a := range opts.AllowPaths {
		d.allow = append(d.allow, absClean(a))
	}
	if _, tooBig := toAny(root); tooBig == nil {
		d.decodeScenario(root)
	}
	ds = append(ds, d.diags...)
	for i := range ds {
		ds[i].Message += d.hints[ds[i].Pos]
	}
	ds = emptyHints(name, root, empty, ds)
	if len(ds) > 0 {
		return nil, setNotes(maskSecretSources(hideValues(ds, changed, orig, values, secret), d.secretSrc), opts.Set, replaced).sorted()
	}
	ws := append(d.warnings, checkInputs(d.inputs)...)
	lookup := opts.Env
	if lookup == nil {
		lookup = os.LookupEnv
	}
	d.s.envFile = fileVals
	for _, r := range d.s.EnvRefs {
		if _, ok := fileVals[r.Name]; ok {
			continue
		}
		if _, ok := lookup(r.Name); !ok {
			msg := fmt.Sprintf("warning: env(%q): %s is not set here; env() reads an unset variable as \"\"", r.Name, r.Name)
			if r.Value {
				msg += " (run refuses it in a value a job sends: set it where the scenario runs)"
			}
			ws = append(ws, Diagnostic{r.Pos, msg})
		}
	}
	ws = append(ws, unusedEnvKeys(opts.EnvFile, name, fileKeys, envRead, viaVars, d.s.EnvRefs)...)
	d.s.Warnings = setNotes(maskSecretSources(hideValues(ws, changed, orig, values, secret), d.secretSrc), opts.Set, replaced).sorted()
	return d.s, nil
}

// unusedEnvKeys warns of each variable of the env file that neither a ${…}
// of the scenario (read) nor a literal env("NAME") of its expressions
// (refs) reads, at its line in the file, by name: never its value, which
// may be a secret. One that only a reference answered by a vars: entry
// names is told why it is not read.
func unusedEnvKeys(envFile, scn string, keys map[string]envKey, read, viaVars map[string]bool, refs []EnvRef) Diagnostics {
	var ws Diagnostics
	for key, at := range keys {
		if read[key] || slices.ContainsFunc(refs, func(r EnvRef) bool { return r.Name == key }) {
			continue
		}
		msg := fmt.Sprintf("warning: %s is not used by scenario %s", key, scn)
		if viaVars[key] {
			msg += fmt.Sprintf(": its ${%s} reads the vars: entry %s, not the environment", key, key)
		} else {
			msg += fmt.Sprintf(" (no ${%s} or env(%q) in it)", key, key)
		}
		ws = append(ws, Diagnostic{Pos{envFile, at.line, at.col}, msg})
	}
	return ws
}

func absClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// hideValues replaces, in every diagnostic, the values that ${…} references
// put into scalars with the scalar's text as written ("${DB_PASSWORD}"), so
// that an error says which variable, never its value. A value is replaced
// where it stands as a whole word: anywhere on the scalar's own line (a
// value shorter than 6 bytes, unless a secret's, only in the diagnostics
// within the scalar), and elsewhere when it is at least 6 bytes long. A URL value is also replaced
// in its masked form (MaskURL), by its text masked the same way, except for
// secrets written as ${VAR}: those are shown as written. Each variable's
// own value is replaced by ${NAME} in the diagnostics at its scalar's line
// (a scalar may hold several, or text around one: '"Bearer " + ${TOKEN}'),
// and everywhere when the variable has a secret's name; there, any word of
// at least 6 bytes that is part of such a value (of at least 8) and not of
// the scalar as written is too (an expression error quotes a JWT up to its
// first dot).
func hideValues(ds Diagnostics, changed map[*yaml.Node]bool, orig map[*yaml.Node]string, values map[*yaml.Node][]varValue, isSecret func(varValue) bool) Diagnostics {
	type hidden struct {
		value, raw string
		line       int
		col, end   int    // the columns the scalar spans on its line (end: past it, allowing for quotes)
		ownLine    bool   // replaced on the scalar's line only
		secret     bool   // read from a variable with a secret's name: replaced anywhere on its line
		written    string // the scalar as written (fragments it holds are the author's)
	}
	// A value shorter than 6 bytes that is not a secret's is replaced only
	// in the diagnostics within its scalar (a "0" elsewhere on the line is
	// another scalar's, or the message's own text: "A-Z a-z 0-9").
	within := func(d Diagnostic, h hidden) bool {
		return d.Line == h.line && (len(h.value) >= 6 || h.secret || d.Col == 0 || d.Col >= h.col && d.Col < h.end)
	}
	readsSecret := func(n *yaml.Node) bool {
		for _, v := range values[n] {
			if isSecret(v) {
				return true
			}
		}
		return false
	}
	span := func(n *yaml.Node) (int, int) {
		return n.Column, n.Column + len(orig[n]) + 3
	}
	var hs []hidden
	for n := range changed {
		if len(values[n]) == 0 && !strings.Contains(orig[n], ":-") {
			// Its references all read "": the value is the text around
			// them, the author's ("${T}s" is "s"), and replacing it would
			// garble the message's own words ("units ns, us, ms, ${T}s").
			continue
		}
		if raw, ok := orig[n]; ok && n.Value != "" && n.Value != raw && !strings.Contains(n.Value, "${") {
			col, end := span(n)
			secret := readsSecret(n)
			hs = append(hs, hidden{value: n.Value, raw: raw, line: n.Line, col: col, end: end, secret: secret})
			if m := MaskURL(n.Value); m != n.Value {
				// A URL is shown masked (ParseTargetURL): so is its text.
				hs = append(hs, hidden{value: m, raw: maskURLText(raw), line: n.Line, col: col, end: end, secret: secret})
			}
		}
	}
	var long []hidden // secrets whose fragments are hidden too
	for n, vs := range values {
		for _, v := range vs {
			secret := isSecret(v)
			col, end := span(n)
			h := hidden{value: v.value, raw: "${" + v.name + "}", line: n.Line, col: col, end: end, ownLine: !secret, secret: secret, written: orig[n]}
			hs = append(hs, h)
			if len(v.value) >= 8 && secret {
				long = append(long, h)
			}
		}
	}
	// Longer values first, so a value that contains another is replaced whole.
	slices.SortFunc(hs, func(a, b hidden) int { return len(b.value) - len(a.value) })
	out := make(Diagnostics, len(ds))
	for i, d := range ds {
		for _, h := range hs {
			if within(d, h) || (len(h.value) >= 6 && !h.ownLine) {
				d.Message = replaceWord(d.Message, h.value, h.raw)
			}
		}
		for _, h := range long {
			if d.Line == h.line {
				d.Message = hideFragments(d.Message, h.value, h.raw, h.written)
			}
		}
		if i := strings.Index(d.Message, "unknown name ${"); i >= 0 {
			name, _, _ := strings.Cut(d.Message[i+len("unknown name ${"):], "}")
			d.Message = textHintRE.ReplaceAllString(d.Message, "")
			d.Message += fmt.Sprintf(` (${%s} pastes its value into the expression as code: for text, write it inside the quotes, "…${%s}", or use env("%s"))`, name, name, name)
		}
		out[i] = d
	}
	return out
}

// hideFragments replaces by repl every word of s (letters, digits, '_',
// '-', '+', '/', '=') of at least 6 bytes that is part of value and not of
// written (the scalar as its author wrote it).
func hideFragments(s, value, repl, written string) string {
	isTok := func(c byte) bool { return isWordByte(c) || c == '-' || c == '+' || c == '/' || c == '=' }
	return wordmap.Map(s, isTok, func(w string) string {
		if len(w) >= 6 && strings.Contains(value, w) && !strings.Contains(written, w) {
			return repl
		}
		return w
	})
}

// replaceWord replaces the occurrences of old in s that are not part of a
// longer word (letters, digits, '_').
func replaceWord(s, old, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		if (i > 0 && isWordByte(s[i-1]) && isWordByte(old[0])) || (end < len(s) && isWordByte(s[end]) && isWordByte(old[len(old)-1])) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s = s[end:]
	}
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// secretTemplate interpolates written, a scalar as written, again with the
// values read (the values its interpolation read), each secret's replaced
// by a placeholder (exprenv.SecretPlaceholder): where the secrets stand in
// the scalar's value. ok is false when that cannot be told.
func secretTemplate(written string, read []varValue, secret func(varValue) bool) (string, bool) {
	marks := map[string]string{}
	out, _, err := interpolate(written, func(name string) (string, bool) {
		for _, v := range read {
			if v.name != name {
				continue
			}
			if !secret(v) {
				return v.value, true
			}
			if marks[name] == "" {
				marks[name] = exprenv.SecretPlaceholder(len(marks))
			}
			return marks[name], true
		}
		// Read as empty (or unset, a default taken): the same again.
		return "", true
	})
	return out, err == nil && len(marks) > 0
}

// secretReads returns whether a value ${NAME} put into a scalar is a
// secret's: NAME has a secret's name (API_TOKEN), or is a vars: entry that
// read one (tok: ${API_TOKEN}: ${tok} carries the token as well).
func secretReads(root *yaml.Node, values map[*yaml.Node][]varValue) func(varValue) bool {
	viaVars := map[string]bool{}
	if varsNode, _ := lookup(root, "vars"); varsNode != nil {
		for _, p := range pairs(varsNode) {
			v := resolveAlias(p.Value)
			if v != nil && slices.ContainsFunc(values[v], func(x varValue) bool { return SecretName(x.name) }) {
				viaVars[p.Key.Value] = true
			}
		}
	}
	return func(v varValue) bool { return SecretName(v.name) || viaVars[v.name] }
}
