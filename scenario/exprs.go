package scenario

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/internal/wordmap"
)

// exprKind says which environment and result type an expression has.
type exprKind int

const (
	exprBool   exprKind = iota // request env, bool (filter, drop, if)
	exprString                 // request env, string (header/path/method/query/host values, sample by)
	exprAny                    // request env, any (set-json value)
	exprAssert                 // summary env, bool (assert)
)

func exprOptions(k exprKind) []expr.Option {
	switch k {
	case exprBool:
		return append(exprenv.RequestOptions(), expr.AsBool())
	case exprString:
		return append(exprenv.RequestOptions(), expr.AsKind(reflect.String))
	case exprAny:
		return exprenv.RequestOptions()
	default:
		return append(exprenv.SummaryOptions(), expr.AsBool())
	}
}

// compileSecretExpr is compileExpr for the value of a credential (set-header
// Authorization, say): its errors do not quote the source's words, which
// may be the secret itself (value: 'Bearer abc…' without the inner quotes).
func (d *decoder) compileSecretExpr(n *yaml.Node, path string, k exprKind) *Expr {
	before := len(d.diags)
	e := d.compileExpr(n, path, k)
	for i := before; i < len(d.diags); i++ {
		if d.secretSrc == nil {
			d.secretSrc = map[Pos]string{}
		}
		d.secretSrc[d.diags[i].Pos] = e.Source
	}
	return e
}

// maskSecretSources masks, in the diagnostics at a credential's value, the
// words of its source (after hideValues has named the variables in it).
func maskSecretSources(ds Diagnostics, srcs map[Pos]string) Diagnostics {
	for i, d := range ds {
		if src, ok := srcs[d.Pos]; ok {
			ds[i].Message = maskSourceWords(d.Message, src)
			if !strings.ContainsAny(src, `"'`+"`") {
				ds[i].Message = textHintRE.ReplaceAllString(ds[i].Message, "")
				ds[i].Message += ` (a text value needs quotes inside the YAML ones: '"Bearer …"'; this value is a credential's, so its words are not shown)`
			}
		}
	}
	return ds
}

// maskSourceWords replaces in msg every word of at least 4 bytes that is
// a word of src or part of one (the expression lexer quotes prefixes:
// "1234567890a" of 1234567890abcdef) by xxxxx.
func maskSourceWords(msg, src string) string {
	names := map[string]bool{} // env("NAME") names are not secrets: the plan shows them too
	for _, m := range envCallRE.FindAllStringSubmatch(src, -1) {
		names[m[1]] = true
	}
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(src, func(r rune) bool {
		return r < 0x80 && !isWordByte(byte(r)) && r != '-' && r != '.' && r != '/' && r != '+' && r != '='
	}) {
		if len(w) >= 4 && !names[w] {
			words[w] = true
			for _, part := range strings.FieldsFunc(w, func(r rune) bool { return r == '.' || r == '-' || r == '/' || r == '+' || r == '=' }) {
				if len(part) >= 4 {
					words[part] = true
				}
			}
		}
	}
	return wordmap.Map(msg, isWordByte, func(w string) string {
		if len(w) >= 4 && partOfAny(w, words) {
			return "xxxxx"
		}
		return w
	})
}

// envCallRE matches an env("NAME") call with a literal name (the name in
// group 1), as an expression's source has it.
var envCallRE = regexp.MustCompile(`\benv\(\s*["'\x60](\w+)["'\x60]\s*\)`)

// compileExpr compiles the expression in scalar n. A compile error is
// reported at the position inside the expression where possible.
func (d *decoder) compileExpr(n *yaml.Node, path string, k exprKind) *Expr {
	if n == nil || n.Kind != yaml.ScalarNode {
		return nil
	}
	e := &Expr{Source: n.Value, Pos: d.pos(n), Written: d.secretWritten[n]}
	if k == exprAssert && e.Written != "" {
		e.published, e.publishErr = "", errNoTemplate
		if t, ok := d.secretTemplate[n]; ok {
			e.published, e.publishErr = exprenv.FoldSecrets(t, n.Value)
		}
	}
	if strings.TrimSpace(n.Value) == "" {
		d.errorf(n, path, "empty expression")
		return e
	}
	p, err := expr.Compile(n.Value, exprOptions(k)...)
	if err == nil && k == exprAssert {
		err = exprenv.CheckLiterals(p)
	}
	if err == nil {
		err = exprenv.CheckRegexps(p)
	}
	if err == nil && d.restricted && k != exprAssert {
		err = checkEnvCalls(p, d.envAllowed)
	}
	if err != nil {
		if n != nil && (d.sr.bad[n] || d.sr.above[n]) {
			return e
		}
		pos, msg := d.pos(n), err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			msg = fe.Message
			pos = d.exprPos(n, fe.Line, fe.Column)
		}
		msg = explainUnknown(msg, k)
		if m := unknownNameRE.FindStringSubmatch(fe0(err)); m != nil && calledIn(n.Value, m[1]) {
			// evn("TOKEN"): a function's name, not text to quote.
			if s := suggestCall(m[1], k); s != "" && !strings.Contains(msg, "did you mean") {
				msg = strings.Replace(msg, "unknown name "+m[1], fmt.Sprintf("unknown name %s (did you mean %q?)", m[1], s), 1)
			}
		} else if (k == exprString || k == exprAny) && unknownNameRE.MatchString(fe0(err)) && !strings.Contains(msg, "did you mean") {
			// value: staging, as gor's --http-set-header 'X-Env: staging'
			// would have it: the word is read as a name.
			name := unknownNameRE.FindStringSubmatch(fe0(err))[1]
			msg += fmt.Sprintf(textHint, name)
		}
		if strings.HasPrefix(msg, `unexpected token Operator("=")`) && strings.Contains(n.Value, "=~") {
			msg += ` (expr-lang has no =~: write X matches "REGEXP")`
		}
		d.diags = append(d.diags, Diagnostic{pos, path + ": " + msg})
		return e
	}
	e.Program = p
	if k != exprAssert {
		job := ""
		if rest, ok := strings.CutPrefix(path, "jobs."); ok {
			job, _, _ = strings.Cut(rest, ".")
		}
		for _, name := range envNames(p) {
			d.s.EnvRefs = append(d.s.EnvRefs, EnvRef{Name: name, Job: job, Pos: e.Pos, Value: k != exprBool})
		}
	}
	return e
}

// calledIn says whether src calls name as a function: name( not after a
// dot (a method) or inside another word.
func calledIn(src, name string) bool {
	return regexp.MustCompile(`(?:^|[^\w.$])` + regexp.QuoteMeta(name) + `\s*\(`).MatchString(src)
}

// suggestCall is the function a call of an unknown name likely meant: the
// expression's own (env, or duration in an assertion) or an expr-lang
// builtin, also with two letters swapped (evn: env; editDistance counts a
// swap as one edit).
func suggestCall(name string, k exprKind) string {
	cands := []string{"env"}
	if k == exprAssert {
		cands = []string{"duration"}
	}
	cands = append(cands, builtin.Names...)
	return suggest(name, cands)
}

// textHint follows "unknown name NAME" in a string expression: NAME was
// likely meant as text. textHintRE finds it, for the hints that replace it
// (a credential's, a ${VAR}'s).
const textHint = ` (a text value needs quotes inside the YAML ones: '"%s"')`

var textHintRE = regexp.MustCompile(` \(a text value needs quotes inside the YAML ones: '"[^']*"'\)`)

// fe0 is the message of an expr compile error, without its position.
func fe0(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fe.Message
	}
	return err.Error()
}

// envNames returns the literal names of p's env("NAME") calls.
func envNames(p *vm.Program) []string {
	if p == nil || p.Node() == nil {
		return nil
	}
	node := p.Node()
	c := &envNameCollector{}
	ast.Walk(&node, c)
	return c.names
}

type envNameCollector struct{ names []string }

func (c *envNameCollector) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok || len(call.Arguments) != 1 {
		return
	}
	if id, ok := call.Callee.(*ast.IdentifierNode); ok && id.Value == "env" {
		if s, ok := call.Arguments[0].(*ast.StringNode); ok {
			c.names = append(c.names, s.Value)
		}
	}
}

// checkEnvCalls refuses, in a restricted scenario, env(…) calls whose
// argument is not a literal name the restriction allows, and every other way
// of reaching the function: env named other than as such a call's callee
// (let f = env; f(name)) and $env (the environment itself: $env.env(name),
// get($env, "env")).
func checkEnvCalls(p *vm.Program, allowed func(string) bool) error {
	if p == nil || p.Node() == nil {
		return nil
	}
	node := p.Node()
	c := &envChecker{allowed: allowed, called: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&node, c)
	if c.err != nil {
		return c.err
	}
	for _, id := range c.named {
		if !c.called[id] {
			return errors.New("env is only called, with a literal name, in a restricted scenario")
		}
	}
	return nil
}

type envChecker struct {
	allowed func(string) bool
	err     error
	// named holds every identifier env; called those that are the callee
	// of an allowed env("NAME") call (the walk visits a callee before its
	// call).
	named  []*ast.IdentifierNode
	called map[*ast.IdentifierNode]bool
}

func (c *envChecker) Visit(n *ast.Node) {
	if c.err != nil {
		return
	}
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		switch x.Value {
		case "env":
			c.named = append(c.named, x)
		case "$env":
			c.err = errors.New("$env cannot be used in a restricted scenario (it reaches env())")
		}
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "env" {
			return
		}
		if len(x.Arguments) == 1 {
			if s, ok := x.Arguments[0].(*ast.StringNode); ok {
				if !c.allowed(s.Value) {
					c.err = fmt.Errorf("env(%q) cannot be read: a restricted scenario's expressions read only --env-file and --env-allow names", s.Value)
				}
				c.called[id] = true
				return
			}
		}
		c.err = errors.New("env(…) needs a literal name in a restricted scenario")
	}
}

// exprPos maps a position inside an expression (line 1-based, col 0-based
// in runes) to the file, when the scalar's text on disk is known to match
// its value: single-line plain or quoted scalars, and literal blocks.
// Otherwise it is the scalar's position.
func (d *decoder) exprPos(n *yaml.Node, line, col int) Pos {
	base := d.pos(n)
	if line < 1 || col < 0 || n.Line < 1 || n.Line > len(d.lines) {
		return base
	}
	vlines := strings.Split(n.Value, "\n")
	if line > len(vlines) {
		return base
	}
	switch n.Style {
	case 0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle, yaml.FlowStyle:
		if line != 1 || len(vlines) != 1 {
			return base
		}
		src := d.lines[n.Line-1]
		start := runeOffset(src, n.Column-1)
		if start < 0 {
			return base
		}
		vr := []rune(n.Value)
		if col > len(vr) {
			col = len(vr)
		}
		var raw string
		switch n.Style {
		case yaml.SingleQuotedStyle:
			raw = "'" + strings.ReplaceAll(string(vr[:col]), "'", "''")
		case yaml.DoubleQuotedStyle:
			raw = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(string(vr[:col]))
		default:
			raw = string(vr[:col])
		}
		if !strings.HasPrefix(src[start:], raw) {
			return base
		}
		return Pos{d.file, n.Line, n.Column + utf8.RuneCountInString(raw)}
	case yaml.LiteralStyle:
		// content starts on the line after the indicator; its indentation
		// is the first content line's
		first, l := n.Line+1, n.Line+line
		if l > len(d.lines) || first > len(d.lines) {
			return base
		}
		indent := len(d.lines[first-1]) - len(strings.TrimLeft(d.lines[first-1], " "))
		src := d.lines[l-1]
		if len(src) < indent || strings.TrimRight(src[indent:], "\r") != vlines[line-1] {
			return base
		}
		return Pos{d.file, l, indent + col + 1}
	}
	return base
}

// runeOffset returns the byte offset of the rune at index r in s, or -1.
func runeOffset(s string, r int) int {
	i := 0
	for off := range s {
		if i == r {
			return off
		}
		i++
	}
	if i == r {
		return len(s)
	}
	return -1
}

var (
	noFieldRE     = regexp.MustCompile(`^type exprenv\.(\w+) has no field (\w+)$`)
	unknownNameRE = regexp.MustCompile(`^unknown name (\w+)$`)
	// durationMismatchRE matches expr's error for a duration compared with
	// a number, either way round.
	durationMismatchRE = regexp.MustCompile(`\(mismatched types (time\.Duration and (int|float64)|(int|float64) and time\.Duration)\)$`)
)

// explainUnknown rewrites expr's messages about unknown names in the words
// of the scenario: the names there are (the expression language's, not Go's
// types) and the likely one for a typo.
func explainUnknown(msg string, k exprKind) string {
	root := reflect.TypeFor[exprenv.RequestEnv]()
	if k == exprAssert {
		root = reflect.TypeFor[exprenv.Summary]()
	}
	if m := noFieldRE.FindStringSubmatch(msg); m != nil {
		if fields, ok := exprFields(root, m[1], map[reflect.Type]bool{}); ok {
			return unknownText(fmt.Sprintf("no field %s", m[2]), m[2], fields)
		}
	}
	if k == exprAssert && durationMismatchRE.MatchString(msg) {
		// latency.p99 < 250: expr says "time.Duration and int", not what
		// to write instead.
		return msg + `: compare a duration with a duration, such as duration("250ms")`
	}
	if m := unknownNameRE.FindStringSubmatch(msg); m != nil {
		names, _ := exprFields(root, root.Name(), map[reflect.Type]bool{})
		if k == exprAssert {
			names = append(names, "duration")
		}
		return unknownText(msg, m[1], names)
	}
	return msg
}

func unknownText(msg, name string, names []string) string {
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Sprintf("%s; there are: %s", msg, strings.Join(names, ", "))
}

// exprFields returns the expression names of the fields of the struct type
// named name, found from t.
func exprFields(t reflect.Type, name string, seen map[reflect.Type]bool) ([]string, bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Map || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return nil, false
	}
	seen[t] = true
	if t.Name() == name {
		var names []string
		for f := range t.Fields() {
			if tag := f.Tag.Get("expr"); tag != "" && !strings.HasPrefix(tag, "__") {
				names = append(names, tag)
			}
		}
		return names, true
	}
	for f := range t.Fields() {
		if f.IsExported() {
			if names, ok := exprFields(f.Type, name, seen); ok {
				return names, true
			}
		}
	}
	return nil, false
}

func partOfAny(w string, words map[string]bool) bool {
	for s := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
