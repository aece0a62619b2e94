package engine

import (
	"testing"

	"github.com/replayctl/replayctl/catalog"
)

func TestWatermark(t *testing.T) {
	w := newWatermark()
	if got := w.value(); got != (ResumePoint{}) {
		t.Fatalf("before any request: %+v", got)
	}
	w.handling(10)
	if got := w.value(); got != (ResumePoint{Position: 0, Time: 10}) {
		t.Fatalf("first request waiting for its instant: %+v", got)
	}
	w.sent("a", 0, 10, 1)
	w.sent("b", 1, 20, 2) // two targets
	w.handling(5)         // filtered out below
	w.handled(2)
	w.sent("c", 3, 30, 1)
	if got := w.value(); got != (ResumePoint{Position: 0, Time: 10}) {
		t.Fatalf("a, b, c in flight: %+v", got)
	}
	w.done("a")
	w.done("c")
	if got := w.value(); got != (ResumePoint{Position: 1, Time: 20}) {
		t.Fatalf("b in flight: %+v", got)
	}
	w.done("b")
	if got := w.value(); got.Position != 1 {
		t.Fatalf("b answered by one of two targets: %+v", got)
	}
	w.done("b")
	if got := w.value(); got != (ResumePoint{Position: 4}) {
		t.Fatalf("all answered: %+v, want position 4 (the next request, not read yet)", got)
	}
	w.done("unknown") // a result of a request not tracked changes nothing
	if got := w.value(); got.Position != 4 {
		t.Fatalf("after an unknown result: %+v", got)
	}
}

// TestWatermarkOutOfCaptureOrder: a window's merged stream is not sorted by
// capture time (the brokers keep records in arrival order, from several
// hosts). A request captured before one already answered, still to come,
// is after the resume point: a capture time would have skipped it.
func TestWatermarkOutOfCaptureOrder(t *testing.T) {
	w := newWatermark()
	w.sent("x", 0, 1000, 1) // captured at 1000
	w.done("x")
	w.handling(1500) // waiting for its scheduled instant
	// Still to come: position 2, captured at 500.
	got := w.value()
	if got != (ResumePoint{Position: 1, Time: 1500}) {
		t.Fatalf("resume point %+v, want position 1", got)
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
