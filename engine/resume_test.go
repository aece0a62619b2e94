package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestResumeByPosition stops a replay part-way, as a lost agent would, and
// resumes it from the last resume point it reported: every request reaches
// the target once, though the source's order is not capture-time order
// (a window merged from partitions that several hosts wrote). Request 3 was
// captured before request 1, which is answered when the resume point is
// taken while request 2 waits for its instant: a resume by capture time
// would skip request 3, never sent.
func TestResumeByPosition(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	at := []time.Duration{0, 300 * time.Millisecond, 1800 * time.Millisecond, 100 * time.Millisecond, 1900 * time.Millisecond}
	reqs := make([]req, len(at))
	for i, d := range at {
		reqs[i] = req{at: d, raw: get(fmt.Sprintf("/r/%d", i))}
	}
	writeGor(t, dir, "rec.gor", reqs)
	tg := newTarget(t)
	yaml := replayYAML(tg.URL(), "speed: 1\nsink: {http: {target: app, workers: 2}}")

	var mu sync.Mutex
	var points []engine.ResumePoint
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := runCtx(t, ctx, dir, yaml, engine.Options{
		OnProgress: func(string, string) {},
		OnResumePoint: func(p engine.ResumePoint) {
			mu.Lock()
			points = append(points, p)
			mu.Unlock()
			cancel() // stopped after its first resume point (at 1 s)
		},
	})
	if first.err == nil {
		t.Fatalf("the first run was not stopped:\n%s", first.out)
	}
	mu.Lock()
	p := points[0]
	mu.Unlock()
	// At 1 s requests 0 and 1 are answered and request 2 waits for its
	// instant (1.8 s): position 2, unless a very loaded machine had not
	// answered request 1 yet (then it is sent again, counted below).
	if p.Position > 2 {
		t.Fatalf("resume point %+v: past request 2, not sent yet", p)
	}
	if got := len(tg.requests()); got != 2 {
		t.Fatalf("first run sent %d requests, want 2", got)
	}

	// Every request sent again may have been sent before (an upper bound).
	second := run(t, dir, yaml, engine.Options{Resume: &p, DuplicatesBefore: time.Now().Add(time.Hour)})
	if second.err != nil {
		t.Fatalf("resumed run: %v\n%s", second.err, second.out)
	}
	var paths []string
	for _, g := range tg.requests() {
		paths = append(paths, g.Path)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	if want := []string{"/r/0", "/r/1", "/r/2", "/r/3", "/r/4"}; !slices.Equal(paths, want) {
		t.Fatalf("target got %v over both runs, want every request: %v\n%s", paths, want, second.out)
	}
	if dups := len(tg.requests()) - len(at); dups != 2-int(p.Position) {
		t.Fatalf("%d requests sent twice, resumed at %d", dups, p.Position)
	}
	for _, want := range []string{fmt.Sprintf("resume-skipped=%d", p.Position), fmt.Sprintf("possible-duplicates=%d", int64(len(at))-p.Position)} {
		if !strings.Contains(second.out, want) && !strings.HasSuffix(want, "=0") {
			t.Errorf("resumed run's summary lacks %s:\n%s", want, second.out)
		}
	}
}

// TestResumeOtherOrder: a resume point counted in another order of the
// source (other reorder settings, an earlier version) is not used: the
// run starts from its first request rather than skip the wrong ones.
func TestResumeOtherOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", evenly(5, time.Millisecond))
	tg := newTarget(t)
	yaml := replayYAML(tg.URL(), "speed: max")
	for _, c := range []struct {
		order string
		sent  int
	}{{"window v1: an order this gor source does not have", 5}, {"", 2}} {
		before := len(tg.requests())
		res := run(t, dir, yaml, engine.Options{Resume: &engine.ResumePoint{Position: 3, Order: c.order}, DuplicatesBefore: time.Now().Add(time.Hour)})
		if res.err != nil {
			t.Fatalf("resumed run: %v\n%s", res.err, res.out)
		}
		if got := len(tg.requests()) - before; got != c.sent {
			t.Fatalf("order %q: sent %d, want %d\n%s", c.order, got, c.sent, res.out)
		}
		if skipped := strings.Contains(res.out, "resume-skipped=3"); skipped != (c.sent == 2) {
			t.Fatalf("order %q: resume-skipped shown %v\n%s", c.order, skipped, res.out)
		}
	}
}
