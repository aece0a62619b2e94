package gorimport

import (
	"errors"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/replayctl/replayctl/scenario"
)

// headerValueFlags take "Name: value" (or "Name: regexp[,target]"): the
// value is a credential when the header's name is secret.
var headerValueFlags = map[string]bool{
	"http-set-header": true, "output-http-header": true,
	"http-allow-header": true, "http-disallow-header": true, "output-http-header-filter": true,
	"http-rewrite-header": true,
}

// shownValue is a flag value as the scenario's description and the
// warnings show it, with the credentials replayctl's own tools mask
// replaced by scenario.Mask: URL passwords and secret query parameters
// (scenario.MaskURL), the values of secret headers (Authorization: Bearer
// xxxxx) and parameters, the whole --http-basic-auth-filter regexp
// (it matches "user:password"), and the arguments of a --middleware
// command (they are where such programs take their keys: --token=…), and
// the value of an unknown flag whose name is a secret's (--api-token).
func shownValue(flag, v string) string {
	switch {
	case flag == "middleware":
		// The program, then its arguments after any white space.
		t := strings.TrimSpace(v)
		if i := strings.IndexFunc(t, unicode.IsSpace); i > 0 {
			return t[:i] + " " + scenario.Mask
		}
		return v
	case flag == "http-basic-auth-filter":
		if v == "" {
			return v
		}
		return scenario.Mask
	case headerValueFlags[flag]:
		if name, rest, ok := strings.Cut(v, ":"); ok && scenario.SecretName(name) {
			if r := strings.TrimSpace(rest); r != "" {
				return name + ": " + scenario.MaskCredential(r)
			}
		}
		return v
	case flag == "http-set-param":
		if name, val, ok := strings.Cut(v, "="); ok && scenario.SecretName(name) && val != "" {
			return name + "=" + scenario.Mask
		}
		return v
	}
	if _, known := flags[flag]; !known && v != "" && scenario.SecretName(flag) {
		// An unknown flag named as a secret (--api-token, --…-password)
		// is taken to hold one.
		return scenario.Mask
	}
	if strings.Contains(v, "://") || strings.Contains(v, "@") || strings.Contains(v, "?") {
		return scenario.MaskURL(v)
	}
	return v
}

// noteSecret records the masked form of a flag value that holds a secret,
// so that hide can replace it wherever the value is echoed.
func (c *conv) noteSecret(flag, v string) {
	shown := shownValue(flag, v)
	if shown == v {
		return
	}
	if c.hidden == nil {
		c.hidden = map[string]string{}
	}
	c.hidden[v] = shown
	// A value with a limiter suffix is also echoed without it.
	if val, _, ok := strings.Cut(v, "|"); ok {
		if s := shownValue(flag, val); s != val {
			c.hidden[val] = s
		}
	}
}

// hide replaces every secret-holding flag value in s (as is, or quoted
// as %q quotes it) by its masked form, the longest values first.
func (c *conv) hide(s string) string {
	if len(c.hidden) == 0 {
		return s
	}
	raws := make([]string, 0, len(c.hidden))
	for r := range c.hidden {
		raws = append(raws, r)
	}
	sort.Slice(raws, func(i, j int) bool { return len(raws[i]) > len(raws[j]) })
	for _, r := range raws {
		m := c.hidden[r]
		s = strings.ReplaceAll(s, r, m)
		if q, qm := quoteBody(r), quoteBody(m); q != r {
			s = strings.ReplaceAll(s, q, qm)
		}
	}
	return s
}

// quoteBody is s as %q writes it, without the quotes.
func quoteBody(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// hideErr is err with its message passed through hide.
func (c *conv) hideErr(err error) error {
	if msg := c.hide(err.Error()); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}
