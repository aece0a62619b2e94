package scenario

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEnvFileEncodings: an env file saved with a UTF-8 byte order mark (as
// some Windows editors save it) or with CRLF line ends reads as without.
// The mark made the first line's key invalid ("want KEY=VALUE" at 1:1), so
// its variable was lost.
func TestEnvFileEncodings(t *testing.T) {
	for _, tc := range []struct {
		name, data string
	}{
		{"plain", "A=1\nB=two\n"},
		{"bom", "\ufeffA=1\nB=two\n"},
		{"crlf", "A=1\r\nB=two\r\n"},
		{"bom crlf", "\ufeffA=1\r\nB=two\r\n"},
		{"bom export", "\ufeffexport A=1\nB=two\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v.env")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			vals, keys, ds := readEnvFile(path)
			if len(ds) != 0 {
				t.Fatalf("diagnostics: %v", ds)
			}
			if vals["A"] != "1" || vals["B"] != "two" || len(vals) != 2 {
				t.Errorf("vals = %q", vals)
			}
			if keys["A"].line != 1 || keys["B"].line != 2 {
				t.Errorf("keys = %+v", keys)
			}
		})
	}
}

// TestEnvFileDuplicateKey: a key set twice in an env file is an error at
// its second place, as a scenario's duplicate key is; the last value won
// without a word, and the first was lost.
func TestEnvFileDuplicateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.env")
	if err := os.WriteFile(path, []byte("A=1\nB=2\n  export A=3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, ds := readEnvFile(path)
	want := path + ":3:10: env file: A is set again (first at line 1): give it once"
	if len(ds) != 1 || ds[0].String() != want {
		t.Errorf("got %v, want %q", ds, want)
	}
}
