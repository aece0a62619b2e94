package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/runbus"
	"github.com/replayctl/replayctl/shard"
)

// shardFlags are run's flags for running one shard of a run.
type shardFlags struct {
	shard       string
	runID       string
	armTimeout  time.Duration
	startMargin time.Duration
	runTopic    string
}

func (f *shardFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.shard, "shard", "", "replay shard INDEX/COUNT of the job's window (0-based index: 0/4 … 3/4), or auto ("+shard.EnvIndex+" and "+shard.EnvCount+")")
	cmd.Flags().StringVar(&f.runID, "run-id", "", "the run the shard belongs to: the shards meet under it on the run topic (default $"+shard.EnvRunID+")")
	cmd.Flags().DurationVar(&f.armTimeout, "arm-timeout", engine.DefaultArmTimeout, "with --shard: fail the run when a shard has not armed after this long")
	cmd.Flags().DurationVar(&f.startMargin, "start-margin", engine.DefaultStartMargin, "with --shard: the run starts this long after the last shard armed")
	cmd.Flags().StringVar(&f.runTopic, "run-topic", runbus.DefaultTopic, "with --shard: the topic the shards meet on and publish their results to")
}

// options returns the shard options, nil without --shard.
func (f *shardFlags) options() (*engine.ShardOptions, error) {
	if f.shard == "" {
		if f.runID != "" {
			return nil, usageError{errors.New("--run-id names the run of a shard: it goes with --shard")}
		}
		// Tuning of a sharded run: without --shard it would be ignored.
		for _, o := range []struct {
			name string
			set  bool
		}{
			{"--arm-timeout", f.armTimeout != engine.DefaultArmTimeout},
			{"--start-margin", f.startMargin != engine.DefaultStartMargin},
			{"--run-topic", f.runTopic != runbus.DefaultTopic},
		} {
			if o.set {
				return nil, usageError{fmt.Errorf("%s tunes a sharded run: it goes with --shard", o.name)}
			}
		}
		return nil, nil
	}
	sp, err := shard.Parse(f.shard)
	if err != nil {
		return nil, usageError{err}
	}
	sp.RunID = f.runID
	if sp.RunID == "" {
		sp.RunID = os.Getenv(shard.EnvRunID)
	}
	if err := shard.ValidateRunID(sp.RunID); err != nil {
		return nil, usageError{err}
	}
	if f.armTimeout <= 0 || f.startMargin < 0 {
		return nil, usageError{errors.New("--arm-timeout must be positive and --start-margin not negative")}
	}
	return &engine.ShardOptions{Spec: sp, ArmTimeout: f.armTimeout, Margin: f.startMargin, RunTopic: f.runTopic}, nil
}
