package stats

import (
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                     "0",
		133 * time.Microsecond:                "0.133ms",
		12500 * time.Microsecond:              "12.5ms",
		9999 * time.Millisecond:               "9999.0ms",
		12 * time.Second:                      "12s",
		90*time.Second + 400*time.Microsecond: "1m30s",
		-420 * time.Microsecond:               "-0.420ms",
		-12 * time.Second:                     "-12s",
	} {
		if got := DurationText(d); got != want {
			t.Errorf("DurationText(%v) = %q, want %q", d, got, want)
		}
	}
}
