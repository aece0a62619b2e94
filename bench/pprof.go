package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// pprofLine is one row of `go tool pprof -top`: flat%, cum% and function.
var pprofLine = regexp.MustCompile(`^\s*\S+\s+([0-9.]+)%\s+[0-9.]+%\s+\S+\s+([0-9.]+)%\s+(.+)$`)

// flameSummary reads a CPU profile written by `replayctl run --cpuprofile`
// and returns the n functions with the most CPU of their own (flat) and
// the n with the most including callees (cum), for the notes: the text
// form of a flame graph's widest frames.
func (e *env) flameSummary(ctx context.Context, profile string, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	flat, err := pprofTop(ctx, e.bin, profile, false, n)
	if err != nil {
		return "profile not read: " + err.Error()
	}
	cum, err := pprofTop(ctx, e.bin, profile, true, n+6)
	if err != nil {
		return "profile not read: " + err.Error()
	}
	// The widest frames below main: skip the runtime's and the CLI's roots.
	var below []string
	for _, c := range cum {
		if strings.Contains(c, "runtime.goexit") || strings.Contains(c, "runtime.main") || strings.Contains(c, "main.main") ||
			strings.Contains(c, "cli.") || strings.Contains(c, "cobra.") {
			continue
		}
		if below = append(below, c); len(below) == n {
			break
		}
	}
	return fmt.Sprintf("top flat: %s. Top cumulative: %s.", strings.Join(flat, "; "), strings.Join(below, "; "))
}

// allocSummary reads a heap profile written by `replayctl run --memprofile`
// and returns the n functions that allocated the most bytes over the run.
func (e *env) allocSummary(ctx context.Context, profile string, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	top, err := pprofTop(ctx, e.bin, profile, false, n, "-sample_index=alloc_space")
	if err != nil {
		return "profile not read: " + err.Error()
	}
	return "most bytes allocated: " + strings.Join(top, "; ") + "."
}

func pprofTop(ctx context.Context, bin, profile string, cum bool, n int, extra ...string) ([]string, error) {
	flags := []string{"-top", fmt.Sprintf("-nodecount=%d", n)}
	if cum {
		flags = append(flags, "-cum")
	}
	out, err := runPprof(ctx, bin, profile, append(flags, extra...)...)
	if err != nil {
		return nil, err
	}
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		m := pprofLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		pct := m[1]
		if cum {
			pct = m[2]
		}
		fn := m[3]
		if i := strings.LastIndex(fn, "/"); i >= 0 {
			fn = fn[i+1:]
		}
		rows = append(rows, fmt.Sprintf("`%s` %s%%", strings.TrimSpace(fn), pct))
	}
	return rows, nil
}

// cpuPart names a part of a profile by the frames whose cumulative share
// makes it up (summed: list frames that do not call each other).
type cpuPart struct {
	label  string
	frames []string // function names after the last '/', as pprof prints them
}

// captureParts are the parts of a capture process's CPU that the notes of
// figure e name: the capture goroutine and, nested in it, redaction and the
// sink; the Kafka client's own goroutines; the in-process broker; GC.
var captureParts = []cpuPart{
	{"the capture goroutine: ring, decoding, reassembly, HTTP splitting, redaction and the sink's Write (`capture.(*Assembler).consume`)", []string{"capture.(*Assembler).consume"}},
	{"of which redaction (`redact.(*Redactor).Request`, `.Response`)", []string{"redact.(*Redactor).Request", "redact.(*Redactor).Response"}},
	{"of which the sink's Write (`kafkasink.(*Sink).Write`, `gorsink.(*Sink).Write`)", []string{"kafkasink.(*Sink).Write", "gorsink.(*Sink).Write"}},
	{"of which building the Kafka record (`kafkasink.Record`)", []string{"kafkasink.Record"}},
	{"franz-go encoding, compressing and writing batches (`kgo.(*broker).handleReqs`)", []string{"kgo.(*broker).handleReqs"}},
	{"of which compressing (`kafkasink.(*lz4Compressor).Compress`, `kgo.(*compressor).Compress`)", []string{"kafkasink.(*lz4Compressor).Compress", "kgo.(*compressor).Compress"}},
	{"franz-go finishing promises (`kgo.(*producer).finishPromises`)", []string{"kgo.(*producer).finishPromises"}},
	{"the in-process broker (`kfake.(*Cluster).run`, `kfake.(*clientConn).read`, `.write`)", []string{"kfake.(*Cluster).run", "kfake.(*clientConn).read", "kfake.(*clientConn).write"}},
	{"GC workers (`runtime.gcBgMarkWorker`)", []string{"runtime.gcBgMarkWorker"}},
}

// cpuShares reads a CPU profile and says which share of its samples each
// part took (parts with no samples are left out), e.g. "the capture
// goroutine 72 %; of which redaction 8.8 %; …".
func (e *env) cpuShares(ctx context.Context, profile string, parts []cpuPart) string {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := runPprof(ctx, e.bin, profile, "-top", "-cum", "-nodecount=100000")
	if err != nil {
		return "profile not read: " + err.Error()
	}
	return sharesOf(out, parts)
}

// runPprof runs `go tool pprof FLAGS BIN PROFILE` and returns its output.
func runPprof(ctx context.Context, bin, profile string, flags ...string) (string, error) {
	args := append(append([]string{"tool", "pprof"}, flags...), bin, profile)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	return string(out), nil
}

// sharesOf sums, for each part, the cumulative percentages its frames have
// in the output of `go tool pprof -top -cum`.
func sharesOf(top string, parts []cpuPart) string {
	cum := map[string]float64{}
	for _, l := range strings.Split(top, "\n") {
		m := pprofLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		fn := strings.TrimSpace(m[3])
		// pprof marks inlined frames: "pkg.f (inline)", "(partial-inline)".
		fn = strings.TrimSuffix(strings.TrimSuffix(fn, " (inline)"), " (partial-inline)")
		if i := strings.LastIndex(fn, "/"); i >= 0 {
			fn = fn[i+1:]
		}
		if pct, err := strconv.ParseFloat(m[2], 64); err == nil {
			cum[fn] = pct
		}
	}
	var said []string
	for _, p := range parts {
		sum := 0.0
		for _, f := range p.frames {
			sum += cum[f]
		}
		if sum > 0 {
			said = append(said, fmt.Sprintf("%s %.1f %%", p.label, sum))
		}
	}
	if len(said) == 0 {
		return "none of the named frames is in the profile"
	}
	return strings.Join(said, "; ")
}
