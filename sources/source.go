// Package sources defines where messages come from. Each kind of source lives
// in its own sub-package (capturesrc, pcapsrc, gorsrc, windowsrc) and
// implements Source.
package sources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/replayctl/replayctl/message"
)

// Source produces messages in order.
//
// Lifecycle: construct (no side effects, no I/O), then Run once. Run calls
// emit for each message in order and returns nil at the natural end of its
// input (end of file, end of window), or ctx.Err() when ctx is done. An error
// returned by emit stops Run and is returned (wrapped). emit may block: that
// is the backpressure. Run releases everything it opened before it returns.
type Source interface {
	Run(ctx context.Context, emit func(*message.Message) error) error
	// Stats returns the source's counters (messages, drops, parse errors, …),
	// safe to call concurrently with Run. Names are kebab-case.
	Stats() map[string]int64
}

// Ordered is a Source whose order of messages depends on its settings (or
// on how the version of replayctl that reads it sorts them). Order names
// that order: a position counted in one order (a resume point) means the
// same message only in a source with the same Order.
type Ordered interface {
	Order() string
}

// Within returns name (absolute) relative to root, when it lies under it.
func Within(root, name string) (string, error) {
	rel, err := filepath.Rel(root, name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s is outside %s; a restricted scenario reads only there", name, root)
	}
	return rel, nil
}

// OpenIn opens the file name (absolute, under root) for reading through an
// os.Root opened on root: no symbolic link, however old, leads it outside
// root. The sources of a restricted scenario open their files so (root is
// scenario.Path.Root).
func OpenIn(root, name string) (*os.File, error) {
	rel, err := Within(root, name)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return nil, NotRead(name, root, err)
	}
	return f, nil
}

// NotRead is why name (under root) could not be opened through an os.Root
// on root. A file that is not there is said to be missing, as an
// unrestricted scenario says it ("open NAME: no such file or directory"),
// not refused as if it were outside root: it lies under root. Any other
// error (a link that leads outside, permissions) says what a restricted
// scenario may read.
func NotRead(name, root string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
		return &fs.PathError{Op: "open", Path: name, Err: pe.Err}
	}
	return fmt.Errorf("%s not read: a restricted scenario reads only under %s: %w", name, root, err)
}
