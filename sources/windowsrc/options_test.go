package windowsrc

import (
	"testing"

	"github.com/replayctl/replayctl/catalog"
)

func TestFetchBoundsDefaults(t *testing.T) {
	tests := []struct {
		name            string
		in              Options
		wantMax, wantPt int32
	}{
		{"defaults", Options{}, DefaultFetchMaxBytes, DefaultFetchMaxPartitionBytes},
		{"negative means default", Options{FetchMaxBytes: -1, FetchMaxPartitionBytes: -1}, DefaultFetchMaxBytes, DefaultFetchMaxPartitionBytes},
		{"kept", Options{FetchMaxBytes: 4 << 20, FetchMaxPartitionBytes: 1 << 20}, 4 << 20, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(nil, catalog.Window{}, tt.in)
			if s.opts.FetchMaxBytes != tt.wantMax || s.opts.FetchMaxPartitionBytes != tt.wantPt {
				t.Errorf("fetch bounds %d/%d, want %d/%d", s.opts.FetchMaxBytes, s.opts.FetchMaxPartitionBytes, tt.wantMax, tt.wantPt)
			}
			// The connection options come first, the fetch bounds (and the
			// short fetch wait) after them, so they override.
			if n := len(s.fetchOpts()); n != 3 {
				t.Errorf("fetchOpts() has %d options, want 3", n)
			}
		})
	}
}
