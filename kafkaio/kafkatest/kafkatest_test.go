package kafkatest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
)

// TestDropTopicsAfter checks that a test's topics go when it ends, and that
// topics that were there before it, or do not carry its mark, stay.
func TestDropTopicsAfter(t *testing.T) {
	for _, target := range Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			adm := target.Admin(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			create := func(name string) {
				t.Helper()
				if _, err := kafkaio.EnsureTopic(ctx, adm, name, 1, 1, nil); err != nil {
					t.Fatalf("creating %s: %v", name, err)
				}
			}
			unique := UniqueTopic(t)
			mark := "-Mark" + unique[len(unique)-12:] // upper case: the mark matches case aside
			before := "replayctl-test-before" + mark
			other := unique + "-other"
			mine := "replayctl-test-mine" + mark
			create(before)
			t.Run("inner", func(t *testing.T) {
				DropTopicsAfter(t, target.Addrs, mark)
				create(other)
				create(mine)
			})
			deadline := time.Now().Add(15 * time.Second)
			for {
				names, err := listTopics(target.Addrs)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(names, mine) {
					if !slices.Contains(names, before) || !slices.Contains(names, other) {
						t.Fatalf("topics that are not the test's went too: %v", names)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s is still there 15 s after its test ended", mine)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if _, err := adm.DeleteTopics(ctx, before, other); err != nil {
				t.Fatal(err)
			}
		})
	}
}
