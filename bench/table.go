package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Verdict says whether a row's goal was met.
type Verdict int

// Verdicts.
const (
	Info        Verdict = iota // no goal: a figure shown for context
	Met                        // the goal was met
	NotMet                     // the goal was not met
	NotMeasured                // the figure could not be measured (see the notes)
)

// String returns the verdict as the table shows it.
func (v Verdict) String() string {
	switch v {
	case Met:
		return "MET"
	case NotMet:
		return "NOT MET"
	case NotMeasured:
		return "NOT MEASURED"
	}
	return "info"
}

// Row is one line of the table: what was measured, replayctl's figure, the
// reference measured in the same run, the ratio against the goal, and the
// verdict.
type Row struct {
	Fig     string // "a", "b", …
	What    string
	Ours    string // replayctl's figure
	Ref     string // the reference figure
	Ratio   string // ratio and goal, e.g. "0.71 (goal ≥ 0.5)"
	Verdict Verdict
}

// Note is what a figure ran, with which settings, and what was noticed.
type Note struct {
	Fig   string
	Title string
	Lines []string
}

// Machine describes where the benchmarks ran.
type Machine struct {
	CPUs      int
	CPUModel  string
	GoVersion string
	Kernel    string
}

// Results is everything a run produced; render turns it into text.
type Results struct {
	Date    string
	Machine Machine
	Quick   bool
	Rows    []Row
	Notes   []Note
	Elapsed string
}

var header = []string{"fig", "what", "replayctl", "reference", "ratio / goal", "verdict"}

func (r Row) cells() []string {
	return []string{r.Fig, r.What, r.Ours, r.Ref, r.Ratio, r.Verdict.String()}
}

// renderTable draws the rows as an aligned plain-text table (for stdout).
func renderTable(rows []Row) string {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r.cells() {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteString("\n")
	}
	line(header)
	seps := make([]string, len(header))
	for i, w := range widths {
		seps[i] = strings.Repeat("-", w)
	}
	line(seps)
	for _, r := range rows {
		line(r.cells())
	}
	return b.String()
}

// mdCell escapes a table cell for Markdown.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// renderMarkdown renders the whole BENCHMARKS.md document.
func renderMarkdown(res Results) string {
	var b strings.Builder
	b.WriteString("# replayctl benchmarks\n\n")
	if res.Quick {
		b.WriteString("**Quick run (`-quick`): smaller sizes, for a smoke test only — not the figures to quote.**\n\n")
	}
	fmt.Fprintf(&b, "- date: %s\n", res.Date)
	m := res.Machine
	fmt.Fprintf(&b, "- machine: %d CPUs (%s), %s, %s\n", m.CPUs, m.CPUModel, m.Kernel, m.GoVersion)
	if res.Elapsed != "" {
		fmt.Fprintf(&b, "- harness run time: %s (`make bench`, `go run ./bench`)\n", res.Elapsed)
	}
	b.WriteString("\n## How to read this\n\n")
	b.WriteString("Each row sets a replayctl figure next to a reference tool (wrk, kcat, or replayctl's own recorded\n" +
		"timeline) measured in the same run, on the same loopback target, one after the other. The machine is\n" +
		"shared and noisy: absolute numbers move from run to run, the ratios are what to compare. A goal is a\n" +
		"ratio (or a bound) that replayctl must meet; **MET** / **NOT MET** say whether it did, *info* rows have no\n" +
		"goal, and NOT MEASURED means the figure could not be taken (the notes say why). Nothing here is\n" +
		"estimated: every number was measured by this run.\n\n")
	b.WriteString("## Results\n\n")
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, r := range res.Rows {
		cells := r.cells()
		for i := range cells {
			cells[i] = mdCell(cells[i])
		}
		switch r.Verdict {
		case Met, NotMet, NotMeasured:
			cells[len(cells)-1] = "**" + cells[len(cells)-1] + "**"
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	met, notMet, unmeasured := 0, 0, 0
	for _, r := range res.Rows {
		switch r.Verdict {
		case Met:
			met++
		case NotMet:
			notMet++
		case NotMeasured:
			unmeasured++
		}
	}
	fmt.Fprintf(&b, "\nGoals: %d met, %d not met, %d not measured.\n", met, notMet, unmeasured)
	if len(res.Notes) > 0 {
		b.WriteString("\n## Notes per figure\n")
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "\n### (%s) %s\n\n", n.Fig, n.Title)
			for _, l := range n.Lines {
				b.WriteString("- " + l + "\n")
			}
		}
	}
	return b.String()
}

// ratioRow fills a row whose goal is ours/ref ≥ goal (higher is better).
func ratioRow(fig, what string, ours, ref float64, unit string, goal float64) Row {
	r := Row{Fig: fig, What: what, Ours: num(ours) + " " + unit, Ref: num(ref) + " " + unit}
	if ref <= 0 {
		r.Ratio, r.Verdict = fmt.Sprintf("— (goal ≥ %.2g)", goal), NotMeasured
		return r
	}
	ratio := ours / ref
	r.Ratio = fmt.Sprintf("%.2f (goal ≥ %.2g)", ratio, goal)
	r.Verdict = verdict(ratio >= goal)
	return r
}

func verdict(ok bool) Verdict {
	if ok {
		return Met
	}
	return NotMet
}

// num formats a figure with thousands separators and sensible precision.
func num(f float64) string {
	switch {
	case f >= 100 || f <= -100:
		return group(fmt.Sprintf("%.0f", f))
	case f >= 10 || f <= -10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

// group inserts thin separators every three digits of an integer string.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
