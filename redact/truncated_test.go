package redact

import (
	"strings"
	"testing"
)

// TestTruncated redacts the head of a message whose body was cut at the
// capture limit: the message is kept, its secrets are not, and its partial
// body survives unless body rules would have to read it.
func TestTruncated(t *testing.T) {
	cut := strings.Repeat("x", 100) // of a 1000-byte body
	tests := []struct {
		name      string
		cfg       Config
		req       bool
		raw       string
		want      string
		wantCount Counts
	}{
		{"request headers and query", Config{Defaults: true, Query: []string{"token"}}, true,
			"POST /upload?token=s3cret&a=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc\r\nContent-Length: 1000\r\n\r\n" + cut,
			"POST /upload?token=REDACTED&a=1 HTTP/1.1\r\nHost: h\r\nAuthorization: REDACTED\r\nContent-Length: 1000\r\n\r\n" + cut,
			Counts{Headers: 1, Query: 1}},
		{"response headers", Config{Defaults: true}, false,
			"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/\r\nContent-Length: 1000\r\n\r\n" + cut,
			"HTTP/1.1 200 OK\r\nSet-Cookie: sid=REDACTED; Path=/\r\nContent-Length: 1000\r\n\r\n" + cut,
			Counts{Headers: 1}},
		{"chunked response cut mid-chunk", Config{Defaults: true}, false,
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCookie: a=b\r\n\r\n3e8\r\n" + cut,
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCookie: a=REDACTED\r\n\r\n3e8\r\n" + cut,
			Counts{Headers: 1}},
		{"body rules remove the partial body", Config{Defaults: true, JSON: []string{"$.password"}}, true,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"password\":\"hunter2\",\"pad\":\"" + cut,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
			Counts{BodiesCut: 1}},
		{"defaults mask named members of a partial JSON body", Config{Defaults: true}, true,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":\"ann\",\"password\":\"hunter2\",\"pad\":\"" + cut,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":\"ann\",\"password\":\"REDACTED\",\"pad\":\"" + cut,
			Counts{JSON: 1}},
		{"defaults mask a secret value cut at the end", Config{Defaults: true}, true,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":\"ann\",\"password\":\"hunt",
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":\"ann\",\"password\":\"REDACTED\"",
			Counts{JSON: 1}},
		{"defaults mask named fields of a partial form body", Config{Defaults: true}, true,
			"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuser=ann&password=hunter2&pad=" + cut,
			"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuser=ann&password=REDACTED&pad=" + cut,
			Counts{Form: 1}},
		{"a nested value under a secret name removes the partial body", Config{Defaults: true}, true,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"auth\":{\"k\":\"v\"},\"pad\":\"" + cut,
			"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
			Counts{BodiesCut: 1}},
		{"nothing to redact", Config{Defaults: true}, true,
			"PUT /f HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + cut,
			"PUT /f HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + cut,
			Counts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, tt.cfg)
			// The complete-message path refuses these messages.
			full := r.Response
			fn := r.ResponseTruncated
			if tt.req {
				full, fn = r.Request, r.RequestTruncated
			}
			if _, _, err := full([]byte(tt.raw)); err == nil && tt.wantCount.Redacted() > 0 {
				t.Errorf("the complete-message path accepted a truncated message")
			}
			out, c, err := fn([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out, tt.want)
			}
			if c != tt.wantCount {
				t.Errorf("counts %+v, want %+v", c, tt.wantCount)
			}
		})
	}
	// A head that is not complete is still an error.
	r := mustNew(t, Config{Defaults: true})
	if _, _, err := r.RequestTruncated([]byte("GET / HTTP/1.1\r\nAuthorization: x")); err == nil {
		t.Error("a request without a complete head was accepted")
	}
}
