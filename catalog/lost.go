package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// LostTotal is the key of Window.Lost (and of a record job's "lost" in its
// report) that sums the counts of every cause. The causes count different
// units (LossUnit), so the total says only that, and roughly how much, was
// lost: LostText and LostByUnit tell it in units.
const LostTotal = "total"

// LossUnit returns what a loss cause counts, singular: "packet" for
// kernel-drops, queue-overflow, file-cut-short, snaplen-cut and
// fragments-incomplete, "hole" for
// capture-gaps, "connection" for streams-dropped, "header block" for
// h2-hpack-errors, "message" for the others (spool-full, too-large,
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
