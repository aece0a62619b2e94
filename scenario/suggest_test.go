package scenario

import "testing"

// TestSuggestSwappedLetters: two adjacent letters swapped are one edit, as
// a missing or wrong letter is: "jbo" suggests "job" (it was 2 edits, more
// than half of a 3-letter word, and suggested nothing).
func TestSuggestSwappedLetters(t *testing.T) {
	for _, c := range []struct{ s, want string }{
		{"jbo", "job"},
		{"evn", "env"},
		{"lsiten", "listen"},
		{"jo", "job"},
		{"xyz", ""},
	} {
		if got := Suggest(c.s, []string{"job", "env", "listen", "set"}); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.s, got, c.want)
		}
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"jbo", "job", 1}, {"abcd", "badc", 2}, {"ca", "abc", 3}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
