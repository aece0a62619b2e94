package gorimport

import (
	"fmt"
	"math"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/replayctl/replayctl/internal/shquote"
)

// limit is a gor limiter suffix: "|N" (N per second) or "|N%".
type limit struct {
	set     bool
	percent bool
	n       float64
}

func (l limit) String() string {
	switch {
	case !l.set:
		return ""
	case l.percent:
		return "|" + fmtNum(l.n) + "%"
	}
	return "|" + fmtNum(l.n)
}

// splitLimit splits "value|limit" at the first "|", as gor does, and
// parses the limit strictly (gor reads a bad one as 0; here it is an error).
func splitLimit(flag, v string) (string, limit, error) {
	val, opt, ok := strings.Cut(v, "|")
	if !ok {
		return v, limit{}, nil
	}
	l := limit{set: true}
	num := strings.TrimSpace(opt)
	if strings.HasSuffix(num, "%") {
		l.percent = true
		num = strings.TrimSpace(strings.TrimSuffix(num, "%"))
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || math.IsInf(n, 0) {
		return val, limit{}, fmt.Errorf("--%s %q: limit %q must be a number > 0, or a percentage such as 200%%", flag, v, opt)
	}
	l.n = n
	return val, l, nil
}

// filePath checks that a --input-file or --output-file value names a file:
// not empty, not a directory such as ".", ".." or "dir/", no NUL byte nor
// other control character (a byte below 0x20 or DEL), which a scenario's
// path may not hold.
func filePath(flag, p string) (string, error) {
	if clean := path.Clean(filepath.ToSlash(p)); p == "" || clean == "." || clean == ".." || clean == "/" ||
		strings.HasSuffix(clean, "/..") || strings.HasSuffix(p, "/") {
		return p, fmt.Errorf("--%s %q: names a directory, not a file", flag, p)
	}
	if strings.ContainsRune(p, 0) {
		return p, fmt.Errorf("--%s %q: a file name cannot hold a NUL byte", flag, p)
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return p, fmt.Errorf("--%s %q: a file name cannot hold a control character (%q at byte %d)", flag, p, p[i:i+1], i+1)
	}
	return p, nil
}

func parseGoDuration(flag, v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("--%s %q: invalid duration (want e.g. 30s, 5m)", flag, v)
	}
	return max(d, 0), nil
}

// duration is parseGoDuration for a flag whose negative value gor would
// take as it is: it is taken as 0 (unset), and said so.
func (c *conv) duration(flag, v string) (time.Duration, error) {
	d, err := parseGoDuration(flag, v)
	if raw, _ := time.ParseDuration(strings.TrimSpace(v)); err == nil && raw < 0 {
		c.warnf("--%s %q is negative: taken as 0 (unset)", flag, v)
	}
	return d, err
}

func parseInt(flag, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("--%s %q: want an integer", flag, v)
	}
	return n, nil
}

func parseOffset(flag, v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--%s %q: want an offset >= 0", flag, v)
	}
	return n, nil
}

var gorSizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// gorSizeUnits are GoReplay's size units (binary multiples).
var gorSizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseGorSize parses a gor size ("2mb", "64kb", "1048576") into bytes.
func parseGorSize(v string) (int64, error) {
	m := gorSizeRE.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return 0, fmt.Errorf("invalid size (want e.g. 2mb or a number of bytes)")
	}
	unit, ok := gorSizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size unit %q (want kb, mb, gb)", m[2])
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n*unit < 1 || n*unit > 1<<50 {
		return 0, fmt.Errorf("size out of range")
	}
	return int64(n * unit), nil
}

// sizeString prints bytes as the largest exact binary unit: 64MiB, 3KiB, 1000.
func sizeString(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// parsePercent parses a gor limiter share: "25%" or the deprecated "1/4".
func parsePercent(v string) (float64, error) {
	v = strings.TrimSpace(v)
	if num, ok := strings.CutSuffix(v, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
			return 0, fmt.Errorf("invalid percentage %q", v)
		}
		return p, nil
	}
	if a, b, ok := strings.Cut(v, "/"); ok {
		num, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
		den, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
		if err1 != nil || err2 != nil || den == 0 {
			return 0, fmt.Errorf("invalid fraction %q", v)
		}
		return float64(num) / float64(den) * 100, nil
	}
	return 0, fmt.Errorf("%q must be a percentage such as 25%%", v)
}

// fmtNum prints a number without exponent or trailing zeros.
func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// shellJoin quotes args for display as a POSIX shell command line.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shquote.IfNeeded(a)
	}
	return strings.Join(out, " ")
}

// setArg is the argument of --set that sets the key at path to value, as
// a hint prints it to be copied into a POSIX shell: quoted when a segment
// or the value holds a character the shell reads (a space, a quote, $, ;,
// parentheses…). A segment holding a dot (a job named replay.v2) is
// quoted for --set, jobs."replay.v2".loop.for, which reads it as one key:
// unquoted, the path would read two ways next to a job named replay, which
// --set refuses.
func setArg(value string, path ...string) string {
	segs := make([]string, len(path))
	for i, p := range path {
		segs[i] = p
		if strings.Contains(p, ".") {
			segs[i] = `"` + p + `"`
		}
	}
	return shquote.IfNeeded(strings.Join(segs, ".") + "=" + value)
}
