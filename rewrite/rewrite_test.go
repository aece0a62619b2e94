package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
)

const get = "GET /api/v1/items?page=2&sort=%2Bname HTTP/1.1\r\nHost: prod.local\r\nX-Trace: 1\r\nAuthorization: Bearer x\r\n\r\n"

const post = "POST /orders HTTP/1.1\r\nHost: prod.local\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"id\":7,\"user\":{\"name\":\"ann\"},\"debug\":1}"

func lit(v any) Evaluator { return func(any) (any, error) { return v, nil } }

// envOf builds a small environment, as the engine's EnvFunc would.
func envOf(r *httpraw.Request) any {
	return map[string]any{"method": r.Method(), "path": r.Path()}
}

// fromEnv reads a key of the environment built by envOf.
func fromEnv(key string) Evaluator {
	return func(env any) (any, error) { return env.(map[string]any)[key], nil }
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		action Action
		want   string
	}{
		{"set-header replace", get, SetHeader{Name: "x-trace", Value: lit("replay")},
			strings.Replace(get, "X-Trace: 1", "X-Trace: replay", 1)},
		{"set-header add", get, SetHeader{Name: "X-Replay", Value: lit("1")},
			strings.Replace(get, "\r\n\r\n", "\r\nX-Replay: 1\r\n\r\n", 1)},
		{"remove-header", get, RemoveHeader{Name: "authorization"},
			strings.Replace(get, "Authorization: Bearer x\r\n", "", 1)},
		{"set-method", get, SetMethod{Value: lit("HEAD")}, "HEAD" + get[3:]},
		{"set-path", get, SetPath{Value: lit("/api/v2/items")},
			strings.Replace(get, "/api/v1/items", "/api/v2/items", 1)},
		{"set-url", get, SetURL{Value: lit("/v2?x=1")},
			strings.Replace(get, "/api/v1/items?page=2&sort=%2Bname", "/v2?x=1", 1)},
		{"set-url keeps an absolute-form target's scheme and host", "GET http://orig.example/v1/a?x=1 HTTP/1.0\r\n\r\n", SetURL{Value: lit("/v2/a")},
			"GET http://orig.example/v2/a HTTP/1.0\r\n\r\n"},
		{"set-query-string", get, SetQueryString{Value: lit("a=1")},
			strings.Replace(get, "page=2&sort=%2Bname", "a=1", 1)},
		{"set-query-string empty removes it", get, SetQueryString{Value: lit("")},
			strings.Replace(get, "?page=2&sort=%2Bname", "", 1)},
		{"set-query", get, SetQuery{Name: "page", Value: lit("9")},
			strings.Replace(get, "page=2", "page=9", 1)},
		{"set-query add", get, SetQuery{Name: "replay", Value: lit("a b")},
			strings.Replace(get, "%2Bname", "%2Bname&replay=a+b", 1)},
		{"remove-query", get, RemoveQuery{Name: "page"},
			strings.Replace(get, "page=2&", "", 1)},
		{"set-host", get, SetHost{Value: lit("127.0.0.1:8080")},
			strings.Replace(get, "prod.local", "127.0.0.1:8080", 1)},
		{"set-json", post, SetJSON{Path: jsonpath.MustCompile("$.user.name"), Value: lit("bob")},
			strings.Replace(post, "40\r\n\r\n{\"id\":7,\"user\":{\"name\":\"ann\"}", "40\r\n\r\n{\"id\":7,\"user\":{\"name\":\"bob\"}", 1)},
		{"set-json creates", post, SetJSON{Path: jsonpath.MustCompile("$.replay"), Value: lit(true)},
			strings.Replace(strings.Replace(post, "40", "54", 1), `"debug":1}`, `"debug":1,"replay":true}`, 1)},
		{"remove-json", post, RemoveJSON{Path: jsonpath.MustCompile("$.debug")},
			strings.Replace(strings.Replace(post, "40", "30", 1), `,"debug":1`, "", 1)},
		{"remove-json no match", post, RemoveJSON{Path: jsonpath.MustCompile("$.nope")}, post},
		{"if false skips", get, SetHeader{Name: "X-Trace", Value: lit("no"), If: lit(false)}, get},
		{"if true applies", get, RemoveHeader{Name: "X-Trace", If: lit(true)},
			strings.Replace(get, "X-Trace: 1\r\n", "", 1)},
		{"drop if false", get, Drop{If: lit(false)}, get},
		{"drop cond false", get, Drop{Cond: lit(false)}, get},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Chain{Actions: []Action{tc.action}, Env: envOf}
			out, dropped, err := c.Apply([]byte(tc.in))
			if err != nil || dropped {
				t.Fatalf("err %v dropped %v", err, dropped)
			}
			if string(out) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", out, tc.want)
			}
		})
	}
}

func TestChain(t *testing.T) {
	c := &Chain{Env: envOf, Actions: []Action{
		SetPath{Value: lit("/v2")},
		SetHeader{Name: "X-Path", Value: fromEnv("path")}, // sees the new path
		SetMethod{Value: lit("POST"), If: func(env any) (any, error) {
			return env.(map[string]any)["path"] == "/v2", nil
		}},
		SetHeader{Name: "X-Method", Value: fromEnv("method")},
		RemoveQuery{Name: "sort"},
	}}
	out, dropped, err := c.Apply([]byte(get))
	if err != nil || dropped {
		t.Fatal(err, dropped)
	}
	want := "POST /v2?page=2 HTTP/1.1\r\nHost: prod.local\r\nX-Trace: 1\r\nAuthorization: Bearer x\r\nX-Path: /v2\r\nX-Method: POST\r\n\r\n"
	if string(out) != want {
		t.Fatalf("got\n%q\nwant\n%q", out, want)
	}

	drop := &Chain{Env: envOf, Actions: []Action{
		SetHeader{Name: "X-A", Value: lit("1")},
		Drop{Cond: func(env any) (any, error) { return env.(map[string]any)["method"] == "GET", nil }},
		SetHeader{Name: "X-Never", Value: fromEnv("nope")},
	}}
	out, dropped, err = drop.Apply([]byte(get))
	if err != nil || !dropped || out != nil {
		t.Fatalf("drop: out %q dropped %v err %v", out, dropped, err)
	}
}

func TestNoOpChainReturnsInput(t *testing.T) {
	in := []byte(get)
	for _, c := range []*Chain{
		{},
		{Actions: []Action{
			SetHeader{Name: "Host", Value: lit("prod.local")},
			RemoveHeader{Name: "Absent"},
			RemoveQuery{Name: "absent"},
			SetQuery{Name: "page", Value: lit("2")},
			Drop{Cond: lit(false)},
		}},
	} {
		out, dropped, err := c.Apply(in)
		if err != nil || dropped || &out[0] != &in[0] || len(out) != len(in) {
			t.Fatalf("no-op chain: %q %v %v", out, dropped, err)
		}
	}
}

func TestErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		in     string
		action Action
		want   string
	}{
		{"non-string header", get, SetHeader{Name: "X", Value: lit(42)}, "action 1 (set-header X): value is int, want string"},
		{"non-string path", get, SetPath{Value: lit(nil)}, "(set-path): value is <nil>"},
		{"non-bool if", get, RemoveHeader{Name: "X", If: lit("yes")}, "if is string, want bool"},
		{"eval error", get, SetHost{Value: func(any) (any, error) { return nil, boom }}, "(set-host): value: boom"},
		{"invalid header value", get, SetHeader{Name: "X", Value: lit("a\r\nb: c")}, "contains CR, LF or NUL"},
		{"invalid path", get, SetPath{Value: lit("no-slash")}, "invalid path"},
		{"invalid query string", get, SetQueryString{Value: lit("a b")}, "invalid query"},
		{"set-url not origin-form", get, SetURL{Value: lit("v2")}, "want /path or /path?query"},
		{"set-url on an asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", SetURL{Value: lit("/x")}, "no path"},
		{"not json", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", SetJSON{Path: jsonpath.MustCompile("$.a"), Value: lit(1)}, "body is not JSON"},
		{"set-json in array", post, SetJSON{Path: jsonpath.MustCompile("$.id.x"), Value: lit(1)}, "cannot create"},
		{"nil path", post, RemoveJSON{}, "no path"},
		{"malformed request", "GET\r\n\r\n", RemoveHeader{Name: "X"}, "malformed request line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := (&Chain{Actions: []Action{tc.action}}).Apply([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	text := "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
	_, _, err := (&Chain{Actions: []Action{RemoveJSON{Path: jsonpath.MustCompile("$.a")}}}).Apply([]byte(text))
	if !errors.Is(err, ErrNotJSON) {
		t.Fatalf("err = %v, want ErrNotJSON", err)
	}
	// Without a body there is nothing to edit: the request passes unchanged.
	out, dropped, err := (&Chain{Actions: []Action{SetJSON{Path: jsonpath.MustCompile("$.a"), Value: lit(1)}}}).Apply([]byte(get))
	if err != nil || dropped || string(out) != get {
		t.Fatalf("no body: %q %v %v", out, dropped, err)
	}
	// With OnNotJSON the step is skipped, reported, and the chain goes on.
	var skipped []string
	c := &Chain{
		Actions:   []Action{SetJSON{Path: jsonpath.MustCompile("$.a"), Value: lit(1)}, SetHeader{Name: "X-After", Value: lit("1")}},
		OnNotJSON: func(a Action, err error) { skipped = append(skipped, a.String()) },
	}
	out, _, err = c.Apply([]byte(text))
	if err != nil || len(skipped) != 1 || skipped[0] != "set-json $.a" || !strings.Contains(string(out), "X-After: 1\r\n") || !strings.HasSuffix(string(out), "hello") {
		t.Fatalf("OnNotJSON: out %q skipped %v err %v", out, skipped, err)
	}
	gz := "POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}"
	_, _, err = (&Chain{Actions: []Action{RemoveJSON{Path: jsonpath.MustCompile("$.a")}}}).Apply([]byte(gz))
	if !errors.Is(err, ErrNotJSON) || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("gzip: err = %v", err)
	}
}

func TestChunkedJSON(t *testing.T) {
	in := "POST /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"
	c := &Chain{Actions: []Action{SetJSON{Path: jsonpath.MustCompile("$.a"), Value: lit("x")}}}
	out, _, err := c.Apply([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"a\":\"x\"}\r\n0\r\n\r\n"
	if string(out) != want {
		t.Fatalf("got %q", out)
	}
}

// TestApplyHostTellsAHostSet: a chain tells when one of its actions set the
// Host (set-host, set-header of Host in any case, even to the value it had),
// not when the action's if: was false or another header was set.
func TestApplyHostTellsAHostSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		acts []Action
		want bool
	}{
		{"set-host", []Action{SetHost{Value: lit("a.example")}}, true},
		{"set-host same value", []Action{SetHost{Value: lit("prod.local")}}, true},
		{"set-header host", []Action{SetHeader{Name: "hOST", Value: lit("a.example")}}, true},
		{"set-host if false", []Action{SetHost{Value: lit("a.example"), If: lit(false)}}, false},
		{"set-header host if false", []Action{SetHeader{Name: "Host", Value: lit("a"), If: lit(false)}}, false},
		{"other edits", []Action{SetHeader{Name: "X-Host", Value: lit("a")}, SetPath{Value: lit("/x")}, RemoveHeader{Name: "Host"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Chain{Actions: tc.acts, Env: envOf}
			_, hostSet, dropped, err := c.ApplyHost([]byte(get))
			if err != nil || dropped {
				t.Fatalf("err %v dropped %v", err, dropped)
			}
			if hostSet != tc.want {
				t.Errorf("host set %v, want %v", hostSet, tc.want)
			}
		})
	}
}

// TestSetJSONNoMatch: set-json whose path is a filter or an index that
// matches nothing in the body (it creates members only along plain
// names) changes nothing: told through OnNoMatch, the chain going on. It
// was silent (a walk set $.arr[3] on a shorter array). A plain path that
// creates its member is no such case.
func TestSetJSONNoMatch(t *testing.T) {
	body := `{"arr":[1]}`
	in := fmt.Sprintf("POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	var missed []string
	c := &Chain{
		Actions: []Action{
			SetJSON{Path: jsonpath.MustCompile("$.arr[3]"), Value: lit(9)},
			SetJSON{Path: jsonpath.MustCompile("$.b"), Value: lit(2)},
		},
		OnNoMatch: func(a Action) { missed = append(missed, a.String()) },
	}
	out, _, err := c.Apply([]byte(in))
	if err != nil || len(missed) != 1 || missed[0] != "set-json $.arr[3]" || !strings.HasSuffix(string(out), `{"arr":[1],"b":2}`) {
		t.Fatalf("out %q, missed %v, err %v", out, missed, err)
	}
}
