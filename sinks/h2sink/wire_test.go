package h2sink

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// TestOptionsAsterisk: "OPTIONS * HTTP/1.1" goes out with :path "*"
// (RFC 9113 §8.3.1), not "/*", which names another resource.
func TestOptionsAsterisk(t *testing.T) {
	rec, u := h2cServer(t)
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}}},
		httpsink.Request{ID: "h1", Raw: []byte("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")},
		httpsink.Request{ID: "h2", Raw: render(t, fields(":method", "OPTIONS", ":path", "*", ":authority", "x"), "", nil)})
	if st["ok"] != 2 || len(rec.reqs) != 2 {
		t.Fatalf("stats %v, received %+v", st, rec.reqs)
	}
	for _, s := range rec.reqs {
		if s.method != "OPTIONS" || s.uri != "*" {
			t.Errorf("received %s %q, want OPTIONS *", s.method, s.uri)
		}
	}
}

// TestChunkedTrailers: an HTTP/1.1 chunked request's trailers go out as
// the stream's trailers (a HEADERS frame with END_STREAM after the DATA),
// declared once, and without the fields a trailer may not carry.
func TestChunkedTrailers(t *testing.T) {
	rec, u := h2cServer(t)
	raw := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: tv\r\nContent-Length: 11\r\nConnection: close\r\nX-U: 2\r\n\r\n"
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}}},
		httpsink.Request{ID: "1", Raw: []byte(raw)},
		httpsink.Request{ID: "2", Raw: []byte("POST /empty HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: only\r\n\r\n")})
	if st["ok"] != 2 || len(rec.reqs) != 2 {
		t.Fatalf("stats %v, received %+v", st, rec.reqs)
	}
	for _, s := range rec.reqs {
		switch s.uri {
		case "/up":
			if s.body != "hello world" || s.trailer.Get("X-T") != "tv" || s.trailer.Get("X-U") != "2" || len(s.trailer) != 2 {
				t.Errorf("/up: body %q, trailers %v", s.body, s.trailer)
			}
		case "/empty":
			if s.body != "" || s.trailer.Get("X-T") != "only" || len(s.trailer) != 1 {
				t.Errorf("/empty: body %q, trailers %v", s.body, s.trailer)
			}
		}
	}
}

// TestChunkedTrailersOnTheWire reads the frames a chunked request with a
// trailer becomes: HEADERS (one trailer field declaring X-T), DATA, then
// HEADERS with the trailer and END_STREAM.
func TestChunkedTrailersOnTheWire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type frame struct {
		typ    http2.FrameType
		end    bool
		fields map[string][]string
	}
	got := make(chan []frame, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		_ = fr.WriteSettings()
		var frames []frame
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				got <- frames
				return
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				m := map[string][]string{}
				for _, hf := range f.Fields {
					m[hf.Name] = append(m[hf.Name], hf.Value)
				}
				frames = append(frames, frame{http2.FrameHeaders, f.StreamEnded(), m})
				if f.StreamEnded() {
					_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: []byte{0x88}, EndStream: true, EndHeaders: true}) // :status 200
					got <- frames
					return
				}
			case *http2.DataFrame:
				frames = append(frames, frame{typ: http2.FrameData, end: f.StreamEnded()})
				if f.StreamEnded() {
					_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: []byte{0x88}, EndStream: true, EndHeaders: true})
					got <- frames
					return
				}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			}
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}},
		httpsink.Request{ID: "1", Raw: []byte("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nhi\r\n0\r\nX-T: tv\r\n\r\n")})
	frames := <-got
	if st["ok"] != 1 {
		t.Fatalf("stats %v, frames %+v", st, frames)
	}
	var data bool
	for _, f := range frames {
		data = data || f.typ == http2.FrameData && !f.end
	}
	if len(frames) < 3 || frames[0].typ != http2.FrameHeaders || frames[0].end || len(frames[0].fields["trailer"]) != 1 ||
		!strings.EqualFold(frames[0].fields["trailer"][0], "x-t") || !data {
		t.Fatalf("frames %+v", frames)
	}
	last := frames[len(frames)-1]
	if last.typ != http2.FrameHeaders || !last.end || len(last.fields) != 1 || last.fields["x-t"][0] != "tv" {
		t.Fatalf("last frame %+v, want trailers x-t: tv with END_STREAM", last)
	}
}

// TestBytesOutOnlyWritten: requests that never reach a connection (the
// port is closed) count no bytes out; requests sent count theirs.
func TestBytesOutOnlyWritten(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close()
	raw := []byte("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	var reqs []httpsink.Request
	for range 8 {
		reqs = append(reqs, httpsink.Request{ID: "r", Raw: raw})
	}
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: closed}}, Timeout: 2 * time.Second}}, reqs...)
	if st["errors-connect-refused"] != 8 || st["bytes-out"] != 0 {
		t.Fatalf("closed port: stats %v", st)
	}
	for _, r := range res {
		if r.BytesOut != 0 {
			t.Fatalf("closed port: result counts %d bytes out", r.BytesOut)
		}
	}

	_, u := h2cServer(t)
	_, st = run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}}}, reqs...)
	if st["ok"] != 8 || st["bytes-out"] != int64(8*len(raw)) {
		t.Fatalf("open port: stats %v, want bytes-out %d", st, 8*len(raw))
	}
}

// TestHTTP1Answer: a target that answers the h2c preface in HTTP/1.1 is a
// bad-response that says so, and is logged once, whether it keeps the
// connection open or closes it, or its answer comes in pieces; so is Go's
// HTTP/1.x-only server.
func TestHTTP1Answer(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		keepOpen     bool
		split        int
	}{
		{"400 then close", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 0},
		{"200 kept open", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, 0},
		{"status line in two reads", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", true, 4},
		{"Go HTTP/1.x server", "", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u *url.URL
			if tc.answer == "" {
				srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				defer srv.Close()
				u, _ = url.Parse(srv.URL)
			} else {
				u = rawServer(t, tc.answer, tc.split, tc.keepOpen)
			}
			var logs testutil.SyncBuffer
			start := time.Now()
			res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 3 * time.Second},
				Logger: slog.New(slog.NewTextHandler(&logs, nil))},
				httpsink.Request{ID: "1", Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
				httpsink.Request{ID: "2", Raw: []byte("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")})
			if st["errors-"+stats.ClassBadResponse] != 2 || st["errors"] != 2 || len(res) != 2 {
				t.Fatalf("stats %v", st)
			}
			for _, r := range res {
				if r.ErrClass != stats.ClassBadResponse || r.Err == nil || !strings.Contains(r.Err.Error(), "HTTP/1.1") ||
					!strings.Contains(r.Err.Error(), "not HTTP/2") || !errors.Is(r.Err, ErrHTTP1Answer) {
					t.Errorf("result: class %q, err %v", r.ErrClass, r.Err)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: the HTTP/1.x answer should fail the stream at once, not at the timeout", d)
			}
			if n := strings.Count(logs.String(), "answered in HTTP/1.x"); n != 1 {
				t.Errorf("logged %d times, want once: %s", n, logs.String())
			}
		})
	}
}

// rawServer answers every connection's first line with answer (in two
// writes when split > 0), then closes it or reads until the client does.
func rawServer(t *testing.T, answer string, split int, keepOpen bool) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := br.ReadString('\n'); err != nil { // "PRI * HTTP/2.0"
					return
				}
				if split > 0 {
					_, _ = io.WriteString(c, answer[:split])
					time.Sleep(50 * time.Millisecond)
					_, _ = io.WriteString(c, answer[split:])
				} else {
					_, _ = io.WriteString(c, answer)
				}
				if keepOpen {
					_, _ = io.Copy(io.Discard, br)
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u
}

// TestNothingSentAfterTheAnswer: a server that answers a request whole
// (END_STREAM) right after its HEADERS, while the client still sends the
// request, gets no more frame on that stream once the client read the
// answer: not its trailers (they came after the answer before, as the
// client did not look whether the stream had ended after the body), only
// a RST_STREAM NO_ERROR (RFC 9113 §8.1). The test's hook holds the
// trailers until the answer is in. The answer stands.
func TestNothingSentAfterTheAnswer(t *testing.T) {
	var mu sync.Mutex
	var got []string
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		mu.Lock()
		defer mu.Unlock()
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			got = append(got, fmt.Sprintf("HEADERS %d", f.StreamID))
			if f.PseudoValue("path") != "" { // not trailers
				_ = c.headers(f.StreamID, true, ":status", "200")
			}
		case *http2.DataFrame:
			got = append(got, fmt.Sprintf("DATA %d", f.StreamID))
		case *http2.RSTStreamFrame:
			got = append(got, fmt.Sprintf("RST_STREAM %d %v", f.StreamID, f.ErrCode))
		}
		return true
	})
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := newClientConn(newBatchConn(nc), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.close()
	cc.beforeTrailers = func(st *stream) { <-st.done }
	<-cc.ready
	post := &outRequest{pr: &h2text.Request{Method: "POST", Path: "/early", Body: []byte("hello"),
		Trailer: []h2text.Field{{Name: "x-t", Value: "1"}}}, authority: "x", scheme: "http"}
	get := &outRequest{pr: &h2text.Request{Method: "GET", Path: "/next"}, authority: "x", scheme: "http"}
	for _, req := range []*outRequest{post, get} {
		cc.reserveNew()
		resp, _, err := cc.roundTrip(t.Context(), req)
		cc.release()
		if err != nil || resp.status != 200 {
			t.Fatalf("%s: %+v, %v", req.pr.Path, resp, err)
		}
	}
	// The frames of stream 1 are all in before stream 3's HEADERS, but
	// for the RST_STREAM, written by another goroutine.
	want := "RST_STREAM 1 NO_ERROR"
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		done := slices.Contains(got, "HEADERS 3") && slices.Contains(got, want)
		frames := slices.Clone(got)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			if n := strings.Count(strings.Join(frames, ","), "HEADERS 1"); n != 1 || !done {
				t.Fatalf("the server received %q: want one HEADERS on stream 1 (no trailers after the answer) and %s", frames, want)
			}
			break
		}
	}
}
