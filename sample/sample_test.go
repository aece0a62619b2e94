package sample

import (
	"math"
	"strconv"
	"testing"
)

func TestKeptFraction(t *testing.T) {
	const n = 100_000
	for _, pct := range []float64{0, 0.5, 1, 10, 33.3, 50, 90, 99.9, 100} {
		for _, prefix := range []string{"user-", "10.0.0.", ""} {
			kept := 0
			for i := range n {
				if Keep(prefix+strconv.Itoa(i), pct) {
					kept++
				}
			}
			got := float64(kept) / n * 100
			if math.Abs(got-pct) > 1 {
				t.Errorf("percent %v prefix %q: kept %.2f%%", pct, prefix, got)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	if Hash("a") == Hash("b") || Hash("") == Hash("a") {
		t.Fatal("trivial collision")
	}
	for i := range 1000 {
		k := strconv.Itoa(i)
		a := Keep(k, 42)
		for range 3 {
			if Keep(k, 42) != a {
				t.Fatalf("key %q changed its answer", k)
			}
		}
		// Monotone in percent: kept at 42 means kept at any larger percent.
		if a && !Keep(k, 43) {
			t.Fatalf("key %q kept at 42%% but not at 43%%", k)
		}
	}
	if Keep("x", math.NaN()) || Keep("x", -1) || !Keep("x", 100) {
		t.Fatal("bounds")
	}
}

func TestStableValues(t *testing.T) {
	// Golden values pin the algorithm so another process (or version) agrees.
	for _, tc := range []struct {
		key  string
		want uint64
	}{
		{"", 0xf52a15e9a9b5e89b},
		{"user-42", 0x7a1596f0e94b5793},
	} {
		if got := Hash(tc.key); got != tc.want {
			t.Errorf("Hash(%q) = %#x, want %#x", tc.key, got, tc.want)
		}
	}
}

func BenchmarkKeep(b *testing.B) {
	for b.Loop() {
		Keep("session-0123456789", 10)
	}
}
