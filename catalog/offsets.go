package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EndOffsets returns the end offset (high watermark) of every partition of
// topic: a record job takes them when it starts and again after its final flush.
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	l, err := adm.ListEndOffsets(ctx, topic)
	return offsets(l, err, topic, "end")
}

// StartOffsets returns the log start offset of every partition of topic.
func StartOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	l, err := adm.ListStartOffsets(ctx, topic)
	return offsets(l, err, topic, "start")
}

// ErrNoTopic is what the error about a topic the brokers do not have is
// (errors.Is).
var ErrNoTopic = errors.New("no such topic")

// noTopicError says that a topic is not on the brokers, in words: Kafka's
// UNKNOWN_TOPIC_OR_PARTITION says only that "this server does not host
// this topic-partition".
type noTopicError struct{ topic string }

func (e noTopicError) Error() string {
	return fmt.Sprintf("topic %s does not exist on these brokers: nothing was recorded into it there", e.topic)
}

func (e noTopicError) Is(target error) bool { return target == ErrNoTopic }

func noTopic(topic string) error { return noTopicError{topic} }

func offsets(l kadm.ListedOffsets, err error, topic, what string) (map[int32]int64, error) {
	if err != nil {
		return nil, fmt.Errorf("listing %s offsets of %s: %w", what, topic, err)
	}
	if err := l.Error(); errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, noTopic(topic)
	} else if err != nil {
		return nil, fmt.Errorf("listing %s offsets of %s: %w", what, topic, err)
	}
	ps, ok := l[topic]
	if !ok || len(ps) == 0 {
		return nil, noTopic(topic)
	}
	out := make(map[int32]int64, len(ps))
	for p, o := range ps {
		out[p] = o.Offset
	}
	return out, nil
}

// ResolveTimeRange returns, for every partition of topic, the offsets of the
// records whose timestamps fall in [from, to): the first offset at or after
// from, up to the first offset at or after to (the end offset where no record
// is that late). A zero to means "up to the end". Kafka timestamps have
// millisecond precision, so from and to are truncated to milliseconds.
func ResolveTimeRange(ctx context.Context, adm *kadm.Client, topic string, from, to time.Time) (map[int32]Range, error) {
	if !to.IsZero() && to.Before(from) {
		return nil, fmt.Errorf("time range of %s: end %s is before start %s", topic, to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	starts, err := afterMilli(ctx, adm, topic, from)
	if err != nil {
		return nil, err
	}
	var ends map[int32]int64
	if to.IsZero() {
		ends, err = EndOffsets(ctx, adm, topic)
	} else {
		ends, err = afterMilli(ctx, adm, topic, to)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]Range, len(starts))
	for p, s := range starts {
		e, ok := ends[p]
		if !ok || e < s {
			e = s
		}
		out[p] = Range{Start: s, End: e}
	}
	return out, nil
}

func afterMilli(ctx context.Context, adm *kadm.Client, topic string, t time.Time) (map[int32]int64, error) {
	l, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	out, err := offsets(l, err, topic, "timestamp")
	if errors.Is(err, ErrNoTopic) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("%w (at %s)", err, t.Format(time.RFC3339Nano))
	}
	return out, nil
}

// Check validates ranges of topic against the log: every partition must
// exist, no range may end past the partition's end offset, and no range may
// start before the log start offset (records deleted by retention). With
// allowPartial, ranges reaching before the log start are clamped instead and
// each clamp is described in the returned notes.
func Check(ctx context.Context, adm *kadm.Client, topic string, ranges map[int32]Range, allowPartial bool) (map[int32]Range, []string, error) {
	starts, err := StartOffsets(ctx, adm, topic)
	if err != nil {
		return nil, nil, err
	}
	ends, err := EndOffsets(ctx, adm, topic)
	if err != nil {
		return nil, nil, err
	}
	ps := make([]int32, 0, len(ranges))
	for p := range ranges {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })

	out := make(map[int32]Range, len(ranges))
	var problems, notes []string
	var gone int64
	pastEnd := false
	for _, p := range ps {
		r := ranges[p]
		if r.Start < 0 || r.End < r.Start {
			problems = append(problems, fmt.Sprintf("partition %d: invalid range [%d, %d)", p, r.Start, r.End))
			continue
		}
		ls, ok1 := starts[p]
		le, ok2 := ends[p]
		if !ok1 || !ok2 {
			problems = append(problems, fmt.Sprintf("partition %d does not exist (topic has %d partitions)", p, len(ends)))
			continue
		}
		if r.Len() == 0 {
			out[p] = r
			continue
		}
		if r.End > le {
			problems = append(problems, fmt.Sprintf("partition %d: range ends at offset %d but the partition ends at %d", p, r.End, le))
			pastEnd = true
			continue
		}
		if r.Start < ls {
			lost := min(ls, r.End) - r.Start
			msg := fmt.Sprintf("partition %d: %d of %d records are gone (log starts at %d, range [%d, %d))", p, lost, r.Len(), ls, r.Start, r.End)
			if !allowPartial {
				problems = append(problems, msg)
				gone += lost
				continue
			}
			notes = append(notes, msg+"; reading the rest")
			r.Start = min(ls, r.End)
		}
		out[p] = r
	}
	if len(problems) > 0 {
		hint := ""
		if pastEnd {
			hint = "; the window reaches past what the topic holds (end offsets are exclusive; a topic deleted and created again since starts at 0): end the range at most at the partition's end, or use from/to or last:"
		}
		if gone > 0 {
			hint += fmt.Sprintf("; %d records deleted by retention (allow-partial reads what is left)", gone)
		}
		return nil, notes, fmt.Errorf("window on %s does not match the log: %s%s", topic, strings.Join(problems, "; "), hint)
	}
	return out, notes, nil
}
