package kafkasink_test

import (
	"testing"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
)

// TestRecordProtoHeader: a message captured from HTTP/2 says so in a
// record header; an HTTP/1.x one has no such header.
func TestRecordProtoHeader(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"POST /pkg.Svc/M HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/2.0"},
		{"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/2.0"},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", ""},
	} {
		r := kafkasink.Record("t", &message.Message{Kind: message.Request, ID: "x", Raw: []byte(tt.raw)}, "", "")
		got := ""
		for _, h := range r.Headers {
			if h.Key == kafkasink.HeaderProto {
				got = string(h.Value)
			}
		}
		if got != tt.want {
			t.Errorf("%q: %s = %q, want %q", tt.raw, kafkasink.HeaderProto, got, tt.want)
		}
	}
}
