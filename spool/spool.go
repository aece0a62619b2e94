// Package spool is a first-in first-out queue of byte records on disk,
// bounded by bytes. A record pipeline puts what its sink cannot take right
// now (a broker that is down or slow) into the spool instead of blocking, and
// a drainer takes it out, in order, when the sink is back.
//
// Records are kept in segment files (spool-NNNNNNNN.seg) of at most
// SegmentBytes each; a segment is removed once read to its end. Each record
// is framed as a 4-byte big-endian length, a 4-byte CRC-32C of the data and
// the data. Memory stays bounded whatever the spool holds: one write buffer
// and one read buffer.
//
// A Spool is safe for one writer and one reader at the same time.
package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ErrFull is returned by Append when the record would take the spool beyond
// its byte bound. The record is not kept.
var ErrFull = errors.New("spool full")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool closed")

// LostError is returned by Append and Next when the disk the spool is on
// has no room left (ENOSPC, EDQUOT) for records written to it: the records
// not flushed to their segment file yet (Records of them, the one being
// appended included) are taken out of the spool, the file is cut back to
// its last flushed record, and the spool stays usable. errors.Is(err,
// ErrFull) holds: a full disk is a full spool.
type LostError struct {
	Records int64
	Err     error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("spool: disk full, %d record(s) lost: %v", e.Records, e.Err)
}

func (e *LostError) Unwrap() []error { return []error{ErrFull, e.Err} }

// noSpace tells whether err means the disk (or the user's quota) is full.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// DefaultSegmentBytes is the default size at which a segment is closed and
// a new one started.
const DefaultSegmentBytes = 16 << 20

// frameHeader is the length and checksum before each record.
const frameHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configures a Spool.
type Options struct {
	// MaxBytes bounds the bytes the spool's segment files take on disk
	// (required). A segment partly read still counts in full until it is
	// read to its end and removed.
	MaxBytes int64
	// SegmentBytes is the size at which a segment is closed and the next
	// one started (default DefaultSegmentBytes, at most MaxBytes/4).
	SegmentBytes int64
	// Root, when set, is a directory the spool's directory must lie under
	// (a scenario's spool.dir lies under the directory it was checked to be
	// contained in): the directory is created through an os.Root opened on
	// Root, so no symbolic link leads it outside Root. The segment files are
	// always created, read and removed through an os.Root opened on the
	// spool's directory.
	Root string
}

// Spool is a bounded on-disk FIFO of records.
type Spool struct {
	dir string
	// root is opened on dir: every segment file goes through it. parent,
	// when Options.Root was set, is opened on Root, with rel the spool's
	// directory in it (Close removes it through parent).
	root   *os.Root
	parent *os.Root
	rel    string
	max    int64
	segMax int64

	mu       sync.Mutex
	closed   bool
	segs     []*segment // oldest first; the last one is written
	disk     int64      // bytes of all segment files
	records  int64      // records appended and not read yet
	data     int64      // their bytes (frames included)
	next     int        // number of the next segment file
	w        *bufio.Writer
	wf       *os.File
	appended int64 // records ever appended
	read     int64 // records ever read
	peak     int64 // largest disk use seen
	// pend holds the end offsets, in the segment being written, of its
	// records not known to be whole in its file yet (past
	// segment.flushed): some of their bytes may still be in the write
	// buffer.
	pend []int64
	lost int64 // records taken out by a full disk (LostError)
	// diskFull is set by a full disk and cleared when a segment is
	// removed: till then the segment being written is removed as soon as
	// it is read to its end, whatever its size, to give the room back.
	diskFull bool

	// The reader's segment.
	rf  *os.File
	rb  *bufio.Reader
	buf []byte
}

type segment struct {
	name    string // in the spool's directory
	path    string // for errors
	size    int64  // bytes appended
	flushed int64  // bytes flushed to the file
	roff    int64  // bytes read
}

// Open creates a spool in dir, which is created when missing (under
// Options.Root, through an os.Root on it, when set). Segment files already
// in dir (left by a process that did not end cleanly) are not read and are
// an error: the spool never mixes two recordings.
func Open(dir string, o Options) (*Spool, error) {
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("spool: max bytes must be positive, got %d", o.MaxBytes)
	}
	seg := o.SegmentBytes
	if seg <= 0 {
		seg = DefaultSegmentBytes
	}
	seg = max(min(seg, o.MaxBytes/4), 4<<10)
	s := &Spool{dir: dir, max: o.MaxBytes, segMax: seg}
	if err := s.openDir(o.Root); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	old, err := fs.Glob(s.root.FS(), "spool-*.seg")
	if err == nil && len(old) > 0 {
		err = fmt.Errorf("%s already holds %d segment file(s) of another run", dir, len(old))
	}
	if err != nil {
		s.closeRoots()
		return nil, fmt.Errorf("spool: %w", err)
	}
	openMu.Lock()
	opened[s] = struct{}{}
	openMu.Unlock()
	return s, nil
}

// The spools open in this process, for Opened.
var (
	openMu sync.Mutex
	opened = map[*Spool]struct{}{}
)

// Opened returns the spools of this process not closed yet (by Close or
// Leave): what a process that must quit at once leaves on disk.
func Opened() []*Spool {
	openMu.Lock()
	defer openMu.Unlock()
	out := make([]*Spool, 0, len(opened))
	for s := range opened {
		out = append(out, s)
	}
	return out
}

func forget(s *Spool) {
	openMu.Lock()
	delete(opened, s)
	openMu.Unlock()
}

// openDir creates the spool's directory (through an os.Root on root when
// set) and opens s.root on it.
func (s *Spool) openDir(root string) error {
	if root == "" {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		r, err := os.OpenRoot(s.dir)
		if err != nil {
			return err
		}
		s.root = r
		return nil
	}
	rel, err := filepath.Rel(root, s.dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("%s is outside %s", s.dir, root)
	}
	p, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	if err := p.MkdirAll(rel, 0o700); err != nil {
		p.Close()
		return fmt.Errorf("%s: %w", s.dir, err)
	}
	r, err := p.OpenRoot(rel)
	if err != nil {
		p.Close()
		return fmt.Errorf("%s: %w", s.dir, err)
	}
	s.root, s.parent, s.rel = r, p, rel
	return nil
}

// closeRoots closes s.root and s.parent.
func (s *Spool) closeRoots() error {
	err := s.root.Close()
	if s.parent != nil {
		err = errors.Join(err, s.parent.Close())
	}
	return err
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Append adds a record at the end of the spool. It returns ErrFull (and
// keeps nothing) when the record does not fit in the byte bound.
func (s *Spool) Append(rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	n := int64(frameHeader + len(rec))
	if s.disk+n > s.max {
		return ErrFull
	}
	if s.wf == nil || s.segs[len(s.segs)-1].size+n > s.segMax && s.segs[len(s.segs)-1].size > 0 {
		if err := s.rotate(); err != nil {
			return s.writeFailed(err, 0, 1)
		}
	}
	var h [frameHeader]byte
	binary.BigEndian.PutUint32(h[:4], uint32(len(rec)))
	binary.BigEndian.PutUint32(h[4:], crc32.Checksum(rec, castagnoli))
	hn, err := s.w.Write(h[:])
	if err != nil {
		return s.writeFailed(fmt.Errorf("spool: write: %w", err), int64(hn), 1)
	}
	if rn, err := s.w.Write(rec); err != nil {
		return s.writeFailed(fmt.Errorf("spool: write: %w", err), int64(hn+rn), 1)
	}
	seg := s.segs[len(s.segs)-1]
	seg.size += n
	s.disk += n
	s.peak = max(s.peak, s.disk)
	s.records++
	s.data += n
	s.appended++
	s.pend = append(s.pend, seg.size)
	// The write buffer may have written some of its bytes to the file:
	// the records now whole there are flushed.
	s.markFlushed(seg, seg.size-int64(s.w.Buffered()))
	return nil
}

// markFlushed records that the file of seg, the segment being written,
// holds its first onFile bytes: its records that end there are flushed.
func (s *Spool) markFlushed(seg *segment, onFile int64) {
	k := 0
	for k < len(s.pend) && s.pend[k] <= onFile {
		seg.flushed = s.pend[k]
		k++
	}
	if k > 0 {
		s.pend = append(s.pend[:0], s.pend[k:]...)
	}
}

// writeFailed handles an error writing the segment being written, of which
// accepted bytes of a record being appended were taken by the write buffer
// (that record, when extra is 1, is not counted in the spool yet). Any
// error but a full disk is returned as it is. On a full disk, the records
// of that segment not whole in its file are taken out of the spool with the
// one being appended, the file is cut back to its last whole record and the
// write buffer emptied, so that later Appends write whole frames after it;
// a LostError says how many records were lost.
func (s *Spool) writeFailed(err error, accepted, extra int64) error {
	if !noSpace(err) {
		return err
	}
	if s.wf == nil {
		// No segment to write: only the record being appended is lost.
		s.lost += extra
		s.diskFull = true
		return &LostError{Records: extra, Err: err}
	}
	seg := s.segs[len(s.segs)-1]
	// What the file holds: all the bytes the buffer took but those it
	// still holds.
	s.markFlushed(seg, seg.size+accepted-int64(s.w.Buffered()))
	cut := seg.size - seg.flushed
	if terr := s.wf.Truncate(seg.flushed); terr != nil {
		return errors.Join(err, fmt.Errorf("spool: %w", terr))
	}
	if _, serr := s.wf.Seek(seg.flushed, io.SeekStart); serr != nil {
		return errors.Join(err, fmt.Errorf("spool: %w", serr))
	}
	s.w.Reset(s.wf)
	if s.rf != nil && len(s.segs) == 1 {
		// The reader's buffer may hold bytes read ahead past the last
		// whole record, which are gone now.
		if _, serr := s.rf.Seek(seg.roff, io.SeekStart); serr != nil {
			return errors.Join(err, fmt.Errorf("spool: %w", serr))
		}
		s.rb.Reset(s.rf)
	}
	dropped := int64(len(s.pend))
	lost := dropped + extra
	seg.size = seg.flushed
	s.disk -= cut
	s.data -= cut
	s.records -= dropped
	s.pend = s.pend[:0]
	s.lost += lost
	s.diskFull = true
	return &LostError{Records: lost, Err: err}
}

// rotate closes the segment being written and starts the next one.
func (s *Spool) rotate() error {
	if s.wf != nil {
		if err := s.flush(); err != nil {
			return err
		}
		if err := s.wf.Close(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.wf = nil
	}
	name := fmt.Sprintf("spool-%08d.seg", s.next)
	path := filepath.Join(s.dir, name)
	s.next++
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.wf = f
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, 256<<10)
	} else {
		s.w.Reset(f)
	}
	s.segs = append(s.segs, &segment{name: name, path: path})
	return nil
}

// flush writes the buffered bytes of the segment being written.
func (s *Spool) flush() error {
	if s.wf == nil || s.w.Buffered() == 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: flush: %w", err)
	}
	seg := s.segs[len(s.segs)-1]
	seg.flushed = seg.size
	s.pend = s.pend[:0]
	return nil
}

// Next returns the oldest record and removes it from the spool, or io.EOF
// when the spool is empty. The record is valid until the next call.
func (s *Spool) Next() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.records == 0 {
		return nil, io.EOF
	}
	for {
		seg := s.segs[0]
		if seg.roff < seg.size {
			break
		}
		// Read to its end: it is not the segment being written (records
		// remain), so remove it.
		if err := s.dropFirst(); err != nil {
			return nil, err
		}
	}
	seg := s.segs[0]
	if len(s.segs) == 1 && seg.flushed < seg.size {
		// The record is still in the write buffer.
		if err := s.flush(); err != nil {
			return nil, s.writeFailed(err, 0, 0)
		}
	}
	if s.rf == nil {
		f, err := s.root.Open(seg.name)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		s.rf = f
		if s.rb == nil {
			s.rb = bufio.NewReaderSize(f, 256<<10)
		} else {
			s.rb.Reset(f)
		}
	}
	var h [frameHeader]byte
	if _, err := io.ReadFull(s.rb, h[:]); err != nil {
		return nil, fmt.Errorf("spool: %s at byte %d: %w", seg.path, seg.roff, err)
	}
	n := binary.BigEndian.Uint32(h[:4])
	if int64(n)+frameHeader > seg.size-seg.roff {
		return nil, fmt.Errorf("spool: %s at byte %d: record length %d beyond the segment", seg.path, seg.roff, n)
	}
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	if _, err := io.ReadFull(s.rb, s.buf); err != nil {
		return nil, fmt.Errorf("spool: %s at byte %d: %w", seg.path, seg.roff, err)
	}
	if crc32.Checksum(s.buf, castagnoli) != binary.BigEndian.Uint32(h[4:]) {
		return nil, fmt.Errorf("spool: %s at byte %d: checksum mismatch", seg.path, seg.roff)
	}
	seg.roff += int64(n) + frameHeader
	s.records--
	s.data -= int64(n) + frameHeader
	s.read++
	// A segment read to its end is removed; the one being written only
	// once it holds a quarter of a segment (so that a reader that keeps
	// up with the writer does not create a file per record).
	if seg.roff == seg.size && (len(s.segs) > 1 || seg.size >= s.segMax/4 || s.diskFull) {
		if err := s.dropFirst(); err != nil {
			return nil, err
		}
	}
	return s.buf, nil
}

// dropFirst removes the oldest segment, read to its end.
func (s *Spool) dropFirst() error {
	seg := s.segs[0]
	if s.rf != nil {
		_ = s.rf.Close()
		s.rf = nil
	}
	if err := s.root.Remove(seg.name); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.disk -= seg.size
	s.diskFull = false
	s.segs = s.segs[1:]
	if len(s.segs) == 0 {
		// It was also the segment being written.
		if s.wf != nil {
			s.w.Reset(io.Discard)
			_ = s.wf.Close()
		}
		s.wf = nil
	}
	return nil
}

// Len returns the number of records in the spool.
func (s *Spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Stats returns records (in the spool now), bytes (their frames), disk-bytes
// (the segment files), peak-disk-bytes, appended and read (ever), and lost
// (records taken out by a full disk, the ones never appended included).
func (s *Spool) Stats() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int64{
		"records":         s.records,
		"bytes":           s.data,
		"disk-bytes":      s.disk,
		"peak-disk-bytes": s.peak,
		"appended":        s.appended,
		"read":            s.read,
		"lost":            s.lost,
	}
}

// Close closes the files and removes the segment files and the directory
// (when it is empty). Records still in the spool are discarded: Len before
// Close says how many.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *Spool) closeLocked() error {
	if s.closed {
		return nil
	}
	s.closed = true
	forget(s)
	var errs []error
	if s.rf != nil {
		errs = append(errs, s.rf.Close())
	}
	if s.wf != nil {
		errs = append(errs, s.wf.Close())
	}
	for _, seg := range s.segs {
		if err := s.root.Remove(seg.name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.segs, s.wf, s.rf = nil, nil, nil
	// The directory goes only when empty.
	if s.parent != nil {
		_ = s.parent.Remove(s.rel)
	} else {
		_ = os.Remove(s.dir)
	}
	errs = append(errs, s.closeRoots())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// Leave is Close for a process about to quit without draining the spool:
// the records still in it stay on disk, in its segment files (the write
// buffer is flushed to them first), and Leave returns how many there are
// and their bytes (frames included). An empty spool is removed, as Close
// removes it. After Leave, Append and Next return ErrClosed. No spool reads
// the segment files left again: Open refuses a directory holding some.
func (s *Spool) Leave() (records, bytes int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	if s.records == 0 {
		return 0, 0, s.closeLocked()
	}
	s.closed = true
	forget(s)
	var errs []error
	if err := s.flush(); err != nil {
		errs = append(errs, err)
	}
	if s.rf != nil {
		errs = append(errs, s.rf.Close())
	}
	if s.wf != nil {
		errs = append(errs, s.wf.Close())
	}
	s.segs, s.wf, s.rf = nil, nil, nil
	errs = append(errs, s.closeRoots())
	if err := errors.Join(errs...); err != nil {
		return s.records, s.data, fmt.Errorf("spool: leave: %w", err)
	}
	return s.records, s.data, nil
}
