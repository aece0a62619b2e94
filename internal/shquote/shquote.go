// Package shquote quotes words for a POSIX shell, so that a command line
// the tool prints (a hint, a --set to paste) pastes as printed.
package shquote

import "strings"

// Quote quotes s in single quotes, whatever it holds.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// IfNeeded quotes s when it holds anything but letters, digits and
// - _ . / = : , @ + %, or is empty; otherwise it is s.
func IfNeeded(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r))
	}) < 0 {
		return s
	}
	return Quote(s)
}
