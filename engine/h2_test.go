package engine_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/replayctl/replayctl/engine"
)

// TestProtocolAuto replays a recording holding HTTP/1.1 requests and
// requests captured from HTTP/2 (h2text's form) to a server speaking both:
// with protocol auto each goes over the protocol it was captured on, a
// filter on req.proto selects by protocol, and the report breaks the
// results down by protocol. protocol h2 sends all over HTTP/2.
func TestProtocolAuto(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]string{} // path → proto as received
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.URL.Path] = r.Proto
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}), &http2.Server{}))
	defer srv.Close()
	var reqs []req
	for i := range 6 {
		raw := get(fmt.Sprintf("/h1/%d", i))
		if i%2 == 1 {
			raw = fmt.Sprintf("GET /h2/%d HTTP/2.0\r\nHost: shop.example\r\naccept: */*\r\n\r\n", i)
		}
		reqs = append(reqs, req{at: time.Duration(i) * time.Millisecond, raw: raw})
	}
	for _, tc := range []struct {
		protocol, filter string
		want             map[string]string
		protos           []string
	}{
		{"auto", "", map[string]string{"/h1/0": "HTTP/1.1", "/h2/1": "HTTP/2.0", "/h1/2": "HTTP/1.1", "/h2/3": "HTTP/2.0", "/h1/4": "HTTP/1.1", "/h2/5": "HTTP/2.0"}, []string{"HTTP/1.x", "HTTP/2.0"}},
		{"auto", `req.proto == "HTTP/2.0"`, map[string]string{"/h2/1": "HTTP/2.0", "/h2/3": "HTTP/2.0", "/h2/5": "HTTP/2.0"}, []string{"HTTP/2.0"}},
		{"h2", "", map[string]string{"/h1/0": "HTTP/2.0", "/h2/1": "HTTP/2.0", "/h1/2": "HTTP/2.0", "/h2/3": "HTTP/2.0", "/h1/4": "HTTP/2.0", "/h2/5": "HTTP/2.0"}, []string{"HTTP/2.0"}},
	} {
		mu.Lock()
		clear(got)
		mu.Unlock()
		dir := t.TempDir()
		writeGor(t, dir, "rec.gor", reqs)
		filter := ""
		if tc.filter != "" {
			filter = fmt.Sprintf("    filter: '%s'\n", tc.filter)
		}
		yaml := fmt.Sprintf(`version: 1
name: protocols
jobs:
  replay:
    source: {gor: {path: rec.gor}}
%s    speed: max
    sink: {http: {url: %q, workers: 2, protocol: %s}}
    report: {json: report.json}
`, filter, srv.URL, tc.protocol)
		res := run(t, dir, yaml, engine.Options{})
		if res.err != nil {
			t.Fatalf("%s: %v\n%s", tc.protocol, res.err, res.out)
		}
		mu.Lock()
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("protocol %s filter %q: the server received %v, want %v", tc.protocol, tc.filter, got, tc.want)
		}
		mu.Unlock()
		rep := readReport(t, filepath.Join(dir, "report.json"))
		protos, _ := rep["protocols"].(map[string]any)
		if strings.Join(keys(protos), ",") != strings.Join(tc.protos, ",") {
			t.Errorf("protocol %s: report protocols %v, want %v", tc.protocol, keys(protos), tc.protos)
		}
	}
}
