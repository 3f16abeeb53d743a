package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

// newInsightsCommand is `slipway insights [--app A] [--since 30d] [--until T]`.
func newInsightsCommand(g *globals) *cobra.Command {
	var app, since, until string
	cmd := &cobra.Command{
		Use:   "insights [--app A] [--env E] [--since 30d] [--until TIME]",
		Short: "Delivery figures: deployment frequency, lead time, change failure rate, time to restore",
		Long: `insights computes delivery figures from the server's own history of rollouts and releases,
per app and environment, over a window (the last 30 days by default):

  deployment frequency   rollouts that completed (rollbacks and superseded rollouts left out),
                         per day and per week
  lead time              from a release's change (--changed-at of slipway release) to its
                         rollout's completion; median and 90th percentile
  change failure rate    deployments that failed (aborted; or rolled back, or followed by a
                         release marked --fix, within the server's --failure-horizon, 24h by
                         default) over all that ended in the window
  time to restore        from a failure to the next healthy completed rollout of its app;
                         median, and how many are still open

The headline figures are those of the environments labelled tier: production. A figure that
nothing measured is left out, never shown as 0. Each deployment is listed with its risk
signals: lead time, time since the environment's last failure, and whether it failed.
--env narrows the figures to one environment; --since and --until take RFC 3339 times or
ages (30d, 2w, 12h). docs/insights.md defines every figure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			q := slipway.InsightsQuery{App: app, Environment: g.env}
			for _, b := range []struct {
				flag, value string
				to          *time.Time
			}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
				if b.value == "" {
					continue
				}
				t, err := slipway.ParseInsightsTime(b.value, now)
				if err != nil {
					return fmt.Errorf("%s: %s", b.flag, slipway.ErrorMessage(err))
				}
				*b.to = t
			}
			// The figures span environments: the server's own API answers them, for the
			// environment named as a query parameter.
			in, err := g.clientOf("").Insights(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), in, func(w io.Writer) error { return writeInsights(w, in) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "only this app's figures")
	f.StringVar(&since, "since", "30d", "start of the window (inclusive): an RFC 3339 time or an age like 30d, 2w, 12h")
	f.StringVar(&until, "until", "", "end of the window (exclusive): an RFC 3339 time or an age; now by default")
	return cmd
}

// writeInsights prints the figures: the headline, a table per app and environment, and the
// deployments with their risk signals.
func writeInsights(w io.Writer, in slipway.Insights) error {
	var b strings.Builder
	days := in.Until.Sub(in.Since).Hours() / 24
	fmt.Fprintf(&b, "Delivery from %s to %s (%s days; a rollback or fix within %s marks a deployment failed)\n",
		in.Since.Format(time.RFC3339), in.Until.Format(time.RFC3339), trimFloat(days), shortDuration(in.FailureHorizon.D()))
	if in.Headline != nil {
		f := in.Headline
		fmt.Fprintf(&b, "\nProduction (%s):\n", escape(strings.Join(in.Production, ", ")))
		fmt.Fprintf(&b, "  deployments          %s\n", frequency(*f))
		fmt.Fprintf(&b, "  lead time            %s\n", quantiles(f.LeadTime, "release"))
		fmt.Fprintf(&b, "  change failure rate  %s\n", failureRate(*f))
		fmt.Fprintf(&b, "  time to restore      %s\n", restore(*f))
	} else {
		b.WriteString("\nNo environment in scope is labelled tier: production; no headline figures.\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tAPP\tDEPLOYMENTS\tLEAD TIME\tFAILURE RATE\tTIME TO RESTORE")
	for _, a := range in.Apps {
		f := a.Figures
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", escape(a.Environment), escape(a.App), frequency(f), quantiles(f.LeadTime, "release"), failureRate(f), restore(f))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(in.Deployments) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDED\tENVIRONMENT\tROLLOUT\tVERSION\tRELEASE\tLEAD TIME\tSINCE LAST FAILURE\tFAILED")
		for _, d := range in.Deployments {
			failed := "-"
			if d.Failure != slipway.FailureNone {
				failed = string(d.Failure)
				if d.FailedBy != "" {
					failed += " by " + d.FailedBy
				}
				if d.RestoredAt == nil {
					failed += ", open"
				}
			}
			rel := orDash(d.Release)
			if d.Fix {
				rel += " (fix)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.EndedAt.Format(time.RFC3339), escape(d.Environment), escape(d.Rollout),
				escape(orDash(d.Version)), escape(rel), optDuration(d.LeadTime), optDuration(d.SinceLastFailure), escape(failed))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(in.Unavailable) > 0 {
		b.WriteString("\nNot reported:\n")
		for _, u := range in.Unavailable {
			fmt.Fprintf(&b, "  %s\n", escape(u))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// frequency says how many deployments and how often.
func frequency(f slipway.DeliveryFigures) string {
	if f.PerWeek == nil {
		return fmt.Sprintf("none (%d attempts)", f.Attempts)
	}
	return fmt.Sprintf("%d (%s a week)", f.Deployments, trimFloat(*f.PerWeek))
}

func quantiles(q *slipway.Quantiles, what string) string {
	if q == nil {
		return "-"
	}
	return fmt.Sprintf("median %s, p90 %s (%d %ss)", shortDuration(q.Median.D()), shortDuration(q.P90.D()), q.Count, what)
}

func failureRate(f slipway.DeliveryFigures) string {
	if f.ChangeFailureRate == nil {
		return "-"
	}
	return fmt.Sprintf("%s%% (%d of %d)", trimFloat(100**f.ChangeFailureRate), f.Failures, f.Attempts)
}

func restore(f slipway.DeliveryFigures) string {
	switch {
	case f.TimeToRestore == nil && f.OpenFailures == 0:
		return "-"
	case f.TimeToRestore == nil:
		return fmt.Sprintf("%d open", f.OpenFailures)
	}
	s := fmt.Sprintf("median %s", shortDuration(f.TimeToRestore.Median.D()))
	if f.OpenFailures > 0 {
		s += fmt.Sprintf(", %d open", f.OpenFailures)
	}
	return s
}

func optDuration(d *slipway.Duration) string {
	if d == nil {
		return "-"
	}
	return shortDuration(d.D())
}

// shortDuration writes d to the minute: 4d10h, 6h30m, 45m.
func shortDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days, h, m := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	return b.String()
}

// trimFloat writes v with at most two decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := strings.TrimRight(fmt.Sprintf("%.2f", v), "0")
	return strings.TrimSuffix(s, ".")
}
