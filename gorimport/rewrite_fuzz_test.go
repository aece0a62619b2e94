package gorimport

import (
	"regexp"
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/scenario"
)

// FuzzURLRewrite converts a fuzzed --http-rewrite-url rule: when it is
// mapped to one set-path step without a warning, that step gives every
// request URI (some fixed, one fuzzed) the URI gor's regexp.ReplaceAll
// gives it, the path rewritten and the query kept. A URI whose query the
// regexp matches (gor rewrites the query too, replayctl the path only) is
// left out, as docs/migration.md says.
func FuzzURLRewrite(f *testing.F) {
	for _, r := range []string{"/v1/(.*):/v2/$1", "^/v1/(.*):/v2/$1", "^/v1/(.*)$:/v2/${1}", "^/api(/.*)$:$1",
		"/api(/.*):/gw$1", "(/v1/.*):/x$1", "^/old$:/new", "/a:/b", "^/x/(.*):/$1", "/v(1)(.*):/w$1",
		"/v1/(.*?):/v2/$1", "^/v1/(.*?):/v2/$1", "/v1/(.*?)$:/v2/$1", "/v1(/.*?):/v2/$1"} {
		f.Add(r, "/v1/a/b?q=/v1/c")
	}
	uris := []string{"/v1/users/7", "/v1/", "/v1/a?x=/v1/b", "/api/v1/items?q=1", "/v2/x", "/v1", "/api", "/api/", "/api/x/y?z=1",
		"/apiary/x", "/", "/old", "/old?x=1", "/a/a/a", "/x/v1/api/v1/"}
	f.Fuzz(func(t *testing.T, rule, uri string) {
		if len(rule) > 100 || strings.ContainsAny(rule, "\n\r") {
			return
		}
		res, err := convertHere([]string{"--input-file", "r.gor", "--output-http", "http://t", "--http-rewrite-url", rule})
		if err != nil || len(exactWarnings(res.Warnings)) != 0 {
			return
		}
		s, err := scenario.LoadBytes("fuzz.yaml", res.YAML, scenario.Options{Env: noEnv})
		if err != nil {
			t.Fatalf("%q: %v\n%s", rule, err, res.YAML)
		}
		j := s.Jobs[s.JobNames[0]]
		if len(j.Rewrite) != 1 || j.Rewrite[0].Action != scenario.SetPath {
			return
		}
		r := j.Rewrite[0]
		re, target, _ := strings.Cut(rule, ":")
		gor := regexp.MustCompile(re)
		if strings.HasPrefix(uri, "/") && !strings.ContainsAny(uri, " #%\t\r\n\x00") && len(uri) < 200 {
			uris = append(uris[:15:15], uri)
		}
		for _, uri := range uris {
			path, query, hasQuery := strings.Cut(uri, "?")
			want := uri
			if locs := gor.FindAllStringIndex(uri, -1); locs != nil {
				if hasQuery && locs[len(locs)-1][1] > len(path) {
					continue // matched in the query
				}
				want = gor.ReplaceAllString(uri, target)
			}
			env := exprenv.NewRequestEnv(exprenv.NewRequest("GET", uri, "HTTP/1.1", nil, nil, false))
			newPath := path
			if r.If != nil {
				ok, err := expr.Run(r.If.Program, env)
				if err != nil {
					t.Fatalf("%s on %s: if %s: %v", rule, uri, r.If.Source, err)
				}
				if ok != true {
					goto compare
				}
			}
			{
				v, err := expr.Run(r.Value.Program, env)
				if err != nil {
					t.Fatalf("%s on %s: %s: %v", rule, uri, r.Value.Source, err)
				}
				newPath = v.(string)
			}
		compare:
			got := newPath
			if hasQuery {
				got += "?" + query
			}
			if got != want {
				t.Fatalf("%s on %s: %q (if %v, set-path %s), gor gives %q", rule, uri, got, r.If != nil && r.If.Source != "", r.Value.Source, want)
			}
		}
	})
}
