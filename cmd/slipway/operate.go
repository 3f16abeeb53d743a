package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

// newOperationCommands returns promote, abort, pause, resume, retry and rollback: each asks
// the server for one manual operation on an app's rollout and prints the rollout after it.
func newOperationCommands(g *globals) []*cobra.Command {
	type opFlags struct {
		full, withSteps bool
		to, reason      string
	}
	mk := func(kind slipway.OperationKind, done, short, long string, flags func(*cobra.Command, *opFlags)) *cobra.Command {
		var f opFlags
		cmd := &cobra.Command{
			Use:   string(kind) + " APP",
			Short: short,
			Long:  long + "\n\nIt fails (exit 1) when the app does not exist or the operation does not fit the rollout's phase.",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ro, err := g.client().Operate(cmd.Context(), slipway.Operation{
					Kind: kind, App: args[0], Reason: f.reason, Full: f.full, To: f.to, WithSteps: f.withSteps,
				})
				if err != nil {
					return err
				}
				return g.emit(cmd.OutOrStdout(), ro, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s %s: %s\n", done, args[0], rolloutLine(ro))
					return err
				})
			},
		}
		cmd.Flags().StringVar(&f.reason, "reason", "", "why, for the event log")
		if flags != nil {
			flags(cmd, &f)
		}
		return cmd
	}
	return []*cobra.Command{
		mk(slipway.OpPromote, "promoted", "Move a rollout past its current pause or analysis step",
			"promote moves the app's rollout on: past a pause step, or a blue-green rollout to the switch.\n--full skips every remaining step and analysis.",
			func(c *cobra.Command, f *opFlags) {
				c.Flags().BoolVar(&f.full, "full", false, "skip the remaining steps and analysis")
			}),
		mk(slipway.OpAbort, "aborted", "Abort a rollout: all traffic back to the stable revision",
			"abort ends the app's rollout and sends all traffic back to the stable revision.", nil),
		mk(slipway.OpPause, "paused", "Pause a rollout where it stands",
			"pause holds the app's rollout at its current step until resumed.", nil),
		mk(slipway.OpResume, "resumed", "Resume a paused rollout",
			"resume continues a paused rollout from where it stopped.", nil),
		mk(slipway.OpRetry, "retried", "Retry an aborted rollout",
			"retry starts the app's aborted rollout again from its first step.", nil),
		mk(slipway.OpRollback, "rolling back", "Roll back to an earlier revision",
			"rollback rolls the app back to the previous stable revision, or to --to (a revision ID or\nnumber). It skips the strategy's steps and analysis unless --with-steps is given.",
			func(c *cobra.Command, f *opFlags) {
				c.Flags().StringVar(&f.to, "to", "", "revision ID or number to roll back to (default: the previous stable one)")
				c.Flags().BoolVar(&f.withSteps, "with-steps", false, "run the strategy's steps and analysis")
			}),
	}
}
