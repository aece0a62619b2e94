// Package wordmap rewrites a text word by word: what masks values in
// messages (a secret's words, a request's values) walks them so.
package wordmap

import "strings"

// Map returns s with each word (a longest run of bytes isWord accepts)
// replaced by what f returns for it; the bytes between words are kept.
func Map(s string, isWord func(byte) bool, f func(word string) string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if !isWord(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isWord(s[j]) {
			j++
		}
		b.WriteString(f(s[i:j]))
		i = j
	}
	return b.String()
}
