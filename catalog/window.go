// Package catalog names Kafka offset ranges as windows (recordings) and keeps
// them in a compacted Kafka topic, so every host that reaches the cluster sees
// the same recordings. It also resolves time ranges and checks explicit
// offsets against the log.
package catalog

import (
	"sort"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
)

// Range is the half-open offset range [Start, End) of one partition.
type Range = kafkaio.OffsetRange

// Window is a named slice of a topic plus what is known about its content.
type Window struct {
	Name        string          `json:"name"`
	Topic       string          `json:"topic"`
	Partitions  map[int32]Range `json:"partitions"`
	RecordingID string          `json:"recording-id,omitempty"`
	Scenario    string          `json:"scenario,omitempty"`
	Job         string          `json:"job,omitempty"`
	// StartedAt and EndedAt are the first and last capture times of the
	// messages, leaving out the bogus ones (zero when all are).
	StartedAt time.Time `json:"started-at,omitzero"`
	EndedAt   time.Time `json:"ended-at,omitzero"`
	// BogusTimes counts the messages whose capture time cannot be real
	// (message.BogusTime, as a .gor file can have them): they are in the
	// window and replay, but StartedAt and EndedAt leave them out.
	BogusTimes int64    `json:"bogus-times,omitempty"`
	Messages   int64    `json:"messages"`
	Requests   int64    `json:"requests"`
	Responses  int64    `json:"responses"`
	Hosts      []string `json:"hosts,omitempty"`
	// HostRequests counts the requests each host recorded (windows
	// recorded by several fleet agents).
	HostRequests map[string]int64 `json:"host-requests,omitempty"`
	Destinations []string         `json:"destinations,omitempty"`
	CreatedAt    time.Time        `json:"created-at,omitzero"`
	// Partial is set when the recording lost messages; Lost says how many
	// by cause, each in its unit (LossUnit), and LostTotal their sum.
	Partial bool             `json:"partial,omitempty"`
	Lost    map[string]int64 `json:"lost,omitempty"`
}

// Records returns the number of offsets the window spans (an upper bound on
// its records: compaction and transaction markers leave gaps).
func (w Window) Records() int64 {
	var n int64
	for _, r := range w.Partitions {
		n += r.Len()
	}
	return n
}

// TimesBogus reports whether StartedAt or EndedAt cannot be a real capture
// time as of the window's save (message.BogusTime): a window saved before
// BogusTimes was counted took a .gor file's bogus times as they came (1970,
// 2255).
func (w Window) TimesBogus() bool {
	ref := w.CreatedAt
	if ref.IsZero() {
		ref = time.Now()
	}
	return !w.StartedAt.IsZero() && message.BogusTime(w.StartedAt, ref) ||
		!w.EndedAt.IsZero() && message.BogusTime(w.EndedAt, ref)
}

// Empty reports whether every partition range is empty.
func (w Window) Empty() bool { return w.Records() == 0 }

// SortedPartitions returns the window's partitions in ascending order.
func (w Window) SortedPartitions() []int32 {
	ps := make([]int32, 0, len(w.Partitions))
	for p := range w.Partitions {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// Between returns the ranges [start[p], end[p]) for every partition of end
// (a partition missing from start starts at 0), as a record job takes them
// from EndOffsets before and after it writes.
func Between(start, end map[int32]int64) map[int32]Range {
	out := make(map[int32]Range, len(end))
	for p, e := range end {
		s := start[p]
		if s > e {
			s = e
		}
		out[p] = Range{Start: s, End: e}
	}
	return out
}
