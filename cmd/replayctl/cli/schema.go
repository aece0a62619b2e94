package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/schemas"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the scenario JSON Schema (for editors and CI)",
		Example: `  replayctl schema > scenario.schema.json
  # in VS Code (YAML extension): # yaml-language-server: $schema=./scenario.schema.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc, err := schemas.EditorSchema()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", doc)
			return err
		},
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print replayctl's version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "replayctl %s\n", Version)
			return err
		},
	}
}
