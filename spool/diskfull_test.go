package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// tinyDisk mounts a tmpfs of size bytes on a new directory and returns it.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("a full disk is a tmpfs mounted for the test: it needs root (CAP_SYS_ADMIN)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestDiskFull fills the disk the spool is on, well below its byte bound:
// Append does not fail for good but says how many records were lost
// (LostError, a kind of ErrFull), the records whole on disk stay readable,
// in order and intact, and once the reader has made room the spool takes
// records again.
func TestDiskFull(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		segment int64
		read    bool // the reader keeps up between appends
	}{
		{"small records, reader away", 200, 0, false},
		{"large records, reader away", 40 << 10, 0, false},
		{"small records, small segments", 300, 16 << 10, false},
		{"small records, reader close behind", 200, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(tinyDisk(t, "256k"), "spool")
			s, err := Open(dir, Options{MaxBytes: 1 << 30, SegmentBytes: tt.segment})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var kept, lost int64
			var want [][]byte // the records kept, in order
			next := 0
			i := 0
			for ; lost < 100 && i < 100000; i++ {
				r := rec(i, tt.size)
				err := s.Append(r)
				var le *LostError
				switch {
				case err == nil:
					want = append(want, r)
					kept++
				case errors.As(err, &le):
					if !errors.Is(err, ErrFull) {
						t.Fatalf("LostError is not ErrFull: %v", err)
					}
					if le.Records < 1 || le.Records > kept+1 {
						t.Fatalf("record %d: %d lost, %d kept so far", i, le.Records, kept)
					}
					lost += le.Records
					kept -= le.Records - 1
					want = want[:len(want)-int(le.Records-1)]
				default:
					t.Fatalf("record %d: %v", i, err)
				}
				if tt.read && i%50 == 49 {
					got, err := s.Next()
					var le *LostError
					if errors.As(err, &le) {
						lost += le.Records
						kept -= le.Records
						want = want[:len(want)-int(le.Records)]
						continue
					}
					if err != nil {
						t.Fatalf("read %d: %v", next, err)
					}
					if !bytes.Equal(got, want[next]) {
						t.Fatalf("read %d: got %.12q", next, got)
					}
					next++
				}
			}
			if lost == 0 {
				t.Fatalf("the disk never filled in %d appends", i)
			}
			if got := s.Stats()["lost"]; got != lost {
				t.Errorf("Stats lost = %d, LostErrors said %d", got, lost)
			}
			if got := s.Len(); got != kept-int64(next) {
				t.Errorf("Len = %d, want %d kept of which %d read", got, kept, next)
			}
			// Everything kept comes out, in order, intact (reading
			// may flush, and lose, what the buffer still held).
			for s.Len() > 0 {
				got, err := s.Next()
				var le *LostError
				if errors.As(err, &le) {
					lost += le.Records
					want = want[:len(want)-int(le.Records)]
					continue
				}
				if err != nil {
					t.Fatalf("read %d of %d: %v", next, len(want), err)
				}
				if !bytes.Equal(got, want[next]) {
					t.Fatalf("read %d: got %.12q, want %.12q", next, got, want[next])
				}
				next++
			}
			if next != len(want) {
				t.Fatalf("read %d records, want %d", next, len(want))
			}
			if _, err := s.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("empty spool: %v", err)
			}
			// Room again: the spool takes and gives records.
			r := rec(i, 100)
			if err := s.Append(r); err != nil {
				t.Fatalf("append after drain: %v", err)
			}
			got, err := s.Next()
			if err != nil || !bytes.Equal(got, r) {
				t.Fatalf("read after drain: %.12q, %v", got, err)
			}
		})
	}
}
