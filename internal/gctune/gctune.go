// Package gctune sets the garbage collector for the data plane: a record or
// replay allocates per message, and at tens of thousands of messages a
// second the collector's work is a visible share of the CPU.
package gctune

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// GCPercent is the GOGC the data plane runs with when GOGC is not set:
// twice Go's default, about 5 % less CPU per captured request for about a
// third more heap (measured in figure e of BENCHMARKS.md's notes).
const GCPercent = 200

// cgroupFiles hold the memory limit of the process's cgroup (v2, then v1).
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// Settings are what Apply set.
type Settings struct {
	GCPercent   int   // 0 when GOGC was set by the user and left alone
	MemoryLimit int64 // 0 when none was set
}

// Apply sets GOGC to GCPercent unless the GOGC environment variable is set,
// and, unless GOMEMLIMIT is set, a soft memory limit of 90 % of the cgroup's
// memory limit when the process runs in one (a container): with the limit
// the collector works harder as the heap nears it instead of the kernel
// killing the process. It returns what it set.
func Apply() Settings {
	var s Settings
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
		s.GCPercent = GCPercent
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		for _, f := range cgroupFiles {
			if b, err := os.ReadFile(f); err == nil {
				if n, ok := parseLimit(string(b)); ok {
					s.MemoryLimit = n / 10 * 9
					debug.SetMemoryLimit(s.MemoryLimit)
				}
				break
			}
		}
	}
	return s
}

// parseLimit reads a cgroup memory limit: bytes, or "max" (none). cgroup v1
// reports "no limit" as a huge number, treated as none too.
func parseLimit(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}
