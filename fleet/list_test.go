package fleet

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestListNewestSubmittedFirst: jobs ls lists the newest submitted job
// first (by its spec's offset, a PENDING one first of all), as serve's
// History does, not by the last update: a job that ended late was listed
// above the jobs submitted after it.
func TestListNewestSubmittedFirst(t *testing.T) {
	f := newIDFleet(t)
	now := time.Now().UTC()
	for _, s := range []Status{
		{JobID: "first", State: Succeeded, SpecOffset: 1, At: now.Add(time.Minute)}, // ended last
		{JobID: "second", State: Succeeded, SpecOffset: 2, At: now},
		{JobID: "third", State: Running, SpecOffset: 3, At: now.Add(-time.Minute)},
		{JobID: "pending", State: Pending, At: now.Add(-2 * time.Minute)},
	} {
		s.Kind = KindReplay
		if err := f.bus.PublishStatus(f.ctx, jobKey(s.JobID), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	(&Client{bus: f.bus, Out: &out}).List()
	ids := regexp.MustCompile(`(?m)^(\S+)\s+replay`).FindAllStringSubmatch(out.String(), -1)
	var got []string
	for _, m := range ids {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != "pending third second first" {
		t.Errorf("jobs ls order %v, want pending third second first:\n%s", got, out.String())
	}
}
