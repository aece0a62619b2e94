package serve_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/serve"
)

// TestLossyWindowIsPartial: a window whose recording lost messages (saved
// partial in the catalog by `replayctl run`, no fleet job) is partial in
// GET /v1/windows and GET /v1/windows/{name}, with what it lost by cause
// in its unit; a complete one is not.
func TestLossyWindowIsPartial(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := catalog.Open(ctx, target.Client(t), kadm.NewClient(target.Client(t)), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	lossy, whole := "lossy-"+l.suffix, "whole-"+l.suffix
	for _, w := range []catalog.Window{
		{Name: lossy, Topic: "t-" + l.suffix, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}, Requests: 5, Responses: 5,
			Partial: true, Lost: map[string]int64{"kernel-drops": 3, "spool-full": 2, catalog.LostTotal: 5}},
		{Name: whole, Topic: "t-" + l.suffix, Partitions: map[int32]catalog.Range{0: {Start: 10, End: 20}}, Requests: 5, Responses: 5},
	} {
		if err := cat.Save(ctx, w, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cat.Remove(context.Background(), w.Name) })
	}
	const reason = "the recording lost kernel-drops 3 packets, spool-full 2 messages"
	var w serve.WindowView
	if code := call(t, "GET", l.base+"/v1/windows/"+lossy, l.read, nil, &w); code != 200 {
		t.Fatalf("GET /v1/windows/%s: %d", lossy, code)
	}
	if !w.Partial || len(w.PartialReasons) != 1 || w.PartialReasons[0] != reason {
		t.Errorf("GET /v1/windows/%s: partial %v %q, want true [%q]", lossy, w.Partial, w.PartialReasons, reason)
	}
	var ws []serve.WindowView
	if code := call(t, "GET", l.base+"/v1/windows", l.read, nil, &ws); code != 200 {
		t.Fatalf("GET /v1/windows: %d", code)
	}
	seen := 0
	for _, v := range ws {
		switch v.Name {
		case lossy:
			seen++
			if !v.Partial || !strings.Contains(strings.Join(v.PartialReasons, ";"), reason) {
				t.Errorf("GET /v1/windows: %s partial %v %q", lossy, v.Partial, v.PartialReasons)
			}
		case whole:
			seen++
			if v.Partial || len(v.PartialReasons) > 0 {
				t.Errorf("GET /v1/windows: complete window %s partial %v %q", whole, v.Partial, v.PartialReasons)
			}
		}
	}
	if seen != 2 {
		t.Errorf("GET /v1/windows lists %d of the 2 windows", seen)
	}
}
