package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in a scenario file; Line and Col are 1-based. A zero Line
// means the position is unknown (the file as a whole).
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as FILE:LINE:COL (or FILE when unknown).
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Diagnostic is one problem found in a scenario, at a position.
type Diagnostic struct {
	Pos
	Message string
}

// String formats the diagnostic as FILE:LINE:COL: message.
func (d Diagnostic) String() string {
	return d.Pos.String() + ": " + d.Message
}

// Diagnostics is every problem found in a scenario. It implements error:
// one diagnostic per line, sorted by position.
type Diagnostics []Diagnostic

// Error returns the diagnostics one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// sorted returns the diagnostics sorted by position (stable for equal
// positions) without exact duplicates.
func (ds Diagnostics) sorted() Diagnostics {
	out := slices.Clone(ds)
	slices.SortStableFunc(out, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return slices.Compact(out)
}
