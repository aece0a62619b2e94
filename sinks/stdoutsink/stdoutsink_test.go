package stdoutsink

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
)

func TestFormats(t *testing.T) {
	m := &message.Message{Kind: message.Request, ID: "abc", ConnID: "c1", Time: 1_700_000_000_000_000_000,
		Raw: []byte("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")}
	tests := []struct {
		format string
		want   string
	}{
		{"", string(m.Payload()) + gorfile.Separator},
		{"payload", string(m.Payload()) + gorfile.Separator},
		{"summary", "2023-11-14T22:13:20Z request abc c1 28 \"GET /x HTTP/1.1\"\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		s, err := New(&buf, tt.format)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("format %q: got %q, want %q", tt.format, buf.String(), tt.want)
		}
		if s.Stats()["written"] != 1 {
			t.Errorf("format %q: stats %v", tt.format, s.Stats())
		}
	}
	if _, err := New(&bytes.Buffer{}, "xml"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("unknown format: %v", err)
	}
}
