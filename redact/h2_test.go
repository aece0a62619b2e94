package redact

import (
	"strings"
	"testing"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/httpraw"
)

// TestH2Message: a request captured from HTTP/2 (lower-case names, a
// trailer in the header section) is redacted like an HTTP/1.x one, and its
// JSON body keeps a right Content-Length.
func TestH2Message(t *testing.T) {
	raw, err := h2text.AppendRequest(nil, []h2text.Field{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/v1/pay"}, {Name: ":authority", Value: "api"},
		{Name: "authorization", Value: "Bearer secret"}, {Name: "content-type", Value: "application/json"}}, []byte(`{"card":{"number":"4111111111111111"},"n":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Defaults: true, JSON: []string{"$.card.number"}})
	if err != nil {
		t.Fatal(err)
	}
	out, counts, err := r.Request(raw)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Headers != 1 || counts.JSON != 1 || strings.Contains(string(out), "secret") || strings.Contains(string(out), "4111") {
		t.Fatalf("redacted %q (%+v)", out, counts)
	}
	req, err := httpraw.ParseRequest(out)
	if err != nil || req.Proto() != h2text.Proto {
		t.Fatalf("%q: %v", out, err)
	}
	if _, err := h2text.ParseRequest(out); err != nil {
		t.Fatal(err)
	}
}
