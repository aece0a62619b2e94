package catalog

import "testing"

func TestLostText(t *testing.T) {
	tests := []struct {
		name         string
		lost         map[string]int64
		text, byUnit string
	}{
		{"nothing", map[string]int64{"total": 0}, "", ""},
		{"one message", map[string]int64{"spool-full": 1, "total": 1}, "spool-full 1 message", "1 message"},
		{"mixed units", map[string]int64{"spool-full": 10, "too-large": 2, "kernel-drops": 3, "capture-gaps": 1, "total": 16},
			"capture-gaps 1 hole, kernel-drops 3 packets, spool-full 10 messages, too-large 2 messages",
			"12 messages, 1 hole, 3 packets"},
		{"no messages", map[string]int64{"queue-overflow": 5, "file-cut-short": 1, "streams-dropped": 2, "h2-hpack-errors": 1},
			"file-cut-short 1 packet, h2-hpack-errors 1 header block, queue-overflow 5 packets, streams-dropped 2 connections",
			"2 connections, 1 header block, 6 packets"},
		{"zero causes skipped", map[string]int64{"too-large": 0, "unredactable": 4}, "unredactable 4 messages", "4 messages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := LostText(tc.lost); got != tc.text {
				t.Errorf("LostText = %q, want %q", got, tc.text)
			}
			if got := LostByUnit(tc.lost); got != tc.byUnit {
				t.Errorf("LostByUnit = %q, want %q", got, tc.byUnit)
			}
		})
	}
}
