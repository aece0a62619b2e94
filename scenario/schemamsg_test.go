package scenario

import (
	"strings"
	"testing"
)

// TestEmptyMappingMessages: an empty rewrite step and an empty offsets
// mapping say what is wanted, not the schema keyword ("minProperties: got
// 0, want 1").
func TestEmptyMappingMessages(t *testing.T) {
	for _, tc := range []struct {
		name, src, pos, want string
	}{
		{"rewrite step", "version: 1\nname: s\njobs:\n  j:\n    source: {gor: {path: in.gor}}\n    rewrite:\n      - {}\n    sink: {http: {url: 'http://127.0.0.1:9'}}\n",
			"7:9", "a rewrite step needs exactly one action of set-header"},
		{"offsets", "version: 1\nname: s\ntopics:\n  t: {}\nwindows:\n  w: {topic: t, offsets: {}}\njobs:\n  j:\n    source: {window: w}\n    sink: {http: {url: 'http://127.0.0.1:9'}}\n",
			"6:26", "must give at least one partition's [start, end) offsets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("s.yaml", []byte(tc.src), Options{Env: envOf(nil)})
			if err == nil || !strings.Contains(err.Error(), "s.yaml:"+tc.pos+": ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "minProperties") {
				t.Errorf("got %v, want %q at %s", err, tc.want, tc.pos)
			}
		})
	}
}
