package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/replayctl/replayctl/compare"
)

// ErrorClassesText writes errors by class as a summary's errors line
// does: "reset: 40  timeout: 40", classes in order ("" when there are none).
func ErrorClassesText(classes map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(classes)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, classes[k]))
	}
	return strings.Join(parts, "  ")
}

// DiffLines are a summary's diff lines: the totals, then the endpoints
// with mismatches (at most five) and their top fields (at most three).
func DiffLines(d *compare.DiffSummary) []string {
	if d == nil {
		return nil
	}
	lines := []string{fmt.Sprintf("compared %d  mismatches %d (%.2f%%)  noise fields %d", d.Compared, d.Mismatches, 100*d.Rate, len(d.NoiseFields))}
	for i, e := range d.Endpoints {
		if i == 5 || e.Mismatches == 0 {
			break
		}
		var fields []string
		for k, f := range e.TopFields {
			if k == 3 {
				break
			}
			fields = append(fields, fmt.Sprintf("%s (%d)", f.Field, f.Count))
		}
		lines = append(lines, fmt.Sprintf("%s: %d of %d differ: %s", e.Endpoint, e.Mismatches, e.Requests, strings.Join(fields, ", ")))
	}
	return lines
}

// WriteCounters lists the non-zero counters that tell about losses and
// changes; plain throughput counters are left to the report.
func WriteCounters(w io.Writer, c map[string]int64) {
	line := "  counters "
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if c[k] == 0 || strings.HasPrefix(k, "sink.partition-") || strings.HasPrefix(k, "source.read-partition-") ||
			strings.HasSuffix(k, "in-flight-bytes") || k == "sink.queued" {
			continue
		}
		item := fmt.Sprintf(" %s=%d", k, c[k])
		if len(line)+len(item) > 100 {
			fmt.Fprintln(w, line)
			line = "           "
		}
		line += item
	}
	if strings.TrimSpace(line) != "counters" && strings.TrimSpace(line) != "" {
		fmt.Fprintln(w, line)
	}
}
