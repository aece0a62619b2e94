package shquote

import (
	"os/exec"
	"testing"
)

// TestIfNeededPastes: each word, quoted as needed, reaches a real sh as
// one argument, byte for byte.
func TestIfNeededPastes(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh:", err)
	}
	for _, tt := range []struct {
		in, want string
	}{
		{"plain/path-1.gor", "plain/path-1.gor"},
		{"jobs.replay.for=30s", "jobs.replay.for=30s"},
		{"", "''"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"a\nb", "'a\nb'"},
		{"*.gor", "'*.gor'"},
	} {
		got := IfNeeded(tt.in)
		if got != tt.want {
			t.Errorf("IfNeeded(%q) = %q, want %q", tt.in, got, tt.want)
		}
		out, err := exec.Command(sh, "-c", `printf %s `+got).Output()
		if err != nil || string(out) != tt.in {
			t.Errorf("sh read %s as %q (%v), want %q", got, out, err, tt.in)
		}
	}
}
