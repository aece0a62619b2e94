package report

import "strings"

// AddCounter adds v to the counter k of dst, the way counters of loop
// passes, shards and agents combine: most are sums, but a peak or a bound
// (names ending in -max-ms or -peak, or named max-connections) is the
// largest of them, not their sum.
func AddCounter(dst map[string]int64, k string, v int64) {
	if IsMaxCounter(k) {
		if cur, ok := dst[k]; !ok || v > cur {
			dst[k] = v
		}
		return
	}
	dst[k] += v
}

// IsMaxCounter reports whether the counter k is a peak or a bound rather
// than a count (see AddCounter).
func IsMaxCounter(k string) bool {
	return strings.HasSuffix(k, "-max-ms") || strings.HasSuffix(k, "-peak") || strings.HasSuffix(k, "max-connections")
}
