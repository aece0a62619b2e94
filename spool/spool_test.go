package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func rec(i, size int) []byte {
	b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
	copy(b, fmt.Sprintf("%08d", i))
	return b
}

// TestOrderAcrossSegments appends and reads in interleaved bursts across
// many segments: every record comes out once, in order, and the files are
// removed as they are read.
func TestOrderAcrossSegments(t *testing.T) {
	tests := []struct {
		name       string
		size, n    int
		burst      int // appends between reads
		segment    int64
		wantRotate bool
	}{
		{"small records, small segments", 100, 5000, 37, 8 << 10, true},
		{"large records", 20 << 10, 200, 5, 64 << 10, true},
		{"one segment", 10, 100, 100, 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			s, err := Open(dir, Options{MaxBytes: 1 << 30, SegmentBytes: tt.segment})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			next, maxSegs := 0, 0
			for i := 0; i < tt.n; i++ {
				if err := s.Append(rec(i, tt.size)); err != nil {
					t.Fatal(err)
				}
				files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
				maxSegs = max(maxSegs, len(files))
				if i%tt.burst == tt.burst-1 {
					for k := 0; k < tt.burst/2; k++ {
						got, err := s.Next()
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, rec(next, tt.size)) {
							t.Fatalf("record %d: got %.12q", next, got)
						}
						next++
					}
				}
			}
			for {
				got, err := s.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, rec(next, tt.size)) {
					t.Fatalf("record %d: got %.12q", next, got)
				}
				next++
			}
			if next != tt.n {
				t.Fatalf("read %d records, want %d", next, tt.n)
			}
			if (maxSegs > 1) != tt.wantRotate {
				t.Errorf("at most %d segment files at once", maxSegs)
			}
			st := s.Stats()
			// What is read is removed, but for the segment being written
			// while it is smaller than a quarter of a segment.
			if st["records"] != 0 || st["disk-bytes"] >= s.segMax/4 || st["appended"] != int64(tt.n) || st["read"] != int64(tt.n) {
				t.Errorf("stats after reading everything: %v", st)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(files) > 1 {
				t.Errorf("segment files left: %v", files)
			}
		})
	}
}

// TestFull refuses the record that would pass the bound, and takes records
// again once enough is read.
func TestFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	const size = 1000
	s, err := Open(dir, Options{MaxBytes: 10 * (size + frameHeader), SegmentBytes: 2 * (size + frameHeader)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		if err := s.Append(rec(i, size)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := s.Append(rec(10, size)); !errors.Is(err, ErrFull) {
		t.Fatalf("append past the bound = %v, want ErrFull", err)
	}
	if st := s.Stats(); st["records"] != 10 || st["disk-bytes"] > 10*(size+frameHeader) {
		t.Fatalf("stats = %v", st)
	}
	// Reading the first segment (4 KiB at least: 4 records) frees it.
	for i := range 4 {
		if got, err := s.Next(); err != nil || !bytes.Equal(got, rec(i, size)) {
			t.Fatalf("next %d: %v", i, err)
		}
	}
	if err := s.Append(rec(10, size)); err != nil {
		t.Fatalf("append after reading: %v", err)
	}
}

// TestLeftovers refuses a directory that holds another run's segments, and
// Close removes what it wrote.
func TestLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{MaxBytes: 1 << 20}); err == nil {
		t.Fatal("a second spool on the same segments was opened")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("spool directory after Close: %v", err)
	}
	if _, err := s.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
}

// TestCorruption reports a damaged record instead of returning it.
func TestCorruption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append([]byte("hello spool")); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	path := s.segs[0].path
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err == nil {
		t.Fatal("a corrupted record was returned")
	}
}

func BenchmarkAppendNext(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "spool"), Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rec(1, 500)
	b.SetBytes(int64(len(r)))
	for b.Loop() {
		if err := s.Append(r); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRoot: with Options.Root, the spool's directory and files stay under
// Root: a symbolic link on the way (to the directory or to one above it)
// that leads outside is refused, and nothing is created there.
func TestRoot(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "linked")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, want string }{
		{"link above", filepath.Join(root, "linked", "rec-1"), "escapes"},
		{"link is the directory", filepath.Join(root, "linked"), "escapes"},
		{"outside", filepath.Join(outside, "rec-1"), "is outside " + root},
		{"dot dot", filepath.Join(root, "..", filepath.Base(outside), "rec-1"), "is outside " + root},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.dir, Options{MaxBytes: 1 << 20, Root: root})
			if err == nil {
				s.Close()
				t.Fatalf("opened %s", tc.dir)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("%d entries created outside", len(ents))
			}
		})
	}
	t.Run("inside", func(t *testing.T) {
		dir := filepath.Join(root, "spool", "rec-1")
		s, err := Open(dir, Options{MaxBytes: 1 << 20, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(rec(1, 100)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Next(); err != nil || !bytes.Equal(got, rec(1, 100)) {
			t.Fatalf("next = %.12q, %v", got, err)
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "spool-*.seg")); len(files) != 1 {
			t.Fatalf("segment files %v", files)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("directory left after Close: %v", err)
		}
	})
}

// TestLeave: Leave keeps the records not read on disk, flushed, says how
// many there are, and forgets the spool (Opened); an empty spool is removed.
func TestLeave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(dir, Options{MaxBytes: 1 << 30, SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Contains(Opened(), s) {
		t.Fatal("Opened lacks an open spool")
	}
	const n, size = 100, 1000
	for i := range n {
		if err := s.Append(rec(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
	}
	records, bytes, err := s.Leave()
	if err != nil || records != n-10 || bytes != (n-10)*(size+frameHeader) {
		t.Fatalf("Leave = %d records, %d bytes, %v; want %d, %d", records, bytes, err, n-10, (n-10)*(size+frameHeader))
	}
	if slices.Contains(Opened(), s) {
		t.Fatal("Opened still has a spool left")
	}
	if err := s.Append(rec(0, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Leave = %v", err)
	}
	// Every record appended is on disk (the write buffer was flushed).
	files, _ := filepath.Glob(filepath.Join(dir, "spool-*.seg"))
	var disk int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		disk += st.Size()
	}
	if len(files) == 0 || disk < bytes || disk > n*(size+frameHeader) {
		t.Fatalf("%d segment files of %d bytes left, want the %d bytes not read among at most %d", len(files), disk, bytes, n*(size+frameHeader))
	}
	if _, err := Open(dir, Options{MaxBytes: 1 << 30}); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("Open on a spool left = %v", err)
	}

	empty := filepath.Join(t.TempDir(), "empty")
	e, err := Open(empty, Options{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(rec(1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Next(); err != nil {
		t.Fatal(err)
	}
	if records, _, err := e.Leave(); records != 0 || err != nil {
		t.Fatalf("Leave of an empty spool = %d, %v", records, err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an empty spool left its directory: %v", err)
	}
}
