package kafkaio

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// LockFile is the name of the lock file in an embedded broker's data
// directory. While a process runs a broker on the directory it holds an
// exclusive flock(2) on this file, and the file says who it is (a Holder as
// JSON); a broker started by `replayctl broker` adds its address, so that
// other processes on the same directory connect to it instead.
const LockFile = "replayctl.lock"

// Holder says which process holds a data directory.
type Holder struct {
	// PID is the holding process.
	PID int `json:"pid"`
	// Command is what it runs ("replayctl broker", "replayctl run", ...).
	Command string `json:"command"`
	// Addr is the address of the broker it serves to other processes
	// (`replayctl broker`); empty for a process that keeps its broker to
	// itself, or while that broker is still starting.
	Addr string `json:"addr,omitempty"`
	// Serving is true for a holder that will serve other processes (Addr
	// may still be empty while it starts).
	Serving bool `json:"serving,omitempty"`
	// Since is when it took the lock.
	Since time.Time `json:"since"`
}

// BusyError is returned by LockDataDir (and StartEmbedded) when another
// process, or another broker of this process, holds the data directory.
type BusyError struct {
	Dir    string
	Holder Holder // zero PID when the lock file could not be read
}

func (e *BusyError) Error() string {
	who := "another replayctl process"
	if e.Holder.PID != 0 {
		who = fmt.Sprintf("another replayctl process (pid %d, %s, since %s)", e.Holder.PID,
			cmp.Or(e.Holder.Command, "replayctl"), e.Holder.Since.Local().Format(time.DateTime))
	}
	if e.Holder.Addr != "" {
		return fmt.Sprintf("data dir %s is served by %s at %s", e.Dir, who, e.Holder.Addr)
	}
	return fmt.Sprintf("data dir %s is in use by %s, and one embedded broker's data dir serves one process at a time. "+
		"Wait for it to end, or share the directory: start `replayctl broker --data-dir %s` (commands on this data dir then connect to it by themselves; other hosts pass --brokers ADDR)",
		e.Dir, who, e.Dir)
}

// DataDirLock is a held lock on a data directory.
type DataDirLock struct {
	fl     *flock.Flock
	path   string
	holder Holder
}

// LockDataDir takes the data directory's lock for h (PID and Since are
// filled in), creating the directory when missing. When another process
// holds it, it returns a *BusyError that says who; a holder that serves
// other processes but is still starting is waited for (up to 10 s or ctx)
// so that its address can be returned.
func LockDataDir(ctx context.Context, dir string, h Holder) (*DataDirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	fl := flock.New(path, flock.SetPermissions(0o644))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("data dir %s: lock: %w", dir, err)
	}
	if !ok {
		return nil, &BusyError{Dir: dir, Holder: readHolder(ctx, path)}
	}
	h.PID = os.Getpid()
	h.Since = time.Now().UTC().Truncate(time.Second)
	l := &DataDirLock{fl: fl, path: path}
	if err := l.Update(h); err != nil {
		_ = fl.Unlock()
		return nil, err
	}
	return l, nil
}

// Update rewrites the lock file's description of its holder (for example
// with the broker's address once it listens).
func (l *DataDirLock) Update(h Holder) error {
	if h.PID == 0 {
		h.PID, h.Since = l.holder.PID, l.holder.Since
	}
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	// Written in place: the lock is on this inode, so it cannot be replaced
	// by a rename. Readers retry on a partial write.
	if err := writeInPlace(l.path, append(data, '\n')); err != nil {
		return fmt.Errorf("data dir lock %s: %w", l.path, err)
	}
	l.holder = h
	return nil
}

// Release empties the lock file and releases the lock.
func (l *DataDirLock) Release() error {
	if l == nil || l.fl == nil {
		return nil
	}
	werr := writeInPlace(l.path, nil)
	err := l.fl.Unlock()
	l.fl = nil
	return errors.Join(werr, err)
}

func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Served reports whether a `replayctl broker` serves dir, from its lock
// file alone (it takes no lock): the file names a serving holder whose
// process is alive. Connecting still decides; this is for a check made
// before any broker starts (sharded runs need a broker other processes
// reach).
func Served(dir string) (Holder, bool) {
	data, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return Holder{}, false
	}
	var h Holder
	if json.Unmarshal(data, &h) != nil || h.PID == 0 || !h.Serving {
		return Holder{}, false
	}
	if p, err := os.FindProcess(h.PID); err != nil || p.Signal(syscall.Signal(0)) != nil {
		return Holder{}, false
	}
	return h, true
}

// readHolder reads the lock file of a held directory. The holder may be
// writing it (retried for up to 2 s) or, for a serving holder, still
// starting its broker (waited for up to 10 s).
func readHolder(ctx context.Context, path string) Holder {
	start := time.Now()
	var last Holder
	for {
		var h Holder
		data, err := os.ReadFile(path)
		valid := err == nil && json.Unmarshal(data, &h) == nil && h.PID != 0
		if valid {
			last = h
			if !h.Serving || h.Addr != "" {
				return h
			}
		}
		wait := 2 * time.Second
		if valid {
			wait = 10 * time.Second
		}
		if time.Since(start) > wait {
			return last
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(50 * time.Millisecond):
		}
	}
}
