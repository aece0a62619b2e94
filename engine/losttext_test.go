package engine

import "testing"

// TestLostTextNamesEveryCause: a cause no counter of this process gives
// (a fleet recording's hosts-failed) is said too: a replay of a window
// whose host was lost said "saved partial: its recording lost " and
// nothing more.
func TestLostTextNamesEveryCause(t *testing.T) {
	for _, tc := range []struct {
		lost map[string]int64
		want string
	}{
		{map[string]int64{"hosts-failed": 1, "total": 1}, "hosts-failed 1 host"},
		{map[string]int64{"kernel-drops": 3, "hosts-failed": 2, "total": 5}, "kernel-drops 3 packets, hosts-failed 2 hosts"},
		{map[string]int64{"spool-full": 1, "total": 1}, "spool-full 1 message"},
	} {
		if got := lostText(tc.lost); got != tc.want {
			t.Errorf("lostText(%v) = %q, want %q", tc.lost, got, tc.want)
		}
	}
}
