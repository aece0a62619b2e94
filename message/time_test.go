package message

import (
	"testing"
	"time"
)

// TestBogusTime: the capture times a .gor file can carry that cannot be
// real are bogus; a real one, one a little ahead of the clock (a capturing
// host's), are not.
func TestBogusTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		at    time.Time
		bogus bool
	}{
		{"now", now, false},
		{"a year ago", now.AddDate(-1, 0, 0), false},
		{"2000", EarliestTime, false},
		{"an hour ahead", now.Add(time.Hour), false},
		{"a day ahead", now.Add(FutureSlack), false},
		{"zero", time.Unix(0, 0), true},
		{"negative", time.Unix(0, -5), true},
		{"seconds read as ns", time.Unix(0, 1_772_366_400), true},
		{"milliseconds read as ns", time.Unix(0, 1_772_366_400_000), true},
		{"1999", EarliestTime.Add(-time.Nanosecond), true},
		{"a day and a second ahead", now.Add(FutureSlack + time.Second), true},
		{"2255", time.Unix(0, 9e18), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BogusTime(tt.at, now); got != tt.bogus {
				t.Errorf("BogusTime(%v) = %v, want %v", tt.at, got, tt.bogus)
			}
		})
	}
}
