package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

func newHistoryCommand(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history APP",
		Short: "List an app's revisions and rollouts",
		Long: `history prints an app's kept revisions (newest first, the stable one marked) and its
rollouts (newest first). -o json|yaml prints {"revisions": [...], "rollouts": [...]}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			app, err := c.App(ctx, args[0])
			if err != nil {
				return err
			}
			revs, err := c.Revisions(ctx, args[0])
			if err != nil {
				return err
			}
			ros, err := c.Rollouts(ctx, args[0], limit)
			if err != nil {
				return err
			}
			out := struct {
				Revisions []slipway.Revision `json:"revisions"`
				Rollouts  []slipway.Rollout  `json:"rollouts"`
			}{revs, ros}
			return g.emit(cmd.OutOrStdout(), out, func(w io.Writer) error {
				return writeHistory(w, app.Stable, revs, ros)
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many rollouts (0: all)")
	return cmd
}

func writeHistory(w io.Writer, stable string, revs []slipway.Revision, ros []slipway.Rollout) error {
	var b strings.Builder
	b.WriteString("Revisions:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tREVISION\tVERSION\tCREATED\t")
	for _, r := range revs {
		mark := ""
		if r.ID == stable {
			mark = "stable"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", r.Number, escape(r.ID), orDash(escape(r.Version)), stamp(r.CreatedAt), mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nRollouts:\n")
	if len(ros) == 0 {
		b.WriteString("  none\n")
	} else {
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ROLLOUT\tSTRATEGY\tFROM\tTO\tPHASE\tSTARTED\tREASON")
		for _, r := range ros {
			phase := escape(r.Phase)
			if r.Rollback {
				phase += " (rollback)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", escape(r.ID), escape(r.Strategy), orDash(revName(r.From, r.FromVersion)),
				revName(r.To, r.ToVersion), phase, stamp(r.CreatedAt), escape(r.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, tidy(b.String()))
	return err
}
