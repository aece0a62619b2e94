package capturesrc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/message"
)

// TestRunStops checks that a live capture on lo ends with ctx and reports
// its counters (the capture itself is tested in package capture).
func TestRunStops(t *testing.T) {
	src := New("lo", capture.LiveConfig{Config: capture.Config{Ports: []uint16{1}}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := src.Run(ctx, func(*message.Message) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	if _, ok := src.Stats()["kernel-drops"]; !ok {
		t.Errorf("stats %v", src.Stats())
	}
	if err := New("no-such-if0", capture.LiveConfig{}).Run(context.Background(), func(*message.Message) error { return nil }); err == nil {
		t.Error("unknown interface: no error")
	}
}
