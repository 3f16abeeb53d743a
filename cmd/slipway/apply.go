package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

func newApplyCommand(g *globals) *cobra.Command {
	var files []string
	var prune, wait bool
	var reason string
	var timeout, reconnect time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f PATH...",
		Short: "Apply slipway files: create, update and roll out apps",
		Long: `apply checks the files locally, then asks the server to apply them. The server commits
every change at once (or none) and starts the rollouts they imply. It prints what was done,
one line per document, with the rollouts started.

A flagd flag file (.json or .yaml with a top-level "flags" and no apiVersion) is applied as
it is, as one FlagSet named by its metadata.flagSetId, or else by its file name without the
extension.

--wait then waits for every rollout it started to end, as status --wait does. Exit status: 0
when all completed, 3 when any was aborted (rolled back), 1 on error or when --timeout passes.
While it waits, a broken connection to the server is reconnected as for status --wait (up to
--reconnect-timeout); the apply itself is never sent twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			set, err := loadSet(ctx, c, files)
			if err != nil {
				return err
			}
			p, err := c.Apply(ctx, set, slipway.ApplyOptions{Prune: prune, Reason: reason})
			if err != nil {
				return err
			}
			if !wait {
				return g.emit(cmd.OutOrStdout(), p, func(w io.Writer) error { return writePlan(w, p, true) })
			}
			if g.output == outputText {
				if err := writePlan(cmd.OutOrStdout(), p, true); err != nil {
					return err
				}
			}
			wc, err := streamClient(g, cmd.ErrOrStderr(), reconnect)
			if err != nil {
				return err
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout{timeout})
				defer cancel()
			}
			// With --wait, -o json|yaml prints the plan and the ended rollouts together.
			out := struct {
				Plan     slipway.Plan      `json:"plan"`
				Rollouts []slipway.Rollout `json:"rollouts"`
			}{Plan: p, Rollouts: []slipway.Rollout{}}
			var aborted []string
			for _, ch := range p.Changes {
				if ch.Rollout == "" {
					continue
				}
				ro, err := waitRollout(ctx, wc, ch.Name, ch.Rollout, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				out.Rollouts = append(out.Rollouts, ro)
				if ro.Phase == slipway.PhaseAborted {
					aborted = append(aborted, ro.ID)
				}
			}
			if g.output != outputText {
				if err := g.emit(cmd.OutOrStdout(), out, nil); err != nil {
					return err
				}
			}
			if len(aborted) > 0 {
				return &exitStatus{code: exitAborted, err: errors.New("rollouts aborted: " + strings.Join(aborted, ", "))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files, "file", "f", nil, "file or directory to read (repeatable)")
	f.BoolVar(&prune, "prune", false, "also delete apps and templates the files do not declare")
	f.BoolVar(&wait, "wait", false, "wait for the rollouts started to end (exit 3 when any aborted)")
	f.StringVar(&reason, "reason", "", "why, for the event log (default \"apply\")")
	f.DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: never)")
	reconnectFlag(cmd, &reconnect)
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
