package pcapsrc

import (
	"context"
	"errors"
	"testing"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/message"
)

func TestRunQuickstart(t *testing.T) {
	src := New("../../examples/quickstart.pcap", capture.Config{Ports: []uint16{8080}, Responses: true})
	var n int
	var last int64
	err := src.Run(context.Background(), func(m *message.Message) error {
		if m.Time < last {
			t.Errorf("message %d out of capture-time order", n)
		}
		last = m.Time
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	if n != 400 || st["requests"] != 200 || st["responses"] != 200 {
		t.Errorf("%d messages, stats %v", n, st)
	}
}

func TestRunErrors(t *testing.T) {
	if err := New("no/such/file.pcap", capture.Config{}).Run(context.Background(), func(*message.Message) error { return nil }); err == nil {
		t.Error("missing file: no error")
	}
	stop := errors.New("stop")
	err := New("../../examples/quickstart.pcap", capture.Config{Ports: []uint16{8080}}).Run(context.Background(), func(*message.Message) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("emit error not returned: %v", err)
	}
}
