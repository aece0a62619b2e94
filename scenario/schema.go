package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/schemas"
)

const schemaURL = "https://replayctl.dev/schemas/scenario.schema.json"

var (
	schemaOnce sync.Once
	schemaDoc  any
	schemaComp *jsonschema.Schema
	schemaErr  error
	printer    = message.NewPrinter(language.English)
)

// compiledSchema compiles the embedded scenario schema once.
func compiledSchema() (*jsonschema.Schema, any, error) {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.ScenarioJSON))
		if err != nil {
			schemaErr = fmt.Errorf("scenario schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(schemaURL, doc); err != nil {
			schemaErr = fmt.Errorf("scenario schema: %w", err)
			return
		}
		sch, err := c.Compile(schemaURL)
		if err != nil {
			schemaErr = fmt.Errorf("scenario schema: %w", err)
			return
		}
		schemaDoc, schemaComp = doc, sch
	})
	return schemaComp, schemaDoc, schemaErr
}

// schemaResult is the outcome of schema validation: the diagnostics and the
// nodes they are about (with their ancestors), so later checks do not report
// the same problem again.
type schemaResult struct {
	diags Diagnostics
	bad   map[*yaml.Node]bool // nodes with errors, and their descendants
	above map[*yaml.Node]bool // ancestors of nodes with errors
	// wantString and wantScalar hold the scalars whose error is that they
	// must be a string, or a number or boolean but are a string.
	wantString, wantScalar map[*yaml.Node]bool
}

// validateSchema validates the tree against the embedded schema and maps
// every leaf error to the node it is about.
func validateSchema(file string, root *yaml.Node) schemaResult {
	res := schemaResult{bad: map[*yaml.Node]bool{}, above: map[*yaml.Node]bool{}, wantString: map[*yaml.Node]bool{}, wantScalar: map[*yaml.Node]bool{}}
	sch, doc, err := compiledSchema()
	if err != nil {
		res.diags = Diagnostics{{Pos{file, 1, 1}, err.Error()}}
		return res
	}
	inst, err := toAny(root)
	if err != nil {
		res.diags = Diagnostics{{Pos{file, root.Line, root.Column}, err.Error()}}
		res.bad[root] = true
		return res
	}
	err = sch.Validate(inst)
	if err == nil {
		return res
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		res.diags = Diagnostics{{Pos{file, 1, 1}, "schema validation: " + err.Error()}}
		return res
	}
	m := &errMapper{file: file, root: root, doc: doc, res: &res}
	m.flatten(verr)
	return res
}

type errMapper struct {
	file string
	root *yaml.Node
	doc  any
	res  *schemaResult
}

func (m *errMapper) flatten(e *jsonschema.ValidationError) {
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				m.flatten(c)
			}
			return
		}
	case *kind.AnyOf, *kind.OneOf:
		if msg := m.xmessage(e.SchemaURL, e.ErrorKind); msg != "" || len(e.Causes) == 0 {
			m.emit(e.InstanceLocation, "", msg, e)
			return
		}
		for _, c := range e.Causes {
			m.flatten(c)
		}
		return
	case *kind.PropertyNames:
		msg := m.xmessage(e.SchemaURL, e.ErrorKind)
		if msg == "" {
			msg = "invalid name"
		}
		m.emit(m.propertyOwner(e.InstanceLocation, k.Property), k.Property, fmt.Sprintf("invalid name %q: %s", k.Property, msg), e)
		return
	case *kind.AdditionalProperties:
		allowed := m.allowedProperties(e.SchemaURL)
		for _, p := range k.Properties {
			msg := fmt.Sprintf("unknown key %q", p)
			if s := suggest(p, allowed); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else if len(allowed) > 0 && len(allowed) <= 16 {
				msg += " (allowed: " + strings.Join(allowed, ", ") + ")"
			}
			m.emit(e.InstanceLocation, p, msg, e)
		}
		return
	case *kind.Required:
		for _, p := range k.Missing {
			m.emitAt(e.InstanceLocation, "", fmt.Sprintf("missing required key %q", p), e, false)
		}
		return
	}
	m.emit(e.InstanceLocation, "", m.xmessage(e.SchemaURL, e.ErrorKind), e)
}

// emit records a diagnostic at the node of loc (or at its key when key is
// set). An empty msg falls back to the library's message.
func (m *errMapper) emit(loc []string, key, msg string, e *jsonschema.ValidationError) {
	m.emitAt(loc, key, msg, e, true)
}

// emitAt is emit; subtree says whether the node's descendants are marked bad
// too (not for a missing key: the rest of the mapping is still checked).
func (m *errMapper) emitAt(loc []string, key, msg string, e *jsonschema.ValidationError, subtree bool) {
	if msg == "" {
		msg = humanize(e.ErrorKind)
	}
	node, path, chain := m.nodeAt(loc)
	at := node
	if key != "" {
		if _, kn := lookup(node, key); kn != nil {
			at = kn
		}
		if path == "" {
			path = key
		} else {
			path += "." + key
		}
	}
	if path == "" {
		path = "scenario"
	}
	for _, a := range chain {
		m.res.above[a] = true
	}
	if at == node && subtree {
		walkNodes(node, func(n *yaml.Node) { m.res.bad[n] = true })
	} else {
		m.res.bad[at] = true
	}
	if k, ok := e.ErrorKind.(*kind.Type); ok && at == node && node.Kind == yaml.ScalarNode {
		if slices.Contains(k.Want, "string") {
			m.res.wantString[node] = true
		} else if k.Got == "string" {
			m.res.wantScalar[node] = true
		}
	}
	m.res.diags = append(m.res.diags, Diagnostic{Pos{m.file, at.Line, at.Column}, path + ": " + msg})
}

// nodeAt follows a JSON pointer's tokens from the root, returning the node
// (or the deepest one found), its display path and its ancestors.
func (m *errMapper) nodeAt(loc []string) (*yaml.Node, string, []*yaml.Node) {
	n := m.root
	var path strings.Builder
	var chain []*yaml.Node
	for _, tok := range loc {
		chain = append(chain, n)
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			next, _ = lookup(n, tok)
			if path.Len() > 0 {
				path.WriteByte('.')
			}
			path.WriteString(tok)
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = resolveAlias(n.Content[i])
			}
			path.WriteString("[" + tok + "]")
		}
		if next == nil {
			break
		}
		n = next
	}
	return n, path.String(), chain
}

// schemaNode returns the schema document's node at an absolute schema
// location (URL#/json/pointer).
func (m *errMapper) schemaNode(loc string) map[string]any {
	_, frag, _ := strings.Cut(loc, "#")
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	var cur any = m.doc
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	obj, _ := cur.(map[string]any)
	return obj
}

// xmessage returns the schema's x-messages entry for the failing keyword
// (or "*") at loc, following local $refs.
func (m *errMapper) xmessage(loc string, k jsonschema.ErrorKind) string {
	kw := ""
	if p := k.KeywordPath(); len(p) > 0 {
		kw = p[0]
	}
	for range 8 {
		node := m.schemaNode(loc)
		if node == nil {
			return ""
		}
		if xm, ok := node["x-messages"].(map[string]any); ok {
			if s, ok := xm[kw].(string); ok {
				return s
			}
			if s, ok := xm["*"].(string); ok {
				return s
			}
		}
		ref, ok := node["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") {
			return ""
		}
		loc = ref
	}
	return ""
}

// allowedProperties lists the property names the schema at loc declares.
func (m *errMapper) allowedProperties(loc string) []string {
	node := m.schemaNode(loc)
	props, _ := node["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Suggest returns the candidate closest to s when it is a likely typo
// ("did you mean …?"), else "". The command line's unknown flags use it
// too, as gorimport's unknown gor flags do.
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

// suggest returns the candidate closest to s when it is a likely typo: at
// most 2 edits away, and at most half of s.
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > len(s)/2 {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance of a and b (optimal
// string alignment): insertions, deletions, substitutions and swaps of two
// adjacent letters cost 1 each, so "jbo" is 1 from "job", as "evn" is from
// "env".
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev2, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, prev2
	}
	return rows[1][len(b)]
}

// humanize phrases the common schema errors for people; others keep the
// library's message.
func humanize(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("must be %s (got %s)", article(strings.Join(k.Want, " or ")), k.Got)
	case *kind.Minimum:
		return fmt.Sprintf("must be >= %s (got %s)", ratStr(k.Want), ratStr(k.Got))
	case *kind.Maximum:
		return fmt.Sprintf("must be <= %s (got %s)", ratStr(k.Want), ratStr(k.Got))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("must be > %s (got %s)", ratStr(k.Want), ratStr(k.Got))
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d item(s) (got %d)", k.Want, k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d item(s) (got %d)", k.Want, k.Got)
	}
	return k.LocalizedString(printer)
}

func article(s string) string {
	switch s {
	case "object":
		return "a mapping"
	case "array":
		return "a list"
	case "integer":
		return "an integer"
	}
	return "a " + s
}

func ratStr(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// propertyOwner finds the mapping a propertyNames error is about. The
// library shares the instance location's backing array between errors, so
// the tokens may have been overwritten: when loc does not lead to a mapping
// holding key, search the mappings at the same depth for one that does.
func (m *errMapper) propertyOwner(loc []string, key string) []string {
	if n, _, _ := m.nodeAt(loc); n.Kind == yaml.MappingNode {
		if _, kn := lookup(n, key); kn != nil {
			return loc
		}
	}
	var found []string
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		if found != nil || len(path) > len(loc) {
			return
		}
		n = resolveAlias(n)
		if n == nil {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			if len(path) == len(loc) {
				if _, kn := lookup(n, key); kn != nil {
					found = slices.Clone(path)
				}
				return
			}
			for _, p := range pairs(n) {
				walk(p.Value, append(path, p.Key.Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, append(path, strconv.Itoa(i)))
			}
		}
	}
	walk(m.root, make([]string, 0, len(loc)))
	if found == nil {
		return loc
	}
	return found
}

// misplacedJobKeys replaces the schema's diagnostics about a "job" named as
// a job's key (sink, speed, rewrite, …) whose value has neither a source nor
// a sink by one that says what happened: a key of the job above indented
// as deep as the job names (jobs.sink: missing required key "source", …,
// unknown key "http" (did you mean "stop"?) did not say it).
func misplacedJobKeys(file string, root *yaml.Node, ds Diagnostics) Diagnostics {
	_, doc, err := compiledSchema()
	if err != nil || root == nil {
		return ds
	}
	defs, _ := doc.(map[string]any)["$defs"].(map[string]any)
	job, _ := defs["job"].(map[string]any)
	props, _ := job["properties"].(map[string]any)
	top := root
	if top.Kind == yaml.DocumentNode && len(top.Content) > 0 {
		top = top.Content[0]
	}
	jobs, _ := lookup(top, "jobs")
	if jobs == nil || jobs.Kind != yaml.MappingNode {
		return ds
	}
	for i := 0; i+1 < len(jobs.Content); i += 2 {
		k, v := jobs.Content[i], jobs.Content[i+1]
		if _, ok := props[k.Value]; !ok {
			continue
		}
		if src, _ := lookup(v, "source"); src != nil {
			continue
		}
		if snk, _ := lookup(v, "sink"); snk != nil {
			continue
		}
		path := "jobs." + k.Value
		n := len(ds)
		ds = slices.DeleteFunc(ds, func(d Diagnostic) bool {
			return strings.HasPrefix(d.Message, path+": ") || strings.HasPrefix(d.Message, path+".")
		})
		if len(ds) < n {
			ds = append(ds, Diagnostic{Pos{file, k.Line, k.Column}, fmt.Sprintf("%s: %q is a key of a job, not a job: it is indented as deep as the job names; indent it under its job, as deep as that job's other keys", path, k.Value)})
		}
	}
	return ds
}
