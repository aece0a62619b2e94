package fleet

// The shard-specific glue: how a replay job is cut into shards and how one
// shard is handed to the engine. `replayctl run --shard i/N --run-id` has a
// key-hash planner (package shard) and an armed barrier; moving the fleet
// onto them replaces PlanShards, shardOptions and the fixed start lead, and
// nothing else in this package depends on how shards are made.

import (
	"fmt"
	"slices"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
)

// ReplayPlan is what every shard of a replay job shares.
type ReplayPlan struct {
	Window  string      `json:"window"`
	Topic   string      `json:"topic"`
	Shards  []ShardPlan `json:"shards"`
	StartAt time.Time   `json:"start-at"` // the one start instant of every shard
	// T0 is the capture time StartAt stands for: the window's start (its
	// first capture time that is not bogus), so that every shard places
	// its requests on one timeline; zero when the window has none.
	T0 time.Time `json:"t0,omitzero"`
}

// ShardPlan is one disjoint part of the window.
type ShardPlan struct {
	Index   int                     `json:"index"`
	Ranges  map[int32]catalog.Range `json:"ranges"`
	Records int64                   `json:"records"`
}

// PlanShards cuts w into n disjoint shards of whole partitions, bin-packed by
// record count (largest partition first onto the lightest shard), so that a
// recorded connection (one key, one partition) is never split.
func PlanShards(w catalog.Window, n int) ([]ShardPlan, error) {
	if n < 1 {
		return nil, fmt.Errorf("shards: %d, want at least 1", n)
	}
	parts := w.SortedPartitions()
	var nonEmpty []int32
	for _, p := range parts {
		if w.Partitions[p].Len() > 0 {
			nonEmpty = append(nonEmpty, p)
		}
	}
	if len(nonEmpty) < n {
		return nil, fmt.Errorf("window %q has records in %d partition(s); %d shards need at least as many (shards are made of whole partitions)", w.Name, len(nonEmpty), n)
	}
	slices.SortStableFunc(nonEmpty, func(a, b int32) int {
		la, lb := w.Partitions[a].Len(), w.Partitions[b].Len()
		switch {
		case la > lb:
			return -1
		case la < lb:
			return 1
		}
		return int(a - b)
	})
	shards := make([]ShardPlan, n)
	for i := range shards {
		shards[i] = ShardPlan{Index: i, Ranges: map[int32]catalog.Range{}}
	}
	for _, p := range nonEmpty {
		light := 0
		for i := range shards {
			if shards[i].Records < shards[light].Records {
				light = i
			}
		}
		shards[light].Ranges[p] = w.Partitions[p]
		shards[light].Records += w.Partitions[p].Len()
	}
	return shards, nil
}

// shardOptions sets what makes an engine run replay one shard only, on
// the timeline the job's shards share.
func shardOptions(opts engine.Options, plan *ReplayPlan, sh ShardPlan) engine.Options {
	opts.WindowRanges = sh.Ranges
	opts.TimelineOrigin = plan.T0
	return opts
}

// planT0 is the capture time a replay of w starts with: its start, unless
// it has none that is not bogus.
func planT0(w catalog.Window, now time.Time) time.Time {
	if w.StartedAt.IsZero() || message.BogusTime(w.StartedAt, now) {
		return time.Time{}
	}
	return w.StartedAt.UTC()
}

// NoTimeline says, for a replay job cut in shards, that they share no
// timeline: its window has no capture time that is not bogus (the plan's
// T0 is zero), so each shard sent its own first timed request at the start
// instant, and how its requests lie against the other shards' is not the
// recording's. "" for a job that has one, or one shard. jobs submit warns
// of it, and the shards' results, the job's and jobs show say it.
func NoTimeline(spec Spec) string {
	if spec.Replay == nil || !spec.Replay.T0.IsZero() || len(spec.Replay.Shards) < 2 {
		return ""
	}
	return fmt.Sprintf("window %q has no capture time that is not bogus (%s): the shards share no timeline, each sends its own first timed request at the start instant",
		spec.Replay.Window, message.BogusTimeRule)
}

// shardSets are the --set overrides every shard of a replay runs with: one
// start instant, so a shard re-run elsewhere stays on the same timeline.
// jobs are the scenario's job names (scenario.SetKey).
func shardSets(job string, jobs []string, plan *ReplayPlan) []string {
	return []string{fmt.Sprintf("jobs.%s.start-at=%s", scenario.SetKey(job, jobs), plan.StartAt.UTC().Format(time.RFC3339Nano))}
}

// readsWindow is the saved window (its catalog name) a replay source reads,
// as the engine resolves it: a windows: entry's recording, or the name
// itself; "" for a windows: entry of another kind.
func readsWindow(src scenario.Source) string {
	if src.Kind != scenario.SourceWindow {
		return ""
	}
	if ref := src.WindowRef; ref != nil {
		if ref.Kind != scenario.WindowRecording && ref.Kind != "" {
			return ""
		}
		return ref.Recording
	}
	return src.Window
}
