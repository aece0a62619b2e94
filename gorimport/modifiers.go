package gorimport

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// headerFilter is --http-allow-header / --http-disallow-header "Name: regexp".
type headerFilter struct {
	name, re string
}

// nameValue is --http-set-header "Name: value" or --http-set-param "k=v".
type nameValue struct {
	name, value string
}

// urlRewrite is --http-rewrite-url "regexp:target".
type urlRewrite struct {
	raw, re, target string
}

// headerRewrite is --http-rewrite-header "Name: regexp,target".
type headerRewrite struct {
	raw, name, re, target string
}

// hashLimiter is --http-header-limiter / --http-param-limiter "name: 25%".
type hashLimiter struct {
	flag, raw, name string
	param           bool
	percent         float64
}

func (c *conv) addRegexp(dst *[]string, flag, v string) error {
	if _, err := regexp.Compile(v); err != nil {
		return fmt.Errorf("--%s %q: invalid regular expression: %w", flag, v, err)
	}
	*dst = append(*dst, v)
	return nil
}

func (c *conv) addHeaderFilter(dst *[]headerFilter, flag, v string) error {
	name, re, ok := strings.Cut(v, ":")
	name, re = strings.TrimSpace(name), strings.TrimSpace(re)
	if !ok || name == "" {
		return fmt.Errorf("--%s %q: want 'Header-Name: regexp'", flag, v)
	}
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("--%s %q: invalid regular expression: %w", flag, v, err)
	}
	*dst = append(*dst, headerFilter{name, re})
	return nil
}

func (c *conv) addURLRewrite(flag, v string) error {
	re, target, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("--%s %q: want 'regexp:target' (ex. /v1/(.*):/v2/$1)", flag, v)
	}
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("--%s %q: invalid regular expression: %w", flag, v, err)
	}
	c.urlRewrites = append(c.urlRewrites, urlRewrite{v, re, target})
	return nil
}

func (c *conv) addHeaderRewrite(flag, v string) error {
	name, rest, ok := strings.Cut(v, ":")
	re, target, ok2 := strings.Cut(strings.TrimSpace(rest), ",")
	name = strings.TrimSpace(name)
	if !ok || !ok2 || name == "" {
		return fmt.Errorf("--%s %q: want 'Header-Name: regexp,target'", flag, v)
	}
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("--%s %q: invalid regular expression: %w", flag, v, err)
	}
	c.headerRewrites = append(c.headerRewrites, headerRewrite{v, name, re, target})
	return nil
}

func (c *conv) addLimiter(flag, v string, param bool) error {
	name, share, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("--%s %q: want 'name: 25%%'", flag, v)
	}
	p, err := parsePercent(share)
	if err != nil {
		return fmt.Errorf("--%s %q: %w", flag, v, err)
	}
	c.limiters = append(c.limiters, hashLimiter{flag: flag, raw: v, name: name, param: param, percent: p})
	return nil
}

// urlSubject is what an URL regexp is matched against: gor 1.x matches
// --http-allow-url and --http-disallow-url against the request URI (path
// and query, proto.Path), not the Host header, whatever its help text
// ("full url with domain") says; only the 0.x releases prefixed the Host.
func urlSubject(string) string { return "req.url" }

// hostAnchored reports whether re is anchored at the start on something
// other than '/' ("^www\."): matched against a request URI, which starts
// with '/', it matches nothing.
func hostAnchored(re string) bool {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return false
	}
	r = r.Simplify()
	if r.Op != syntax.OpConcat || len(r.Sub) < 2 || r.Sub[0].Op != syntax.OpBeginText {
		return false
	}
	first := r.Sub[1]
	return first.Op == syntax.OpLiteral && len(first.Rune) > 0 && first.Rune[0] != '/' && first.Flags&syntax.FoldCase == 0
}

// warnHostRegexps reports URL regexps that look written for a Host prefix.
func (c *conv) warnHostRegexps() {
	for _, f := range []struct {
		flag string
		res  []string
	}{{"--http-allow-url", c.allowURL}, {"--http-disallow-url", c.disallowURL}} {
		for _, re := range f.res {
			if !hostAnchored(re) {
				continue
			}
			effect := "it drops none"
			if f.flag == "--http-allow-url" {
				effect = "the filter keeps none"
				if len(f.res) > 1 {
					effect = "the filter keeps what the other " + f.flag + " rules match"
				}
			}
			c.warnf("%s %q: gor matches it against the request URI (/path?query), never the Host, so it matches no request, and %s; to filter on the host write filter: 'req.host matches …'", f.flag, re, effect)
		}
	}
}

// filterExpr combines the filtering flags into one boolean expression, or
// "" when there are none. Each kind is one clause; clauses are and-ed.
func (c *conv) filterExpr() string {
	c.warnHostRegexps()
	var clauses []string
	switch len(c.methods) {
	case 0:
	case 1:
		clauses = append(clauses, "req.method == "+quoteExpr(c.methods[0]))
	default:
		q := make([]string, len(c.methods))
		for i, m := range c.methods {
			q[i] = quoteExpr(m)
		}
		clauses = append(clauses, "req.method in ["+strings.Join(q, ", ")+"]")
	}
	if len(c.allowURL) > 0 {
		var any []string
		for _, re := range c.allowURL {
			any = append(any, urlSubject(re)+" matches "+quoteExpr(re))
		}
		clauses = append(clauses, group(any, " || ", len(clauses) > 0 || len(c.disallowURL)+len(c.allowHeader)+len(c.disallowHeader)+len(c.basicAuth) > 0))
	}
	for _, re := range c.disallowURL {
		clauses = append(clauses, "!("+urlSubject(re)+" matches "+quoteExpr(re)+")")
	}
	for _, h := range c.allowHeader {
		// gor drops a request without the header (or with it empty)
		// even when the regexp matches the empty string.
		hdr := "req.header(" + quoteExpr(h.name) + ")"
		clauses = append(clauses, "("+hdr+` != "" && `+hdr+" matches "+quoteExpr(h.re)+")")
	}
	for _, h := range c.disallowHeader {
		// gor disallows a request only when the header is present and matches.
		hdr := "req.header(" + quoteExpr(h.name) + ")"
		clauses = append(clauses, "!("+hdr+` != "" && `+hdr+" matches "+quoteExpr(h.re)+")")
	}
	for _, re := range c.basicAuth {
		// gor checks only requests whose Authorization is "Basic …": the
		// others pass. A credential that is not valid base64 cannot be
		// decoded (fromBase64 would fail the filter): it is refused.
		auth := `req.header("Authorization")`
		clauses = append(clauses, "(!("+auth+` startsWith "Basic ") || (`+auth+" matches "+quoteExpr(basicAuthRE)+
			" && fromBase64(trimPrefix("+auth+`, "Basic ")) matches `+quoteExpr(re)+"))")
	}
	return strings.Join(clauses, " && ")
}

// basicAuthRE matches an Authorization value "Basic " + standard base64
// that fromBase64 decodes without an error.
const basicAuthRE = `^Basic (?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$`

// group joins alternatives, in parentheses when there are several and the
// result is and-ed with other clauses.
func group(alts []string, sep string, paren bool) string {
	s := strings.Join(alts, sep)
	if len(alts) > 1 && paren {
		return "(" + s + ")"
	}
	return s
}

// literalRegexp returns the string a regexp matches when it is a plain
// literal (case-sensitive, no operators).
func literalRegexp(re string) (string, bool) {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", false
	}
	r = r.Simplify()
	if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
		return string(r.Rune), true
	}
	return "", false
}

// anchoredRegexp reports whether re can only match a whole string (^…$),
// so that replacing its match replaces the whole value.
func anchoredRegexp(re string) bool {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return false
	}
	r = r.Simplify()
	if r.Op != syntax.OpConcat || len(r.Sub) < 2 {
		return false
	}
	first, last := r.Sub[0].Op, r.Sub[len(r.Sub)-1].Op
	return first == syntax.OpBeginText && last == syntax.OpEndText
}

// rewriteSteps turns the header/param setters and the URL and header
// rewrites into rewrite: steps; rewrites that expr-lang cannot express
// (regexp replacements with group references) are reported instead.
func (c *conv) rewriteSteps() []*yaml.Node {
	var steps []*yaml.Node
	for _, h := range c.setHeaders {
		nv := set(set(mapNode(true), "name", strNode(h.name)), "value", exprNode(quoteExpr(h.value)))
		steps = append(steps, set(mapNode(false), "set-header", nv))
	}
	for _, p := range c.setParams {
		nv := set(set(mapNode(true), "name", strNode(p.name)), "value", exprNode(quoteExpr(p.value)))
		steps = append(steps, set(mapNode(false), "set-query", nv))
	}
	if len(c.urlRewrites) > 1 {
		c.warnf("gor applies only the first matching --http-rewrite-url rule; replayctl applies every rule in order")
	}
	for _, u := range c.urlRewrites {
		// gor matches the request URI (path and query) and replaces it
		// whole; set-path replaces the path and keeps the query. A
		// literal is replaced in the path; a regexp anchored on both ends
		// is matched against req.url, as gor matches it ("^/old$" leaves
		// "/old?x=1" alone).
		queryToo := func(cond string) {
			if strings.HasPrefix(cond, "req.path contains ") {
				c.warnf("--http-rewrite-url %q: %s (it matches the whole request URI, a query holding %s included); replayctl rewrites the path and keeps the query as it was", u.raw, queryTooWarning, strings.TrimPrefix(cond, "req.path contains "))
			}
		}
		if value, cond, ok := restRewrite(u.re, u.target); ok {
			queryToo(cond)
			steps = append(steps, set(set(mapNode(false), "set-path", exprNode(value)), "if", exprNode(cond)))
			continue
		}
		value, cond, ok := replacement("req.path", "req.url", u.re, u.target)
		if lit, isLit := literalRegexp(u.re); ok && isLit && strings.Contains(lit, "?") {
			ok = false // a query is not in req.path
		}
		if !ok || strings.Contains(u.target, "?") {
			c.warnf("--http-rewrite-url %q not mapped: expr-lang has no regexp replacement; write a set-path step by hand (e.g. with split/join/replace)", u.raw)
			continue
		}
		queryToo(cond)
		if _, isLit := literalRegexp(u.re); !isLit && mayMatchQuery(u.re) {
			c.warnf("--http-rewrite-url %q: a request URI with a query that the regexp matches is replaced whole by gor (its query dropped); replayctl replaces the path and keeps the query", u.raw)
		}
		steps = append(steps, set(set(mapNode(false), "set-path", exprNode(value)), "if", exprNode(cond)))
	}
	for _, h := range c.headerRewrites {
		subject := "req.header(" + quoteExpr(h.name) + ")"
		value, cond, ok := replacement(subject, subject, h.re, h.target)
		if !ok {
			c.warnf("--http-rewrite-header %q not mapped: expr-lang has no regexp replacement; write a set-header step by hand", h.raw)
			continue
		}
		var step *yaml.Node
		if strings.EqualFold(h.name, "Host") {
			step = set(mapNode(false), "set-host", exprNode(value))
		} else {
			nv := set(set(mapNode(true), "name", strNode(h.name)), "value", exprNode(value))
			step = set(mapNode(false), "set-header", nv)
		}
		steps = append(steps, set(step, "if", exprNode(cond)))
	}
	return steps
}

// queryTooWarning heads the warning that a rewrite mapped on the path
// leaves the query alone, where gor rewrites it too (docs/migration.md):
// the one difference of a mapped rewrite.
const queryTooWarning = "gor rewrites the query string too"

// replacement expresses gor's regexp.ReplaceAll(subject, re, target) in
// expr-lang where it can: a literal regexp becomes replace(), a regexp that
// matches the whole value becomes the literal target when matched against
// whole (the value gor matches). Targets with $ references cannot be
// expressed.
func replacement(subject, whole, re, target string) (value, cond string, ok bool) {
	if strings.Contains(target, "$") {
		return "", "", false
	}
	if lit, isLit := literalRegexp(re); isLit && lit != "" {
		return "replace(" + subject + ", " + quoteExpr(lit) + ", " + quoteExpr(target) + ")",
			subject + " contains " + quoteExpr(lit), true
	}
	if anchoredRegexp(re) {
		return quoteExpr(target), whole + " matches " + quoteExpr(re), true
	}
	return "", "", false
}

// restRewrite expresses the usual prefix rewrite with a group reference,
// "LIT(.*):TARGET$1" (gor's own example, /v1/(.*):/v2/$1), optionally
// anchored with ^ and $, the group possibly starting with a literal
// ("^/api(/.*)$:$1"), as a set-path: gor replaces the first LIT of the
// request URI and everything after it (the query too) with TARGET and
// what followed LIT; replayctl does the same to the path and keeps the
// query, which is the same URI. A non-greedy group ((.*?)) anchored on
// neither end matches LIT alone, so every LIT is replaced, as replace()
// does. The rule applies where the path holds the
// literal the regexp needs (LIT and the group's own), as where gor's
// regexp matches, unless that literal is only in the query.
func restRewrite(re, target string) (value, cond string, ok bool) {
	prefix, ok := strings.CutSuffix(target, "$1")
	if !ok {
		prefix, ok = strings.CutSuffix(target, "${1}")
	}
	if !ok || strings.ContainsAny(prefix, "$?") {
		return "", "", false
	}
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", "", false
	}
	r = r.Simplify()
	subs := []*syntax.Regexp{r}
	if r.Op == syntax.OpConcat {
		subs = r.Sub
	}
	anchored := len(subs) > 0 && subs[0].Op == syntax.OpBeginText
	if anchored {
		subs = subs[1:]
	}
	endAnchored := false
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		subs, endAnchored = subs[:n-1], true // (.*)$ matches what (.*) does: a URI has no newline
	}
	var lit string
	if len(subs) == 2 && isLiteral(subs[0]) {
		lit, subs = string(subs[0].Rune), subs[1:]
	}
	if len(subs) != 1 || subs[0].Op != syntax.OpCapture || subs[0].Cap != 1 {
		return "", "", false
	}
	var inGroup string
	group := subs[0].Sub[0]
	if group.Op == syntax.OpConcat && len(group.Sub) == 2 && isLiteral(group.Sub[0]) {
		inGroup, group = string(group.Sub[0].Rune), group.Sub[1]
	}
	if group.Op != syntax.OpStar || group.Sub[0].Op != syntax.OpAnyCharNotNL {
		return "", "", false
	}
	need := lit + inGroup
	if need == "" || strings.Contains(need, "?") || !strings.HasPrefix(need, "/") && anchored {
		return "", "", false
	}
	if group.Flags&syntax.NonGreedy != 0 && !anchored && !endAnchored {
		// LIT(.*?) matches LIT alone, at each place it is: gor's
		// ReplaceAll replaces every LIT (and the group's own literal)
		// with TARGET, and keeps what follows each.
		return "replace(req.path, " + quoteExpr(need) + ", " + quoteExpr(prefix+inGroup) + ")", "req.path contains " + quoteExpr(need), true
	}
	rest := "req.path[" + strconv.Itoa(len(lit)) + ":]"
	if lit == "" {
		rest = "req.path"
	}
	if anchored {
		value = rest
		if prefix != "" {
			value = quoteExpr(prefix) + " + " + rest
		}
		return value, "req.path startsWith " + quoteExpr(need), true
	}
	value = "let i = indexOf(req.path, " + quoteExpr(need) + "); req.path[:i] + " + quoteExpr(prefix) + " + req.path[i+" + strconv.Itoa(len(lit)) + ":]"
	return value, "req.path contains " + quoteExpr(need), true
}

// isLiteral reports whether r is a case-sensitive literal.
func isLiteral(r *syntax.Regexp) bool {
	return r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 && len(r.Rune) > 0
}

// mayMatchQuery reports whether re may match a string holding '?' (a
// request URI with a query): it has '?' in a literal or a character class,
// or matches any character.
func mayMatchQuery(re string) bool {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return true
	}
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		switch r.Op {
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			return true
		case syntax.OpLiteral:
			for _, c := range r.Rune {
				if c == '?' {
					return true
				}
			}
		case syntax.OpCharClass:
			for i := 0; i+1 < len(r.Rune); i += 2 {
				if r.Rune[i] <= '?' && '?' <= r.Rune[i+1] {
					return true
				}
			}
		}
		for _, sub := range r.Sub {
			if walk(sub) {
				return true
			}
		}
		return false
	}
	return walk(r.Simplify())
}
