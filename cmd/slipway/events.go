package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

func newEventsCommand(g *globals) *cobra.Command {
	var follow bool
	var limit int
	var rollout string
	var reconnect time.Duration
	cmd := &cobra.Command{
		Use:   "events [APP]",
		Short: "Show the event log (the audit trail)",
		Long: `events prints the newest events, of one app or of all, oldest first: when, sequence
number, app, kind, who, and what happened (and why).

--follow then keeps printing new events as they happen, until interrupted. With -o json it
prints one JSON object per line (without --follow, one JSON array).

When the connection to the server breaks (the server restarts, or is stopped and started
again), --follow says so on stderr, reconnects and carries on after the last event it
printed: none is printed twice or skipped. It gives up after --reconnect-timeout.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := streamClient(g, cmd.ErrOrStderr(), reconnect)
			if err != nil {
				return err
			}
			f := slipway.EventFilter{Rollout: rollout, Limit: limit}
			if len(args) == 1 {
				f.App = args[0]
			}
			evs, err := c.Events(ctx, f)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !follow {
				return g.emit(out, evs, func(w io.Writer) error {
					for _, e := range evs {
						if err := writeEvent(w, g.output, e); err != nil {
							return err
						}
					}
					return nil
				})
			}
			for _, e := range evs {
				if err := writeEvent(out, g.output, e); err != nil {
					return err
				}
				f.After = e.Seq
			}
			if f.After == 0 {
				if f.After, err = lastSeq(ctx, c, f.App); err != nil {
					return err
				}
			}
			// StreamEvents returns nil when interrupted: the normal end of --follow.
			return c.StreamEvents(ctx, f, func(e slipway.Event) error { return writeEvent(out, g.output, e) })
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "F", false, "keep printing new events until interrupted")
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many past events (0: all)")
	cmd.Flags().StringVar(&rollout, "rollout", "", "only events of this rollout")
	reconnectFlag(cmd, &reconnect)
	return cmd
}

// writeEvent prints one event on one line (text, escaped, or JSON; YAML as a one-item document).
func writeEvent(w io.Writer, format string, e slipway.Event) error {
	switch format {
	case outputJSON:
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", escapeEncoded(b, false))
		return err
	case outputYAML:
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		return writeYAML(w, e)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  #%-4d %-10s %-22s %-10s %s", stamp(e.Time), e.Seq, orDash(escape(e.App)), escape(e.Kind), escape(e.Actor), escape(e.Message))
	if e.Rollout != "" {
		b.WriteString(" [" + escape(e.Rollout) + "]")
	}
	if e.Reason != "" {
		b.WriteString(" (" + escape(e.Reason) + ")")
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
