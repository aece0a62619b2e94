package gorimport

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/httpraw"
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
	if err := checkHeaderName(flag, v, name); err != nil {
		return err
	}
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("--%s %q: invalid regular expression: %w", flag, v, err)
	}
	c.headerRewrites = append(c.headerRewrites, headerRewrite{v, name, re, target})
	return nil
}

// checkHeaderName refuses a header name a set-header step cannot carry
// (not an RFC 9110 token: "Bad Name", "\"X"), as the scenario would.
func checkHeaderName(flag, v, name string) error {
	if !httpraw.ValidHeaderName(name) {
		return fmt.Errorf("--%s %q: %q is not a header name: a name is letters, digits and !#$%%&'*+-.^_`|~", flag, v, name)
	}
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
	if len(c.urlRewrites) > 0 {
		// gor matches each rule against the request URI (path and
		// query), and the first that matches replaces it with
		// regexp.ReplaceAll: one set-url step, exactly that.
		// A request no rule matches is left alone (its if).
		value := "req.url"
		conds := make([]string, len(c.urlRewrites))
		for i := len(c.urlRewrites) - 1; i >= 0; i-- {
			u := c.urlRewrites[i]
			conds[i] = "req.url matches " + quoteExpr(u.re)
			value = conds[i] + " ? " + replacement("req.url", u.re, u.target) + " : " + value
		}
		if len(c.urlRewrites) == 1 {
			u := c.urlRewrites[0]
			value = replacement("req.url", u.re, u.target)
		}
		steps = append(steps, set(set(mapNode(false), "set-url", exprNode(value)), "if", exprNode(strings.Join(conds, " || "))))
	}
	// gor stops at the first rule whose header the request lacks (or has
	// empty): a rule applies when its header and every earlier rule's are
	// set, and its regexp matches.
	var present []string
	for _, h := range c.headerRewrites {
		subject := "req.header(" + quoteExpr(h.name) + ")"
		present = append(present, subject+` != ""`)
		value := replacement(subject, h.re, h.target)
		var step *yaml.Node
		if strings.EqualFold(h.name, "Host") {
			step = set(mapNode(false), "set-host", exprNode(value))
			if c.hostRewrites == nil {
				c.hostRewrites = map[*yaml.Node]bool{}
			}
			c.hostRewrites[step] = true
		} else {
			nv := set(set(mapNode(true), "name", strNode(h.name)), "value", exprNode(value))
			step = set(mapNode(false), "set-header", nv)
		}
		steps = append(steps, set(step, "if", exprNode(strings.Join(present, " && ")+" && "+subject+" matches "+quoteExpr(h.re))))
	}
	return steps
}

// replacement is gor's regexp.ReplaceAll(subject, re, target) in
// expr-lang: replace() for a literal regexp and a target without $
// references (easier to read), else regexReplace, which is Go's
// ReplaceAllString.
func replacement(subject, re, target string) string {
	if lit, isLit := literalRegexp(re); isLit && lit != "" && !strings.Contains(target, "$") {
		return "replace(" + subject + ", " + quoteExpr(lit) + ", " + quoteExpr(target) + ")"
	}
	return "regexReplace(" + subject + ", " + quoteExpr(re) + ", " + quoteExpr(target) + ")"
}
