package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// pprofLine is one row of `go tool pprof -top`: flat%, cum% and function.
var pprofLine = regexp.MustCompile(`^\s*\S+\s+([0-9.]+)%\s+[0-9.]+%\s+\S+\s+([0-9.]+)%\s+(.+)$`)

// flameSummary reads a CPU profile written by `replayctl run --cpuprofile`
// and returns the n functions with the most CPU of their own (flat) and
// the n with the most including callees (cum), for the notes: the text
// form of a flame graph's widest frames.
func (e *env) flameSummary(ctx context.Context, profile string, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	flat, err := pprofTop(ctx, e.bin, profile, false, n)
	if err != nil {
		return "profile not read: " + err.Error()
	}
	cum, err := pprofTop(ctx, e.bin, profile, true, n+6)
	if err != nil {
		return "profile not read: " + err.Error()
	}
	// The widest frames below main: skip the runtime's and the CLI's roots.
	var below []string
	for _, c := range cum {
		if strings.Contains(c, "runtime.goexit") || strings.Contains(c, "runtime.main") || strings.Contains(c, "main.main") ||
			strings.Contains(c, "cli.") || strings.Contains(c, "cobra.") {
			continue
		}
		if below = append(below, c); len(below) == n {
			break
		}
	}
	return fmt.Sprintf("top flat: %s. Top cumulative: %s.", strings.Join(flat, "; "), strings.Join(below, "; "))
}

func pprofTop(ctx context.Context, bin, profile string, cum bool, n int) ([]string, error) {
	args := []string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}
	if cum {
		args = append(args, "-cum")
	}
	args = append(args, bin, profile)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	var rows []string
	for _, l := range strings.Split(string(out), "\n") {
		m := pprofLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		pct := m[1]
		if cum {
			pct = m[2]
		}
		fn := m[3]
		if i := strings.LastIndex(fn, "/"); i >= 0 {
			fn = fn[i+1:]
		}
		rows = append(rows, fmt.Sprintf("`%s` %s%%", strings.TrimSpace(fn), pct))
	}
	return rows, nil
}
