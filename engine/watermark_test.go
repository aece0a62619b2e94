package engine

import (
	"testing"

	"github.com/replayctl/replayctl/catalog"
)

func TestWatermark(t *testing.T) {
	w := newWatermark()
	if w.value() != 0 {
		t.Fatal("watermark before any request")
	}
	w.sent("a", 10, 1)
	w.sent("b", 20, 2) // two targets
	w.sent("c", 30, 1)
	if got := w.value(); got != 10 {
		t.Fatalf("in flight a,b,c: %d, want 10", got)
	}
	w.done("a")
	w.done("c")
	if got := w.value(); got != 20 {
		t.Fatalf("b in flight: %d, want 20", got)
	}
	w.done("b")
	if got := w.value(); got != 20 {
		t.Fatalf("b answered by one of two targets: %d, want 20", got)
	}
	w.done("b")
	if got := w.value(); got != 30 {
		t.Fatalf("all answered: %d, want 30 (c's own time: a request captured at the same instant may not be emitted yet)", got)
	}
	// One captured at the same instant as c, emitted after the value was
	// read, is not below it: a resumed run sends it.
	w.sent("d", 30, 1)
	w.done("d")
	if got := w.value(); got != 30 {
		t.Fatalf("after d at the same instant: %d, want 30", got)
	}
	w.done("unknown") // a result of a request not tracked changes nothing
	if got := w.value(); got != 30 {
		t.Fatalf("after an unknown result: %d", got)
	}
}

func TestRestrictWindow(t *testing.T) {
	w := catalog.Window{Requests: 50, Responses: 50, Messages: 100, Partitions: map[int32]catalog.Range{
		0: {Start: 0, End: 60}, 1: {Start: 0, End: 40},
	}}
	got := restrictWindow(w, map[int32]catalog.Range{1: {Start: 10, End: 40}, 7: {Start: 0, End: 9}})
	if len(got.Partitions) != 1 || got.Partitions[1] != (catalog.Range{Start: 10, End: 40}) {
		t.Fatalf("partitions: %v", got.Partitions)
	}
	if got.Requests != 15 || got.Messages != 30 {
		t.Fatalf("counts: %d requests, %d messages", got.Requests, got.Messages)
	}
	if len(w.Partitions) != 2 {
		t.Fatal("the original window changed")
	}
}
