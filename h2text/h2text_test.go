package h2text

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/httpraw"
)

func fields(kv ...string) []Field {
	var out []Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		req      bool
		fields   []Field
		body     string
		trailers []Field
		want     string
		err      bool
	}{
		{"grpc request", true, fields(":method", "POST", ":scheme", "http", ":path", "/p.S/M", ":authority", "a:1", "te", "trailers"), "\x00\x00\x00\x00\x01z", nil,
			"POST /p.S/M HTTP/2.0\r\nHost: a:1\r\nte: trailers\r\nContent-Length: 6\r\n\r\n\x00\x00\x00\x00\x01z", false},
		{"recorded content-length kept", true, fields(":method", "POST", ":path", "/", "content-length", "2"), "ok", nil,
			"POST / HTTP/2.0\r\ncontent-length: 2\r\n\r\nok", false},
		{"get without body", true, fields(":method", "GET", ":path", "/x?y=1"), "", nil, "GET /x?y=1 HTTP/2.0\r\n\r\n", false},
		{"response with trailers", false, fields(":status", "200", "content-type", "application/grpc"), "", fields("grpc-status", "0"),
			"HTTP/2.0 200 OK\r\ncontent-type: application/grpc\r\nContent-Length: 0\r\nX-Replayctl-Trailer-grpc-status: 0\r\n\r\n", false},
		{"204 has no length", false, fields(":status", "204"), "", nil, "HTTP/2.0 204 No Content\r\n\r\n", false},
		{"no method", true, fields(":path", "/"), "", nil, "", true},
		{"CR in a value", true, fields(":method", "GET", ":path", "/", "x", "a\r\nb"), "", nil, "", true},
		{"bad status", false, fields(":status", "2000"), "", nil, "", true},
		{"name not a token", true, fields(":method", "GET", ":path", "/", "a/b", "1"), "", nil, "", true},
		{"trailer name not a token", false, fields(":status", "200"), "", fields("x(y)", "1"), "", true},
		{"empty trailer value", false, fields(":status", "200"), "", fields("grpc-message", ""),
			"HTTP/2.0 200 OK\r\nContent-Length: 0\r\nX-Replayctl-Trailer-grpc-message: \r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			var err error
			if tt.req {
				got, err = AppendRequest(nil, tt.fields, []byte(tt.body), tt.trailers)
			} else {
				got, err = AppendResponse(nil, tt.fields, []byte(tt.body), tt.trailers)
			}
			if (err != nil) != tt.err || !tt.err && string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tt.want, tt.err)
			}
			if tt.err {
				return
			}
			if tt.req {
				if _, err := httpraw.ParseRequest(got); err != nil {
					t.Fatal(err)
				}
			} else if _, err := httpraw.ParseResponse(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	raw, _ := AppendRequest(nil, fields(":method", "POST", ":path", "/p.S/M", ":authority", "a:1", "content-type", "application/grpc", "host", "real"),
		[]byte("body"), fields("x-t", "1"))
	r, err := ParseRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Path != "/p.S/M" || r.Authority != "a:1" || string(r.Body) != "body" ||
		len(r.Header) != 2 || r.Header[1] != (Field{"host", "real"}) || len(r.Trailer) != 1 || r.Trailer[0] != (Field{"x-t", "1"}) {
		t.Fatalf("%+v", r)
	}
	h1 := "POST http://api:8080/form HTTP/1.1\r\nHost: old\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\nTE: gzip\r\nX-A: 1\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
	r, err = ParseRequest([]byte(h1))
	if err != nil {
		t.Fatal(err)
	}
	if r.Authority != "api:8080" || r.Path != "/form" || string(r.Body) != "hi" || len(r.Header) != 1 || r.Header[0] != (Field{"x-a", "1"}) {
		t.Fatalf("%+v", r)
	}
	if !IsH2(raw) || IsH2([]byte(h1)) || !IsH2([]byte("HTTP/2.0 200 OK\r\n")) {
		t.Fatal("IsH2")
	}
}

// FuzzParseRequest: any input parses or fails cleanly; what parses as an
// HTTP/2.0 request renders back to a request that parses the same.
func FuzzParseRequest(f *testing.F) {
	raw, _ := AppendRequest(nil, fields(":method", "POST", ":path", "/p.S/M", ":authority", "a:1", "te", "trailers"), []byte("\x00\x00\x00\x00\x01z"), fields("x-t", "1"))
	f.Add(raw)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("GET http://u@h?x=1 HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		// The query of the target is kept, whatever its form.
		if hr, _ := httpraw.ParseRequest(b); strings.HasPrefix(r.Path, "/") {
			if _, q, _ := strings.Cut(r.Path, "?"); q != hr.RawQuery() {
				t.Fatalf("target %q: path %q, authority %q: query lost", hr.Target(), r.Path, r.Authority)
			}
		}
		if !IsH2(b) || r.Path == "" || strings.ContainsAny(r.Path, " \r\n\x00") {
			return
		}
		fs := []Field{{":method", r.Method}, {":path", r.Path}}
		if r.Authority != "" {
			fs = append(fs, Field{":authority", r.Authority})
		}
		fs = append(fs, r.Header...)
		out, err := AppendRequest(nil, fs, r.Body, r.Trailer)
		if err != nil {
			return
		}
		r2, err := ParseRequest(out)
		if err != nil {
			t.Fatalf("rendered %q does not parse: %v", out, err)
		}
		if r2.Method != r.Method || r2.Path != r.Path || string(r2.Body) != string(r.Body) || len(r2.Header) != len(r.Header) {
			t.Fatalf("round trip %+v → %+v", r, r2)
		}
	})
}

// TestParseRequestTrailers: a chunked HTTP/1.x request's trailer section
// gives the trailers, less the fields a trailer may not carry; so do the
// trailers of the HTTP/2 form.
func TestParseRequestTrailers(t *testing.T) {
	h1 := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
		"2\r\nhi\r\n0\r\nX-T: tv\r\nContent-Length: 2\r\nConnection: close\r\nTE: trailers\r\nAuthorization: x\r\nGrpc-Status: 0\r\n\r\n"
	r, err := ParseRequest([]byte(h1))
	if err != nil {
		t.Fatal(err)
	}
	want := fields("x-t", "tv", "grpc-status", "0")
	if string(r.Body) != "hi" || len(r.Trailer) != len(want) || r.Trailer[0] != want[0] || r.Trailer[1] != want[1] ||
		len(r.Header) != 1 || r.Header[0] != (Field{"trailer", "X-T"}) {
		t.Fatalf("%+v", r)
	}
	if _, err := ParseRequest([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Name: v\r\n\r\n")); err == nil {
		t.Fatal("a trailer name that is not a token parsed")
	}
	if r, err := ParseRequest([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")); err != nil || r.Trailer != nil {
		t.Fatalf("no trailers: %+v, %v", r, err)
	}
	raw, _ := AppendRequest(nil, fields(":method", "POST", ":path", "/", ":authority", "a"), []byte("x"), fields("grpc-status", "0", "content-length", "1"))
	if r, err := ParseRequest(raw); err != nil || len(r.Trailer) != 1 || r.Trailer[0] != (Field{"grpc-status", "0"}) {
		t.Fatalf("HTTP/2 form: %+v, %v", r, err)
	}
}

// TestContentLengthMustFrameTheData: a content-length field that is not
// one length makes the message unrenderable; one that does not frame the
// DATA bytes of a whole message is refused by LengthFrames (RFC 9113
// §8.1.1: malformed), and a response may announce a length and carry none
// (to HEAD). FuzzH2 found "content-length: " rendered into a head httpraw
// refused.
func TestContentLengthMustFrameTheData(t *testing.T) {
	req := []Field{{":method", "POST"}, {":path", "/"}, {":authority", "a"}}
	resp := []Field{{":status", "200"}}
	tests := []struct {
		name     string
		response bool
		value    string
		body     string
		renders  bool // one length: rendered
		frames   bool // and it frames the DATA of a whole message
	}{
		{"request, length of the DATA", false, "3", "abc", true, true},
		{"request, a list that agrees", false, "3, 3", "abc", true, true},
		{"request, empty", false, "", "abc", false, false},
		{"request, not a number", false, "x", "abc", false, false},
		{"request, plus sign", false, "+3", "abc", false, false},
		{"request, minus zero", false, "-0", "", false, false},
		{"response, minus zero", true, "-0", "", false, false},
		{"request, a list that disagrees", false, "3, 4", "abc", false, false},
		{"request, more than the DATA (a cut body, or malformed)", false, "5", "abc", true, false},
		{"request, announced, no DATA", false, "5", "", true, false},
		{"response, length of the DATA", true, "3", "abc", true, true},
		{"response to HEAD: announced, no DATA", true, "5", "", true, true},
		{"response, less than the DATA", true, "2", "abc", true, false},
		{"response, empty", true, "", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := append(slices.Clone(req), Field{"content-length", tc.value})
			render, parse := AppendRequest, func(b []byte) error { _, err := httpraw.ParseRequest(b); return err }
			if tc.response {
				fs = append(slices.Clone(resp), Field{"content-length", tc.value})
				render, parse = AppendResponse, func(b []byte) error { _, err := httpraw.ParseResponse(b); return err }
			}
			out, err := render(nil, fs, []byte(tc.body), nil)
			if tc.renders != (err == nil) || (err != nil && !errors.Is(err, ErrField)) {
				t.Fatalf("rendered %q, err %v; want rendered %v", out, err, tc.renders)
			}
			err = LengthFrames(fs, len(tc.body), tc.response)
			if tc.frames != (err == nil) || (err != nil && !errors.Is(err, ErrField)) {
				t.Fatalf("LengthFrames: %v, want frames %v", err, tc.frames)
			}
			if tc.frames {
				if err := parse(out); err != nil {
					t.Fatalf("rendered %q does not parse: %v", out, err)
				}
			}
		})
	}
}

// TestEmptyFieldName: HPACK carries a field with an empty name; rendering
// it is refused (ErrField), not a panic. FuzzH2 found the panic.
func TestEmptyFieldName(t *testing.T) {
	if _, err := AppendRequest(nil, []Field{{":method", "GET"}, {":path", "/"}, {"", "x"}}, nil, nil); !errors.Is(err, ErrField) {
		t.Errorf("request: %v, want ErrField", err)
	}
	if _, err := AppendResponse(nil, []Field{{":status", "200"}, {"", "x"}}, nil, nil); !errors.Is(err, ErrField) {
		t.Errorf("response: %v, want ErrField", err)
	}
}

// TestNoContentStatusWithData: a 1xx, 204 or 304 response carries no
// content; one with DATA is refused (ErrField), as httpraw would refuse
// its rendering. FuzzH2 found a 304 with 4 bytes.
func TestNoContentStatusWithData(t *testing.T) {
	for _, st := range []string{"103", "204", "304"} {
		if _, err := AppendResponse(nil, []Field{{":status", st}}, []byte("0000"), nil); !errors.Is(err, ErrField) {
			t.Errorf("%s with DATA: %v, want ErrField", st, err)
		}
		if _, err := AppendResponse(nil, []Field{{":status", st}}, nil, nil); err != nil {
			t.Errorf("%s without DATA: %v", st, err)
		}
	}
}

// TestRequestLine: a :method that is not a token or a :path with a
// control byte, a space or DEL cannot be a request line; refused
// (ErrField). FuzzH2 found a :path with \x01.
func TestRequestLine(t *testing.T) {
	for _, c := range []struct{ method, path string }{
		{"GET", "/a\x01b"}, {"GET", "/a b"}, {"GET", "/a\x7f"}, {"GET", ""}, {"G(T", "/"}, {"", "/"}, {"G\tT", "/"},
	} {
		if out, err := AppendRequest(nil, []Field{{":method", c.method}, {":path", c.path}}, nil, nil); !errors.Is(err, ErrField) {
			t.Errorf("%q %q rendered %q (%v), want ErrField", c.method, c.path, out, err)
		}
	}
	out, err := AppendRequest(nil, []Field{{":method", "GET"}, {":path", "/a?b=%20&c=[1]"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := httpraw.ParseRequest(out); err != nil {
		t.Errorf("%q: %v", out, err)
	}
}

// TestParseRequestAbsoluteForm: an absolute-form target gives :authority
// (without userinfo) and :path, its query kept even without a path.
func TestParseRequestAbsoluteForm(t *testing.T) {
	for _, tc := range []struct{ target, authority, path string }{
		{"http://h", "h", "/"},
		{"http://h/p?x=1", "h", "/p?x=1"},
		{"http://h?x=1", "h", "/?x=1"},
		{"http://u:pw@h:8080?x=1", "h:8080", "/?x=1"},
		{"http://u@h/p", "h", "/p"},
		{"://h/p?x", "", "://h/p?x"}, // no scheme: not absolute-form, as httpraw reads it
		{"a?b://h/p", "", "a?b://h/p"},
	} {
		r, err := ParseRequest([]byte("GET " + tc.target + " HTTP/1.1\r\n\r\n"))
		if err != nil {
			t.Errorf("%s: %v", tc.target, err)
		} else if r.Authority != tc.authority || r.Path != tc.path {
			t.Errorf("%s: authority %q path %q, want %q %q", tc.target, r.Authority, r.Path, tc.authority, tc.path)
		}
	}
}
