package capture

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestNotPcapSaysWhatItIs: a file that is not a capture is refused with a
// hint fit for what it is (a GoReplay file, gzip, empty, anything else),
// never with its bytes beyond the first four.
func TestNotPcapSaysWhatItIs(t *testing.T) {
	for _, tt := range []struct {
		name, data, want string
	}{
		{"gor file", "1 e260e1c7a68f719e00000001 1796624962620724600 0\nGET /x?token=S3CRET HTTP/1.1\r\n", "looks like a GoReplay (.gor) file; read it with source: {gor: {path: …}}"},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip-compressed"},
		{"empty", "", "it is empty"},
		{"short", "ab", "holds 2 byte(s)"},
		{"text", "not a pcap at all, token=S3CRET\n", "its first bytes are 6e6f7420; a pcap's are d4c3b2a1 or a1b2c3d4, a pcapng's 0a0d0d0a): write one with tcpdump -w FILE"},
	} {
		a := NewAssembler(Config{}, nil)
		err := a.ReadFrom(context.Background(), bytes.NewReader([]byte(tt.data)))
		if err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng file") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%s: the error shows the file's bytes: %v", tt.name, err)
		}
	}
}
