package report

import (
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/shard"
)

// TestPostponedNote: report merge says why the run did not start at its
// start-at: it came less than the start margin after the last shard armed
// (the shard's Postponed), or, from a shard whose report does not say,
// that it had passed.
func TestPostponedNote(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	close := "the run's start-at came 300ms after the last shard armed, less than the start margin (1s) every shard needs to read that record: some would have started late"
	for _, c := range []struct{ postponed, want string }{
		{close, "the run's start-at 2026-05-01T12:00:00Z came 300ms after the last shard armed, less than the start margin (1s) every shard needs to read that record: some would have started late: every shard started together at the last armed instant plus the start margin, 2026-05-01T12:00:00.7Z, 700ms later"},
		{"", "the run's start-at 2026-05-01T12:00:00Z had passed when the last shard armed: every shard started together"},
	} {
		in := []*Input{{Shard: &shard.Info{Start: at.Add(700 * time.Millisecond), PlannedStart: at, Postponed: c.postponed}}}
		if got := strings.Join(postponedNote(in), "\n"); !strings.HasPrefix(got, c.want) {
			t.Errorf("note %q, want %q", got, c.want)
		}
	}
}
