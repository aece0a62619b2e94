package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/gorsink"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// TestCompareFindsRegressionsNotNoise replays recorded production answers
// against a candidate that changed in known ways and a reference that
// answers like production but with a timestamp that changes every time: the
// regressions are found, the timestamp is noise, nothing else is reported.
func TestCompareFindsRegressionsNotNoise(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prod.gor")
	s, err := gorsink.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("%024x", i+1)
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond).UnixNano()
		reqPath, body, status := fmt.Sprintf("/users/%d", 100+i), fmt.Sprintf(`{"id":%d,"plan":"pro","at":"2026-03-01T12:00:00Z"}`, 100+i), "200 OK"
		if i%5 == 4 {
			reqPath, body = "/health", `{"ok":true}`
		}
		resp := fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
		for _, m := range []*message.Message{
			{Kind: message.Request, ID: id, Time: at, Raw: []byte(get(reqPath))},
			{Kind: message.Response, ID: id, Time: at + 1e6, Latency: 1e6, Raw: []byte(resp)},
		} {
			if err := s.Write(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	answer := func(candidate bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			now := fmt.Sprintf("%d", calls.Add(1))
			if r.URL.Path == "/health" {
				if candidate {
					w.WriteHeader(503)
				}
				fmt.Fprint(w, `{"ok":true}`)
				return
			}
			id := strings.TrimPrefix(r.URL.Path, "/users/")
			if candidate {
				fmt.Fprintf(w, `{"id":%s,"plan":"free","beta":true,"at":"%s"}`, id, now)
				return
			}
			fmt.Fprintf(w, `{"id":%s,"plan":"pro","at":"%s"}`, id, now)
		}
	}
	cand := httptest.NewServer(answer(true))
	defer cand.Close()
	ref := httptest.NewServer(answer(false))
	defer ref.Close()

	yaml := fmt.Sprintf(`version: 1
name: cmp
targets:
  candidate: {url: %q}
  reference: {url: %q}
jobs:
  replay:
    source: {gor: {path: %s}}
    speed: max
    sink: {http: {target: candidate, workers: 4}}
    compare: {status: true, body: true, noise: {target: reference}}
    report: {json: report.json}
    assert: ['diff.mismatches == 10', 'diff.compared == 10']
`, cand.URL, ref.URL, path)
	res := run(t, dir, yaml, engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	diff := field(t, rep, "diff").(map[string]any)
	if diff["compared"].(float64) != 10 || diff["mismatches"].(float64) != 10 {
		t.Fatalf("diff = %v", diff)
	}
	got := map[string][]string{}
	for _, e := range diff["endpoints"].([]any) {
		e := e.(map[string]any)
		for _, f := range e["top_fields"].([]any) {
			got[e["endpoint"].(string)] = append(got[e["endpoint"].(string)], f.(map[string]any)["field"].(string))
		}
		slices.Sort(got[e["endpoint"].(string)])
	}
	want := map[string][]string{"GET /users/{id}": {"$.beta", "$.plan"}, "GET /health": {"status"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("regressions by endpoint = %v, want %v", got, want)
	}
	var noise []string
	for _, f := range diff["noise_fields"].([]any) {
		noise = append(noise, f.(string))
	}
	if !slices.Contains(noise, "GET /users/{id} $.at") {
		t.Errorf("noise fields = %v, want the timestamp $.at", noise)
	}
	// Each request went once to the candidate and twice to the reference.
	if n := calls.Load(); n != 30 {
		t.Errorf("targets answered %d requests, want 30", n)
	}
	if !strings.Contains(res.out, "mismatches 10") {
		t.Errorf("summary lacks the diff line:\n%s", res.out)
	}
}

// TestCompareExamplesMaskCredentials: a diff example shows the request as
// sent, after the rewrites, which is where working credentials go back in
// (set-header Authorization = "Bearer " + env("STAGING_TOKEN")): the JSON
// and HTML reports mask the values of credential headers and of secret
// query parameters, as the plan does, and keep the rest of the head.
func TestCompareExamplesMaskCredentials(t *testing.T) {
	dir := t.TempDir()
	path := writeGor(t, dir, "rec.gor", []req{{0, get("/users/1?x=1", "Cookie: sid=Hunter2cookie")}, {time.Millisecond, get("/users/2")}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "changed")
	}))
	defer srv.Close()
	yaml := fmt.Sprintf(`version: 1
name: cmp
targets:
  candidate: {url: %q}
jobs:
  replay:
    source: {gor: {path: %s}}
    speed: max
    rewrite:
      - set-header: {name: Authorization, value: '"Bearer Hunter2bearer"'}
      - set-header: {name: X-Session-Token, value: '"Hunter2session"'}
      - set-header: {name: X-Trace, value: '"trace-1"'}
      - set-query: {name: api_key, value: '"Hunter2query"'}
    sink: {http: {target: candidate, workers: 1}}
    compare: {status: true, body: true}
    report: {json: report.json, html: report.html}
`, srv.URL, path)
	res := run(t, dir, yaml, engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	diff := field(t, rep, "diff").(map[string]any)
	ex := diff["endpoints"].([]any)[0].(map[string]any)["examples"].([]any)[0].(map[string]any)
	head := ex["request"].(string)
	// The Host as sent: the target's, not the recorded one.
	for _, want := range []string{"Authorization: Bearer xxxxx", "X-Session-Token: xxxxx", "X-Trace: trace-1", "api_key=xxxxx", "Host: " + strings.TrimPrefix(srv.URL, "http://") + "\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("example request lacks %q:\n%s", want, head)
		}
	}
	for _, f := range []string{"report.json", "report.html"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "Hunter2") {
			t.Errorf("%s shows a credential the rewrites set", f)
		}
	}
}

// TestCompareAnswerCutWhenReplayed: an answer larger than what the sender
// keeps of it (KeepLimit, 1 MiB) reaches the comparison cut, marked
// ResponseTruncated; it is compared on its status and headers, as a body
// cut when recorded is, and counted (compare-bodies-cut-when-replayed).
// Before, the same 2 MiB answer as recorded was a mismatch,
// "unparsable:replayed" (its body shorter than its length), over HTTP/1.1
// and HTTP/2 alike, and a changed status behind it was not told; the
// reference answers of a noise target, cut alike, are compared so too.
func TestCompareAnswerCutWhenReplayed(t *testing.T) {
	big := strings.Repeat("a", 2<<20)
	for _, tc := range []struct{ name, proto, noise string }{
		{"http1", "http1", ""},
		{"h2", "h2", ""},
		{"http1-noise", "http1", "noise: {target: reference}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "prod.gor")
			s, err := gorsink.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
			for i, p := range []string{"/big", "/big-down"} {
				id, at := fmt.Sprintf("%024x", i+1), t0.Add(time.Duration(i)*time.Millisecond).UnixNano()
				for _, m := range []*message.Message{
					{Kind: message.Request, ID: id, Time: at, Raw: []byte(get(p))},
					{Kind: message.Response, ID: id, Time: at + 1e6, Latency: 1e6, Raw: []byte(resp)},
				} {
					if err := s.Write(context.Background(), m); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				if r.URL.Path == "/big-down" {
					w.WriteHeader(503)
				}
				fmt.Fprint(w, big)
			})
			srv := httptest.NewServer(h2c.NewHandler(answer, &http2.Server{}))
			defer srv.Close()
			ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprint(w, big)
			}))
			defer ref.Close()
			yaml := fmt.Sprintf(`version: 1
name: cmp
targets:
  candidate: {url: %q}
  reference: {url: %q}
jobs:
  replay:
    source: {gor: {path: %s}}
    speed: max
    sink: {http: {target: candidate, workers: 1, protocol: %s}}
    compare: {status: true, body: true, %s}
    report: {json: report.json}
`, srv.URL, ref.URL, path, tc.proto, tc.noise)
			res := run(t, dir, yaml, engine.Options{})
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.out)
			}
			rep := readReport(t, filepath.Join(dir, "report.json"))
			diff := field(t, rep, "diff").(map[string]any)
			var fields []string
			for _, e := range diff["endpoints"].([]any) {
				e := e.(map[string]any)
				for _, f := range e["top_fields"].([]any) {
					fields = append(fields, e["endpoint"].(string)+" "+f.(map[string]any)["field"].(string))
				}
			}
			if diff["compared"].(float64) != 2 || diff["mismatches"].(float64) != 1 || fmt.Sprint(fields) != "[GET /big-down status]" {
				t.Errorf("compared %v, mismatches %v, fields %v; want 2, 1 (the 503), [GET /big-down status]", diff["compared"], diff["mismatches"], fields)
			}
			if noise, _ := diff["noise_fields"].([]any); len(noise) > 0 {
				t.Errorf("noise fields %v, want none (the reference answers are alike)", noise)
			}
			if n := number(t, rep, "counters", "compare-bodies-cut-when-replayed"); n != 2 {
				t.Errorf("compare-bodies-cut-when-replayed = %v, want 2", n)
			}
		})
	}
}
