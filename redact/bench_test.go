package redact

import (
	"testing"
)

// benchRequest is a realistic GET request (about 480 bytes, 11 headers).
const benchRequest = "GET /api/v1/products/1234?sort=price&page=3 HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://shop.example.com/catalog?category=running\r\n" +
	"X-Request-Id: 7f3c2a9e0b1d4e5f8a6b\r\n" +
	"Sec-Fetch-Mode: cors\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Connection: keep-alive\r\n\r\n"

// benchResponse is a small JSON response.
const benchResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json\r\n" +
	"Date: Thu, 26 Nov 2026 02:04:46 GMT\r\n" +
	"Content-Length: 55\r\n\r\n" +
	`{"ok":true,"method":"GET","path":"/hello","received":0}`

// secretRequest is benchRequest with an Authorization header and a Cookie.
const secretRequest = "GET /api/v1/products/1234?sort=price&page=3 HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"X-Request-Id: 7f3c2a9e0b1d4e5f8a6b\r\n" +
	"Cookie: session=5f1c9a0e7b3d4c2a; theme=dark\r\n" +
	"Connection: keep-alive\r\n\r\n"

// secretResponse sets a cookie.
const secretResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json\r\n" +
	"Set-Cookie: sid=abc123; Path=/; HttpOnly\r\n" +
	"Content-Length: 55\r\n\r\n" +
	`{"ok":true,"method":"GET","path":"/hello","received":0}`

func benchPair(b *testing.B, reqRaw, respRaw string) {
	r, err := New(Config{Defaults: true})
	if err != nil {
		b.Fatal(err)
	}
	rq, rs := []byte(reqRaw), []byte(respRaw)
	b.SetBytes(int64(len(rq) + len(rs)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Request(rq); err != nil {
			b.Fatal(err)
		}
		if _, _, err := r.Response(rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedactNoSecrets redacts a request and its response (default
// header list) that carry no secret: the common case of a capture job.
func BenchmarkRedactNoSecrets(b *testing.B) { benchPair(b, benchRequest, benchResponse) }

// BenchmarkRedactWithSecrets redacts a request with Authorization and Cookie
// and a response with Set-Cookie.
func BenchmarkRedactWithSecrets(b *testing.B) { benchPair(b, secretRequest, secretResponse) }
