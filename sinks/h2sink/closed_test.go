package h2sink

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// TestFrameOnIdleStream: a frame on a stream the client never opened (an
// odd ID past its last one, or an even one: push is off) is a connection
// error PROTOCOL_ERROR (RFC 9113 §5.1, §5.1.1, §6.4): GOAWAY
// PROTOCOL_ERROR, and the connection's streams fail (reset), saying why.
// Before, DATA and HEADERS there were ignored, and so were RST_STREAM and
// WINDOW_UPDATE.
func TestFrameOnIdleStream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		what  string
		write func(c *frameConn, id uint32) // id: a stream never opened
		even  bool
	}{
		{"data", "DATA", func(c *frameConn, id uint32) { _ = c.fr.WriteData(id, false, []byte("unasked")) }, false},
		{"data-even", "DATA", func(c *frameConn, id uint32) { _ = c.fr.WriteData(id, true, []byte("unasked")) }, true},
		{"headers", "HEADERS", func(c *frameConn, id uint32) { _ = c.headers(id, true, ":status", "200") }, false},
		{"rst-stream", "RST_STREAM", func(c *frameConn, id uint32) { _ = c.fr.WriteRSTStream(id, http2.ErrCodeCancel) }, false},
		{"window-update", "WINDOW_UPDATE", func(c *frameConn, id uint32) { _ = c.fr.WriteWindowUpdate(id, 1000) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, st, wait := misbehaving(t, func(c *frameConn, streams map[string]uint32) {
				id := max(streams["/a"], streams["/b"]) + 2
				if tc.even {
					id = 2
				}
				tc.write(c, id)
				_ = c.headers(streams["/a"], true, ":status", "200") // after the error: not read
			}, "/a", "/b")
			if st["errors-"+stats.ClassReset] != 2 {
				t.Fatalf("stats %v", st)
			}
			for _, r := range res {
				if !strings.Contains(r.Err.Error(), "PROTOCOL_ERROR") || !strings.Contains(r.Err.Error(), tc.what+" on stream") || !strings.Contains(r.Err.Error(), "never opened") {
					t.Errorf("%s: %v, want the protocol error", r.ID, r.Err)
				}
			}
			wait("GOAWAY PROTOCOL_ERROR")
		})
	}
}

// TestFrameAfterEndStream: frames on a stream the server closed with
// END_STREAM: WINDOW_UPDATE and RST_STREAM are ignored (RFC 9113 §5.1);
// DATA is a stream error STREAM_CLOSED (§6.1): the client sends
// RST_STREAM STREAM_CLOSED once, ignores the frames after it (a HEADERS,
// more DATA), and the connection goes on (the other stream is answered).
// Before, every one was ignored.
func TestFrameAfterEndStream(t *testing.T) {
	res, st, wait, sent := misbehave(t, func(c *frameConn, streams map[string]uint32) {
		a := streams["/a"]
		_ = c.headers(a, false, ":status", "200")
		_ = c.fr.WriteData(a, true, []byte("hello"))
		_ = c.fr.WriteWindowUpdate(a, 100)
		_ = c.fr.WriteRSTStream(a, http2.ErrCodeNo)
		_ = c.fr.WriteData(a, false, []byte("more"))
		_ = c.fr.WriteData(a, false, []byte("and more"))
		_ = c.headers(a, true, "x-late", "1")
		_ = c.headers(streams["/b"], true, ":status", "204")
	}, "/a", "/b")
	if st["ok"] != 2 || st["connections"] != 1 {
		t.Fatalf("stats %v", st)
	}
	resp, err := httpraw.ParseResponse(res["/a"].Response)
	if err != nil || string(resp.Body()) != "hello" {
		t.Fatalf("/a: %q (%v), want the body hello", res["/a"].Response, err)
	}
	wait("GOAWAY NO_ERROR") // the Sender's Close: every frame before it came
	got := sent()
	var others []string
	for _, f := range got {
		if f != "GOAWAY NO_ERROR" {
			others = append(others, f)
		}
	}
	if want := []string{"RST_STREAM /a STREAM_CLOSED"}; !slices.Equal(others, want) {
		t.Errorf("the client sent %q, want %q and GOAWAY NO_ERROR", got, want)
	}
}

// TestIgnoredDataCountsInConnectionWindow: DATA the server sent on a
// stream before it got the client's RST_STREAM (here a malformed answer's
// reset) is ignored, no RST_STREAM STREAM_CLOSED for it (RFC 9113 §5.1),
// but counts against the connection's window and is given back: the
// server here keeps to its window strictly, and after 48 KiB ignored of a
// 64 KiB window, the next stream's 64 KiB answer comes whole (it stalled,
// and timed out, were the ignored bytes lost to the window).
func TestIgnoredDataCountsInConnectionWindow(t *testing.T) {
	lowerWindows(t, streamWindow, 65535)
	frame := bytes.Repeat([]byte("x"), 16384)
	var (
		wmu     sync.Mutex // the server's writes
		mu      sync.Mutex
		window  = 65535 // the server's connection send window
		more    = sync.NewCond(&mu)
		paths   = map[uint32]string{}
		resets  []string
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
	// take waits for n bytes of connection window.
	take := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		for window < n {
			select {
			case <-done:
				return false
			default:
			}
			more.Wait()
		}
		window -= n
		return true
	}
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			id, p := f.StreamID, f.PseudoValue("path")
			mu.Lock()
			paths[id] = p
			mu.Unlock()
			answers.Go(func() {
				wmu.Lock()
				defer wmu.Unlock()
				if p == "/bad" {
					_ = c.headers(id, false, ":status", "abc")
					for range 3 { // in flight when the RST_STREAM comes
						if take(len(frame)) {
							_ = c.fr.WriteData(id, false, frame)
						}
					}
					return
				}
				_ = c.headers(id, false, ":status", "200")
				for i := range 4 {
					if take(len(frame)) {
						_ = c.fr.WriteData(id, i == 3, frame)
					}
				}
			})
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				mu.Lock()
				window += int(f.Increment)
				more.Broadcast()
				mu.Unlock()
			}
		case *http2.RSTStreamFrame:
			mu.Lock()
			resets = append(resets, fmt.Sprintf("%s %v", paths[f.StreamID], f.ErrCode))
			mu.Unlock()
		}
		return true
	})
	get := func(p string) httpsink.Request {
		return httpsink.Request{ID: p, Raw: render(t, []h2text.Field{{Name: ":method", Value: "GET"}, {Name: ":path", Value: p}, {Name: ":authority", Value: "x"}}, "", nil)}
	}
	// One worker: /good goes once /bad failed, on the same connection.
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 5 * time.Second, KeepLimit: 1 << 20}},
		get("/bad"), get("/good"))
	if st["ok"] != 1 || st["errors-"+stats.ClassBadResponse] != 1 || st["connections"] != 1 {
		t.Fatalf("stats %v, results %+v", st, res)
	}
	for _, r := range res {
		if r.ID != "/good" {
			continue
		}
		resp, err := httpraw.ParseResponse(r.Response)
		if err != nil || len(resp.Body()) != 4*len(frame) {
			t.Fatalf("/good: %v, want its body of %d bytes", err, 4*len(frame))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(resets, []string{"/bad PROTOCOL_ERROR"}) {
		t.Errorf("the client reset %q, want /bad PROTOCOL_ERROR only", resets)
	}
}
