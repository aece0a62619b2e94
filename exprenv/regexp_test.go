package exprenv

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
)

// TestRegexReplace: regexReplace is Go's ReplaceAllString (what GoReplay
// runs), $1 expanded; an invalid pattern is the expression's error; the
// cache of compiled patterns stays bounded.
func TestRegexReplace(t *testing.T) {
	env := NewRequestEnv(NewRequest("GET", "/v1/user/ann/ping?x=1", "HTTP/1.1", nil, nil, false))
	for _, tt := range []struct {
		src, want, err string
	}{
		{`regexReplace(req.url, "/v1/user/([^/]+)/ping", "/v2/user/$1/ping")`, "/v2/user/ann/ping?x=1", ""},
		{`regexReplace(req.path, "[aeiou]", "_")`, "/v1/_s_r/_nn/p_ng", ""},
		{`regexReplace("a", "(", "b")`, "", "regexReplace: error parsing regexp"},
	} {
		p, err := expr.Compile(tt.src, append(RequestOptions(), expr.AsKind(reflect.String))...)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		got, err := expr.Run(p, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, %v; want the error %q", tt.src, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %q", tt.src, got, err, tt.want)
		}
	}
	for i := range 2 * maxCachedRegexps {
		if _, err := compiledRegexp(fmt.Sprintf("x%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	regexps.Lock()
	n := len(regexps.m)
	regexps.Unlock()
	if n > maxCachedRegexps {
		t.Errorf("%d patterns cached, want at most %d", n, maxCachedRegexps)
	}
}
