package scenario

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/replayctl/replayctl/redact"
)

// Mask replaces a secret in everything replayctl prints about a scenario
// (plans, validation errors, reports): the same mask net/url's Redacted uses
// for a password.
const Mask = "xxxxx"

// secretNames are redact.DefaultHeaders and redact.DefaultNames, folded as
// foldName folds.
var secretNames = func() map[string]bool {
	m := map[string]bool{}
	for _, list := range [][]string{redact.DefaultHeaders, redact.DefaultNames} {
		for _, n := range list {
			m[foldName(n)] = true
		}
	}
	return m
}()

// secretParts make any name that contains one of them secret.
var secretParts = []string{"token", "secret", "password", "passwd", "pass", "pwd", "key", "auth", "credential", "session", "cookie", "signature"}

// foldName folds a name as the redact package matches names: ASCII lower
// case, '-' and '_' alike.
func foldName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "-", "_")
}

// SecretName reports whether a header, query parameter or JSON member named
// name carries a credential: one of the names the redact package masks by
// default (redact.DefaultHeaders, redact.DefaultNames), or any name that
// contains one of secretParts (token, secret, password, key, auth, …). Case
// and '-'/'_' do not matter.
func SecretName(name string) bool {
	f := foldName(strings.TrimSpace(name))
	if f == "" {
		return false
	}
	if secretNames[f] {
		return true
	}
	for _, p := range secretParts {
		if strings.Contains(f, p) {
			return true
		}
	}
	return false
}

// authSchemes are the HTTP authentication schemes a masked credential keeps
// ("Bearer xxxxx"): the IANA registry and common unregistered ones.
var authSchemes = map[string]bool{
	"basic": true, "bearer": true, "digest": true, "dpop": true, "gnap": true, "hoba": true,
	"mutual": true, "negotiate": true, "ntlm": true, "oauth": true, "privatetoken": true,
	"scram-sha-1": true, "scram-sha-256": true, "vapid": true, "token": true, "apikey": true,
	"aws4-hmac-sha256": true,
}

// MaskCredential is maskCredential: "Bearer abc" is "Bearer xxxxx",
// anything else not empty is "xxxxx".
func MaskCredential(v string) string { return maskCredential(v) }

// maskCredential masks a credential value, keeping a leading authentication
// scheme: "Bearer abc" is "Bearer xxxxx", "Bearer " stays as it is (it holds
// no secret), anything else is "xxxxx". The empty string stays empty.
func maskCredential(v string) string {
	if v == "" {
		return ""
	}
	word, rest, _ := strings.Cut(v, " ")
	if authSchemes[strings.ToLower(word)] {
		if strings.TrimSpace(rest) == "" {
			return v
		}
		return word + " " + Mask
	}
	return Mask
}

// MaskURL returns s, a URL as written (it need not parse), with its user
// info password and the values of query (and fragment) parameters with
// secret names (SecretName) replaced by Mask:
// "http://admin:pw@h/?api_key=k&x=1" is "http://admin:xxxxx@h/?api_key=xxxxx&x=1".
// The user info is whatever lies between "://" (or the start) and the last
// '@' before the next '/', so a password that makes the URL unparseable is
// masked too. A user name without a password is kept, as net/url keeps it.
func MaskURL(s string) string { return maskURL(s, nil) }

// refsRE matches text made only of ${…} references.
var refsRE = regexp.MustCompile(`^(?:\$\{[^{}]*\})+$`)

// maskURLText masks a URL as written in the file, before interpolation: a
// secret written as ${VAR} references only is kept (it names the variables).
func maskURLText(s string) string { return maskURL(s, refsRE.MatchString) }

// maskURL masks as MaskURL does, except the secrets keep accepts.
func maskURL(s string, keep func(secret string) bool) string {
	mask := func(secret string) string {
		if keep != nil && keep(secret) {
			return secret
		}
		return Mask
	}
	var b strings.Builder
	start := 0 // where the authority starts
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	} else if strings.HasPrefix(s, "//") {
		start = 2
	}
	b.WriteString(s[:start])
	rest := s[start:]
	auth := rest
	if j := strings.IndexByte(auth, '/'); j >= 0 {
		auth = auth[:j]
	}
	if !strings.Contains(auth, "@") && strings.Contains(auth, ":") {
		if _, err := url.Parse(s); err != nil {
			// Unparseable, maybe for a password holding '/'
			// ("http://u:Zm9v/YmFy@h/"): the user info then runs to the
			// last '@' before the query.
			end := len(rest)
			if q := strings.IndexAny(rest, "?#"); q >= 0 {
				end = q
			}
			if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
				auth = rest[:at+1]
			}
		}
	}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		// Without "://" too: "user:pw@host" parses as scheme "user".
		if user, pw, ok := strings.Cut(auth[:at], ":"); ok {
			b.WriteString(user + ":" + mask(pw))
		} else {
			b.WriteString(auth[:at])
		}
		b.WriteByte('@')
		rest = rest[at+1:]
	}
	q := strings.IndexAny(rest, "?#")
	if q < 0 {
		b.WriteString(rest)
		return b.String()
	}
	b.WriteString(rest[:q])
	for q < len(rest) {
		// rest[q] is '?' or '#'; the parameters run to the next '#'.
		b.WriteByte(rest[q])
		params := rest[q+1:]
		next := len(rest)
		if j := strings.IndexByte(params, '#'); j >= 0 {
			params, next = params[:j], q+1+j
		}
		b.WriteString(maskParams(params, mask))
		q = next
	}
	return b.String()
}

// maskParams masks the values of the secret parameters of a query string.
func maskParams(q string, mask func(string) string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if SecretName(name) {
			parts[i] = k + "=" + mask(v)
		}
	}
	return strings.Join(parts, "&")
}

// quotedRE matches a Go-quoted string (as %q writes it).
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// maskDetail returns the text of an error about a URL with every quoted
// fragment that is not part of shown (the URL as printed, masked) replaced
// by Mask: net/url's errors quote bits of the URL ("invalid port \":pw\"
// after host", "invalid URL escape \"%zz\""), which may be bits of the
// password.
func maskDetail(detail, shown string) string {
	return quotedRE.ReplaceAllStringFunc(detail, func(q string) string {
		if u, err := strconv.Unquote(q); err == nil && u != "" && u != Mask && strings.Contains(shown, u) {
			return q
		}
		return strconv.Quote(Mask)
	})
}

// MaskExpr returns an expression's source with the string literals that
// could be credentials masked (see maskCredential): all of them when secret,
// else only the user info passwords and secret parameters of the URLs and
// paths with a query in them. The names passed to env(), header() and param() are kept: they are
// not values.
func MaskExpr(src string, secret bool) string {
	var b strings.Builder
	last := 0
	eachLiteral(src, func(start, end int, body string, name bool) {
		shown := body
		switch {
		case name:
		case secret:
			shown = maskCredential(body)
		case strings.Contains(body, "://"), strings.Contains(body, "?"):
			// A URL, or a path with a query: "/login?token=…".
			shown = MaskURL(body)
		}
		b.WriteString(src[last:start])
		b.WriteString(shown)
		last = end
	})
	b.WriteString(src[last:])
	return b.String()
}

// MaskCondition is MaskExpr for a condition (filter, if): its literals are
// all masked when it reads a header or parameter with a secret name
// (req.header("Authorization") == "Bearer …"), else only URLs' secrets.
func MaskCondition(src string) string {
	secret := false
	eachLiteral(src, func(_, _ int, body string, name bool) {
		secret = secret || (name && SecretName(body))
	})
	return MaskExpr(src, secret)
}

// eachLiteral calls fn with the body of every string literal of an
// expression, its bounds in src ([start, end) of the body, quotes outside)
// and whether it is the name argument of env(), header() or param().
func eachLiteral(src string, fn func(start, end int, body string, name bool)) {
	for i := 0; i < len(src); {
		c := src[i]
		if c != '"' && c != '\'' && c != '`' {
			i++
			continue
		}
		end := i + 1
		for end < len(src) && src[end] != c {
			if src[end] == '\\' && c != '`' {
				end++
			}
			end++
		}
		end = min(end, len(src))
		fn(i+1, end, src[i+1:end], nameArg(src[:i]))
		i = end + 1
	}
}

// nameArg reports whether a string literal after before is the argument of
// env(), header() or param(): a name, not a value.
func nameArg(before string) bool {
	before = strings.TrimRight(before, " \t\n")
	if !strings.HasSuffix(before, "(") {
		return false
	}
	before = strings.TrimRight(strings.TrimSuffix(before, "("), " \t\n")
	for _, fn := range []string{"env", "header", "param"} {
		if rest, ok := strings.CutSuffix(before, fn); ok {
			return rest == "" || !isWordByte(rest[len(rest)-1])
		}
	}
	return false
}

// SecretValue reports whether the step sets a credential: a header or query
// parameter, or a JSON member, whose name is secret (SecretName).
func (rw *Rewrite) SecretValue() bool {
	switch rw.Action {
	case SetHeader, SetQuery:
		return SecretName(rw.Name)
	case SetJSON:
		return SecretName(lastPathName(rw.JSONPath))
	}
	return false
}

// ShownValue is the step's value expression as plans print it: with the
// literals of a credential masked (SecretValue), and URL passwords masked.
// It is "" when the step has no value.
func (rw *Rewrite) ShownValue() string {
	if rw.Value == nil {
		return ""
	}
	return MaskExpr(rw.Value.Shown(), rw.SecretValue())
}

// lastPathName is the last member name of a JSON path ($.a.b, $['a']['b']).
func lastPathName(p string) string {
	p = strings.TrimRight(p, "]'\" ")
	i := len(p)
	for i > 0 && (isWordByte(p[i-1]) || p[i-1] == '-') {
		i--
	}
	return p[i:]
}

// minSecretLen is the length from which MaskSecrets hides a secret's value:
// a shorter one would hide words of the text that are not the secret's.
const minSecretLen = 6

// MaskSecrets replaces, in text printed about the scenario (the --dry-run
// plan), every value that a ${NAME} with a secret's name put into the
// scenario by the reference as written, ${NAME}: wherever it was read into
// (a path, a topic, a header name, a redact pattern), as the plan shows a
// target URL's. Values shorter than 6 bytes, and those that are part of a
// longer word, are left.
func (s *Scenario) MaskSecrets(text string) string {
	vs := slices.Clone(s.secrets)
	// Longer values first, so a value that contains another is replaced whole.
	slices.SortFunc(vs, func(a, b varValue) int { return len(b.value) - len(a.value) })
	for _, v := range vs {
		if len(v.value) >= minSecretLen {
			text = replaceWord(text, v.value, "${"+v.name+"}")
		}
	}
	return text
}
