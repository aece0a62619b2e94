// Command bench is replayctl's benchmark harness (`make bench`): it measures
// replay throughput, timing fidelity, memory, Kafka throughput and capture
// overhead, each next to a reference measured in the same run on the same
// loopback target (wrk, kcat, the recorded timeline), prints a table and
// writes BENCHMARKS.md.
//
//	go run ./bench -out BENCHMARKS.md [-quick] [-only a,b,...]
//
// It drives the built binary (bin/replayctl, `make build`) as a user would:
// scenario files in a temporary directory, JSON reports read back. Kafka
// throughput (d) uses the packages directly. REPLAYCTL_TEST_KAFKA names a
// real Kafka for (d); everything runs on 127.0.0.1.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// env is what the figures share.
type env struct {
	quick bool
	bin   string // absolute path of bin/replayctl
	tmp   string // the run's temporary directory, removed at the end
	kafka string // REPLAYCTL_TEST_KAFKA, may be empty
	procs *procs
	log   *slog.Logger
	// aRate is figure (a)'s replay rate at speed max, once measured: the
	// open-model figure replays at half of it.
	aRate float64
	// oRate, when set (-o-rate), is the open-model figure's rate instead.
	oRate float64
	// oRef runs figure o's wrk reference (-o-ref=false skips it).
	oRef bool
}

// figure is one benchmark: it returns its rows and notes. An error means the
// figure could not be measured; it is shown as such.
type figure struct {
	id    string
	title string
	run   func(ctx context.Context, e *env) ([]Row, Note, error)
}

var figures = []figure{
	{"a", "Replay throughput at speed: max vs wrk", figA},
	{"b", "Timing fidelity at speed 1 through Kafka", figB},
	{"c", "Memory bounded while replaying large windows", figC},
	{"d", "Kafka write and read throughput vs kcat", figD},
	{"e", "Live capture on lo: overhead, losses, capture → Kafka in another process, spool rates", figE},
	{"f", "Recording through a broker outage; the spool", figF},
	{"g", "Sharded replay: 2 shard processes vs 1 process on one window", figG},
	{"h", "HTTP/2: replay vs h2load, capture CPU vs HTTP/1.x", figH},
	{"o", "Open model: a paced replay to a slow target", figO},
}

func main() {
	os.Exit(run())
}

func run() (code int) {
	out := flag.String("out", "", "write the Markdown report to this file (e.g. BENCHMARKS.md)")
	quick := flag.Bool("quick", false, "smaller sizes and shorter loads, for a smoke run")
	only := flag.String("only", "", "comma-separated figures to run (a,b,c,...); default all")
	flag.DurationVar(&fOutage, "outage", fOutage, "how long figure f keeps the broker down (the issue's case: 60s)")
	keep := flag.Bool("keep", false, "keep the temporary directory (scenarios, reports, CPU profiles) for a closer look")
	bin := flag.String("bin", "bin/replayctl", "the replayctl binary to drive (`make build`)")
	oRef := flag.Bool("o-ref", true, "figure o measures its wrk reference on the slow target (false: only the replay, for quick iterations)")
	oRate := flag.Float64("o-rate", 0, "figure o replays at this rate (req/s) instead of half of (a)'s")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	selected, err := selectFigures(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	binPath, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(binPath)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: replayctl binary: %v (run `make build` first)\n", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "replayctl-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	e := &env{quick: *quick, bin: binPath, tmp: tmp, kafka: strings.TrimSpace(os.Getenv("REPLAYCTL_TEST_KAFKA")), procs: newProcs(), log: log, oRate: *oRate, oRef: *oRef}
	cleanup := func() {
		e.procs.killAll()
		if *keep {
			log.Info("temp dir kept (-keep): scenarios, reports, CPU profiles", "dir", tmp)
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			log.Warn("temp dir not removed", "dir", tmp, "err", err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			cleanup()
			panic(p)
		}
		cleanup()
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	started := time.Now()
	res := Results{Date: started.Format("2006-01-02 15:04 MST"), Machine: machine(), Quick: *quick}
	for _, f := range selected {
		if ctx.Err() != nil {
			break
		}
		log.Info("figure", "fig", f.id, "title", f.title)
		t0 := time.Now()
		rows, note, err := f.run(ctx, e)
		note.Fig, note.Title = f.id, f.title
		if err != nil {
			log.Error("figure not measured", "fig", f.id, "err", err)
			rows = append(rows, Row{Fig: f.id, What: f.title, Verdict: NotMeasured, Ours: "—", Ref: "—", Ratio: "—"})
			note.Lines = append(note.Lines, "**Not measured:** "+strings.ReplaceAll(err.Error(), "\n", " / "))
		}
		note.Lines = append(note.Lines, fmt.Sprintf("Figure run time: %s.", time.Since(t0).Round(100*time.Millisecond)))
		res.Rows = append(res.Rows, rows...)
		res.Notes = append(res.Notes, note)
		fmt.Print("\n" + renderTable(rows))
	}
	res.Elapsed = time.Since(started).Round(time.Second).String()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		code = 1
	}

	fmt.Printf("\n== replayctl benchmarks (%s, %d CPUs %s, %s) ==\n\n", res.Date, res.Machine.CPUs, res.Machine.CPUModel, res.Machine.GoVersion)
	fmt.Print(renderTable(res.Rows))
	if *out != "" {
		if err := os.WriteFile(*out, []byte(renderMarkdown(res)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Printf("\nwrote %s\n", *out)
	}
	return code
}

func selectFigures(only string) ([]figure, error) {
	if strings.TrimSpace(only) == "" {
		return figures, nil
	}
	var out []figure
	for _, id := range strings.Split(only, ",") {
		id = strings.TrimSpace(id)
		i := slices.IndexFunc(figures, func(f figure) bool { return f.id == id })
		if i < 0 {
			return nil, fmt.Errorf("-only: unknown figure %q (want one of %s)", id, figureIDs())
		}
		if !slices.ContainsFunc(out, func(f figure) bool { return f.id == id }) {
			out = append(out, figures[i])
		}
	}
	slices.SortFunc(out, func(a, b figure) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// machine describes the host: CPUs, CPU model, Go version, kernel.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPUModel: "unknown CPU", GoVersion: runtime.Version(), Kernel: runtime.GOOS}
	if out, err := exec.Command("nproc").Output(); err == nil {
		var n int
		if _, err := fmt.Sscan(string(out), &n); err == nil && n > 0 {
			m.CPUs = n
		}
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// scale picks the full or the quick value.
func (e *env) scale(full, quick int) int {
	if e.quick {
		return quick
	}
	return full
}

func (e *env) dur(full, quick time.Duration) time.Duration {
	if e.quick {
		return quick
	}
	return full
}

// figureIDs lists the figures' ids: "a, b, c".
func figureIDs() string {
	ids := make([]string, len(figures))
	for i, f := range figures {
		ids[i] = f.id
	}
	return strings.Join(ids, ", ")
}
