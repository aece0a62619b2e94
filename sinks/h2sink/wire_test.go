package h2sink

import (
	"testing"

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
