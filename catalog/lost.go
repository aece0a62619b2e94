package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// LostTotal is the key of Window.Lost (and of a record job's "lost" in its
// report) that counts what was lost, each loss once (LossTotal). The causes
// count different units (LossUnit), so the total says only that, and
// roughly how much, was lost: LostText and LostByUnit tell it in units.
const LostTotal = "total"

// HostsFailed is the loss cause of a multi-host recording (a fleet record
// job) that counts the hosts whose part did not succeed: what they
// captured is missing from the window, or part of it.
const HostsFailed = "hosts-failed"

// holeCauses count packets that, lost inside a connection, leave a hole in
// its stream, which capture-gaps counts too: two counts of one loss.
var holeCauses = []string{"kernel-drops", "queue-overflow", "snaplen-cut", "fragments-incomplete"}

// LossTotal counts the losses by cause once each: it adds up the causes
// but for the packets of holeCauses and the holes (capture-gaps), of which
// it takes the larger, as a hole is what lost packets leave (one or more:
// a burst of kernel drops leaves one) and a lost packet leaves at most one
// (none: a bare ACK, one at the end of its stream). A snaplen cut inside a
// connection, counted as 1 packet and 1 hole, is 1 loss; the sum said 2.
// When packets lost and holes are apart (a hole of a mirror that dropped
// packets, a kernel drop of a bare ACK) the total is less than their
// number: it is at least what was lost, never more.
func LossTotal(lost map[string]int64) int64 {
	var total, packets int64
	for cause, n := range lost {
		switch {
		case cause == LostTotal || n <= 0:
		case slices.Contains(holeCauses, cause):
			packets += n
		case cause != "capture-gaps":
			total += n
		}
	}
	return total + max(packets, lost["capture-gaps"])
}

// LossUnit returns what a loss cause counts, singular: "packet" for
// kernel-drops, queue-overflow, file-cut-short, snaplen-cut and
// fragments-incomplete, "hole" for
// capture-gaps, "connection" for streams-dropped, "header block" for
// h2-hpack-errors, "host" for hosts-failed, "message" for the others (spool-full, too-large,
// undeliverable, unredactable, header-too-long, bad-payloads,
// h2-unrenderable).
func LossUnit(cause string) string {
	switch cause {
	case "kernel-drops", "queue-overflow", "file-cut-short", "snaplen-cut", "fragments-incomplete":
		return "packet"
	case "capture-gaps":
		return "hole"
	case "streams-dropped":
		return "connection"
	case "h2-hpack-errors":
		return "header block"
	case HostsFailed:
		return "host"
	}
	return "message"
}

// Count renders n of unit, plural when n is not 1: "3 packets".
func Count(n int64, unit string) string {
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// LostText renders losses by cause, in the causes' names order, with
// their units: "kernel-drops 3 packets, spool-full 12 messages".
func LostText(lost map[string]int64) string {
	var parts []string
	for _, cause := range slices.Sorted(maps.Keys(lost)) {
		if n := lost[cause]; cause != LostTotal && n > 0 {
			parts = append(parts, cause+" "+Count(n, LossUnit(cause)))
		}
	}
	return strings.Join(parts, ", ")
}

// LostByUnit sums losses by unit, messages first: "12 messages, 3 packets".
func LostByUnit(lost map[string]int64) string {
	by := map[string]int64{}
	for cause, n := range lost {
		if cause != LostTotal && n > 0 {
			by[LossUnit(cause)] += n
		}
	}
	units := slices.Sorted(maps.Keys(by))
	if i := slices.Index(units, "message"); i > 0 {
		units = append(append([]string{"message"}, units[:i]...), units[i+1:]...)
	}
	parts := make([]string, 0, len(units))
	for _, u := range units {
		parts = append(parts, Count(by[u], u))
	}
	return strings.Join(parts, ", ")
}
