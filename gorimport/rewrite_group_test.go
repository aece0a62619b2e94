package gorimport

import (
	"regexp"
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/exprenv"
)

// TestURLRewriteGroupReference: the usual prefix rewrite with a group
// reference ("/v1/(.*):/v2/$1", gor's own example) is mapped, without a
// warning, to a set-path that gives each request the URI gor's
// regexp.ReplaceAll gives it (the path rewritten, the query kept); other
// group references are still warned of as not mapped.
func TestURLRewriteGroupReference(t *testing.T) {
	uris := []string{"/v1/users/7", "/v1/", "/v1/a?x=/v1/b", "/api/v1/items?q=1", "/v2/x", "/v1", "/api", "/api/", "/api/x/y?z=1", "/apiary/x", "/"}
	for _, tt := range []struct {
		rule   string
		mapped bool
	}{
		{"/v1/(.*):/v2/$1", true},
		{"^/v1/(.*):/v2/$1", true},
		{"^/v1/(.*)$:/v2/${1}", true},
		{"^/api(/.*)$:$1", true},
		{"/api(/.*):/gw$1", true},
		{"(/v1/.*):/x$1", true},
		{`/v1/user/([^\/]+)/ping:/v2/user/$1/ping`, false},
		{"/v1/(.*):/v2/$1/x", false},
		{"(?i)/v1/(.*):/v2/$1", false},
		{"/a(.*)/b(.*):/c$2", false},
	} {
		res, s := load(t, "--input-file", "r.gor", "--output-http", "http://t", "--http-rewrite-url", tt.rule)
		j := onlyJob(t, s)
		if !tt.mapped {
			if len(j.Rewrite) != 0 || !hasWarning(res.Warnings, "not mapped") {
				t.Errorf("%s: rewrite %d steps, warnings %q; want it warned of as not mapped", tt.rule, len(j.Rewrite), res.Warnings)
			}
			continue
		}
		if len(j.Rewrite) != 1 || len(exactWarnings(res.Warnings)) != 0 {
			t.Errorf("%s: rewrite %d steps, warnings %q; want one set-path, no warning", tt.rule, len(j.Rewrite), res.Warnings)
			continue
		}
		r := j.Rewrite[0]
		re, target, _ := strings.Cut(tt.rule, ":")
		gor := regexp.MustCompile(re)
		for _, uri := range uris {
			want := uri
			if gor.MatchString(uri) {
				want = gor.ReplaceAllString(uri, target)
			}
			path, query, hasQuery := strings.Cut(uri, "?")
			env := exprenv.NewRequestEnv(exprenv.NewRequest("GET", uri, "HTTP/1.1", nil, nil, false))
			ok, err := expr.Run(r.If.Program, env)
			if err != nil {
				t.Fatalf("%s on %s: if %s: %v", tt.rule, uri, r.If.Source, err)
			}
			if ok == true {
				v, err := expr.Run(r.Value.Program, env)
				if err != nil {
					t.Fatalf("%s on %s: %s: %v", tt.rule, uri, r.Value.Source, err)
				}
				path = v.(string)
			}
			got := path
			if hasQuery {
				got += "?" + query
			}
			if got != want {
				t.Errorf("%s on %s: %q (if %s, set-path %s), gor gives %q", tt.rule, uri, got, r.If.Source, r.Value.Source, want)
			}
		}
	}
}
