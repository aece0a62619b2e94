package gorimport

import (
	"strings"
	"testing"

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
		if err != nil || len(res.Warnings) != 0 {
			return
		}
		s, err := scenario.LoadBytes("fuzz.yaml", res.YAML, scenario.Options{Env: noEnv})
		if err != nil {
			t.Fatalf("%q: %v\n%s", rule, err, res.YAML)
		}
		j := s.Jobs[s.JobNames[0]]
		if len(j.Rewrite) != 1 {
			t.Fatalf("%q: %d rewrite steps, want one set-url\n%s", rule, len(j.Rewrite), res.YAML)
		}
		if strings.HasPrefix(uri, "/") && !strings.ContainsAny(uri, " #\t\r\n\x00") && len(uri) < 200 {
			uris = append(uris[:15:15], uri)
		}
		for _, uri := range uris {
			want := gorRewrites([]string{rule}, uri)
			got, err := uriAfter(t, j.Rewrite[0], uri)
			if err != nil || got != want {
				t.Fatalf("%s on %s: %q, %v (set-url %s), gor gives %q", rule, uri, got, err, j.Rewrite[0].Value.Source, want)
			}
		}
	})
}
