package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/runbus"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/shard"
)

func newReportCmd() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "report",
		Short: "Work with replay reports (merge the shards of a run)",
	})
	cmd.AddCommand(newReportMergeCmd())
	return cmd
}

// runFlags say how merge --run reads the run topic: with FILE... they mean
// nothing.
var runFlags = []string{"file", "brokers", "data-dir", "run-topic", "wait"}

func newReportMergeCmd() *cobra.Command {
	var (
		lf       loadFlags
		runID    string
		file     string
		dataDir  string
		brokers  []string
		wait     time.Duration
		jsonOut  string
		htmlOut  string
		verbose  bool
		runTopic string
	)
	cmd := &cobra.Command{
		Use:   "merge (--run ID | FILE...)",
		Short: "Merge the reports of a run's shards exactly into one report",
		Long: `Merge adds up the reports of the shards of a run exactly: counters add, latency and lateness
histograms add bucket by bucket (never averaged percentiles), and the job's assertions are
evaluated on the merged summary. With --run it reads the shards' results from the run topic
(replayctl.runs on the scenario's brokers, or --brokers); with FILE... it reads replay JSON
reports: the shards' of one run (report.json of each shard), or unsharded replays of disjoint
parts of one window. Reports of different windows or runs, reports whose parts overlap (one
window replayed twice), one report given twice (the same file, or a copy) and a record job's
report are refused, naming the files (exit 2): their sum would be of no one replay, or count
requests twice. Reports of a file or capture source name no window: they are added up as
given, and a note says it cannot be checked. A shard that never reported or failed makes the
merge incomplete: it is named, the assertions are not evaluated, and merge exits 1 (also for
an interrupted shard). A failed assertion exits 3.`,
		Example: `  replayctl report merge --run peak-1 --brokers k1:9092 --json merged.json --html merged.html
  replayctl report merge --run peak-1 -f scenario.yaml --wait 10m
  replayctl report merge reports/shard-*.json --html merged.html`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var inputs []*report.Input
			var err error
			if runID == "" && len(args) > 0 {
				for _, name := range runFlags {
					if cmd.Flags().Changed(name) {
						return usageError{fmt.Errorf("--%s says how --run reads the run topic: merging FILE... it would change nothing; leave it out", name)}
					}
				}
			}
			if file == "" {
				for _, name := range scenarioFlags {
					if cmd.Flags().Changed(name) {
						return usageError{fmt.Errorf("--%s says how the scenario of -f is read: give -f FILE (with --run), or leave --%s out", name, name)}
					}
				}
			}
			switch {
			case runID != "" && len(args) > 0:
				return usageError{errors.New("merge either --run ID (from the run topic) or FILE... (JSON reports), not both")}
			case runID != "":
				if err := shard.ValidateRunID(runID); err != nil {
					return usageError{err}
				}
				var s *scenario.Scenario
				if file != "" {
					if s, err = lf.load(file); err != nil {
						return err
					}
					lf.envFileWarnings(cmd.ErrOrStderr(), s)
				}
				opts := engine.Options{DataDir: dataDir, Brokers: brokers, Err: cmd.ErrOrStderr(), Logger: newLogger(cmd.ErrOrStderr(), verbose)}
				inputs, err = runInputs(ctx, s, opts, runTopic, runID, wait, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
			case len(args) > 0:
				for _, a := range args {
					data, err := os.ReadFile(a)
					if err != nil {
						return usageError{err}
					}
					in, err := report.ParseInput(a, data)
					if err != nil {
						return usageError{err}
					}
					inputs = append(inputs, in)
				}
			default:
				return usageError{errors.New("name the run (--run ID) or the shards' JSON reports (FILE...)")}
			}
			m, err := report.Merge(inputs, runID)
			if err != nil {
				return usageError{err}
			}
			m.WriteText(cmd.OutOrStdout())
			if jsonOut != "" {
				data, err := json.MarshalIndent(m.JSON, "", "  ")
				if err != nil {
					return err
				}
				if err := writeOut(jsonOut, append(data, '\n')); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "  report    %s\n", jsonOut)
			}
			if htmlOut != "" {
				var buf bytes.Buffer
				if err := report.WriteHTML(&buf, m.HTMLData()); err != nil {
					return err
				}
				if err := writeOut(htmlOut, buf.Bytes()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "  report    %s\n", htmlOut)
			}
			if !m.Complete() {
				return fmt.Errorf("run %s is INCOMPLETE: %s; the totals above miss part of the window", cmp.Or(m.JSON.RunID, "(files)"), joinProblems(m.JSON.Problems))
			}
			if m.JSON.NotSentFails {
				// As each of those parts' runs failed (on-loss: fail).
				return fmt.Errorf("run %s: requests of the window were not sent (not sent, above), and the job's on-loss is fail", cmp.Or(m.JSON.RunID, "(files)"))
			}
			if len(m.Failed) > 0 {
				return &engine.AssertionError{Failed: m.Failed}
			}
			return nil
		},
	}
	lf.register(cmd)
	cmd.Flags().StringVar(&runID, "run", "", "merge the results of this run from the run topic")
	cmd.Flags().StringVarP(&file, "file", "f", "", "scenario whose kafka section says how to reach the brokers (with --run)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "embedded broker's data directory, with --run and no brokers (default: the -f scenario's kafka.data-dir, else .replayctl/data)")
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "Kafka brokers holding the run topic (with --run)")
	cmd.Flags().StringVar(&runTopic, "run-topic", runbus.DefaultTopic, "the run topic (with --run)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "with --run: wait up to this long for every shard's result (a merge Job started with the shards)")
	cmd.Flags().StringVar(&jsonOut, "json", "", "write the merged JSON report here")
	cmd.Flags().StringVar(&htmlOut, "html", "", "write the merged HTML report here")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log what is read")
	return cmd
}

func joinProblems(ps []string) string {
	out := ""
	for i, p := range ps {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}

func writeOut(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// runInputs reads a run's results from the run topic, waiting up to wait
// for every shard's.
func runInputs(ctx context.Context, s *scenario.Scenario, opts engine.Options, topic, runID string, wait time.Duration, stderr io.Writer) ([]*report.Input, error) {
	cat, err := engine.OpenCatalog(ctx, s, opts)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	bus, err := runbus.Open(ctx, cat.ClientOpts(), topic, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer bus.Close()
	deadline := time.Now().Add(wait)
	for {
		recs, bad, err := bus.Records(ctx, runID)
		if err != nil {
			return nil, err
		}
		if bad > 0 {
			fmt.Fprintf(stderr, "replayctl: %d record(s) of run %s on %s are not run records (skipped)\n", bad, runID, topic)
		}
		// A shard's result is the one of the attempt that armed first (a
		// later attempt at the same shard fails: its result must not
		// replace the run's); without one, its last result.
		armedBy := map[int]string{}
		results := map[int]shard.Record{}
		count := 0
		var order []int
		for _, r := range recs {
			count = max(count, r.Count)
			switch r.Kind {
			case shard.KindArmed:
				if _, ok := armedBy[r.Shard]; !ok {
					armedBy[r.Shard] = r.Nonce
				}
			case shard.KindResult:
				prev, seen := results[r.Shard]
				if !seen {
					order = append(order, r.Shard)
				}
				if !seen || prev.Nonce != armedBy[r.Shard] || r.Nonce == armedBy[r.Shard] {
					results[r.Shard] = r
				}
			}
		}
		if (count > 0 && len(results) >= count) || !time.Now().Before(deadline) {
			if len(recs) == 0 {
				return nil, fmt.Errorf("run %s: no record on topic %s (brokers %v): no shard of that run armed there", runID, topic, cat.Brokers)
			}
			if len(results) == 0 {
				return nil, fmt.Errorf("run %s: none of its %d shard(s) published a result on %s (still running? --wait waits for them)", runID, count, topic)
			}
			var inputs []*report.Input
			for _, i := range order {
				in, err := report.ParseInput(fmt.Sprintf("run %s shard %d (topic %s)", runID, i, topic), results[i].Report)
				if err != nil {
					return nil, err
				}
				inputs = append(inputs, in)
			}
			return inputs, nil
		}
		select {
		case <-ctx.Done():
			so := "no shard armed yet"
			if count > 0 {
				so = fmt.Sprintf("%d of %d so far", len(results), count)
			}
			return nil, fmt.Errorf("run %s: %w while waiting for the shards' results (%s)", runID, engine.ErrInterrupted, so)
		case <-time.After(min(2*time.Second, time.Until(deadline))):
		}
	}
}
