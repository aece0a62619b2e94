package exprenv

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// regexReplaceFunc is the request expressions' regexReplace(s, pattern,
// replacement): Go's Regexp.ReplaceAllString, $1 and ${name} expanded, as
// GoReplay's --http-rewrite-url and --http-rewrite-header run it. An
// invalid pattern is an error of the expression.
var regexReplaceFunc = expr.Function("regexReplace", func(params ...any) (any, error) {
	s, pattern, repl := params[0].(string), params[1].(string), params[2].(string)
	re, err := compiledRegexp(pattern)
	if err != nil {
		return nil, err
	}
	return re.ReplaceAllString(s, repl), nil
}, new(func(string, string, string) string))

// regexps caches compiled patterns: a scenario's are constants, compiled
// once. It holds at most maxCachedRegexps (patterns built from request
// data are compiled each time past that).
var regexps struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

const maxCachedRegexps = 256

func compiledRegexp(pattern string) (*regexp.Regexp, error) {
	regexps.Lock()
	re, ok := regexps.m[pattern]
	regexps.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("regexReplace: %w", err)
	}
	regexps.Lock()
	if regexps.m == nil {
		regexps.m = map[string]*regexp.Regexp{}
	}
	if len(regexps.m) < maxCachedRegexps {
		regexps.m[pattern] = re
	}
	regexps.Unlock()
	return re, nil
}

// CheckRegexps compiles the literal patterns of p's regexReplace calls: an
// invalid one is an error of the expression, told where it is when the
// scenario is loaded (validate), not on every request at run time. The
// error is a *file.Error bound to p's source.
func CheckRegexps(p *vm.Program) error {
	if p == nil || p.Node() == nil {
		return nil
	}
	node := p.Node()
	c := &regexpChecker{}
	ast.Walk(&node, c)
	if c.err != nil {
		return c.err.Bind(p.Source())
	}
	return nil
}

type regexpChecker struct{ err *file.Error }

func (c *regexpChecker) Visit(n *ast.Node) {
	if c.err != nil {
		return
	}
	call, ok := (*n).(*ast.CallNode)
	if !ok || len(call.Arguments) < 2 {
		return
	}
	if id, ok := call.Callee.(*ast.IdentifierNode); !ok || id.Value != "regexReplace" {
		return
	}
	if s, ok := call.Arguments[1].(*ast.StringNode); ok {
		if _, err := regexp.Compile(s.Value); err != nil {
			c.err = &file.Error{Location: s.Location(), Message: "regexReplace: " + err.Error()}
		}
	}
}
