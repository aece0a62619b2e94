package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openCatalog opens the catalog on topic of target's brokers.
func openCatalog(t *testing.T, target kafkatest.Target, topic string) *catalog.Catalog {
	t.Helper()
	cl := target.Client(t)
	cat, err := catalog.Open(ctxT(t), cl, kadm.NewClient(cl), topic)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func window(name string) catalog.Window {
	return catalog.Window{
		Name: name, Topic: "traffic",
		Partitions:  map[int32]catalog.Range{0: {Start: 3, End: 10}, 1: {Start: 0, End: 0}},
		RecordingID: "rec-1", Scenario: "checkout", Job: "record",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), EndedAt: time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC),
		Messages: 7, Requests: 4, Responses: 3,
		Hosts: []string{"web-1"}, Destinations: []string{"10.0.0.1:8080"},
	}
}

func TestCatalogSaveGetListRemove(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			cl := target.Client(t)
			topic := kafkatest.UniqueTopic(t)
			cat, err := catalog.Open(ctxT(t), cl, kadm.NewClient(cl), topic)
			if err != nil {
				t.Fatal(err)
			}
			if ws, err := cat.List(ctxT(t)); err != nil || len(ws) != 0 {
				t.Fatalf("empty catalog List = %v, %v", ws, err)
			}
			a, b := window("a"), window("b")
			for _, w := range []catalog.Window{b, a} {
				if err := cat.Save(ctxT(t), w, false); err != nil {
					t.Fatal(err)
				}
			}
			got, err := cat.Get(ctxT(t), "a")
			if err != nil {
				t.Fatal(err)
			}
			if got.CreatedAt.IsZero() {
				t.Fatal("CreatedAt not set")
			}
			got.CreatedAt = time.Time{}
			if !reflect.DeepEqual(got, a) {
				t.Fatalf("Get = %+v\nwant %+v", got, a)
			}

			err = cat.Save(ctxT(t), a, false)
			if !errors.Is(err, catalog.ErrExists) || !strings.Contains(err.Error(), `window "a" already exists (saved 20`) || !strings.Contains(err.Error(), "--overwrite") {
				t.Fatalf("Save over existing = %v", err)
			}
			a2 := a
			a2.Messages = 99
			if err := cat.Save(ctxT(t), a2, true); err != nil {
				t.Fatalf("overwrite: %v", err)
			}
			if got, _ := cat.Get(ctxT(t), "a"); got.Messages != 99 {
				t.Fatalf("after overwrite Messages = %d", got.Messages)
			}

			if err := cat.Remove(ctxT(t), "b"); err != nil {
				t.Fatal(err)
			}
			if err := cat.Remove(ctxT(t), "b"); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("Remove unknown = %v", err)
			}
			if _, err := cat.Get(ctxT(t), "b"); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("Get removed = %v", err)
			}
			ws, err := cat.List(ctxT(t))
			if err != nil || len(ws) != 1 || ws[0].Name != "a" {
				t.Fatalf("List = %+v, %v", ws, err)
			}

			// A record that is not a window is counted, not fatal.
			if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Key: []byte("junk"), Value: []byte("{not json")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if ws, err := cat.List(ctxT(t)); err != nil || len(ws) != 1 || cat.Invalid() != 1 {
				t.Fatalf("List with junk = %d windows, %v, invalid %d", len(ws), err, cat.Invalid())
			}

			// Open again on the existing topic.
			if _, err := catalog.Open(ctxT(t), cl, kadm.NewClient(cl), topic); err != nil {
				t.Fatalf("reopen: %v", err)
			}
		})
	}
}

// TestRemoveSeveralAllOrNone: Remove of several names looks every one up
// first; with one unknown it removes nothing and names each unknown one.
func TestRemoveSeveralAllOrNone(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			cl := target.Client(t)
			cat, err := catalog.Open(ctxT(t), cl, kadm.NewClient(cl), kafkatest.UniqueTopic(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"a", "b", "c"} {
				if err := cat.Save(ctxT(t), window(n), false); err != nil {
					t.Fatal(err)
				}
			}
			err = cat.Remove(ctxT(t), "a", "nosuch", "b", "gone")
			if !errors.Is(err, catalog.ErrNotFound) || !strings.Contains(err.Error(), `no windows "nosuch", "gone" in catalog`) {
				t.Fatalf("Remove with unknown names = %v", err)
			}
			if ws, err := cat.List(ctxT(t)); err != nil || len(ws) != 3 {
				t.Fatalf("after a refused Remove, List = %+v, %v; want a, b, c", ws, err)
			}
			if err := cat.Remove(ctxT(t), "a", "c", "a"); err != nil {
				t.Fatal(err)
			}
			if ws, err := cat.List(ctxT(t)); err != nil || len(ws) != 1 || ws[0].Name != "b" {
				t.Fatalf("after Remove a c a, List = %+v, %v; want b", ws, err)
			}
		})
	}
}

func TestCatalogSurvivesEmbeddedRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)
	open := func() (*kafkaio.Embedded, *kgo.Client, *catalog.Catalog) {
		e, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...))
		if err != nil {
			t.Fatal(err)
		}
		cat, err := catalog.Open(ctx, cl, kadm.NewClient(cl), "")
		if err != nil {
			t.Fatal(err)
		}
		return e, cl, cat
	}
	e, cl, cat := open()
	if err := cat.Save(ctx, window("kept"), false); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e, cl, cat = open()
	defer e.Close()
	defer cl.Close()
	w, err := cat.Get(ctx, "kept")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if w.Messages != 7 || w.Partitions[0] != (catalog.Range{Start: 3, End: 10}) {
		t.Fatalf("after restart: %+v", w)
	}
}

func TestResolveTimeRangeAndCheck(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			cl := target.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			adm := kadm.NewClient(cl)
			// Partition 0: records at base+0s..9s; partition 1 stays empty.
			for i := range 10 {
				r := &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)}
				if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			tests := []struct {
				name     string
				from, to time.Time
				want     map[int32]catalog.Range
			}{
				{"middle", base.Add(2 * time.Second), base.Add(5 * time.Second), map[int32]catalog.Range{0: {Start: 2, End: 5}, 1: {Start: 0, End: 0}}},
				{"to open end", base.Add(8 * time.Second), time.Time{}, map[int32]catalog.Range{0: {Start: 8, End: 10}, 1: {Start: 0, End: 0}}},
				{"past the end", base.Add(time.Hour), base.Add(2 * time.Hour), map[int32]catalog.Range{0: {Start: 10, End: 10}, 1: {Start: 0, End: 0}}},
				{"before the start", base.Add(-time.Hour), base.Add(500 * time.Millisecond), map[int32]catalog.Range{0: {Start: 0, End: 1}, 1: {Start: 0, End: 0}}},
			}
			for _, tt := range tests {
				got, err := catalog.ResolveTimeRange(ctxT(t), adm, topic, tt.from, tt.to)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: ResolveTimeRange = %v, want %v", tt.name, got, tt.want)
				}
			}
			if _, err := catalog.ResolveTimeRange(ctxT(t), adm, topic, base, base.Add(-time.Second)); err == nil {
				t.Error("reversed time range accepted")
			}

			// Delete the first 4 records of partition 0, as retention would.
			if _, err := adm.DeleteRecords(ctxT(t), func() kadm.Offsets {
				o := kadm.Offsets{}
				o.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
				return o
			}()); err != nil {
				t.Fatal(err)
			}
			ok := map[int32]catalog.Range{0: {Start: 4, End: 10}, 1: {Start: 0, End: 0}}
			if got, notes, err := catalog.Check(ctxT(t), adm, topic, ok, false); err != nil || len(notes) != 0 || !reflect.DeepEqual(got, ok) {
				t.Fatalf("Check valid = %v, %v, %v", got, notes, err)
			}
			partial := map[int32]catalog.Range{0: {Start: 1, End: 6}}
			_, _, err := catalog.Check(ctxT(t), adm, topic, partial, false)
			if err == nil || !strings.Contains(err.Error(), "partition 0: 3 of 5 records are gone") {
				t.Fatalf("Check partial = %v", err)
			}
			got, notes, err := catalog.Check(ctxT(t), adm, topic, partial, true)
			if err != nil || len(notes) != 1 || got[0] != (catalog.Range{Start: 4, End: 6}) {
				t.Fatalf("Check allow-partial = %v, %v, %v", got, notes, err)
			}
			for name, bad := range map[string]map[int32]catalog.Range{
				"past end":          {0: {Start: 4, End: 11}},
				"unknown partition": {7: {Start: 0, End: 1}},
				"reversed":          {0: {Start: 6, End: 5}},
			} {
				if _, _, err := catalog.Check(ctxT(t), adm, topic, bad, true); err == nil {
					t.Errorf("Check %s accepted", name)
				}
			}
			// A range past the end says what to do about it.
			_, _, err = catalog.Check(ctxT(t), adm, topic, map[int32]catalog.Range{0: {Start: 4, End: 11}}, false)
			if err == nil || !strings.Contains(err.Error(), "partition 0: range ends at offset 11 but the partition ends at 10; the window reaches past what the topic holds (end offsets are exclusive; a topic deleted and created again since starts at 0): end the range at most at the partition's end, or use from/to or last:") {
				t.Errorf("Check past end = %v", err)
			}
		})
	}
}

func TestBetween(t *testing.T) {
	got := catalog.Between(map[int32]int64{0: 5, 1: 9}, map[int32]int64{0: 8, 1: 7, 2: 3})
	want := map[int32]catalog.Range{0: {Start: 5, End: 8}, 1: {Start: 7, End: 7}, 2: {Start: 0, End: 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Between = %v, want %v", got, want)
	}
}

// TestNoTopic: offsets, time ranges and checks of a topic the brokers do
// not have say so in words (ErrNoTopic), not as Kafka's
// UNKNOWN_TOPIC_OR_PARTITION ("this server does not host this
// topic-partition") with the instant asked.
func TestNoTopic(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			cl := target.Client(t)
			adm := kadm.NewClient(cl)
			topic := kafkatest.UniqueTopic(t)
			now := time.Now()
			for name, call := range map[string]func() error{
				"end offsets": func() error { _, err := catalog.EndOffsets(ctxT(t), adm, topic); return err },
				"time range": func() error {
					_, err := catalog.ResolveTimeRange(ctxT(t), adm, topic, now.Add(-time.Hour), now)
					return err
				},
				"check": func() error {
					_, _, err := catalog.Check(ctxT(t), adm, topic, map[int32]catalog.Range{0: {Start: 0, End: 1}}, false)
					return err
				},
			} {
				err := call()
				want := "topic " + topic + " does not exist on these brokers: nothing was recorded into it there"
				if !errors.Is(err, catalog.ErrNoTopic) || err.Error() != want {
					t.Errorf("%s: %v, want %q", name, err, want)
				}
			}
		})
	}
}
