package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/replayctl/replayctl/engine"
)

// h2Exchange is one exchange of a capture fixture's golden file, as the
// recording server received it.
type h2Exchange struct {
	Method, Path, Authority string
	Header                  map[string]string
	Body                    []byte
}

func h2Golden(t *testing.T, name string) map[string]h2Exchange {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "capture", "testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []h2Exchange
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]h2Exchange{}
	for _, e := range list {
		out[e.Path] = e
	}
	return out
}

func fixturePcap(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "capture", "testdata", name+".pcap"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHTTP1FromH2Capture replays the requests of h2c-prior.pcap (curl
// with prior knowledge, a Go HTTP/2 client's concurrent PUTs, one with a
// 30 kB header, one with a request trailer) with protocol http1: each
// arrives as HTTP/1.1 — start line, one Host, framing by Content-Length or,
// with the trailer, chunked with the trailer after the last chunk, nothing
// of HTTP/2 or of the stored form — at a raw TCP target that keeps the
// bytes, and at Go's net/http server, which reads method, path, headers,
// body and trailer as the recording server did.
func TestHTTP1FromH2Capture(t *testing.T) {
	t.Parallel()
	golden := h2Golden(t, "h2c-prior")
	scenarioFor := func(url string, preserveHost bool) string {
		return fmt.Sprintf(`version: 1
name: h2-to-http1
jobs:
  replay:
    source: {pcap: {path: %s, ports: [28471]}}
    speed: max
    sink: {http: {url: %q, workers: 2, protocol: http1, preserve-host: %v}}
    report: {json: report.json}
`, fixturePcap(t, "h2c-prior"), url, preserveHost)
	}

	t.Run("raw bytes", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		dir := t.TempDir()
		res := run(t, dir, scenarioFor(tg.URL(), false), engine.Options{})
		if res.err != nil {
			t.Fatalf("%v\n%s", res.err, res.out)
		}
		got := tg.requests()
		if len(got) != len(golden) {
			for _, g := range got {
				t.Log(g.Method, g.Path)
			}
			t.Fatalf("the target received %d requests, want %d\n%s", len(got), len(golden), res.out)
		}
		for _, g := range got {
			i := bytes.Index(g.Raw, []byte("\r\n\r\n"))
			head := string(g.Raw[:i+2])
			line, rest, _ := strings.Cut(head, "\r\n")
			want, ok := golden[g.Path]
			if !ok || line != want.Method+" "+want.Path+" HTTP/1.1" {
				t.Errorf("start line %q (not in the capture, or not HTTP/1.1)", line)
				continue
			}
			if !strings.HasPrefix(rest, "Host: "+tg.Addr()+"\r\n") || strings.Count(strings.ToLower(head), "\r\nhost:") != 1 {
				t.Errorf("%s: Host is not the first field, or not alone:\n%s", g.Path, head)
			}
			if l := strings.ToLower(head); strings.Contains(l, "replayctl") || strings.Contains(l, "http/2") || strings.Contains(l, "\r\n:") {
				t.Errorf("%s: HTTP/2 or the stored form leaks:\n%s", g.Path, head)
			}
			if !bytes.Equal(g.Body, want.Body) {
				t.Errorf("%s: body of %d bytes, want %d", g.Path, len(g.Body), len(want.Body))
			}
			chunked := strings.Contains(head, "\r\nTransfer-Encoding: chunked\r\n") // net/http takes it out of Header
			switch {
			case g.Path == "/c/2": // the stream with a request trailer
				if !chunked || !strings.Contains(head, "\r\nTrailer: x-request-trailer\r\n") || g.Header.Get("Content-Length") != "" ||
					!bytes.HasSuffix(g.Raw, []byte("\r\n0\r\nx-request-trailer: done\r\n\r\n")) {
					t.Errorf("%s: not chunked with its trailer after the last chunk:\n%q … %q", g.Path, g.Raw[:i+4], g.Raw[len(g.Raw)-60:])
				}
			case chunked:
				t.Errorf("%s: chunked without trailers:\n%s", g.Path, head)
			case len(want.Body) > 0 || want.Method == "POST" || want.Method == "PUT":
				if cl := g.Header.Values("Content-Length"); len(cl) != 1 || cl[0] != fmt.Sprint(len(want.Body)) {
					t.Errorf("%s: Content-Length %v, want [%d]", g.Path, cl, len(want.Body))
				}
			default:
				if cl := g.Header.Values("Content-Length"); len(cl) != 0 {
					t.Errorf("%s: Content-Length %v for a GET without a body", g.Path, cl)
				}
			}
		}
		rep := readReport(t, filepath.Join(dir, "report.json"))
		if protos := keys(field(t, rep, "protocols").(map[string]any)); strings.Join(protos, ",") != "HTTP/1.x" {
			t.Errorf("report protocols %v, want HTTP/1.x", protos)
		}
	})

	t.Run("net/http", func(t *testing.T) {
		t.Parallel()
		type got struct {
			proto, method, host string
			header, trailer     http.Header
			body                []byte
		}
		var mu sync.Mutex
		seen := map[string]got{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			seen[r.RequestURI] = got{r.Proto, r.Method, r.Host, r.Header.Clone(), r.Trailer.Clone(), body}
			mu.Unlock()
			_, _ = io.WriteString(w, "ok")
		}))
		defer srv.Close()
		dir := t.TempDir()
		if res := run(t, dir, scenarioFor(srv.URL, true), engine.Options{}); res.err != nil {
			t.Fatalf("%v\n%s", res.err, res.out)
		}
		rep := readReport(t, filepath.Join(dir, "report.json"))
		if n := number(t, rep, "status", "200"); n != float64(len(golden)) {
			t.Errorf("%v answers 200, want %d (the server refused some): %v", n, len(golden), field(t, rep, "status"))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != len(golden) {
			t.Fatalf("the server read %d requests, want %d", len(seen), len(golden))
		}
		for path, want := range golden {
			g, ok := seen[path]
			if !ok {
				t.Errorf("%s: not received", path)
				continue
			}
			if g.proto != "HTTP/1.1" || g.method != want.Method || g.host != want.Authority || !bytes.Equal(g.body, want.Body) {
				t.Errorf("%s: %s %s host %q body %d bytes; want %s %s host %q body %d bytes",
					path, g.proto, g.method, g.host, len(g.body), "HTTP/1.1", want.Method, want.Authority, len(want.Body))
			}
			for k, v := range want.Header {
				if got := strings.Join(g.header.Values(k), ","); got != v {
					t.Errorf("%s: header %s %.40q, want %.40q", path, k, got, v)
				}
			}
			wantTrailer := http.Header{}
			if path == "/c/2" {
				wantTrailer.Set("X-Request-Trailer", "done")
			}
			if fmt.Sprint(g.trailer) != fmt.Sprint(wantTrailer) && !(len(g.trailer) == 0 && len(wantTrailer) == 0) {
				t.Errorf("%s: trailer %v, want %v", path, g.trailer, wantTrailer)
			}
		}
	})
}

// TestHTTP1RefusesGRPC: with protocol http1, the gRPC calls of grpc.pcap
// are not sent (gRPC needs HTTP/2): counted, told in the summary and the
// report, and the run passes; in a recording that also holds other
// requests from HTTP/2 and HTTP/1.1, those go (compare on: the refused
// requests' recorded answers are let go, nothing waits for them).
func TestHTTP1RefusesGRPC(t *testing.T) {
	t.Parallel()
	t.Run("grpc.pcap", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		dir := t.TempDir()
		res := run(t, dir, fmt.Sprintf(`version: 1
name: grpc-http1
jobs:
  replay:
    source: {pcap: {path: %s, ports: [28473]}}
    speed: max
    sink: {http: {url: %q, protocol: http1}}
    report: {json: report.json}
`, fixturePcap(t, "grpc"), tg.URL()), engine.Options{})
		if res.err != nil {
			t.Fatalf("%v\n%s", res.err, res.out)
		}
		if n := tg.count(); n != 0 {
			t.Errorf("the target received %d gRPC requests over HTTP/1.x", n)
		}
		want := 10 // grpc.golden.json: 8 Check and 2 Watch calls
		if !strings.Contains(res.out, fmt.Sprintf("not sent  %d gRPC request(s) not sent: protocol http1 cannot carry gRPC", want)) {
			t.Errorf("the summary does not tell the gRPC requests not sent:\n%s", res.out)
		}
		rep := readReport(t, filepath.Join(dir, "report.json"))
		if n := number(t, rep, "counters", "not-sent-grpc-over-http1"); n != float64(want) {
			t.Errorf("not-sent-grpc-over-http1 %v, want %d", n, want)
		}
		if ns, _ := field(t, rep, "not_sent").([]any); len(ns) != 1 {
			t.Errorf("report not_sent %v", ns)
		}
	})
	t.Run("mixed, with compare", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		dir := t.TempDir()
		grpc := "POST /p.S/M HTTP/2.0\r\nHost: a\r\ncontent-type: application/grpc\r\nte: trailers\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00"
		writeGor(t, dir, "rec.gor", []req{
			{0, grpc},
			{1, "GET /h2 HTTP/2.0\r\nHost: a\r\naccept: */*\r\n\r\n"},
			{2, get("/h1")},
			{3, grpc},
		})
		res := run(t, dir, fmt.Sprintf(`version: 1
name: grpc-http1
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    sink: {http: {url: %q, protocol: http1}}
    compare: {status: true}
    report: {json: report.json}
`, tg.URL()), engine.Options{})
		if res.err != nil {
			t.Fatalf("%v\n%s", res.err, res.out)
		}
		var paths []string
		for _, g := range tg.requests() {
			paths = append(paths, g.Method+" "+g.Path+" "+g.Header.Get("Accept"))
		}
		if strings.Join(paths, ",") != "GET /h2 */*,GET /h1 " && strings.Join(paths, ",") != "GET /h1 ,GET /h2 */*" {
			t.Errorf("the target received %q, want GET /h2 and GET /h1", paths)
		}
		rep := readReport(t, filepath.Join(dir, "report.json"))
		if n := number(t, rep, "counters", "not-sent-grpc-over-http1"); n != 2 {
			t.Errorf("not-sent-grpc-over-http1 %v, want 2", n)
		}
	})
}
