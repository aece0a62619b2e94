package h2sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// frameConn is one connection of a frameServer: its framer, and a header
// encoder for the answers.
type frameConn struct {
	n    int // the connection's number, from 1
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
}

// headers writes a header block of name/value pairs on stream id.
func (c *frameConn) headers(id uint32, end bool, kv ...string) error {
	c.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: end, EndHeaders: true})
}

// frameServer is an HTTP/2 server at the frame level: it reads the
// preface, sends its SETTINGS, acks the client's, and hands every other
// frame to handle; handle returning false closes the connection. It
// returns the target URL and the count of connections accepted.
func frameServer(t *testing.T, handle func(c *frameConn, f http2.Frame) bool) (*url.URL, *atomic.Int64) {
	t.Helper()
	u, accepted, _ := frameServerWith(t, nil, handle)
	return u, accepted
}

// frameServerWith is frameServer sending settings in its first SETTINGS;
// it also returns the count of connections open (accepted, and not ended
// by the client or handle).
func frameServerWith(t *testing.T, settings []http2.Setting, handle func(c *frameConn, f http2.Frame) bool) (*url.URL, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var accepted, open atomic.Int64
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(accepted.Add(1))
			open.Add(1)
			wg.Go(func() {
				defer open.Add(-1)
				defer nc.Close()
				if _, err := io.ReadFull(nc, make([]byte, len(http2.ClientPreface))); err != nil {
					return
				}
				c := &frameConn{n: n, fr: http2.NewFramer(nc, nc)}
				c.henc = hpack.NewEncoder(&c.hbuf)
				c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
				_ = c.fr.WriteSettings(settings...)
				for {
					f, err := c.fr.ReadFrame()
					if err != nil {
						return
					}
					if s, ok := f.(*http2.SettingsFrame); ok {
						if !s.IsAck() {
							_ = c.fr.WriteSettingsAck()
						}
						continue
					}
					if !handle(c, f) {
						return
					}
				}
			})
		}
	})
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u, &accepted, &open
}

// TestFieldOrderOnTheWire: the recorded header fields go out in their
// order (repeated names included, not merged), after the pseudo-header
// fields, and the answer's fields come back in the order the server sent
// them.
func TestFieldOrderOnTheWire(t *testing.T) {
	got := make(chan []hpack.HeaderField, 1)
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			got <- h.Fields
			_ = c.headers(h.StreamID, true, ":status", "200", "x-zeta", "1", "set-cookie", "b=2", "content-type", "text/plain", "set-cookie", "a=1")
		}
		return true
	})
	raw := render(t, fields(":method", "GET", ":path", "/o", ":authority", "x",
		"x-zeta", "z", "cookie", "b=2", "accept", "*/*", "cookie", "a=1", "user-agent", "app/1"), "", nil)
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}},
		httpsink.Request{ID: "1", Raw: raw})
	if st["ok"] != 1 {
		t.Fatalf("stats %v, result %+v", st, res)
	}
	var sent []string
	for _, f := range <-got {
		sent = append(sent, f.Name+"="+f.Value)
	}
	want := []string{":method=GET", ":scheme=http", ":authority=" + u.Host, ":path=/o",
		"x-zeta=z", "cookie=b=2", "accept=*/*", "cookie=a=1", "user-agent=app/1"}
	if strings.Join(sent, " ") != strings.Join(want, " ") {
		t.Errorf("fields on the wire:\n got %v\nwant %v", sent, want)
	}
	resp, err := httpraw.ParseResponse(res[0].Response)
	if err != nil {
		t.Fatal(err)
	}
	var back []string
	for _, f := range resp.Headers() {
		if f.Name != "Content-Length" { // h2text's own line
			back = append(back, f.Name+"="+f.Value)
		}
	}
	if want := "x-zeta=1 set-cookie=b=2 content-type=text/plain set-cookie=a=1"; strings.Join(back, " ") != want {
		t.Errorf("answer's fields: got %v, want %s", back, want)
	}
}

// TestFieldOrderWithBody: content-length (with the length of the body
// sent) and the trailer field go out where they were recorded, not after
// the other fields, as curl sends content-length before content-type.
func TestFieldOrderWithBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kv       []string
		trailers []h2text.Field
		want     string
	}{
		{"content-length first", []string{"accept", "*/*", "content-length", "7", "content-type", "text/plain"}, nil,
			"accept=*/* content-length=7 content-type=text/plain"},
		{"content-length and trailer first", []string{"content-length", "7", "trailer", "x-t", "x-a", "1"}, []h2text.Field{{Name: "x-t", Value: "v"}},
			"content-length=7 trailer=x-t x-a=1"},
		{"trailer not recorded", []string{"x-a", "1", "content-length", "7", "x-b", "2"}, []h2text.Field{{Name: "x-t", Value: "v"}},
			"x-a=1 content-length=7 x-b=2 trailer=x-t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []hpack.HeaderField, 1)
			u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
				if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamEnded() {
					_ = c.headers(h.StreamID, true, ":status", "200")
				} else if ok {
					got <- h.Fields
				}
				if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
					_ = c.headers(d.StreamID, true, ":status", "200")
				}
				return true
			})
			kv := append([]string{":method", "POST", ":path", "/o", ":authority", "x"}, tc.kv...)
			raw := render(t, fields(kv...), "h2 body", tc.trailers)
			_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}},
				httpsink.Request{ID: "1", Raw: raw})
			if st["ok"] != 1 {
				t.Fatalf("stats %v", st)
			}
			var sent []string
			for _, f := range <-got {
				if !strings.HasPrefix(f.Name, ":") {
					sent = append(sent, f.Name+"="+f.Value)
				}
			}
			if strings.Join(sent, " ") != tc.want {
				t.Errorf("fields on the wire:\n got %v\nwant %s", sent, tc.want)
			}
		})
	}
}

// TestFlowControl: bodies larger than every window the server offers go
// out whole (the client waits for WINDOW_UPDATE), and answers larger than
// the client's stream window come back whole (the client gives it back).
func TestFlowControl(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 9<<16) // 9 MiB
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(500)
			return
		}
		if r.URL.Path == "/big" {
			_, _ = w.Write(big)
			return
		}
		sum := sha256.Sum256(body)
		fmt.Fprintf(w, "%d %x", len(body), sum[:8])
	}), &http2.Server{MaxUploadBufferPerStream: 16 << 10, MaxUploadBufferPerConnection: 64 << 10}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)

	var reqs []httpsink.Request
	var wantSums []string
	for i := range 4 {
		body := bytes.Repeat([]byte{byte('a' + i)}, (1<<20)+i*977)
		sum := sha256.Sum256(body)
		wantSums = append(wantSums, fmt.Sprintf("%d %x", len(body), sum[:8]))
		reqs = append(reqs, httpsink.Request{ID: strconv.Itoa(i),
			Raw: render(t, fields(":method", "POST", ":path", "/up", ":authority", "x", "content-length", strconv.Itoa(len(body))), string(body), nil)})
	}
	reqs = append(reqs, httpsink.Request{ID: "big", Raw: render(t, fields(":method", "GET", ":path", "/big", ":authority", "x"), "", nil)})
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 5, Timeout: 20 * time.Second, KeepLimit: 16 << 20}}, reqs...)
	if st["ok"] != 5 || st["connections"] != 1 {
		t.Fatalf("stats %v", st)
	}
	for _, r := range res {
		resp, err := httpraw.ParseResponse(r.Response)
		if err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
		if r.ID == "big" {
			if !bytes.Equal(resp.Body(), big) {
				t.Errorf("big answer: %d bytes, want %d", len(resp.Body()), len(big))
			}
			continue
		}
		i, _ := strconv.Atoi(r.ID)
		if got := string(resp.Body()); got != wantSums[i] {
			t.Errorf("request %s: server read %q, want %q", r.ID, got, wantSums[i])
		}
	}
}

// TestGracefulGoAway: a GOAWAY whose last stream ID is below a stream's
// means the server did not process it: that request goes again on a new
// connection, and the one processed gets its answer.
func TestGracefulGoAway(t *testing.T) {
	u, accepted := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok {
			return true
		}
		if c.n == 1 && h.StreamID == 1 {
			return true // answered once stream 3 came
		}
		if c.n == 1 && h.StreamID == 3 {
			_ = c.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			_ = c.headers(1, true, ":status", "200", "x-conn", "1")
			time.Sleep(50 * time.Millisecond)
			return false
		}
		_ = c.headers(h.StreamID, true, ":status", "200", "x-conn", strconv.Itoa(c.n))
		return true
	})
	var reqs []httpsink.Request
	for i := range 2 {
		reqs = append(reqs, httpsink.Request{ID: strconv.Itoa(i), Raw: render(t, fields(":method", "GET", ":path", "/"+strconv.Itoa(i), ":authority", "x"), "", nil)})
	}
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 2, Timeout: 5 * time.Second}}, reqs...)
	if st["ok"] != 2 || st["retries"] != 1 || st["errors"] != 0 || accepted.Load() != 2 {
		t.Fatalf("stats %v, connections accepted %d, results %+v", st, accepted.Load(), res)
	}
}

// TestDeadConnectionIsDropped: a server that stops answering anything
// (not even PING) makes a request time out; the connection is then
// checked with a PING and closed when no answer comes, so that the next
// request dials a new one instead of waiting on the dead one.
func TestDeadConnectionIsDropped(t *testing.T) {
	u, accepted := frameServer(t, func(*frameConn, http2.Frame) bool { return true })
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	req := httpsink.Request{ID: "1", Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)}
	if err := s.Send(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	// The first request times out at 300 ms, its PING at 600 ms.
	time.Sleep(900 * time.Millisecond)
	if err := s.Send(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st["errors-"+stats.ClassTimeout] != 2 || st["connections"] != 2 || accepted.Load() != 2 {
		t.Fatalf("stats %v, connections accepted %d: want two timeouts on two connections", st, accepted.Load())
	}
}

// TestInformationalAndContinuation: a header section larger than a frame
// goes out as HEADERS and CONTINUATION; an informational answer (103)
// before the final one is skipped.
func TestInformationalAndContinuation(t *testing.T) {
	long := strings.Repeat("v", 40<<10)
	got := make(chan string, 1)
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			for _, hf := range h.Fields {
				if hf.Name == "x-long" {
					got <- hf.Value
				}
			}
			_ = c.headers(h.StreamID, false, ":status", "103", "link", "</a.css>; rel=preload")
			_ = c.headers(h.StreamID, true, ":status", "204", "x-final", "yes")
		}
		return true
	})
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}},
		httpsink.Request{ID: "1", Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x", "x-long", long), "", nil)})
	if st["ok"] != 1 || res[0].Status != 204 {
		t.Fatalf("stats %v, result %+v", st, res)
	}
	if v := <-got; v != long {
		t.Errorf("x-long arrived with %d bytes, want %d", len(v), len(long))
	}
	if r := string(res[0].Response); strings.Contains(r, "link") || !strings.Contains(r, "x-final: yes") {
		t.Errorf("response %q: want the final answer only", r)
	}
}

// TestInformationalCap: a stream takes at most maxInformational (5)
// informational answers before its final one; a server that sends 103
// Early Hints without end (here 1000, and no final answer) fails the
// request at the sixth (bad-response, the stream reset with CANCEL)
// instead of holding it until its timeout. A 101, which HTTP/2 does not
// have (RFC 9113 §8.6), is a malformed answer (RST_STREAM PROTOCOL_ERROR).
func TestInformationalCap(t *testing.T) {
	res, st, wait := misbehaving(t, func(c *frameConn, streams map[string]uint32) {
		for range maxInformational {
			_ = c.headers(streams["/five"], false, ":status", "103", "link", "</a.css>; rel=preload")
		}
		_ = c.headers(streams["/five"], true, ":status", "200")
		_ = c.headers(streams["/101"], false, ":status", "101")
		_ = c.headers(streams["/101"], true, ":status", "200")
		for range 1000 {
			_ = c.headers(streams["/endless"], false, ":status", "103", "link", "</a.css>; rel=preload")
		}
	}, "/five", "/101", "/endless")
	if st["ok"] != 1 || st["errors-"+stats.ClassBadResponse] != 2 || st["errors"] != 2 {
		t.Fatalf("stats %v", st)
	}
	if r := res["/five"]; r.Status != 200 {
		t.Errorf("/five: status %d, error %v", r.Status, r.Err)
	}
	if err := res["/endless"].Err; err == nil || !strings.Contains(err.Error(), "more than 5 informational (1xx) answers") {
		t.Errorf("/endless: %v", err)
	}
	if err := res["/101"].Err; err == nil || !strings.Contains(err.Error(), "101 (Switching Protocols)") {
		t.Errorf("/101: %v", err)
	}
	wait("RST_STREAM /endless CANCEL")
	wait("RST_STREAM /101 PROTOCOL_ERROR")
}

// FuzzClientConnAnswer: whatever bytes a server answers with before it
// closes the connection, the stream ends (answered or failed) without a
// panic or a hang.
func FuzzClientConnAnswer(f *testing.F) {
	frames := func(write func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) []byte {
		var out, hb bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		write(fr, hpack.NewEncoder(&hb), &hb)
		return out.Bytes()
	}
	block := func(enc *hpack.Encoder, hb *bytes.Buffer, kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	}
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "200", "a", "b"), EndHeaders: true})
		_ = fr.WriteData(1, false, []byte("hel"))
		_ = fr.WriteWindowUpdate(0, 100)
		_ = fr.WriteWindowUpdate(1, 100)
		_ = fr.WriteData(1, true, []byte("lo"))
	}))
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "103"), EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "200"), EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, "grpc-status", "0"), EndStream: true, EndHeaders: true})
	}))
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		_ = fr.WritePing(false, [8]byte{1})
		_ = fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, []byte("bye"))
	}))
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings()
		_ = fr.WriteData(1, true, []byte("data first"))
		_ = fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: block(enc, hb, ":method", "GET"), EndHeaders: true})
	}))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	// A GOAWAY with an error code, then a frame (the Framer reuses the
	// GOAWAY's memory then), for both streams.
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings()
		_ = fr.WriteGoAway(1, http2.ErrCodeEnhanceYourCalm, []byte("calm"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "200"), EndStream: true, EndHeaders: true})
		_ = fr.WritePing(false, [8]byte{2})
	}))
	// Settings out of range.
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 0}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(enc, hb, ":status", "204"), EndStream: true, EndHeaders: true})
	}))
	// The second stream answered first, in HEADERS and CONTINUATION, with
	// a dynamic table size update; padded DATA; a lowered
	// MAX_CONCURRENT_STREAMS and INITIAL_WINDOW_SIZE (negative windows).
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		enc.SetMaxDynamicTableSize(256)
		b := block(enc, hb, ":status", "200", "x-long", strings.Repeat("v", 100))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b[:10], EndHeaders: false})
		_ = fr.WriteContinuation(3, true, b[10:])
		_ = fr.WriteDataPadded(3, true, []byte("ok"), make([]byte, 20))
		_ = fr.WriteWindowUpdate(1, 3)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "abc"), EndHeaders: true})
	}))
	// Send windows taken past 2^31-1: a stream's, by SETTINGS, the
	// connection's.
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings()
		_ = fr.WriteWindowUpdate(3, maxWindow)
		_ = fr.WriteWindowUpdate(1, maxWindow-65535)
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
		_ = fr.WriteWindowUpdate(0, maxWindow)
	}))
	// WINDOW_UPDATE increments of 0: on a stream, on the connection.
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings()
		_ = fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 1, []byte{0, 0, 0, 0})
		_ = fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 0, 0})
	}))
	// Informational answers without end on stream 1, a 101 on stream 3.
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(enc, hb, ":status", "101"), EndHeaders: true})
		for range maxInformational + 2 {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "103", "link", "</a>"), EndHeaders: true})
		}
	}))
	// An answer before the request's body and trailers, then window for
	// them; padded DATA on a stream the client let go.
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "200"), EndStream: true, EndHeaders: true})
		_ = fr.WriteWindowUpdate(1, 100)
		_ = fr.WriteDataPadded(1, false, make([]byte, 1000), make([]byte, 255))
	}))
	f.Fuzz(fuzzAnswer)
}

// fuzzAnswer runs two streams at once on one connection whose server
// answers with answer and then closes it (every stream ends then, if the
// answer did not end it): a POST with a body and trailers (stream 1) and a
// GET (stream 3); then one more request once the connection is gone. Each
// ends in time, with an answer or an error, and no stream is left behind.
func fuzzAnswer(t *testing.T, answer []byte) {
	client, server := net.Pipe()
	defer server.Close()
	go func() { _, _ = io.Copy(io.Discard, server) }()
	go func() {
		_, _ = server.Write(answer)
		_ = server.Close()
	}()
	cc, err := newClientConn(newBatchConn(client), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.close()
	post := &outRequest{pr: &h2text.Request{Method: "POST", Path: "/", Header: []h2text.Field{{Name: "content-length", Value: "5"}}, Body: []byte("hello"),
		Trailer: []h2text.Field{{Name: "x-t", Value: "1"}}}, authority: "x", scheme: "http", hasLength: true}
	get := &outRequest{pr: &h2text.Request{Method: "GET", Path: "/g", Header: []h2text.Field{{Name: "x-a", Value: "1"}}}, authority: "x", scheme: "http"}
	roundTrip := func(req *outRequest) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		resp, _, err := cc.roundTrip(ctx, req)
		if err == nil && (resp == nil || resp.status < 200) {
			t.Errorf("no error and answer %+v", resp)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cc.reserveNew()
		cc.reserveNew()
		var wg sync.WaitGroup
		wg.Go(func() { roundTrip(post) })
		for { // stream 1 first
			cc.mu.Lock()
			opened := cc.nextID > 1 || cc.err != nil
			cc.mu.Unlock()
			if opened {
				break
			}
			time.Sleep(10 * time.Microsecond)
		}
		wg.Go(func() { roundTrip(get) })
		wg.Wait()
		cc.release()
		cc.release()
		<-cc.ready
		for cc.tryReserve() { // until the reader has seen the end
			roundTrip(get)
			cc.release()
		}
		cc.reserveNew()
		roundTrip(get)
		cc.release()
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the streams did not end within 3 s")
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.streams) != 0 || cc.reserved != 0 || cc.unopened != 0 {
		t.Fatalf("left: %d streams, %d reserved, %d unopened", len(cc.streams), cc.reserved, cc.unopened)
	}
}

// TestGoAwayThenMoreFrames: a GOAWAY with an error code, then the answer
// of a stream below its last stream ID, then the end of the connection.
// The GOAWAY's fields are kept past the next frame read (x/net's Framer
// reuses a frame's memory once the next one is read, and panics on its
// accessors): the answered stream is ok, and no panic.
func TestGoAwayThenMoreFrames(t *testing.T) {
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok {
			return true
		}
		_ = c.fr.WriteGoAway(h.StreamID, http2.ErrCodeEnhanceYourCalm, []byte("calm down"))
		_ = c.headers(h.StreamID, true, ":status", "200")
		_ = c.fr.WritePing(false, [8]byte{1})
		time.Sleep(50 * time.Millisecond)
		return false
	})
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}},
		httpsink.Request{ID: "1", Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)})
	if st["ok"] != 1 {
		t.Fatalf("stats %v, results %+v", st, res)
	}
}

// TestInvalidFieldLeavesHPACKInStep: a request refused for a field HTTP/2
// cannot carry is refused before any of its fields is encoded, so that the
// connection's HPACK encoder does not keep entries the server never got;
// the next request on that connection (same :authority, same field) is
// read by the server as sent.
func TestInvalidFieldLeavesHPACKInStep(t *testing.T) {
	rec, u := h2cServer(t)
	bad := "GET /1 HTTP/2.0\r\nHost: x\r\nx-a: 1\r\nx-bad: a\x01b\r\n\r\n"
	badTrailer := "POST /2 HTTP/2.0\r\nHost: x\r\nx-b: 2\r\nContent-Length: 2\r\nX-Replayctl-Trailer-x-t: a\x01b\r\n\r\nhi"
	good := "GET /3 HTTP/2.0\r\nHost: x\r\nx-a: 1\r\nx-b: 2\r\n\r\n"
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 5 * time.Second}},
		httpsink.Request{ID: "bad", Raw: []byte(bad)}, httpsink.Request{ID: "bad-trailer", Raw: []byte(badTrailer)},
		httpsink.Request{ID: "good", Raw: []byte(good)})
	if st["errors-invalid-request"] != 2 || st["ok"] != 1 || st["connections"] != 1 {
		t.Fatalf("stats %v, results %+v", st, res)
	}
	if len(rec.reqs) != 1 || rec.reqs[0].uri != "/3" || rec.reqs[0].header.Get("X-A") != "1" || rec.reqs[0].header.Get("X-B") != "2" || rec.reqs[0].host != u.Host {
		t.Errorf("server received %+v", rec.reqs)
	}
}

// TestMalformedAnswerIsReset: a malformed answer fails its stream as
// bad-response, and the stream is reset (RST_STREAM PROTOCOL_ERROR, RFC
// 9113 §8.1.1) so that the server does not keep it open (and count it
// against its SETTINGS_MAX_CONCURRENT_STREAMS) while the client has let
// it go.
func TestMalformedAnswerIsReset(t *testing.T) {
	var mu sync.Mutex
	paths := map[uint32]string{}
	rst := make(chan string, 8)
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			p := f.PseudoValue("path")
			mu.Lock()
			paths[f.StreamID] = p
			mu.Unlock()
			switch p {
			case "/bad-status":
				_ = c.headers(f.StreamID, false, ":status", "abc")
			case "/data-first":
				_ = c.fr.WriteData(f.StreamID, false, []byte("body"))
			case "/open-trailers":
				_ = c.headers(f.StreamID, false, ":status", "200")
				_ = c.headers(f.StreamID, false, "grpc-status", "0")
			}
		case *http2.RSTStreamFrame:
			mu.Lock()
			rst <- paths[f.StreamID] + " " + f.ErrCode.String()
			mu.Unlock()
		}
		return true
	})
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, s, 5*time.Second) // once the resets came: Close could cut the last one
	for _, p := range []string{"/bad-status", "/data-first", "/open-trailers"} {
		if err := s.Send(t.Context(), httpsink.Request{ID: p, Raw: render(t, fields(":method", "GET", ":path", p, ":authority", "x"), "", nil)}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	timeout := time.After(2 * time.Second)
	for len(got) < 3 {
		select {
		case r := <-rst:
			got[r] = true
		case <-timeout:
			t.Fatalf("RST_STREAM received: %v, want one PROTOCOL_ERROR for each of the 3 streams", got)
		}
	}
	for _, p := range []string{"/bad-status", "/data-first", "/open-trailers"} {
		if !got[p+" PROTOCOL_ERROR"] {
			t.Errorf("RST_STREAM received: %v, want %s PROTOCOL_ERROR", got, p)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); s.Stats()["sent"] < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st["errors-"+stats.ClassBadResponse] != 3 {
		t.Fatalf("stats %v", st)
	}
}

// closeWithin closes s and fails the test if that takes longer than d; the
// client's connections are then closed under it (their sockets), until
// Close returns, so that the test ends.
func closeWithin(t *testing.T, s *Sender, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		return
	case <-time.After(d):
	}
	for {
		for _, tg := range s.targets {
			tg.pool.mu.Lock()
			for _, pc := range tg.pool.conns {
				_ = pc.cc.bc.Conn.Close()
			}
			for _, pc := range tg.pool.sessions {
				_ = pc.cc.bc.Conn.Close()
			}
			tg.pool.mu.Unlock()
		}
		select {
		case <-done:
			t.Fatalf("Close took more than %v", d)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestInvalidSettings: a SETTINGS_MAX_FRAME_SIZE below 16384 (here 0) is a
// connection error (RFC 9113 §6.5.2), not a frame size the client writes
// its header blocks and DATA in (with 0 it wrote CONTINUATION frames
// without end).
func TestInvalidSettings(t *testing.T) {
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 0})
			_ = c.headers(h.StreamID, true, ":status", "200")
		}
		return true
	})
	var results atomic.Int64
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 2 * time.Second,
		OnResult: func(httpsink.Result) { results.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/1", "/2", "/3"} {
		if err := s.Send(t.Context(), httpsink.Request{ID: p, Raw: render(t, fields(":method", "GET", ":path", p, ":authority", "x"), "", nil)}); err != nil {
			t.Fatal(err)
		}
	}
	closeWithin(t, s, 4*time.Second)
	if st := s.Stats(); st["sent"] != 3 || st["errors-timeout"] != 0 {
		t.Fatalf("stats %v", st)
	}
}

// TestStreamIDExhaustion: a connection whose next stream ID is the last
// one (2^31-1) opens that stream, and is then dropped for a new one; it
// does not take requests it cannot send (before, every request given to
// it failed as reset, its retry included, and the connection stayed in
// the pool).
func TestStreamIDExhaustion(t *testing.T) {
	rec, u := h2cServer(t)
	results := make(chan httpsink.Result, 3)
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 5 * time.Second,
		OnResult: func(r httpsink.Result) { results <- r }}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(p string) httpsink.Result {
		t.Helper()
		if err := s.Send(t.Context(), httpsink.Request{ID: p, Raw: render(t, fields(":method", "GET", ":path", p, ":authority", "x"), "", nil)}); err != nil {
			t.Fatal(err)
		}
		return <-results
	}
	if r := send("/1"); r.Err != nil {
		t.Fatal(r.Err)
	}
	p := &s.targets[0].pool
	p.mu.Lock()
	cc := p.conns[0].cc
	p.mu.Unlock()
	cc.mu.Lock()
	cc.nextID = maxStreamID
	cc.mu.Unlock()
	for _, path := range []string{"/last-id", "/new-conn"} {
		if r := send(path); r.Err != nil {
			t.Errorf("%s: %v", path, r.Err)
		}
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st["ok"] != 3 || st["connections"] != 2 || len(rec.conns) != 2 {
		t.Fatalf("stats %v, server saw %d connections", st, len(rec.conns))
	}
}

// TestHealthCheckIsPerPing: a PING answered in time does not close the
// connection when the timer of an earlier PING (answered too) fires while
// a later one is in flight. Timeline (timeout 600 ms, PINGs acked after
// 300 ms): /a times out at 600 (PING 1, acked at 900), /b at 1100 (PING 2,
// acked at 1400); PING 1's timer fires at 1200, when /c (sent at 1000,
// answered at 1300) is in flight on the connection.
func TestHealthCheckIsPerPing(t *testing.T) {
	var wmu sync.Mutex
	u, accepted := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.PseudoValue("path") == "/c" {
				id := f.StreamID
				time.AfterFunc(300*time.Millisecond, func() {
					wmu.Lock()
					_ = c.headers(id, true, ":status", "200")
					wmu.Unlock()
				})
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				time.AfterFunc(300*time.Millisecond, func() {
					wmu.Lock()
					_ = c.fr.WritePing(true, data)
					wmu.Unlock()
				})
			}
		}
		return true
	})
	results := make(chan httpsink.Result, 3)
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 3, Timeout: 600 * time.Millisecond,
		OnResult: func(r httpsink.Result) { results <- r }}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, at := range []struct {
		path string
		at   time.Duration
	}{{"/a", 0}, {"/b", 500 * time.Millisecond}, {"/c", 1000 * time.Millisecond}} {
		time.Sleep(time.Until(start.Add(at.at)))
		if err := s.Send(t.Context(), httpsink.Request{ID: at.path, Raw: render(t, fields(":method", "GET", ":path", at.path, ":authority", "x"), "", nil)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(results)
	for r := range results {
		if r.ID == "/c" && r.Err != nil {
			t.Errorf("/c: %v (class %s): want its answer", r.Err, r.ErrClass)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestStalledWriteTimesOut: a server that opens its windows wide and then
// stops reading (its socket fills up, a write blocks) does not hold the
// request past its timeout by much, nor Close: the health check closes the
// connection whose PING cannot even be written.
func TestStalledWriteTimesOut(t *testing.T) {
	stop := make(chan struct{})
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		_ = c.fr.WriteWindowUpdate(0, 1<<31-1-65535)
		<-stop // reads nothing more
		return false
	})
	t.Cleanup(func() { close(stop) }) // before frameServer's, which waits for the handler
	body := bytes.Repeat([]byte("x"), 32<<20)
	results := make(chan httpsink.Result, 1)
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 300 * time.Millisecond,
		OnResult: func(r httpsink.Result) { results <- r }}})
	if err != nil {
		t.Fatal(err)
	}
	raw := render(t, fields(":method", "POST", ":path", "/up", ":authority", "x", "content-length", strconv.Itoa(len(body))), string(body), nil)
	if err := s.Send(t.Context(), httpsink.Request{ID: "1", Raw: raw}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	closeWithin(t, s, 5*time.Second)
	r := <-results
	if r.ErrClass != stats.ClassTimeout {
		t.Errorf("result %v (class %s), want a timeout", r.Err, r.ErrClass)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the request ended after %v; timeout 300 ms", d)
	}
}

// countingListener counts the connections it accepted that are still
// open (not closed by the server).
type countingListener struct {
	net.Listener
	open *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, open: l.open}, nil
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// TestSessionConnectionsClosed: in session mode, a recorded connection
// whose replayed one is full (the server takes one stream at a time) gets
// a new one; the full one, no longer the session's, is closed once its
// last stream is done, and none is left open after Close.
func TestSessionConnectionsClosed(t *testing.T) {
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}), &http2.Server{MaxConcurrentStreams: 1}))
	srv.Listener = countingListener{srv.Listener, &open}
	srv.Start()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 3, Session: true, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Send(t.Context(), httpsink.Request{ID: strconv.Itoa(i), ConnID: "c1",
			Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st["ok"] != 3 || st["connections"] != 3 {
		t.Fatalf("stats %v", st)
	}
	deadline := time.Now().Add(2 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections still open after Close", n)
	}
}

// TestNoStreamsAllowed: a server whose SETTINGS_MAX_CONCURRENT_STREAMS is
// 0 takes no stream; its connections, which carry none and can take none,
// are closed, not kept in the pool (where each request added new ones).
func TestNoStreamsAllowed(t *testing.T) {
	u, accepted, open := frameServerWith(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 0}}, func(c *frameConn, f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			_ = c.fr.WriteRSTStream(h.StreamID, http2.ErrCodeRefusedStream)
		}
		return true
	})
	results := make(chan httpsink.Result, 1)
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 1, Timeout: 2 * time.Second,
		OnResult: func(r httpsink.Result) { results <- r }}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Send(t.Context(), httpsink.Request{ID: strconv.Itoa(i), Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)}); err != nil {
			t.Fatal(err)
		}
		if r := <-results; r.Err == nil {
			t.Fatalf("request %d answered", i)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d of %d connections open before Close, want none", n, accepted.Load())
	}
	closeWithin(t, s, 5*time.Second)
}

// TestMaxConcurrentStreamsFromTheStart: the server's
// SETTINGS_MAX_CONCURRENT_STREAMS (2 here) holds from a connection's
// first streams: the workers that came together while it was being opened
// do not all open streams on it before its SETTINGS arrive (Go's server
// refuses the streams over its limit, and a retry met the same on the
// next connection), they go to other connections.
func TestMaxConcurrentStreamsFromTheStart(t *testing.T) {
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
	}), &http2.Server{MaxConcurrentStreams: 2}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	var reqs []httpsink.Request
	for i := range 16 {
		reqs = append(reqs, httpsink.Request{ID: strconv.Itoa(i), Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)})
	}
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 8, Timeout: 5 * time.Second}}, reqs...)
	if st["ok"] != 16 || st["errors"] != 0 || st["retries"] != 0 {
		t.Fatalf("stats %v", st)
	}
	if st["connections"] != 4 {
		t.Errorf("%d connections for 8 workers and 2 streams a connection, want 4", st["connections"])
	}
}

// TestMalformedHeaderSectionIsBadResponse: an answer whose header section
// x/net's Framer finds malformed (a field name in upper case, a
// pseudo-header field after a regular one) is a bad-response, as the
// package says of malformed answers, and is reset by the client: not an
// rst-stream-protocol_error, which says the server reset the stream.
func TestMalformedHeaderSectionIsBadResponse(t *testing.T) {
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			switch h.PseudoValue("path") {
			case "/upper":
				_ = c.headers(h.StreamID, true, ":status", "200", "X-Bad", "1")
			case "/pseudo-after":
				_ = c.headers(h.StreamID, true, "x-a", "1", ":status", "200")
			}
		}
		return true
	})
	var reqs []httpsink.Request
	for _, p := range []string{"/upper", "/pseudo-after"} {
		reqs = append(reqs, httpsink.Request{ID: p, Raw: render(t, fields(":method", "GET", ":path", p, ":authority", "x"), "", nil)})
	}
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}}, reqs...)
	if st["errors-"+stats.ClassBadResponse] != 2 {
		t.Fatalf("stats %v", st)
	}
	for _, r := range res {
		if !strings.Contains(r.Err.Error(), "malformed response") {
			t.Errorf("%s: %v", r.ID, r.Err)
		}
	}
}

// TestHeaderListTooLarge: an answer whose header section is larger than
// the SETTINGS_MAX_HEADER_LIST_SIZE the client sent (10 MiB) is not taken
// with the fields that fit (x/net's Framer drops the rest and marks the
// frame Truncated): it is a bad-response.
func TestHeaderListTooLarge(t *testing.T) {
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok {
			return true
		}
		c.hbuf.Reset()
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		value := strings.Repeat("0123456789", 100_000) // 1 MB
		for i := range 11 {
			_ = c.henc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-%d", i), Value: value})
		}
		block := c.hbuf.Bytes()
		const frag = 1 << 19
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.StreamID, BlockFragment: block[:frag], EndStream: true})
		for block = block[frag:]; len(block) > 0; {
			n := min(len(block), frag)
			_ = c.fr.WriteContinuation(h.StreamID, n == len(block), block[:n])
			block = block[n:]
		}
		return true
	})
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 10 * time.Second}},
		httpsink.Request{ID: "1", Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)})
	if st["errors-"+stats.ClassBadResponse] != 1 {
		t.Fatalf("stats %v, response %d bytes", st, len(res[0].Response))
	}
}

// TestConnectionErrorSendsGoAway: a connection error the client finds (a
// PUSH_PROMISE, push being disabled; SETTINGS out of range; a frame over
// the client's SETTINGS_MAX_FRAME_SIZE) is told to the server with a
// GOAWAY carrying its code before the connection is closed (RFC 9113
// §5.4.1), as x/net's Transport does, and the request's error says why.
func TestConnectionErrorSendsGoAway(t *testing.T) {
	goAway := make(chan http2.ErrCode, 4)
	var firstGoAway sync.Map // each connection's first GOAWAY only (Close sends NO_ERROR after)
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.PseudoValue("path") == "/toobig" {
				_ = c.headers(f.StreamID, false, ":status", "200")
				_ = c.fr.WriteRawFrame(http2.FrameData, 0, f.StreamID, make([]byte, 2<<20))
			} else if f.PseudoValue("path") == "/push" {
				c.hbuf.Reset()
				_ = c.henc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
				_ = c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: f.StreamID, PromiseID: 2, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
			} else {
				_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
			}
		case *http2.GoAwayFrame:
			if _, seen := firstGoAway.LoadOrStore(c.n, true); !seen {
				goAway <- f.ErrCode
			}
		}
		return true
	})
	for _, tc := range []struct {
		path string
		want http2.ErrCode
		says string // in the request's error: why
	}{
		{"/push", http2.ErrCodeProtocol, "PUSH_PROMISE"},
		{"/window", http2.ErrCodeFlowControl, "does not allow"},
		{"/toobig", http2.ErrCodeFrameSize, "SETTINGS_MAX_FRAME_SIZE"},
	} {
		res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Timeout: 5 * time.Second}},
			httpsink.Request{ID: "1", Raw: render(t, fields(":method", "GET", ":path", tc.path, ":authority", "x"), "", nil)})
		if st["errors-"+stats.ClassReset] != 1 {
			t.Fatalf("%s: stats %v", tc.path, st)
		}
		if len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), tc.says) {
			t.Errorf("%s: the request's error does not say why (%q): %v", tc.path, tc.says, res)
		}
		select {
		case code := <-goAway:
			if code != tc.want {
				t.Errorf("%s: GOAWAY %v, want %v", tc.path, code, tc.want)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: no GOAWAY", tc.path)
		}
	}
}

// TestMaxStreamsWithoutServerLimit: a server whose SETTINGS do not limit
// the concurrent streams (no SETTINGS_MAX_CONCURRENT_STREAMS: no limit,
// RFC 9113 §6.5.2) takes max-streams streams on a connection (150 here),
// not the 100 the client assumes before the server's SETTINGS.
func TestMaxStreamsWithoutServerLimit(t *testing.T) {
	var wmu sync.Mutex
	u, accepted := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			id := h.StreamID
			time.AfterFunc(300*time.Millisecond, func() {
				wmu.Lock()
				_ = c.headers(id, true, ":status", "200")
				wmu.Unlock()
			})
		}
		return true
	})
	var reqs []httpsink.Request
	for i := range 150 {
		reqs = append(reqs, httpsink.Request{ID: strconv.Itoa(i), Raw: render(t, fields(":method", "GET", ":path", "/", ":authority", "x"), "", nil)})
	}
	_, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 150, Timeout: 5 * time.Second}, MaxStreams: 150}, reqs...)
	if st["ok"] != 150 || st["connections"] != 1 || accepted.Load() != 1 {
		t.Fatalf("stats %v, %d connections accepted, want 1", st, accepted.Load())
	}
}
