package fleet

import (
	"testing"

	"github.com/replayctl/replayctl/catalog"
)

func TestPlanShards(t *testing.T) {
	w := catalog.Window{Name: "w", Partitions: map[int32]catalog.Range{
		0: {Start: 0, End: 100}, 1: {Start: 10, End: 40}, 2: {Start: 5, End: 75}, 3: {Start: 0, End: 0}, 4: {Start: 0, End: 50},
	}}
	shards, err := PlanShards(w, 2)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int32]int{}
	var total int64
	for _, s := range shards {
		for p, r := range s.Ranges {
			seen[p]++
			if r != w.Partitions[p] {
				t.Fatalf("partition %d cut: %v", p, r)
			}
			total += r.Len()
		}
	}
	if total != w.Records() || len(seen) != 4 {
		t.Fatalf("shards cover %d records in %d partitions: %+v", total, len(seen), shards)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("partition %d in %d shards", p, n)
		}
	}
	// Largest first onto the lightest: {0 (100), 1 (30)} and {2 (70), 4 (50)}.
	if shards[0].Records != 130 || shards[1].Records != 120 {
		t.Fatalf("balance: %d / %d", shards[0].Records, shards[1].Records)
	}
	again, _ := PlanShards(w, 2)
	for i := range shards {
		if len(again[i].Ranges) != len(shards[i].Ranges) || again[i].Records != shards[i].Records {
			t.Fatal("planning is not deterministic")
		}
	}
	if _, err := PlanShards(w, 5); err == nil {
		t.Fatal("5 shards of 4 non-empty partitions")
	}
	if _, err := PlanShards(w, 0); err == nil {
		t.Fatal("0 shards")
	}
}
