package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/message"
)

// TestRecordOlderThanRetention records a capture of months ago (t0) into a
// topic that keeps records for 7 days: Kafka would delete them at its next
// retention check, so the job refuses the first message, says why and how
// to keep them, and writes nothing. The same recording into a topic that
// keeps records for ever (the embedded broker's default and the test
// broker's) is saved.
func TestRecordOlderThanRetention(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", evenly(5, time.Millisecond))
			yaml := func(topic, config string) string {
				return fmt.Sprintf(`version: 1
name: retention
topics:
  traffic: {name: %s, create: true%s}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
    save-window: %s
`, topic, config, unique(t, "win"))
			}
			opts := engine.Options{Brokers: bc.brokers, DataDir: dir + "/data"}

			week := unique(t, "week")
			r := run(t, dir, yaml(week, `, config: {retention.ms: "604800000"}`), opts)
			if r.err == nil {
				t.Fatalf("recording a capture of %s into a topic keeping 7 days succeeded:\n%s", t0.Format(time.DateOnly), r.out)
			}
			for _, want := range []string{"retention.ms 604800000", "captured at 2026-03-01T12:00:00Z", "nothing was recorded", "topics.traffic.config.retention.ms", week} {
				if !strings.Contains(r.err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, r.err)
				}
			}
			if n := topicRecords(t, bc.brokers, dir, week); n != 0 {
				t.Errorf("%d records written to %s, want none", n, week)
			}

			// Live traffic into a topic keeping 10 minutes is kept: the
			// margin is half the retention, not an hour.
			short := unique(t, "short")
			now := evenly(3, time.Millisecond)
			for i := range now {
				now[i].at += time.Since(t0) // captured now
			}
			writeGor(t, dir, "now.gor", now)
			if r := run(t, dir, strings.Replace(yaml(short, `, config: {retention.ms: "600000"}`), "rec.gor", "now.gor", 1), opts); r.err != nil {
				t.Fatalf("recording a capture of now into a topic keeping 10 minutes: %v\n%s", r.err, r.out)
			}

			kept := unique(t, "kept")
			if r := run(t, dir, yaml(kept, ""), opts); r.err != nil {
				t.Fatalf("recording into a topic with the broker's default retention: %v\n%s", r.err, r.out)
			}
			if n := topicRecords(t, bc.brokers, dir, kept); n != 10 {
				t.Errorf("%d records in %s, want the 5 requests and their 5 responses", n, kept)
			}
		})
	}
}

// topicRecords counts the records of topic (end − start offsets) on the
// brokers, or on the embedded broker of dataDir when brokers is empty.
func topicRecords(t *testing.T, brokers []string, dir, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers, closeBroker := brokersOf(ctx, t, brokers, dir)
	defer closeBroker()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			n += o.Offset - s.Offset
		}
	})
	return n
}

// topicTime is a record's Kafka timestamp next to the capture time its
// payload carries.
type topicTime struct {
	timestamp, captured time.Time
	bogus               bool
}

// topicTimes reads every record of topic (as topicRecords finds the
// brokers) with its timestamps.
func topicTimes(t *testing.T, brokers []string, dir, topic string) []topicTime {
	t.Helper()
	n := topicRecords(t, brokers, dir, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers, closeBroker := brokersOf(ctx, t, brokers, dir)
	defer closeBroker()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []topicTime
	for int64(len(out)) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(out), n, topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			m, err := message.DecodePayload(r.Value)
			if err != nil {
				t.Fatalf("record %d: %v", r.Offset, err)
			}
			at := time.Unix(0, m.Time)
			out = append(out, topicTime{timestamp: r.Timestamp, captured: at, bogus: message.BogusTime(at, time.Now())})
		})
	}
	return out
}

// brokersOf returns brokers, or, when it is empty, the addresses of the
// embedded broker of dir's data dir, opened until the returned func runs.
func brokersOf(ctx context.Context, t *testing.T, brokers []string, dir string) ([]string, func()) {
	t.Helper()
	if len(brokers) > 0 {
		return brokers, func() {}
	}
	cat, err := engine.OpenCatalog(ctx, nil, engine.Options{DataDir: dir + "/data"})
	if err != nil {
		t.Fatal(err)
	}
	return cat.Brokers, func() { cat.Close() }
}
