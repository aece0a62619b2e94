package gorsink_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/gorsink"
	"github.com/replayctl/replayctl/sources/gorsrc"
)

func TestSinkThenSourceRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"requests_0.gor", "requests_0.gor.gz"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", name)
			s, err := gorsink.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []*message.Message
			for i := 0; i < 50; i++ {
				m := &message.Message{Kind: message.Request, ID: message.NewID(), Time: int64(1000 + i),
					Raw: []byte("GET /" + string(rune('a'+i%26)) + " HTTP/1.1\r\nHost: x\r\n\r\n")}
				want = append(want, m)
				if err := s.Write(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var got []*message.Message
			src := gorsrc.New(filepath.Join(filepath.Dir(path), "requests_*"), nil)
			if err := src.Run(ctx, func(m *message.Message) error { got = append(got, m); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if string(got[i].Payload()) != string(want[i].Payload()) {
					t.Fatalf("message %d = %q, want %q", i, got[i].Payload(), want[i].Payload())
				}
			}
			if st := src.Stats(); st["messages"] != 50 || st["bad-payloads"] != 0 || st["files"] != 1 {
				t.Fatalf("stats = %v", st)
			}
		})
	}
}
