package h2sink

import (
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/sinks/httpsink"
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
