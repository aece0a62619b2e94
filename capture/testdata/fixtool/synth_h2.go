package main

// An HTTP/2 (prior knowledge) fixture whose frames are built here, for what
// a real client or server refuses to send: a field name that is not a
// token, which the stored form cannot write as a header line.

import (
	"bytes"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/h2text"
)

// h2side writes the frames of one direction with its own HPACK encoder.
type h2side struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	blk bytes.Buffer
}

func newH2side() *h2side {
	s := &h2side{}
	s.fr = http2.NewFramer(&s.buf, nil)
	s.enc = hpack.NewEncoder(&s.blk)
	return s
}

// headers appends a HEADERS frame of fields on stream id.
func (s *h2side) headers(id uint32, end bool, fields []h2text.Field) {
	s.blk.Reset()
	for _, f := range fields {
		if err := s.enc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value}); err != nil {
			panic(err)
		}
	}
	if err := s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: s.blk.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		panic(err)
	}
}

// take returns the bytes written so far and empties the buffer.
func (s *h2side) take() string {
	out := s.buf.String()
	s.buf.Reset()
	return out
}

func h2fields(kv ...string) []h2text.Field {
	var fs []h2text.Field
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, h2text.Field{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

// render is a message as the capture stores it.
func render(request bool, fields []h2text.Field, body string) string {
	var raw []byte
	var err error
	if request {
		raw, err = h2text.AppendRequest(nil, fields, []byte(body), nil)
	} else {
		raw, err = h2text.AppendResponse(nil, fields, []byte(body), nil)
	}
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// h2Unrenderable: stream 1's response ends with a trailer named "x/y" (not
// a token): the response cannot be stored and is counted h2-unrenderable;
// its request, and stream 3's exchange, are recorded.
func h2Unrenderable(s *synth) {
	s.golden.Stats = map[string]int{"requests": 2, "responses": 1, "h2-streams": 2, "h2-unrenderable": 1, "h2-hpack-errors": 0, "h2-frame-errors": 0}
	c := s.conn("10.0.0.1:40016", "10.0.0.2:18180")
	cl, sv := newH2side(), newH2side()
	c.handshake()

	req1 := h2fields(":method", "GET", ":scheme", "http", ":path", "/one", ":authority", "shop.example", "user-agent", "synth/1.0")
	_ = cl.fr.WriteSettings()
	cl.headers(1, true, req1)
	t := c.write(true, http2.ClientPreface+cl.take(), 1448)
	i := c.expect("request", t, render(true, req1, ""), false, -1)

	_ = sv.fr.WriteSettings()
	_ = sv.fr.WriteSettingsAck()
	sv.headers(1, false, h2fields(":status", "200", "content-type", "text/plain"))
	_ = sv.fr.WriteData(1, false, []byte("first"))
	sv.headers(1, true, h2fields("x/y", "1"))
	c.write(false, sv.take(), 1448)
	_ = i // its response is not stored

	_ = cl.fr.WriteSettingsAck()
	req3 := h2fields(":method", "GET", ":scheme", "http", ":path", "/two", ":authority", "shop.example", "user-agent", "synth/1.0")
	cl.headers(3, true, req3)
	t = c.write(true, cl.take(), 1448)
	i = c.expect("request", t, render(true, req3, ""), false, -1)

	resp3 := h2fields(":status", "200", "content-type", "text/plain")
	sv.headers(3, false, resp3)
	_ = sv.fr.WriteData(3, true, []byte("second"))
	t = c.write(false, sv.take(), 1448)
	c.expect("response", t, render(false, resp3, "second"), false, i)
	c.close()
}
