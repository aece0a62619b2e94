package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// app serves the same API as production (candidate false) or as a new
// version with known changes (candidate true). Every answer carries a
// timestamp that changes every time, in the body and in a header.
func app(candidate bool) http.Handler {
	var seq atomic.Int64
	stamp := func() string { return fmt.Sprintf("%d-%d", time.Now().UnixNano(), seq.Add(1)) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u := map[string]any{
			"id": r.PathValue("id"), "name": "user " + r.PathValue("id"), "plan": "free",
			"generatedAt": stamp(),
			"items":       []any{map[string]any{"sku": "a", "at": stamp()}, map[string]any{"sku": "b", "at": stamp()}},
		}
		if candidate {
			u["plan"] = "pro" // a changed field
			u["beta"] = true  // a new field
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-At", stamp())
		json.NewEncoder(w).Encode(u)
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-At", stamp())
		fmt.Fprintf(w, `{"order":%q,"total":12.5,"at":%q}`, r.PathValue("id"), stamp())
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Served-At", stamp())
		if candidate {
			w.WriteHeader(http.StatusServiceUnavailable) // a status change
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// exchange sends a raw request and returns the raw response bytes.
func exchange(t *testing.T, addr, req string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func TestNoiseAgainstLoopbackTargets(t *testing.T) {
	production := httptest.NewServer(app(false))
	defer production.Close()
	reference := httptest.NewServer(app(false))
	defer reference.Close()
	candidate := httptest.NewServer(app(true))
	defer candidate.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	type call struct{ method, path string }
	var calls []call
	for i := range 5 {
		calls = append(calls, call{"GET", fmt.Sprintf("/users/%d", 100+i)},
			call{"GET", fmt.Sprintf("/orders/%d?v=%d", 7+i, i)}, call{"GET", "/health"})
	}
	// Record: the production answers.
	type recording struct {
		call
		req, resp []byte
	}
	var recs []recording
	for _, c := range calls {
		req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: shop.local\r\nConnection: close\r\n\r\n", c.method, c.path)
		recs = append(recs, recording{c, []byte(req), exchange(t, addr(production), req)})
	}

	cmp, err := New(Config{Status: true, Body: true, Headers: []string{"Content-Type", "X-Served-At"}})
	if err != nil {
		t.Fatal(err)
	}
	nf := NewNoiseFilter()
	agg := NewAggregator()
	regressions := map[string][]string{} // endpoint → sorted unique "kind path"
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rec := range recs {
		wg.Go(func() {
			ep := Endpoint(rec.method, rec.path)
			ref := cmp.Compare(rec.resp, exchange(t, addr(reference), string(rec.req)))
			replayed := exchange(t, addr(candidate), string(rec.req))
			res := cmp.Compare(rec.resp, replayed)
			nf.Learn(ep, ref)
			regs, noise := nf.Classify(ep, res)
			agg.Add(ep, rec.req, rec.resp, replayed, res, noise)
			mu.Lock()
			defer mu.Unlock()
			for _, d := range regs {
				k := d.Kind + " " + FoldPath(d.Path)
				if !slices.Contains(regressions[ep], k) {
					regressions[ep] = append(regressions[ep], k)
				}
			}
		})
	}
	wg.Wait()
	for _, v := range regressions {
		slices.Sort(v)
	}
	want := map[string][]string{
		"GET /users/{id}": {"body-field-added $.beta", "body-field-changed $.plan"},
		"GET /health":     {"status status"},
	}
	if fmt.Sprint(regressions) != fmt.Sprint(want) {
		t.Fatalf("regressions %q\nwant %q", regressions, want)
	}
	for ep, fields := range map[string][]string{
		"GET /users/{id}":  {"$.generatedAt", "$.items[*].at", "header:x-served-at"},
		"GET /orders/{id}": {"$.at", "header:x-served-at"},
		"GET /health":      {"header:x-served-at"},
	} {
		if got := nf.Fields(ep); !slices.Equal(got, fields) {
			t.Errorf("noise fields of %s = %q, want %q", ep, got, fields)
		}
	}

	s := agg.Summary()
	if s.Compared != 15 || s.Mismatches != 10 || s.Rate != 10.0/15 {
		t.Fatalf("summary totals %d %d %v", s.Compared, s.Mismatches, s.Rate)
	}
	byName := map[string]EndpointSummary{}
	for _, e := range s.Endpoints {
		byName[e.Endpoint] = e
	}
	users := byName["GET /users/{id}"]
	if users.Requests != 5 || users.Mismatches != 5 || len(users.Examples) != MaxExamples ||
		fmt.Sprint(users.TopFields) != "[{$.beta 5} {$.plan 5}]" {
		t.Fatalf("users summary %+v", users)
	}
	ex := users.Examples[0]
	if !strings.HasPrefix(ex.Request, "GET /users/") || ex.RecordedStatus != 200 ||
		!strings.Contains(ex.ReplayedBody, `"beta":true`) || strings.Contains(ex.RecordedBody, "beta") {
		t.Fatalf("example %+v", ex)
	}
	if o := byName["GET /orders/{id}"]; o.Mismatches != 0 || o.NoiseDiffs == 0 || len(o.Examples) != 0 {
		t.Fatalf("orders summary %+v", o)
	}
	if h := byName["GET /health"]; h.Mismatches != 5 || fmt.Sprint(h.TopFields) != "[{status 5}]" ||
		h.Examples[0].ReplayedStatus != 503 {
		t.Fatalf("health summary %+v", h)
	}
	if !slices.Contains(s.NoiseFields, "GET /users/{id} $.items[*].at") {
		t.Fatalf("noise fields %q", s.NoiseFields)
	}
}

func TestSummaryJSON(t *testing.T) {
	agg := NewAggregator()
	c := mustNew(t, DefaultConfig())
	rec, rep := resp(200, "", `{"a":1}`), resp(200, "", `{"a":2}`)
	agg.Add("GET /x", []byte("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"), rec, rep, c.Compare(rec, rep), nil)
	agg.Add("GET /x", nil, rec, rec, c.Compare(rec, rec), nil)
	b, err := json.Marshal(agg.Summary())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"compared":2`, `"mismatches":1`, `"mismatch_rate":0.5`, `"noise_fields":[]`,
		`"endpoint":"GET /x"`, `"top_fields":[{"field":"$.a","count":1}]`, `"request":"GET /x HTTP/1.1\r\nHost: h"`,
		`"recorded_body":"{\"a\":1}"`, `"replayed_body":"{\"a\":2}"`, `"recorded_status":200`,
		`"diffs":[{"kind":"body-field-changed","path":"$.a","recorded":"1","replayed":"2"}]`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("summary JSON lacks %s:\n%s", key, b)
		}
	}
}

func TestAggregatorBounds(t *testing.T) {
	agg := NewAggregator()
	c := mustNew(t, DefaultConfig())
	big := strings.Repeat("x", MaxExampleBytes+10)
	rec, rep := resp(200, "", big+"a"), resp(200, "", big+"b\xff")
	for i := range MaxEndpoints + 5 {
		agg.Add(fmt.Sprintf("GET /e%d", i), []byte(big), rec, rep, c.Compare(rec, rep), nil)
	}
	s := agg.Summary()
	if len(s.Endpoints) != MaxEndpoints+1 || s.Mismatches != MaxEndpoints+5 {
		t.Fatalf("endpoints %d mismatches %d", len(s.Endpoints), s.Mismatches)
	}
	for _, e := range s.Endpoints {
		if e.Endpoint == OtherEndpoint && e.Requests != 5 {
			t.Fatalf("other endpoints %+v", e.Requests)
		}
	}
	ex := s.Endpoints[0].Examples[0]
	if !ex.Truncated || len(ex.RecordedBody) != MaxExampleBytes || len(ex.Request) != MaxExampleBytes {
		t.Fatalf("example not truncated: %d %d", len(ex.RecordedBody), len(ex.Request))
	}
}

func TestNoiseRules(t *testing.T) {
	nf := NewNoiseFilter()
	nf.Learn("E", Result{Diffs: []Diff{
		{Kind: KindFieldAdded, Path: "$.meta"},
		{Kind: KindFieldChanged, Path: "$.list[4].ts"},
		{Kind: KindHeader, Path: "Date"},
		{Kind: KindUnparsable, Path: "replayed"},
	}})
	regs, noise := nf.Classify("E", Result{Diffs: []Diff{
		{Kind: KindFieldChanged, Path: "$.meta.x"},     // below a noisy path
		{Kind: KindFieldRemoved, Path: "$.list[0].ts"}, // index folded
		{Kind: KindFieldChanged, Path: "$.list[0]"},    // above: regression
		{Kind: KindFieldChanged, Path: "$.metadata"},   // prefix of a name only
		{Kind: KindHeader, Path: "DATE"},               // case-insensitive
		{Kind: KindUnparsable, Path: "replayed"},       // never noise
		{Kind: KindStatus, Path: "status"},             // not learned
	}})
	if len(noise) != 3 || len(regs) != 4 {
		t.Fatalf("regressions %+v\nnoise %+v", regs, noise)
	}
	if r, n := nf.Classify("other endpoint", Result{Diffs: []Diff{{Kind: KindHeader, Path: "Date"}}}); len(r) != 1 || len(n) != 0 {
		t.Fatal("noise leaked across endpoints")
	}
}
