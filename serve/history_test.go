package serve_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/serve"
)

// TestHistoryOrder: through a serve on loopback, GET /v1/jobs lists jobs by
// their spec's place on the jobs topic, newest first, never by the time a
// spec claims: a forged spec claiming it was issued in 2099 (unsigned, or
// signed by a key serve does not trust) stays below a real job published
// after it, and a real spec claiming an old time is not buried. Pages of
// any size list every job once, in that order, and a page asked for after
// more jobs came continues where the last one ended. Against an in-process
// embedded broker; with REPLAYCTL_TEST_KAFKA set, the real Kafka as well.
func TestHistoryOrder(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) { historySuite(t, target) })
	}
}

func historySuite(t *testing.T, target kafkatest.Target) {
	l := startLoopback(t, target)
	kind, sfx := "history-"+l.suffix, "-"+l.suffix
	_, rogue, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	y2099 := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	spec := func(id string, issued time.Time) fleet.Spec {
		return fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Selector: fleet.Selector{"role": "nobody"},
			Submitter: "token:alice" + sfx + " (replayctl serve)", IssuedAt: issued, ExpiresAt: issued.Add(time.Minute)}
	}
	// In the order published, oldest first.
	published := []struct {
		id  string
		key ed25519.PrivateKey
		at  time.Time
	}{
		{"real-1" + sfx, l.key, now.Add(-2 * time.Minute)},
		{"real-2" + sfx, l.key, now.Add(-time.Minute)},
		{"forged-2099" + sfx, nil, y2099},
		{"rogue-2099" + sfx, rogue, y2099.Add(time.Hour)},
		{"real-3" + sfx, l.key, now},
		{"real-late" + sfx, l.key, now.Add(-365 * 24 * time.Hour)}, // its signer's clock was off
	}
	for _, p := range published {
		l.publish(t, p.id, kind, seal(t, spec(p.id, p.at), p.key))
	}
	// Statuses with no spec (anyone may write one) come last, by ID.
	for _, id := range []string{"status-only-a" + sfx, "status-only-b" + sfx} {
		if err := l.bus.PublishStatus(context.Background(), "job/"+id, fleet.Status{JobID: id, Kind: kind, State: fleet.Failed, At: y2099}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, p := range slices.Backward(published) {
		want = append(want, p.id)
	}
	want = append(want, "status-only-b"+sfx, "status-only-a"+sfx)

	ids := func(js []serve.JobView) []string {
		out := make([]string, len(js))
		for i, j := range js {
			out[i] = j.ID
		}
		return out
	}
	q := l.base + "/v1/jobs?kind=" + kind
	var whole []serve.JobView
	if n := listAll(t, q+"&limit=500", l.read, &whole); n != 1 || !slices.Equal(ids(whole), want) {
		t.Fatalf("%d pages: %v\nwant one page: %v", n, ids(whole), want)
	}
	for i, v := range whole {
		hasSpec := i < len(published)
		switch {
		case hasSpec != (v.SpecOffset != nil):
			t.Errorf("%s: spec_offset %v", v.ID, v.SpecOffset)
		case hasSpec && i > 0 && *v.SpecOffset >= *whole[i-1].SpecOffset:
			t.Errorf("%s at offset %d follows %s at offset %d", v.ID, *v.SpecOffset, whole[i-1].ID, *whole[i-1].SpecOffset)
		}
	}
	byID := map[string]serve.JobView{}
	for _, v := range whole {
		byID[v.ID] = v
	}
	if f := byID["forged-2099"+sfx]; f.Verified || !f.IssuedAt.Equal(y2099) {
		t.Errorf("the forged spec: verified %v, issued_at %v (shown as it claims, unverified)", f.Verified, f.IssuedAt)
	}
	if r := byID["real-3"+sfx]; slices.Index(want, r.ID) > slices.Index(want, "forged-2099"+sfx) || !r.Verified {
		t.Errorf("real-3 (verified %v) is below the spec claiming 2099", r.Verified)
	}

	for _, limit := range []int{1, 2, 3, len(want) - 1, len(want)} {
		var paged []serve.JobView
		n := listAll(t, fmt.Sprintf("%s&limit=%d", q, limit), l.read, &paged)
		if pages := (len(want) + limit - 1) / limit; n != pages || !slices.Equal(ids(paged), want) {
			t.Errorf("pages of %d: %d pages %v\nwant %d pages %v", limit, n, ids(paged), pages, want)
		}
	}

	// Jobs that come between two pages, however late they claim to be,
	// are on the first page, not the next.
	resp, page1 := getPage(t, q+"&limit=3", l.read)
	if !slices.Equal(ids(page1), want[:3]) {
		t.Fatalf("the first page of 3: %v, want %v", ids(page1), want[:3])
	}
	next := nextLink(resp.Header)
	if next == "" {
		t.Fatal("no next page")
	}
	later := []string{"forged-later" + sfx, "real-later" + sfx}
	l.publish(t, later[0], kind, seal(t, spec(later[0], y2099), nil))
	l.publish(t, later[1], kind, seal(t, spec(later[1], now), l.key))
	_, page2 := getPage(t, l.base+next, l.read)
	if !slices.Equal(ids(page2), want[3:6]) {
		t.Errorf("the next page, asked after %v came: %v, want %v", later, ids(page2), want[3:6])
	}
	var again []serve.JobView
	listAll(t, q+"&limit=2", l.read, &again)
	if w := append([]string{later[1], later[0]}, want...); !slices.Equal(ids(again), w) {
		t.Errorf("after %v came: %v\nwant %v", later, ids(again), w)
	}
}
