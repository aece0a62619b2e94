package h2sink

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/replayctl/replayctl/sinks/httpsink"
)

// BenchmarkSend replays GETs over h2c to a loopback Go server, 64 streams
// on 4 connections.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}), &http2.Server{}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	s, err := New(Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: 64}, MaxStreams: 16})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte("GET /api/v1/products/42?sort=price HTTP/2.0\r\nHost: shop.example.com\r\nuser-agent: bench\r\naccept: application/json\r\naccept-language: en-US\r\nx-request-id: 5f1c9a0e7b3d4c2a\r\ncookie: session=5f1c9a0e7b3d4c2a\r\n\r\n")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Send(context.Background(), httpsink.Request{Raw: raw, ID: fmt.Sprint(i), Scheduled: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if st := s.Stats(); st["errors"] != 0 {
		b.Fatalf("stats %v", st)
	}
}
