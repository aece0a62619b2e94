package wordmap

import (
	"strings"
	"testing"
)

func TestMap(t *testing.T) {
	isWord := func(c byte) bool { return c >= 'a' && c <= 'z' }
	upper := func(w string) string { return strings.ToUpper(w) }
	for in, want := range map[string]string{
		"":                  "",
		"abc":               "ABC",
		"ab, cd!":           "AB, CD!",
		"  x1y  ":           "  X1Y  ",
		"(int(Bearer abc))": "(INT(BEARER ABC))",
	} {
		if got := Map(in, isWord, upper); got != want {
			t.Errorf("Map(%q) = %q, want %q", in, got, want)
		}
	}
}
