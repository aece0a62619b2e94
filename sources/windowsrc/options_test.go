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
			ro := s.rangeOpts()
			if ro.FetchMaxBytes != tt.wantMax || ro.FetchMaxPartitionBytes != tt.wantPt {
				t.Errorf("range options %+v, want %d/%d", ro, tt.wantMax, tt.wantPt)
			}
		})
	}
}
