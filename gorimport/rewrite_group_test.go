package gorimport

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/scenario"
)

// uriAfter is uri after a job's set-url step: its if, then its value.
func uriAfter(t testing.TB, r *scenario.Rewrite, uri string) (string, error) {
	t.Helper()
	if r.Action != scenario.SetURL {
		t.Fatalf("a %s step, want set-url", r.Action)
	}
	env := exprenv.NewRequestEnv(exprenv.NewRequest("GET", uri, "HTTP/1.1", nil, nil, false))
	if r.If != nil {
		ok, err := expr.Run(r.If.Program, env)
		if err != nil || ok != true {
			return uri, err
		}
	}
	v, err := expr.Run(r.Value.Program, env)
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// gorRewrites is what gor's --http-rewrite-url rules make of uri: the
// first rule whose regexp matches it replaces it with ReplaceAll.
func gorRewrites(rules []string, uri string) string {
	for _, r := range rules {
		re, target, _ := strings.Cut(r, ":")
		if gor := regexp.MustCompile(re); gor.MatchString(uri) {
			return gor.ReplaceAllString(uri, target)
		}
	}
	return uri
}

// TestURLRewriteAsGor: every --http-rewrite-url rule is mapped, without a
// warning, to a set-url step that gives each request URI (query
// included) what gor's regexp.ReplaceAll gives it: group references,
// case folding, a query in the regexp or the target, LIT only in the
// query. Of several rules, the first that matches applies, as in gor.
func TestURLRewriteAsGor(t *testing.T) {
	uris := []string{"/v1/users/7", "/v1/", "/v1/a?x=/v1/b", "/api/v1/items?q=1", "/v2/x", "/v1", "/api", "/api/", "/api/x/y?z=1",
		"/apiary/x", "/", "/v1/user/ann/ping", "/V1/x", "/search?q=/v1/&x=1", "/a?b=1", "/old", "/old?x=1"}
	for _, rules := range [][]string{
		{"/v1/(.*):/v2/$1"}, {"^/v1/(.*):/v2/$1"}, {"^/v1/(.*)$:/v2/${1}"}, {"^/api(/.*)$:$1"}, {"/api(/.*):/gw$1"},
		{"(/v1/.*):/x$1"}, {`/v1/user/([^\/]+)/ping:/v2/user/$1/ping`}, {"/v1/(.*):/v2/$1/x"}, {"(?i)/v1/(.*):/v2/$1"},
		{"/a(.*)/b(.*):/c$2"}, {"/v1/(.*?):/v2/$1"}, {"/v1/:/v2/"}, {`/a\?b=1:/c`}, {"^/old$:/new"}, {"^/old.*$:/new"},
		{"/v1/:/v2/", "/v2/:/v3/"}, {"^/api:/x", "/v1/:/y/", "/:/z/"},
	} {
		args := []string{"--input-file", "r.gor", "--output-http", "http://t"}
		for _, r := range rules {
			args = append(args, "--http-rewrite-url", r)
		}
		res, s := load(t, args...)
		j := onlyJob(t, s)
		if len(j.Rewrite) != 1 || len(res.Warnings) != 0 {
			t.Errorf("%q: %d rewrite steps, warnings %q; want one set-url, no warning", rules, len(j.Rewrite), res.Warnings)
			continue
		}
		for _, uri := range uris {
			want := gorRewrites(rules, uri)
			got, err := uriAfter(t, j.Rewrite[0], uri)
			if err != nil || got != want {
				t.Errorf("%q on %s: %q, %v (set-url %s), gor gives %q", rules, uri, got, err, j.Rewrite[0].Value.Source, want)
			}
		}
	}
}

// TestHeaderRewriteAsGor: --http-rewrite-header rules apply as gor applies
// them: to a request that has the header (a missing header read as "" and
// matched by ^(.*)$ got it added), and gor stops at the first rule whose
// header the request lacks, leaving the later rules unapplied.
func TestHeaderRewriteAsGor(t *testing.T) {
	_, s := load(t, "--input-file", "r.gor", "--output-http", "http://t",
		"--http-rewrite-header", "X-Tenant: ^(.*)$,t-$1", "--http-rewrite-header", "X-Env: prod,staging")
	j := onlyJob(t, s)
	for _, tt := range []struct {
		in, want map[string]string
	}{
		{map[string]string{"X-Env": "prod-eu"}, map[string]string{"X-Env": "prod-eu"}},
		{map[string]string{"X-Tenant": "a", "X-Env": "prod-eu"}, map[string]string{"X-Tenant": "t-a", "X-Env": "staging-eu"}},
		{map[string]string{"X-Tenant": "a"}, map[string]string{"X-Tenant": "t-a"}},
	} {
		h := maps.Clone(tt.in)
		for _, r := range j.Rewrite {
			env := exprenv.NewRequestEnv(exprenv.NewRequest("GET", "/", "HTTP/1.1", h, nil, false))
			if ok, err := expr.Run(r.If.Program, env); err != nil || ok != true {
				continue
			}
			v, err := expr.Run(r.Value.Program, env)
			if err != nil {
				t.Fatal(err)
			}
			h[r.Name] = v.(string)
		}
		if !maps.Equal(h, tt.want) {
			t.Errorf("headers %v became %v, want %v (as gor)", tt.in, h, tt.want)
		}
	}
}
