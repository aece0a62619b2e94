package engine

import (
	"fmt"
	"testing"
)

func TestIDSetBounded(t *testing.T) {
	s := newIDSet(10)
	for i := 0; i < 35; i++ {
		s.add(fmt.Sprint(i))
	}
	if len(s.cur)+len(s.prev) > 20 {
		t.Fatalf("holds %d ids, want at most 20", len(s.cur)+len(s.prev))
	}
	if !s.take("34") || !s.take("25") || s.take("34") {
		t.Fatal("recent ids must be found once")
	}
	if s.take("3") {
		t.Fatal("old id still remembered")
	}
	if s.forgotten != 20 {
		t.Fatalf("forgotten = %d, want 20", s.forgotten)
	}
}
