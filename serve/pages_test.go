package serve

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestJobCursor: a cursor reads back as written, whatever the job ID and
// the time's zone, and orders jobs newest first, then by ID descending.
func TestJobCursor(t *testing.T) {
	at := time.Date(2026, 12, 6, 21, 0, 4, 123456789, time.FixedZone("x", 2*3600))
	for _, c := range []jobCursor{
		{at: at, id: "job-20261206T210004-e54b4ce1"},
		{at: at, id: "a job id with spaces / and slashes"},
		{at: time.Time{}, id: "status-only"},
		{at: time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("y", 3600)), id: "year -1 in UTC"},
		{at: time.Date(9999, 12, 31, 23, 30, 0, 999999999, time.FixedZone("z", -3600)), id: "year 10000 in UTC"},
	} {
		got, err := parseJobCursor(c.String())
		if err != nil || !got.at.Equal(c.at) || got.id != c.id {
			t.Errorf("%+v read back as %+v (%v)", c, got, err)
		}
	}
	later := at.Add(time.Nanosecond)
	for _, c := range []struct {
		a, b jobCursor
		want bool
	}{
		{jobCursor{later, "a"}, jobCursor{at, "b"}, true},
		{jobCursor{at, "b"}, jobCursor{later, "a"}, false},
		{jobCursor{at, "b"}, jobCursor{at, "a"}, true},
		{jobCursor{at, "a"}, jobCursor{at, "b"}, false},
		{jobCursor{at, "a"}, jobCursor{at, "a"}, false},
		{jobCursor{at, "a"}, jobCursor{time.Time{}, "z"}, true},
		{jobCursor{at.UTC(), "b"}, jobCursor{at, "a"}, true}, // one instant, two zones
	} {
		if got := c.a.before(c.b); got != c.want {
			t.Errorf("%+v before %+v = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestPageOf(t *testing.T) {
	cur := jobCursor{at: time.Unix(1_800_000_000, 0), id: "j1"}
	for _, c := range []struct {
		query  string
		limit  int
		before *jobCursor
		err    string
	}{
		{"", DefaultJobsLimit, nil, ""},
		{"limit=1", 1, nil, ""},
		{"limit=500&state=RUNNING", 500, nil, ""},
		{"before=" + cur.String(), DefaultJobsLimit, &cur, ""},
		{"limit=7&before=" + cur.String(), 7, &cur, ""},
		{"limit=0", 0, nil, `limit "0": want 1 to 500`},
		{"limit=501", 0, nil, `limit "501": want 1 to 500`},
		{"limit=-3", 0, nil, "want 1 to 500"},
		{"limit=2.5", 0, nil, "want 1 to 500"},
		{"limit=", 0, nil, ""}, // empty: the default
		{"before=", 0, nil, "not a cursor"},
		{"before=%25%25", 0, nil, "not a cursor"},
		{"before=" + jobCursor{at: cur.at}.String(), 0, nil, "not a cursor"}, // no ID
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		limit, before, err := pageOf(q)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.query, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.query, err)
		case c.query == "limit=":
			if limit != DefaultJobsLimit || before != nil {
				t.Errorf("%q: %d %v", c.query, limit, before)
			}
		case limit != c.limit || (before == nil) != (c.before == nil) || before != nil && (!before.at.Equal(c.before.at) || before.id != c.before.id):
			t.Errorf("%q: %d %+v, want %d %+v", c.query, limit, before, c.limit, c.before)
		}
	}
}
