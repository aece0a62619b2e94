package catalog_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestConcurrentSavesOneWinner saves one name from two catalogs (two
// clients, as two jobs would) at the same time (both claim before either
// decides), 20 times per mode, on
// the embedded broker and the real Kafka: exactly one save wins each time,
// the other is told (ErrConflict or ErrExists) and replaced nothing, and
// the catalog holds the winner's window.
func TestConcurrentSavesOneWinner(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.UniqueTopic(t)
			open := func() *catalog.Catalog { return openCatalog(t, target, topic) }
			cats := [2]*catalog.Catalog{open(), open()}
			// Each round, both saves claim before either reads the catalog:
			// they overlap however the goroutines are scheduled.
			var claimed sync.WaitGroup
			for _, c := range cats {
				catalog.SetAfterClaim(c, func() {
					claimed.Done()
					claimed.Wait()
				})
			}
			for _, mode := range []catalog.SaveMode{catalog.Create, catalog.Overwrite, catalog.KeepHistory} {
				for round := range 20 {
					name := fmt.Sprintf("race-%s-%d", mode, round)
					if mode != catalog.Create {
						// Replacing: an old window is there.
						old := window(name)
						old.RecordingID = "old"
						claimed.Add(1)
						if err := cats[0].Save(ctxT(t), old, false); err != nil {
							t.Fatal(err)
						}
					}
					claimed.Add(2)
					var (
						wg    sync.WaitGroup
						start = make(chan struct{})
						errs  [2]error
						saved [2]catalog.Saved
					)
					for i := range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							w := window(name)
							w.RecordingID = fmt.Sprintf("job-%d", i)
							<-start
							saved[i], errs[i] = cats[i].SaveAs(ctxT(t), w, mode)
						}()
					}
					close(start)
					wg.Wait()
					winner := -1
					for i, err := range errs {
						switch {
						case err == nil:
							if winner >= 0 {
								t.Fatalf("%s: both saves won", name)
							}
							winner = i
						case errors.Is(err, catalog.ErrConflict):
							if !strings.Contains(err.Error(), "nothing replaced") {
								t.Errorf("%s: the loser's error does not say nothing was replaced: %v", name, err)
							}
						case mode == catalog.Create && errors.Is(err, catalog.ErrExists):
						default:
							t.Fatalf("%s: save %d: %v", name, i, err)
						}
					}
					if winner < 0 {
						t.Fatalf("%s: no save won: %v", name, errs)
					}
					got, err := cats[1-winner].Get(ctxT(t), name)
					if err != nil {
						t.Fatal(err)
					}
					if want := fmt.Sprintf("job-%d", winner); got.RecordingID != want {
						t.Fatalf("%s: catalog holds recording %q, want the winner's %q", name, got.RecordingID, want)
					}
					if mode != catalog.Create && (saved[winner].Replaced == nil || saved[winner].Replaced.RecordingID != "old") {
						t.Fatalf("%s: the winner replaced %+v, want the old window", name, saved[winner].Replaced)
					}
					if mode == catalog.KeepHistory {
						kept, err := cats[0].Get(ctxT(t), saved[winner].KeptAs)
						if err != nil || kept.RecordingID != "old" {
							t.Fatalf("%s: history %q = %+v, %v", name, saved[winner].KeptAs, kept, err)
						}
					}
				}
			}
			// Claims are not windows: List neither shows nor counts them.
			ws, err := cats[0].List(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if strings.Contains(w.Name, "claim") {
					t.Errorf("List shows a claim: %+v", w)
				}
			}
			if n := cats[0].Invalid(); n != 0 {
				t.Errorf("List counted %d invalid records (the claims?)", n)
			}
		})
	}
}

// TestAbandonedClaimExpires: a save that claimed a name and died blocks
// other saves of that name for ClaimTTL only.
func TestAbandonedClaimExpires(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.UniqueTopic(t)
			cat := openCatalog(t, target, topic)
			cat.ClaimTTL = 2 * time.Second
			// What a save that died right after its claim leaves behind.
			dead := &kgo.Record{Topic: topic, Key: []byte("replayctl.claim/w"), Value: []byte(`{"name":"w","claim":"dead","mode":0,"job":"crashed"}`),
				Headers: []kgo.RecordHeader{{Key: "replayctl-catalog", Value: []byte("claim")}}}
			if err := target.Client(t).ProduceSync(ctxT(t), dead).FirstErr(); err != nil {
				t.Fatal(err)
			}
			err := cat.Save(ctxT(t), window("w"), false)
			if !errors.Is(err, catalog.ErrConflict) || !strings.Contains(err.Error(), "job crashed") {
				t.Fatalf("save while the dead claim holds: %v", err)
			}
			if _, err := cat.Get(ctxT(t), "w"); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("the losing save wrote a window: %v", err)
			}
			time.Sleep(2100 * time.Millisecond)
			if err := cat.Save(ctxT(t), window("w"), false); err != nil {
				t.Fatalf("save after the dead claim expired: %v", err)
			}
			if _, err := cat.Get(ctxT(t), "w"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRemoveThenSave: a removed name can be saved again (Create), and a
// claim in Create mode on a taken name loses even with no race.
func TestRemoveThenSave(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	cl := target.Client(t)
	cat, err := catalog.Open(ctxT(t), cl, kadm.NewClient(cl), kafkatest.UniqueTopic(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := cat.Save(ctx, window("x"), false); err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(ctx, window("x"), false); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("second save = %v, want ErrExists", err)
	}
	if err := cat.Remove(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(ctx, window("x"), false); err != nil {
		t.Fatalf("save after remove: %v", err)
	}
}

// TestSaveNeedsOnePartition: the catalog's order decides between saves, so
// a catalog topic with more partitions is refused with a clear error.
func TestSaveNeedsOnePartition(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	topic := kafkatest.CreateTopic(t, target, 2)
	cat := openCatalog(t, target, topic)
	if err := cat.Save(ctxT(t), window("w"), false); err == nil || !strings.Contains(err.Error(), "has 2 partitions; it needs exactly 1") {
		t.Fatalf("save to a 2-partition catalog = %v", err)
	}
}

// TestSaveRefusesAClaimKey: a window named with the claims' key prefix
// would be read as a claim (never listed, compacted away by the claims of
// the name after the prefix): it is refused before anything is written.
func TestSaveRefusesAClaimKey(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	topic := kafkatest.UniqueTopic(t)
	cat := openCatalog(t, target, topic)
	if err := cat.Save(ctxT(t), window("replayctl.claim/w"), false); err == nil || !strings.Contains(err.Error(), `"replayctl.claim/" starts the keys of the catalog's claims`) {
		t.Fatalf("save of a claim key = %v", err)
	}
	ws, err := cat.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 0 {
		t.Errorf("catalog holds %v after a refused save", ws)
	}
}

// TestKeepHistoryWithinOneSecond: windows of one name saved within one
// second have one NAME@<save time>; each --keep-history save keeps the
// window it replaces under a name of its own (NAME@<save time>-2, …)
// instead of overwriting the copy kept before it.
func TestKeepHistoryWithinOneSecond(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	topic := kafkatest.UniqueTopic(t)
	cat := openCatalog(t, target, topic)
	at := time.Date(2026, 12, 7, 0, 0, 2, 0, time.UTC)
	var kept []string
	for i := range 4 {
		w := window("w")
		w.RecordingID = fmt.Sprintf("rec-%d", i)
		w.CreatedAt = at.Add(time.Duration(i) * 100 * time.Millisecond)
		s, err := cat.SaveAs(ctxT(t), w, catalog.KeepHistory)
		if err != nil {
			t.Fatal(err)
		}
		if s.KeptAs != "" {
			kept = append(kept, s.KeptAs)
		}
	}
	want := []string{"w@20261207T000002Z", "w@20261207T000002Z-2", "w@20261207T000002Z-3"}
	if fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Errorf("kept as %v, want %v", kept, want)
	}
	ws, err := cat.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, w := range ws {
		recs = append(recs, w.Name+"="+w.RecordingID)
	}
	if got := strings.Join(recs, " "); got != "w=rec-3 w@20261207T000002Z=rec-0 w@20261207T000002Z-2=rec-1 w@20261207T000002Z-3=rec-2" {
		t.Errorf("catalog holds %s", got)
	}
}

// TestSaveOnce: two saves of one recording's window at once (the agents of
// a multi-host recording ending together) both succeed: the one whose
// claim came second waits for the first's window and finds it of its
// recording. A window of another recording is still a conflict.
func TestSaveOnce(t *testing.T) {
	target := kafkatest.Brokers(t)[0]
	topic := kafkatest.UniqueTopic(t)
	first, second := openCatalog(t, target, topic), openCatalog(t, target, topic)
	for _, c := range []struct {
		name, recording string
		ok              bool
	}{
		{"same recording", "rec-1", true},
		{"another recording", "rec-2", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "w-" + c.recording
			claimed, release := make(chan struct{}), make(chan struct{})
			catalog.SetAfterClaim(first, func() { close(claimed); <-release })
			defer catalog.SetAfterClaim(first, nil)
			w := window(name)
			w.RecordingID = "rec-1"
			done := make(chan error, 1)
			go func() { done <- first.SaveOnce(ctxT(t), w) }()
			<-claimed
			mine := window(name)
			mine.RecordingID = c.recording
			got := make(chan error, 1)
			go func() { got <- second.SaveOnce(ctxT(t), mine) }()
			time.Sleep(300 * time.Millisecond) // the second save lost to the claim and waits
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("first save: %v", err)
			}
			err := <-got
			if c.ok && err != nil || !c.ok && !errors.Is(err, catalog.ErrConflict) {
				t.Fatalf("second save = %v, want ok %v", err, c.ok)
			}
		})
	}
}
