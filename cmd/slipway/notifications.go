package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newNotificationsCommand is `slipway notifications [log NAME]`.
func newNotificationsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notifications",
		Short: "List the notifications: where events go, and their filters",
		Long: `notifications lists the notifications (kind: Notification): NAME, FORMAT, WHERE (the URL's
host, or where the server reads a secret URL from) and the FILTERS on apps, environments
and event kinds. "notifications log NAME" shows what was sent, newest first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := g.client().Notifications(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ns, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tFORMAT\tWHERE\tFILTERS")
				for _, n := range ns {
					where := n.URL
					if i := strings.Index(where, "://"); i >= 0 {
						host := where[i+3:]
						if j := strings.IndexAny(host, "/?"); j >= 0 {
							host = host[:j]
						}
						where = host
					}
					if f := n.URLFrom; f != nil {
						where = "env " + f.Env
						if f.File != "" {
							where = "file " + f.File
						}
					}
					format := n.Format
					if format == "" {
						format = "json"
					}
					var filters []string
					for _, f := range []struct {
						name string
						list []string
					}{{"apps", n.Apps}, {"environments", n.Environments}, {"kinds", n.Kinds}} {
						if len(f.list) > 0 {
							filters = append(filters, f.name+"="+strings.Join(f.list, ","))
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", escape(n.Name), escape(format), escape(where), orDash(escape(strings.Join(filters, " "))))
				}
				return tw.Flush()
			})
		},
	}
	var limit int
	logCmd := &cobra.Command{
		Use:   "log NAME [--limit N]",
		Short: "Show what a notification sent, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := g.client().Deliveries(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ds, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tENVIRONMENT\tSEQ\tKIND\tSTATUS\tATTEMPTS\tCODE\tERROR")
				for _, d := range ds {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", d.Time.Format(time.RFC3339), escape(d.Environment), d.Seq, escape(d.Kind),
						escape(d.Status), d.Attempts, d.Code, orDash(escape(d.Error)))
				}
				return tw.Flush()
			})
		},
	}
	logCmd.Flags().IntVar(&limit, "limit", 50, "the most deliveries to show (0: all kept)")
	cmd.AddCommand(logCmd)
	return cmd
}
