package main

import (
	"github.com/spf13/cobra"

	"slipway.dev/slipway/spec"
)

func newSchemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of slipway files",
		Long: `schema prints the JSON Schema that App and AnalysisTemplate documents follow, for
editors and linters (for example yaml-language-server).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(spec.Schema())
			return err
		},
	}
}
