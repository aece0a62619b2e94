package shard

import (
	"strings"
	"time"

	"github.com/replayctl/replayctl/catalog"
)

// Info describes what one shard of a run did: the "shard" member of its
// JSON report, read back by `replayctl report merge`.
type Info struct {
	RunID string `json:"run_id"`
	Index int    `json:"index"`
	Count int    `json:"count"`
	Host  string `json:"host,omitempty"`
	// Parts are the shard's partitions, ranges and key buckets.
	Parts []Part `json:"parts"`
	// Window is the whole window the shards share, and Fingerprint its
	// identity (Fingerprint).
	Window      *catalog.Window `json:"window,omitempty"`
	Fingerprint string          `json:"fingerprint"`
	// ArmedAt is when this shard armed; Start the run's start instant;
	// T0 the capture time (Unix ns) scheduled at Start.
	ArmedAt time.Time `json:"armed_at,omitzero"`
	Start   time.Time `json:"start,omitzero"`
	T0      int64     `json:"t0,omitempty"`
	// PlannedStart is the run's start-at when it had passed before the
	// last shard armed, or came less than the start margin after it: the
	// run started at Start instead (Start.Planned); Postponed says which
	// (absent from the reports of older shards: it had passed).
	PlannedStart time.Time `json:"planned_start,omitzero"`
	Postponed    string    `json:"postponed,omitempty"`
	// FirstPlanned is when the shard's first request was due on the shared
	// timeline, FirstSend when it was actually sent; SkewMS is the
	// difference in ms (absent when the shard sent nothing).
	FirstPlanned time.Time `json:"first_planned,omitzero"`
	FirstSend    time.Time `json:"first_send,omitzero"`
	SkewMS       *float64  `json:"skew_ms,omitempty"`
	// T0Note says how the shard was put on the run's timeline when its
	// first request's capture time was bogus and the window had no start
	// time to arm with instead: with the other shards' t0, or none.
	T0Note string `json:"t0_note,omitempty"`
}

// PostponedWhy says why the run's start was not its start-at, naming it
// as at: Postponed, or, from an older shard's report, that it had passed.
func (in *Info) PostponedWhy(at string) string {
	why := in.Postponed
	if why == "" {
		why = "the run's start-at had passed when the last shard armed"
	}
	return strings.Replace(why, "the run's start-at", "the run's start-at "+at, 1)
}
