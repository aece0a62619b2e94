package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/sinks/kafkasink"
)

// TestRecordBogusCaptureTimes records a .gor file whose timestamps are in
// part bogus (zero, negative, seconds where nanoseconds belong, two
// centuries ahead): every message is recorded and replayed as it is, the
// summary counts the bogus ones, and the saved window's capture time is
// that of the others, with their count, not 1970 to 2226.
func TestRecordBogusCaptureTimes(t *testing.T) {
	epoch := -time.Duration(t0.UnixNano()) // writeGor's times are after t0
	reqs := evenly(6, 100*time.Millisecond)
	reqs[1].at = epoch                      // 0
	reqs[2].at = epoch - 5*time.Second      // negative
	reqs[3].at = epoch + 1_772_366_400      // seconds, read as ns: 1970
	reqs[4].at = 200 * 365 * 24 * time.Hour // far in the future
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", reqs)
			tg := newTarget(t)
			win := unique(t, "bogus")
			yaml := strings.Replace(kafkaYAML(unique(t, "catalog"), unique(t, "bogus"), win, tg.URL(), ""), "speed: max", "speed: 1\n    max-gap: 10ms", 1)
			var logs syncBuffer
			opts := engine.Options{Brokers: bc.brokers, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			r := run(t, dir, yaml, opts)
			if r.err != nil {
				t.Fatalf("run: %v\n%s", r.err, r.out)
			}
			for _, want := range []string{
				"recorded  6 requests  6 responses",
				"times     8 message(s) with a bogus capture time (zero, negative, before 2000 or more than a day ahead of the clock)",
				"bogus-capture-times=8",
				"requests  sent 6  ok 6  errors 0",
			} {
				if !strings.Contains(r.out, want) {
					t.Errorf("summary lacks %q:\n%s", want, r.out)
				}
			}
			// The bogus ones keep their place between /r/0 and /r/5: not
			// sorted to the front (1970) nor held to the end (2226).
			if got := tg.requests(); len(got) == 6 && (got[0].Path != "/r/0" || got[5].Path != "/r/5" || strings.Contains(r.out, "out-of-order")) {
				var paths []string
				for _, g := range got {
					paths = append(paths, g.Path)
				}
				t.Errorf("the target got %v, want /r/0 first and /r/5 last, nothing out of order:\n%s", paths, r.out)
			}
			if n := tg.count(); n != 6 {
				t.Errorf("the target got %d requests, want all 6", n)
			}
			if !strings.Contains(logs.String(), "messages with a bogus capture time recorded as they are") {
				t.Errorf("the record job does not warn of the bogus times:\n%s", logs.String())
			}
			// max-gap paces them: no warning of a wait of years.
			if strings.Contains(logs.String(), "waits out the gaps to them, which may be years") {
				t.Errorf("a replay with max-gap is warned of the gaps:\n%s", logs.String())
			}
			w, _ := openWindow(t, opts, yaml, dir, win)
			wantEnd := t0.Add(500*time.Millisecond + time.Millisecond)
			if w.BogusTimes != 8 || !w.StartedAt.Equal(t0) || !w.EndedAt.Equal(wantEnd) || w.Messages != 12 {
				t.Errorf("window: bogus %d, captured %v → %v, messages %d; want 8, %v → %v, 12", w.BogusTimes, w.StartedAt, w.EndedAt, w.Messages, t0, wantEnd)
			}
		})
	}
}

// TestReplayBogusTimesUntimed: a paced replay (speed 1, no max-gap) of a
// .gor file with bogus capture times (zero first, two centuries ahead in
// the middle) sends each of them right after the request before it, and
// the others on their own timeline: it does not wait out decades, and it
// says how many it could not place.
func TestReplayBogusTimesUntimed(t *testing.T) {
	dir := t.TempDir()
	reqs := evenly(4, 100*time.Millisecond)
	reqs = append([]req{{at: -time.Duration(t0.UnixNano()), raw: get("/zero")}}, reqs...)
	reqs = slices.Insert(reqs, 3, req{at: 200 * 365 * 24 * time.Hour, raw: get("/future")})
	writeGor(t, dir, "rec.gor", reqs)
	tg := newTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	r := runCtx(t, ctx, dir, fmt.Sprintf(`version: 1
name: untimed
targets:
  local: {url: %q}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: 1
    sink: {http: {target: local}}
`, tg.URL()), engine.Options{DataDir: t.TempDir()})
	took := time.Since(start)
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	for _, want := range []string{"sent 6  ok 6", "untimed 2: requests with a bogus capture time"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.out)
		}
	}
	if took < 300*time.Millisecond || took > 10*time.Second {
		t.Errorf("the replay took %v: want the 300 ms of its real times, not the bogus ones' decades", took)
	}
}

// TestRecordBogusTimeOlderThanRetention records bogus capture times (a
// .gor file's seconds read as nanoseconds: 1970; and two centuries ahead)
// into a topic that keeps 7 days: the record job does not refuse them as
// older than the retention, and Kafka, which refuses timestamps far ahead
// of its clock and deletes old ones, gets the time each record is written;
// the payload keeps the capture time the replay reads.
func TestRecordBogusTimeOlderThanRetention(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			reqs := evenly(4, time.Millisecond)
			reqs[0].at = -time.Duration(t0.UnixNano()) + 1_772_366_400 // seconds, read as ns
			reqs[1].at = 200 * 365 * 24 * time.Hour                    // far ahead
			reqs[2].at = time.Since(t0)                                // now
			reqs[3].at = time.Since(t0) + 2*time.Hour                  // a clock 2 h ahead: not bogus, but Kafka 4 refuses it
			writeGor(t, dir, "rec.gor", reqs)
			week := unique(t, "week")
			before := time.Now().Add(-time.Second)
			r := run(t, dir, fmt.Sprintf(`version: 1
name: retention
topics:
  traffic: {name: %s, create: true, config: {retention.ms: "604800000"}}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
`, week), engine.Options{Brokers: bc.brokers, DataDir: dir + "/data"})
			if r.err != nil {
				t.Fatalf("run: %v\n%s", r.err, r.out)
			}
			if !strings.Contains(r.out, "bogus-capture-times=4") || !strings.Contains(r.out, "sink.timestamps-of-write=6") {
				t.Errorf("summary does not count 4 bogus capture times and 6 records (2 h ahead included) written with the time of writing:\n%s", r.out)
			}
			recs := topicTimes(t, bc.brokers, dir, week)
			if len(recs) != 8 {
				t.Fatalf("%d records in %s, want 8", len(recs), week)
			}
			for _, rec := range recs {
				if ahead := rec.captured.After(time.Now().Add(kafkasink.MaxTimestampAhead)); ahead {
					rec.bogus = true // written with the time of writing too
				}
				if rec.bogus && (rec.timestamp.Before(before) || rec.timestamp.After(time.Now().Add(time.Minute))) {
					t.Errorf("record with capture time %v has Kafka timestamp %v, want the time it was written", rec.captured, rec.timestamp)
				}
				if !rec.bogus && !rec.timestamp.Equal(rec.captured.Truncate(time.Millisecond)) { // Kafka keeps milliseconds
					t.Errorf("record with capture time %v has Kafka timestamp %v, want the capture time", rec.captured, rec.timestamp)
				}
			}
		})
	}
}
