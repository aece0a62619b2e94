package serve

import (
	"encoding/base64"
	"math"
	"net/url"
	"strings"
	"testing"
)

// TestJobCursor: a cursor reads back as written, whatever the job ID, and
// orders jobs by their spec's offset on the jobs topic, newest first, then
// by ID descending, jobs with no spec last. A cursor of a serve that
// ordered by the time a spec claimed is not one.
func TestJobCursor(t *testing.T) {
	for _, c := range []jobCursor{
		{pos: 1234, id: "job-20261206T210004-e54b4ce1"},
		{pos: 0, id: "a job id with spaces / and slashes"},
		{pos: noSpec, id: "status-only"},
		{pos: math.MaxInt64, id: "the last offset"},
	} {
		got, err := parseJobCursor(c.String())
		if err != nil || got != c {
			t.Errorf("%+v read back as %+v (%v)", c, got, err)
		}
	}
	for _, raw := range []string{
		"1733519204.123456789 job-1", // by IssuedAt, before offsets
		"-2 job-1", "+5 job-1", "07 job-1", "-0 job-1", "5", "5 ", " job-1", "x job-1",
	} {
		if c, err := parseJobCursor(base64.RawURLEncoding.EncodeToString([]byte(raw))); err == nil {
			t.Errorf("%q read as %+v", raw, c)
		}
	}
	for _, c := range []struct {
		a, b jobCursor
		want bool
	}{
		{jobCursor{8, "a"}, jobCursor{7, "b"}, true},
		{jobCursor{7, "b"}, jobCursor{8, "a"}, false},
		{jobCursor{7, "b"}, jobCursor{7, "a"}, true},
		{jobCursor{7, "a"}, jobCursor{7, "b"}, false},
		{jobCursor{7, "a"}, jobCursor{7, "a"}, false},
		{jobCursor{0, "a"}, jobCursor{noSpec, "z"}, true},
		{jobCursor{noSpec, "z"}, jobCursor{noSpec, "a"}, true},
	} {
		if got := c.a.before(c.b); got != c.want {
			t.Errorf("%+v before %+v = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestPageOf(t *testing.T) {
	cur := jobCursor{pos: 1_800_000, id: "j1"}
	for _, c := range []struct {
		query  string
		limit  int
		before *jobCursor
		err    string
	}{
		{"", DefaultJobsLimit, nil, ""},
		{"limit=1", 1, nil, ""},
		{"limit=500&state=RUNNING", 500, nil, ""},
		{"state=ARMED", DefaultJobsLimit, nil, ""},
		{"state=armed", DefaultJobsLimit, nil, ""},
		{"state=ARMD", 0, nil, `state "ARMD": want one of PENDING, ASSIGNED, QUEUED, ARMED, RUNNING, SUCCEEDED, ASSERT_FAILED, FAILED, CANCELLED, REFUSED, LOST`},
		{"before=" + cur.String(), DefaultJobsLimit, &cur, ""},
		{"limit=7&before=" + cur.String(), 7, &cur, ""},
		{"limit=0", 0, nil, `limit "0": want 1 to 500`},
		{"limit=501", 0, nil, `limit "501": want 1 to 500`},
		{"limit=-3", 0, nil, "want 1 to 500"},
		{"limit=2.5", 0, nil, "want 1 to 500"},
		{"limit=", 0, nil, ""}, // empty: the default
		{"before=", 0, nil, "not a cursor"},
		{"before=%25%25", 0, nil, "not a cursor"},
		{"before=" + jobCursor{pos: cur.pos}.String(), 0, nil, "not a cursor"}, // no ID
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
		case limit != c.limit || (before == nil) != (c.before == nil) || before != nil && *before != *c.before:
			t.Errorf("%q: %d %+v, want %d %+v", c.query, limit, before, c.limit, c.before)
		}
	}
}
