package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
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
		prof      profiles
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario's jobs in 'needs' order",
		Long: `Run compiles the scenario (validating everything first), then runs its jobs in 'needs' order,
or only the jobs named with --job (whose needs must already be satisfied, for example by a saved
window). Ctrl-C stops cleanly: stages drain and flush, windows are saved, and what was done is
reported. A failed assertion exits 3.`,
		Example: `  replayctl run examples/quickstart.yaml
  replayctl run scenario.yaml --job replay --set jobs.replay.speed=max
  replayctl run scenario.yaml --dry-run`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := lf.load(args[0])
			if err != nil {
				return err
			}
			mode, err := engine.ParseProgress(progress)
			if err != nil {
				return usageError{err}
			}
			opts := engine.Options{
				Jobs:        jobs,
				DataDir:     dataDir,
				Brokers:     brokers,
				Overwrite:   overwrite || history,
				KeepHistory: history,
				Out:         cmd.OutOrStdout(),
				Err:         cmd.ErrOrStderr(),
				Logger:      newLogger(cmd.ErrOrStderr(), verbose),
				Verbose:     verbose,
				Progress:    mode,
			}
			plan, err := engine.Compile(s, opts)
			if err != nil {
				return err
			}
			if dryRun {
				plan.Describe(cmd.OutOrStdout())
				return nil
			}
			if err := prof.start(); err != nil {
				return err
			}
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
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace a saved window of the same name")
	cmd.Flags().BoolVar(&history, "keep-history", false, "replace a saved window of the same name, keeping the old one as NAME@<save time>")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log progress and counters while running")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress bar: auto (on a terminal), always, never")
	cmd.Flags().StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile of the run to this file (for `go tool pprof`)")
	cmd.Flags().StringVar(&prof.mem, "memprofile", "", "write a memory profile (allocations and heap in use at the end) to this file")
	return cmd
}
