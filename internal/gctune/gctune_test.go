package gctune

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1073741824\n", 1 << 30, true},
		{"max\n", 0, false},
		{"9223372036854771712\n", 0, false}, // cgroup v1: no limit
		{"", 0, false},
		{"-1", 0, false},
		{"12x", 0, false},
	} {
		got, ok := parseLimit(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseLimit(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	limit := filepath.Join(dir, "memory.max")
	if err := os.WriteFile(limit, []byte("2147483648\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := cgroupFiles
	cgroupFiles = []string{limit}
	defer func() { cgroupFiles = old }()

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	s := Apply()
	if s.GCPercent != GCPercent || debug.SetGCPercent(-1) != GCPercent {
		t.Errorf("GOGC unset: settings %+v", s)
	}
	if want := int64(2147483648) / 10 * 9; s.MemoryLimit != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("memory limit %d, want %d", s.MemoryLimit, want)
	}

	// What the user set is left alone.
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(1 << 40)
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1TiB")
	if s := Apply(); s != (Settings{}) || debug.SetGCPercent(-1) != 100 || debug.SetMemoryLimit(-1) != 1<<40 {
		t.Errorf("GOGC and GOMEMLIMIT set: settings %+v", s)
	}
}
