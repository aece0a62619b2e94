package exprenv

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/expr-lang/expr"
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
