package fleet

import (
	"testing"
	"time"
)

// TestResumeString: where a re-run starts, as reasons and logs say it.
func TestResumeString(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC).UnixNano()
	for _, tc := range []struct {
		r    *Resume
		want string
	}{
		{nil, "from the shard's first request"},
		{&Resume{}, "from the shard's first request"},
		{&Resume{At: 1}, "at request 2 (the one before it was answered)"},
		{&Resume{At: 58}, "at request 59 (the 58 before it were answered)"},
		{&Resume{At: 58, Time: at}, "at request 59, captured 2026-12-07T12:00:00Z (the 58 before it were answered)"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
