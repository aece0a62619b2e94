package serve_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestServeSecurity checks serve against hostile input: a `replayctl broker`
// subprocess, one replay agent and a serve instance on loopback.
func TestServeSecurity(t *testing.T) {
	e := setup(t, "")
	e.agent(t, "sec-1-"+e.suffix, "role=sec-"+e.suffix)
	a := e.server(t)
	read := e.tok["read"]
	waitAgents(t, a, read, e.suffix, 1)

	t.Run("every answer says nosniff and may not be framed", func(t *testing.T) {
		for _, c := range []struct{ method, path, token string }{
			{"GET", "/v1/jobs", read},
			{"GET", "/v1/nope/<script>", read},
			{"GET", "/v1/jobs", ""},
			{"GET", "/v1/jobs/none/logs", read},
			{"GET", "/healthz", ""},
			{"GET", "/v1/openapi.json", ""},
			{"GET", "/metrics", ""},
			{"GET", "/", ""},
			{"GET", "/app.js", ""},
			{"PUT", "/v1/jobs", read},
		} {
			req, _ := http.NewRequest(c.method, a+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s (%d): X-Content-Type-Options %q, want nosniff", c.method, c.path, resp.StatusCode, got)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s %s (%d): Content-Security-Policy %q, want frame-ancestors 'none'", c.method, c.path, resp.StatusCode, csp)
			}
		}
	})
}
