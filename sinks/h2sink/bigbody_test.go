package h2sink

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/sinks/httpsink"
)

// TestLargeAnswerNotHeld: the sink keeps of an answer's content only what
// its result keeps (KeepLimit bytes of the rendering, none without
// KeepResponse) and counts the rest: a 64 MiB answer is not held in
// memory, its bytes in are its whole length, and a kept response is cut
// at KeepLimit and marked truncated, its Content-Length the whole one.
func TestLargeAnswerNotHeld(t *testing.T) {
	const size = 64 << 20
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 'a' + byte(i%26)
	}
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), &http2.Server{}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	req := httpsink.Request{ID: "big", Raw: []byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")}

	for _, tc := range []struct {
		name string
		keep bool
	}{{"discarded", false}, {"kept", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu  sync.Mutex
				res []httpsink.Result
			)
			cfg := Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1,
				KeepResponse: tc.keep, KeepLimit: 4096,
				OnResult: func(r httpsink.Result) { mu.Lock(); res = append(res, r); mu.Unlock() }}}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if err := s.Send(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			if len(res) != 1 || res[0].Err != nil || res[0].Status != 200 {
				t.Fatalf("results %+v", res)
			}
			r := res[0]
			// The server's own allocations and the connection's buffers are
			// a few MiB; holding the content was 64 MiB and more (append
			// doubling).
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
				t.Errorf("the answer of %d MiB allocated %d MiB: its content was held", size>>20, alloc>>20)
			}
			if r.BytesIn < size || r.BytesIn > size+512 {
				t.Errorf("BytesIn = %d, want the whole answer (%d and its head)", r.BytesIn, size)
			}
			if !tc.keep {
				if r.Response != nil || r.ResponseTruncated {
					t.Errorf("without KeepResponse: Response of %d bytes, truncated %v", len(r.Response), r.ResponseTruncated)
				}
				return
			}
			if len(r.Response) != 4096 || !r.ResponseTruncated {
				t.Fatalf("kept %d bytes (truncated %v), want 4096, truncated", len(r.Response), r.ResponseTruncated)
			}
			resp, err := httpraw.ParseResponseHead(r.Response)
			if err != nil {
				t.Fatalf("kept response %q: %v", r.Response[:200], err)
			}
			if cl, _ := resp.Header("Content-Length"); cl != strconv.Itoa(size) {
				t.Errorf("Content-Length of the kept response = %q, want %d", cl, size)
			}
		})
	}
}
