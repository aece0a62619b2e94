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

// TestLossTotal counts each loss once: a packet lost inside a connection
// (kernel-drops, queue-overflow, snaplen-cut, fragments-incomplete) and the
// hole it leaves (capture-gaps) are one loss, where the total added them.
func TestLossTotal(t *testing.T) {
	for _, tc := range []struct {
		name string
		lost map[string]int64
		want int64
	}{
		{"nothing", map[string]int64{}, 0},
		{"a snaplen cut and its hole", map[string]int64{"snaplen-cut": 1, "capture-gaps": 1}, 1},
		{"a burst of drops, one hole", map[string]int64{"kernel-drops": 5, "capture-gaps": 1}, 5},
		{"holes of a mirror's drops", map[string]int64{"capture-gaps": 4, "fragments-incomplete": 1}, 4},
		{"packets and holes, and messages", map[string]int64{"queue-overflow": 2, "snaplen-cut": 1, "capture-gaps": 2, "spool-full": 10, "header-too-long": 1}, 14},
		{"a file cut short leaves no hole", map[string]int64{"file-cut-short": 1, "capture-gaps": 1}, 2},
		{"connections, header blocks", map[string]int64{"streams-dropped": 2, "h2-hpack-errors": 1, "total": 99}, 3},
	} {
		if got := LossTotal(tc.lost); got != tc.want {
			t.Errorf("%s: LossTotal(%v) = %d, want %d", tc.name, tc.lost, got, tc.want)
		}
	}
}
