package h2sink

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

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

// TestReadMemoryBounded: nothing of an answer is queued between the
// connection's reader and its stream: the reader takes each DATA frame as
// it comes (it keeps the prefix the result keeps, counts the rest) and
// gives the windows back for what it took, so the memory an answer takes
// is bounded by the keep limit and the reader's buffers, not by the
// windows. A server keeping strictly to the windows sends four answers of
// 16 MiB at once on one connection (64 MiB, 16 times a stream's window):
// they come whole, the windows the server holds never exceed those the
// client advertised, and the client allocates a few MiB in all.
func TestReadMemoryBounded(t *testing.T) {
	const (
		answer = 16 << 20
		frame  = 64 << 10
	)
	chunk := make([]byte, frame)
	var (
		wmu     sync.Mutex // the server's writes
		mu      sync.Mutex
		more    = sync.NewCond(&mu)
		conn    = 65535 // the server's connection send window
		streams = map[uint32]int{}
		over    []string // windows past what the client advertised
		done    = make(chan struct{})
		answers sync.WaitGroup
	)
	t.Cleanup(func() {
		mu.Lock()
		close(done)
		more.Broadcast()
		mu.Unlock()
		answers.Wait()
	})
	// take waits for n bytes of both windows of stream id.
	take := func(id uint32, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		for conn < n || streams[id] < n {
			select {
			case <-done:
				return false
			default:
			}
			more.Wait()
		}
		conn -= n
		streams[id] -= n
		return true
	}
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			id := f.StreamID
			mu.Lock()
			streams[id] = streamWindow // the client's SETTINGS_INITIAL_WINDOW_SIZE
			mu.Unlock()
			wmu.Lock()
			_ = c.headers(id, false, ":status", "200")
			wmu.Unlock()
			answers.Go(func() {
				for sent := 0; sent < answer && take(id, frame); sent += frame {
					wmu.Lock()
					_ = c.fr.WriteData(id, sent+frame == answer, chunk)
					wmu.Unlock()
				}
			})
		case *http2.WindowUpdateFrame:
			mu.Lock()
			if f.StreamID == 0 {
				if conn += int(f.Increment); conn > connWindow {
					over = append(over, fmt.Sprintf("connection %d", conn))
				}
			} else if streams[f.StreamID] += int(f.Increment); streams[f.StreamID] > streamWindow {
				over = append(over, fmt.Sprintf("stream %d: %d", f.StreamID, streams[f.StreamID]))
			}
			more.Broadcast()
			mu.Unlock()
		}
		return true
	})
	var reqs []httpsink.Request
	for i := range 4 {
		reqs = append(reqs, httpsink.Request{ID: strconv.Itoa(i), Raw: []byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 4, Timeout: 60 * time.Second, KeepLimit: 4096}}, reqs...)
	runtime.ReadMemStats(&after)
	if st["ok"] != 4 || st["connections"] != 1 {
		t.Fatalf("stats %v", st)
	}
	for _, r := range res {
		if r.BytesIn < answer || !r.ResponseTruncated || len(r.Response) != 4096 {
			t.Errorf("%s: %d bytes in, %d kept (truncated %v), want %d in, 4096 kept", r.ID, r.BytesIn, len(r.Response), r.ResponseTruncated, answer)
		}
	}
	// The reader's buffers (64 KiB frames), the results and the test's
	// server are well under 1 MiB; holding the answers was 64 MiB.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("4 answers of %d MiB: %d kB allocated in all", answer>>20, alloc>>10)
	if alloc > 16<<20 {
		t.Errorf("4 answers of %d MiB allocated %d MiB in all", answer>>20, alloc>>20)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(over) > 0 {
		t.Errorf("the client gave more window than it advertised: %v", over)
	}
}
