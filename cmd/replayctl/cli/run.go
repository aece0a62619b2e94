package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/internal/gctune"
)

func newRunCmd() *cobra.Command {
	var (
		lf        loadFlags
		jobs      []string
		dryRun    bool
		dataDir   string
		brokers   []string
		overwrite bool
		history   bool
		verbose   bool
		progress  string
		sf        shardFlags
		prof      profiles
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario's jobs in 'needs' order",
		Long: `Run compiles the scenario (validating everything first, and printing its warnings as validate
does: an unknown topic config key, an env() not set here, a variable of --env-file no ${VAR}
or env("VAR") reads), then runs its jobs in 'needs' order, or only the jobs named with --job (whose needs must
already be satisfied, for example by a saved window). Ctrl-C stops cleanly: stages drain and flush, windows are saved, and what was done is
reported; an interrupted run exits 130, except a live capture that Ctrl-C ends as its last job
(exit 0). A failed assertion exits 3.

save-window refuses a name that is taken unless --overwrite (replace it) or --keep-history
(replace it, keeping the old one as NAME@<save time>) is given. Of jobs saving one name at the
same time, on any broker, exactly one wins; the others exit 2 and replace nothing.`,
		Example: `  replayctl run examples/quickstart.yaml
  replayctl run scenario.yaml --job replay --set jobs.replay.speed=max
  replayctl run scenario.yaml --dry-run
  replayctl run scenario.yaml --job replay --shard 2/8 --run-id peak-1 --brokers k1:9092
  replayctl run scenario.yaml --job replay --shard auto   # JOB_COMPLETION_INDEX, REPLAYCTL_SHARDS, REPLAYCTL_RUN_ID`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overwrite && history {
				return usageError{errors.New("--overwrite and --keep-history exclude each other: --keep-history already replaces the window (keeping the old one as NAME@<save time>)")}
			}
			if dryRun && (prof.cpu != "" || prof.mem != "") {
				// The profile would silently not be written.
				return usageError{errors.New("--cpuprofile and --memprofile profile a run: --dry-run runs nothing")}
			}
			s, err := lf.load(args[0])
			if err != nil {
				return err
			}
			if len(s.Warnings) > 0 {
				// As validate prints them: an unknown topic config key,
				// an env() not set here, an input not there.
				fmt.Fprintln(cmd.ErrOrStderr(), s.Warnings.Error())
			}
			mode, err := engine.ParseProgress(progress)
			if err != nil {
				return usageError{err}
			}
			opts := engine.Options{
				Jobs:        jobs,
				DataDir:     dataDir,
				Brokers:     brokers,
				Overwrite:   overwrite,
				KeepHistory: history,
				Out:         cmd.OutOrStdout(),
				Err:         cmd.ErrOrStderr(),
				Logger:      newLogger(cmd.ErrOrStderr(), verbose),
				Verbose:     verbose,
				Progress:    mode,
			}
			if opts.Shard, err = sf.options(); err != nil {
				return err
			}
			plan, err := engine.Compile(s, opts)
			if err != nil {
				return err
			}
			if dryRun {
				plan.Describe(cmd.OutOrStdout())
				return plan.DescribeShard(cmd.Context(), cmd.OutOrStdout())
			}
			if err := prof.start(); err != nil {
				return err
			}
			gctune.Apply()
			runErr := plan.Run(cmd.Context())
			if err := prof.stop(); err != nil {
				return errors.Join(runErr, err)
			}
			return runErr
		},
	}
	lf.register(cmd)
	cmd.Flags().StringArrayVar(&jobs, "job", nil, "run only this job (repeatable); its needs must already be satisfied")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the compiled plan (stages and resolved settings) and send nothing")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "embedded broker's data directory (default: kafka.data-dir, else .replayctl/data)")
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "Kafka brokers to use instead of the scenario's kafka.brokers")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace a saved window of the same name (not with --keep-history)")
	cmd.Flags().BoolVar(&history, "keep-history", false, "replace a saved window of the same name, keeping the old one as NAME@<save time> (not with --overwrite)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log progress and counters while running")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress bar: auto (on a terminal), always, never")
	sf.register(cmd)
	cmd.Flags().StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile of the run to this file (read it with go tool pprof)")
	cmd.Flags().StringVar(&prof.mem, "memprofile", "", "write a memory profile (allocations and heap in use at the end) to this file")
	return cmd
}
