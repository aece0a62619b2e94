package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/scenario"
)

func newValidateCmd() *cobra.Command {
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files: schema, references, expressions, values",
		Long: `Validate checks each scenario file without reading a packet or sending a byte: its shape
against the JSON Schema, every reference (topics, windows, targets, jobs), 'needs' cycles,
durations, rates, speeds, URLs and every expression, and that the paths the scenario writes stay
under its directory (see --output-dir, --allow-paths). It prints every problem as
FILE:LINE:COL: message and exits 2 when there is any. Input files (pcap, gor, TLS files) that do
not exist and capture interfaces this host does not have are printed as FILE:LINE:COL: warning: …
and do not change the exit code: they may exist only where and when the scenario runs. So are
the variables of --env-file that no ${VAR} or env("VAR") of the scenario reads (ENV-FILE:LINE:COL: warning: …,
naming the variable, never its value).`,
		Example: `  replayctl validate examples/*.yaml
  TARGET=http://127.0.0.1:9000 replayctl validate scenario.yaml --set jobs.replay.speed=4`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			var all scenario.Diagnostics
			var other []error
			for _, path := range args {
				s, err := lf.load(path)
				if err == nil {
					_, err = engine.Compile(s, engine.Options{})
				}
				var diags scenario.Diagnostics
				if s != nil && len(s.Warnings) > 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), s.Warnings.Error())
				}
				switch {
				case err == nil:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
				case errors.As(err, &diags):
					all = append(all, diags...)
				default:
					other = append(other, fmt.Errorf("%s: %w", path, err))
				}
			}
			if len(other) > 0 {
				for _, err := range other {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
				}
				if len(all) == 0 {
					return usageError{fmt.Errorf("%d file(s) could not be validated", len(other))}
				}
			}
			if len(all) > 0 {
				return all
			}
			return nil
		},
	}
	lf.register(cmd)
	return cmd
}
