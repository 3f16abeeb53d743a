package main

import (
	"github.com/spf13/cobra"
)

func newLogsCommand(g *globals) *cobra.Command {
	var (
		revision string
		follow   bool
		tail     int
	)
	cmd := &cobra.Command{
		Use:   "logs APP",
		Short: "Show the output of an app's instances",
		Long: `logs prints the last lines of what each instance of APP wrote to stdout and stderr,
each line prefixed with its instance ID (<revision>-<n>). --revision keeps one revision's
instances; -f keeps printing new lines, from instances that start meanwhile too, until Ctrl-C.
Logs are kept by the local platform in the server's data directory, rotated by size.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().Logs(cmd.Context(), args[0], revision, tail, follow, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&revision, "revision", "", "only this revision's instances")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	f.IntVar(&tail, "tail", 100, "lines to print from the end of each instance's log")
	return cmd
}
