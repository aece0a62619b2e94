package scenario

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/replayctl/replayctl/internal/shquote"
)

// A scenario is contained: every path it writes (reports, gor sinks, the
// embedded broker's data-dir, kafka sinks' spool.dir) resolves under the scenario's directory, or
// Options.OutputDir when set, or one of Options.AllowPaths, and never
// through a symbolic link below that directory. Load checks this before
// anything runs (each existing component is looked at with Lstat), and
// Path.Create and Path.WriteFile write through an os.Root opened on that
// directory (as the spool does on Path.Root), so a link made later cannot
// lead outside either.

// outPath is path for a file the scenario writes: a relative path resolves
// against the output directory; the result must be contained (see above).
// A path that is not is reported at its node and returned unset.
func (d *decoder) outPath(x m, key string) Path { return d.written(x, key, false) }

// outDirPath is outPath for a directory the scenario writes files into
// (spool.dir): it may also be the output directory itself.
func (d *decoder) outDirPath(x m, key string) Path { return d.written(x, key, true) }

func (d *decoder) written(x m, key string, dir bool) Path {
	v := x.get(key)
	raw := x.str(key)
	if raw == "" || d.controlInPath(x, key, raw) {
		return Path{}
	}
	abs := raw
	if !filepath.IsAbs(raw) {
		abs = filepath.Join(d.outDir, raw)
	}
	abs = filepath.Clean(abs)
	root, err := containedIn(abs, append([]string{d.outDir}, d.allow...), dir)
	if err != nil {
		what := "the scenario's directory " + d.outDir
		if d.outDirFlag {
			what = "--output-dir " + d.outDir
		}
		if errors.Is(err, errOutside) && (d.restricted || d.remote) {
			// Run by an agent (checked by serve): their command line is
			// not the submitter's, and their directories theirs to keep.
			d.errorf(v, x.p(key), "%s is outside %s; a scenario an agent runs writes only there (or under a directory the agent allows with --allow-paths)", raw, what)
		} else if errors.Is(err, errOutside) {
			// The directory to allow, absolute: --allow-paths reads a
			// relative one from the working directory, not the scenario's.
			allow := filepath.Dir(abs)
			if dir {
				allow = abs
			}
			d.errorf(v, x.p(key), "%s is outside %s; a scenario writes only there, or under a directory the command line allows: --allow-paths %s", raw, what, shquote.IfNeeded(allow))
		} else {
			d.errorf(v, x.p(key), "%v", err)
		}
		return Path{}
	}
	return Path{Raw: raw, Abs: abs, Root: root}
}

// controlInPath reports a path (read or written) that holds a control
// character, a byte below 0x20 or DEL, at its node, and says whether it
// did. Paths are logged and shown as they are: a newline in one would start
// a line of its own in the job's log, one the scenario wrote.
func (d *decoder) controlInPath(x m, key, raw string) bool {
	i := strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f })
	if i < 0 {
		return false
	}
	d.errorf(x.get(key), x.p(key), "a path may not hold control characters (newlines, tabs, NUL, escapes…); this one has %q at byte %d", raw[i:i+1], i+1)
	return true
}

var errOutside = errors.New("outside the allowed directories")

// containedIn returns the first of roots (absolute, clean) that abs lies
// strictly under (or is, when orRoot) with no symbolic link on the way, or
// an error saying why none does.
func containedIn(abs string, roots []string, orRoot bool) (string, error) {
	var linkErr error
	for _, root := range roots {
		if orRoot && abs == root {
			return root, nil
		}
		rel, ok := below(root, abs)
		if !ok {
			continue
		}
		if err := noLinks(root, rel); err != nil {
			linkErr = err
			continue
		}
		return root, nil
	}
	if linkErr != nil {
		return "", linkErr
	}
	return "", errOutside
}

// below returns abs relative to root when abs is strictly under root.
func below(root, abs string) (string, bool) {
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// noLinks checks each existing component of rel under root with Lstat: none
// may be a symbolic link (or anything but a directory, before the last).
func noLinks(root, rel string) error {
	parts := strings.Split(rel, string(filepath.Separator))
	cur := root
	for i, p := range parts {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", cur, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; a contained scenario never goes through one", cur)
		}
		if i < len(parts)-1 && !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", cur)
		}
	}
	return nil
}

// Recheck checks again, for a contained path (Root set), that it lies under
// Root with no symbolic link on the way (or is Root); a link made since Load
// is refused. Create does this by itself.
func (p Path) Recheck() error {
	if p.Root == "" || p.Abs == p.Root {
		return nil
	}
	rel, ok := below(p.Root, p.Abs)
	if !ok {
		return fmt.Errorf("%s is outside %s", p.Raw, p.Root)
	}
	return noLinks(p.Root, rel)
}

// openRoot opens p's root and returns it with p relative to it, after
// checking again that no component is a symbolic link.
func (p Path) openRoot() (*os.Root, string, error) {
	rel, ok := below(p.Root, p.Abs)
	if !ok {
		return nil, "", fmt.Errorf("%s is outside %s", p.Raw, p.Root)
	}
	if err := noLinks(p.Root, rel); err != nil {
		return nil, "", err
	}
	r, err := os.OpenRoot(p.Root)
	if err != nil {
		return nil, "", err
	}
	if dir := filepath.Dir(rel); dir != "." {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			r.Close()
			return nil, "", err
		}
	}
	return r, rel, nil
}

// Create creates (or truncates) the file, making its directory. A contained
// path (Root set) is created through an os.Root on Root.
func (p Path) Create() (*os.File, error) {
	if p.Root == "" {
		if err := os.MkdirAll(filepath.Dir(p.Abs), 0o755); err != nil {
			return nil, err
		}
		return os.Create(p.Abs)
	}
	r, rel, err := p.openRoot()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Create(rel)
}

// WriteFile writes data to the file as Create does, whole or not at all:
// into a temporary file beside it, renamed over it once written. A reader
// (or another process writing the same report, as shards on one host may)
// never sees it half written. A file already there keeps its mode; an
// uncontained path that is a symbolic link is written where it leads.
func (p Path) WriteFile(data []byte) error {
	if p.Root == "" {
		target := p.Abs
		if resolved, err := filepath.EvalSymlinks(p.Abs); err == nil {
			target = resolved
		}
		dir := filepath.Dir(target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return writeRenamed(target, data, modeOf(os.Stat(target)), os.WriteFile, os.Rename, os.Remove)
	}
	r, rel, err := p.openRoot()
	if err != nil {
		return err
	}
	defer r.Close()
	return writeRenamed(rel, data, modeOf(r.Stat(rel)), r.WriteFile, r.Rename, r.Remove)
}

// modeOf is the mode of a file already there, or 0644.
func modeOf(fi os.FileInfo, err error) os.FileMode {
	if err != nil || !fi.Mode().IsRegular() {
		return 0o644
	}
	return fi.Mode().Perm()
}

// writeRenamed writes data to a temporary file beside name, with mode,
// and renames it over name, by the functions given (of the os package or
// of an os.Root).
func writeRenamed(name string, data []byte, mode os.FileMode, write func(string, []byte, os.FileMode) error, rename func(string, string) error, remove func(string) error) error {
	tmp := filepath.Join(filepath.Dir(name), fmt.Sprintf("%s.%s.tmp", filepath.Base(name), rand.Text()[:8]))
	if err := write(tmp, data, mode); err != nil {
		_ = remove(tmp)
		return err
	}
	if err := rename(tmp, name); err != nil {
		_ = remove(tmp)
		return err
	}
	return nil
}
