package fleet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// takenFile begins the name of the file in an agent's work directory that
// lists the jobs it took, until their specs expire: one per agent name
// (takenPath), so that agents sharing a work directory keep their own.
const takenFile = ".replayctl-taken"

// takenPath is agent name's ledger in work dir dir.
func takenPath(dir, name string) string {
	return filepath.Join(dir, takenFile+"-"+url.PathEscape(name))
}

// takenLedger is the agent's own memory of the jobs it took: a job runs
// once. The statuses on the status topic say so too, but anyone who may
// write that topic (every agent, every submitter) can delete them, and a
// spec published again then ran again for as long as it was valid (up to
// 24 h). The ledger is kept on the agent's disk, where no spec reaches.
type takenLedger struct {
	path string
	mu   sync.Mutex
	jobs map[string]time.Time // job ID: its spec's expiry
}

// openTaken reads the ledger of work dir dir, keeping the jobs whose specs
// have not expired (with a margin for clocks), and writes it back without
// the others.
func openTaken(dir, name string, now time.Time) (*takenLedger, error) {
	l := &takenLedger{path: takenPath(dir, name), jobs: map[string]time.Time{}}
	data, err := os.ReadFile(l.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("agent: the jobs it took (%s): %w", l.path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		id, exp, ok := strings.Cut(sc.Text(), "\t")
		t, err := time.Parse(time.RFC3339, exp)
		if !ok || id == "" || err != nil {
			// A line cut by a crash mid-write: the jobs before it are
			// kept, and that one, if any, is the one being taken then.
			continue
		}
		if t.Add(takenMargin).After(now) {
			l.jobs[id] = t
		}
	}
	var b strings.Builder
	for id, t := range l.jobs {
		fmt.Fprintf(&b, "%s\t%s\n", id, t.UTC().Format(time.RFC3339))
	}
	tmp, err := os.CreateTemp(dir, takenFile+"-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("agent: the jobs it took: %w", err)
	}
	_, err = tmp.WriteString(b.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("agent: the jobs it took: %w", err)
	}
	return l, nil
}

// takenMargin keeps a job in the ledger past its spec's expiry, for an
// agent whose clock is behind the submitter's.
const takenMargin = time.Hour

// took reports whether the agent took job id (nil: a ledger of none).
func (l *takenLedger) took(id string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.jobs[id]
	return ok
}

// take records job id, whose spec expires at exp, on disk (synced) before
// it runs: an error means it must not run (nil: nothing kept).
func (l *takenLedger) take(id string, exp time.Time) error {
	if l == nil {
		return nil
	}
	if strings.ContainsAny(id, "\t\n") {
		return fmt.Errorf("job ID %q has a tab or a newline", id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("recording the job as taken: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s\t%s\n", id, exp.UTC().Format(time.RFC3339))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("recording the job as taken (%s): %w", l.path, err)
	}
	l.jobs[id] = exp
	return nil
}
