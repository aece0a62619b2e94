package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/gorimport"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert other tools' command lines into scenarios",
	}
	cmd.AddCommand(newImportGorCmd())
	return group(cmd)
}

const importGorHelp = `Convert a GoReplay (gor) command line into an equivalent scenario, printed as YAML.

Give gor's arguments after "--", exactly as your script passes them to gor (a leading
program name, gor, ./goreplay or sudo gor, is skipped: paste the whole line). Every flag that
cannot be mapped is listed as a warning, on stderr and as a comment at the top of the YAML;
none is dropped silently. A --set a warning suggests is quoted for a POSIX shell: paste it
after 'replayctl run FILE' as printed. The scenario passes 'replayctl validate'. See
docs/migration.md for the table of gor flags and scenario fields.

Usage:
  replayctl import gor -- [gor flags] > scenario.yaml

Example:
  replayctl import gor -- --input-kafka-host 'k1:9092' --input-kafka-topic traffic \
      --input-kafka-start-offset 1200 --input-kafka-end-offset 9800 \
      --output-http 'http://staging:8080' --exit-after 300s --http-set-header 'X-Replay: 1'
`

func newImportGorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gor -- [gor flags]",
		Short: "Print the scenario equivalent to a GoReplay command line",
		Long:  importGorHelp,
		// gor's flags are not ours: everything after "gor" is passed through.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			} else if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
				fmt.Fprint(cmd.OutOrStdout(), importGorHelp)
				return nil
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("import gor: give gor's arguments after --, for example: replayctl import gor -- --input-raw :8080 --output-http http://127.0.0.1:9000")}
			}
			res, err := gorimport.Convert(args)
			if err != nil {
				return usageError{fmt.Errorf("import gor: %w", err)}
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			_, err = cmd.OutOrStdout().Write(res.YAML)
			return err
		},
	}
}
