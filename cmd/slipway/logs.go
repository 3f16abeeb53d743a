package main

import (
	"time"

	"github.com/spf13/cobra"
)

func newLogsCommand(g *globals) *cobra.Command {
	var (
		revision  string
		follow    bool
		tail      int
		reconnect time.Duration
	)
	cmd := &cobra.Command{
		Use:   "logs APP",
		Short: "Show the output of an app's instances",
		Long: `logs prints the last lines of what each instance of APP wrote to stdout and stderr,
each line prefixed with its instance ID (<revision>-<n>). --revision keeps one revision's
instances; -f keeps printing new lines, from instances that start meanwhile too, until Ctrl-C.
Logs are kept by the local platform in the server's data directory, rotated by size.
Control characters in a line (ESC, carriage return...) print escaped, as \x1b and \r;
tabs print as they are.

When the connection to the server breaks (the server restarts, or is stopped and started
again), -f says so on stderr, reconnects and carries on after the last line it printed:
none is printed twice or skipped. It gives up after --reconnect-timeout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := streamClient(g, cmd.ErrOrStderr(), reconnect)
			if err != nil {
				return err
			}
			// Each line is escaped, its own newline excepted (escape.go).
			out := &logWriter{w: cmd.OutOrStdout()}
			err = c.Logs(cmd.Context(), args[0], revision, tail, follow, out)
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&revision, "revision", "", "only this revision's instances")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	f.IntVar(&tail, "tail", 100, "lines to print from the end of each instance's log")
	reconnectFlag(cmd, &reconnect)
	return cmd
}
