package httpraw

import (
	"bytes"
	"testing"
)

func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s), "X-Fuzz", "v")
	}
}

func FuzzParseRequest(f *testing.F) {
	addSeeds(f, getReq, postReq, chunkedReq,
		"GET / HTTP/1.0\nX-Long: one\n  two\n\n",
		"GET http://h:1/p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"CONNECT h:443 HTTP/1.1\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw []byte, name, value string) {
		in := append([]byte(nil), raw...)
		r, err := ParseRequest(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), in) {
			t.Fatalf("Bytes() = %q, want input %q", r.Bytes(), in)
		}
		_, _ = r.DecodedBody()
		_ = r.Path()
		_ = r.Query()
		if err := r.SetHeader(name, value); err == nil {
			if got, ok := r.Header(name); !ok || got != trimOWS(value) {
				t.Fatalf("after SetHeader(%q, %q): Header = %q, %v", name, value, got, ok)
			}
			if _, err := ParseRequest(r.Bytes()); err != nil && !isFraming(name) {
				t.Fatalf("edited request does not parse: %v\n%q", err, r.Bytes())
			}
		}
		if err := r.SetQueryParam(name, value); err == nil {
			if got, ok := r.Query().Get(name); !ok || got != value {
				t.Fatalf("after SetQueryParam(%q, %q): Get = %q, %v", name, value, got, ok)
			}
		}
		_ = r.SetBody([]byte(value))
		if !bytes.Equal(raw, in) {
			t.Fatal("edits modified the input slice")
		}
		// SetBody alone keeps the message whole: it parses again, with
		// the new body and the trailers it had.
		r, _ = ParseRequest(in)
		checkSetBody(t, r, func(b []byte) (bodyMessage, error) { return ParseRequest(b) }, value)
	})
}

// bodyMessage is what checkSetBody needs of a Request or Response.
type bodyMessage interface {
	Bytes() []byte
	SetBody([]byte) error
	DecodedBody() ([]byte, error)
	Trailers() []Field
}

// checkSetBody sets m's body to value and parses the result again: it must
// parse, with value as its body and the trailers m had.
func checkSetBody(t *testing.T, m bodyMessage, parse func([]byte) (bodyMessage, error), value string) {
	t.Helper()
	tr := m.Trailers()
	if err := m.SetBody([]byte(value)); err != nil {
		return
	}
	again, err := parse(append([]byte(nil), m.Bytes()...))
	if err != nil {
		t.Fatalf("after SetBody(%q): %v\n%q", value, err, m.Bytes())
	}
	if got, err := again.DecodedBody(); err != nil || string(got) != value {
		t.Fatalf("after SetBody(%q): body %q, %v\n%q", value, got, err, m.Bytes())
	}
	if got := again.Trailers(); len(got) != len(tr) {
		t.Fatalf("after SetBody(%q): trailers %q, were %q", value, got, tr)
	}
}

func FuzzParseResponse(f *testing.F) {
	addSeeds(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw []byte, name, value string) {
		in := append([]byte(nil), raw...)
		r, err := ParseResponse(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), in) {
			t.Fatalf("Bytes() = %q, want input %q", r.Bytes(), in)
		}
		_, _ = r.DecodedBody()
		if err := r.SetHeader(name, value); err == nil {
			if got, ok := r.Header(name); !ok || got != trimOWS(value) {
				t.Fatalf("after SetHeader(%q, %q): Header = %q, %v", name, value, got, ok)
			}
			if _, err := ParseResponse(r.Bytes()); err != nil && !isFraming(name) {
				t.Fatalf("edited response does not parse: %v\n%q", err, r.Bytes())
			}
		}
		_ = r.SetBody([]byte(value))
		// Trailer edits keep the message parseable with the new value.
		if tr := r.Trailers(); len(tr) > 0 {
			i := len(value) % len(tr)
			if err := r.SetTrailerAt(i, value); err == nil {
				again, err := ParseResponse(append([]byte(nil), r.Bytes()...))
				if err != nil {
					t.Fatalf("after SetTrailerAt(%d, %q): %v\n%q", i, value, err, r.Bytes())
				}
				if got := again.Trailers(); len(got) != len(tr) || got[i].Value != trimOWS(value) {
					t.Fatalf("after SetTrailerAt(%d, %q): trailers %q, were %q", i, value, got, tr)
				}
			}
		}
		if !bytes.Equal(raw, in) {
			t.Fatal("edits modified the input slice")
		}
		r, _ = ParseResponse(in)
		checkSetBody(t, r, func(b []byte) (bodyMessage, error) { return ParseResponse(b) }, value)
	})
}

// isFraming reports header names whose edit may legitimately break framing.
func isFraming(name string) bool {
	for _, n := range []string{"Content-Length", "Transfer-Encoding"} {
		if len(name) == len(n) && bytes.EqualFold([]byte(name), []byte(n)) {
			return true
		}
	}
	return false
}
