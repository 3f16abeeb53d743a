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

// newReleaseCommand is `slipway release APP --version V` and its subcommands show, approve
// and override.
func newReleaseCommand(g *globals) *cobra.Command {
	var version, commit, url, changedAt, reason string
	var fix bool
	cmd := &cobra.Command{
		Use:   "release APP --version V [--commit SHA] [--url URL] [--changed-at TIME] [--fix]",
		Short: "Release an app's new version through its pipeline",
		Long: `release starts a release of APP at --version through the pipeline that carries the app
(kind: Pipeline): it enters the pipeline's first stage at once, and moves on by itself as
each stage's rollouts complete and its policy holds. This is the command a CI job runs after
its tests pass; --commit and --url say where the change came from, --changed-at when it was
made (the commit's time, for lead time; now by default). --fix marks a fix or a rollback,
which passes a spent error budget.

  slipway release show ID        the release's journey, stage by stage
  slipway release approve ID     approve it into the stage it waits to enter
  slipway release override ID    let it through a freeze or outside the deploy windows (admin;
                                 --reason required and recorded)
  slipway releases [APP]         list releases
  slipway pipeline status NAME   where each stage stands`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nr := slipway.NewRelease{App: args[0], Version: version, Fix: fix, Reason: reason,
				Source: slipway.ReleaseSource{Commit: commit, URL: url, Trigger: "cli"}}
			if changedAt != "" {
				t, err := time.Parse(time.RFC3339, changedAt)
				if err != nil {
					return slipway.Errorf(slipway.EINVALID, "--changed-at %q is not an RFC 3339 time like 2026-12-06T15:04:05Z", changedAt)
				}
				nr.ChangedAt = t
			}
			r, err := g.client().CreateRelease(cmd.Context(), nr)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), r, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "release %s: %s %s through pipeline %s\n", escape(r.ID), escape(r.App), escape(r.Version), escape(r.Pipeline))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&version, "version", "", "the version to release (required)")
	f.StringVar(&commit, "commit", "", "the commit the version was built from")
	f.StringVar(&url, "url", "", "a link to the change or the CI run")
	f.StringVar(&changedAt, "changed-at", "", "when the change was made (RFC 3339; now by default)")
	f.BoolVar(&fix, "fix", false, "a fix or a rollback: passes a spent error budget")
	f.StringVar(&reason, "reason", "", "why, for the event log")
	_ = cmd.MarkFlagRequired("version")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a release's journey through its pipeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().Release(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), r, func(w io.Writer) error { return writeRelease(w, r) })
		},
	}
	var approveReason, overrideReason string
	approve := &cobra.Command{
		Use:   "approve ID [--reason TEXT]",
		Short: "Approve a release into the stage it waits to enter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().Approve(cmd.Context(), args[0], "", "", approveReason)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), r, func(w io.Writer) error { return writeRelease(w, r) })
		},
	}
	approve.Flags().StringVar(&approveReason, "reason", "", "why, recorded with the approval")
	override := &cobra.Command{
		Use:   "override ID --reason TEXT",
		Short: "Let a release through its stage's freeze and deploy windows (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().Override(cmd.Context(), args[0], "", overrideReason)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), r, func(w io.Writer) error { return writeRelease(w, r) })
		},
	}
	override.Flags().StringVar(&overrideReason, "reason", "", "why (required), recorded with the override")
	_ = override.MarkFlagRequired("reason")
	cmd.AddCommand(show, approve, override)
	return cmd
}

// newReleasesCommand is `slipway releases [APP]`.
func newReleasesCommand(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "releases [APP]",
		Short: "List releases, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := ""
			if len(args) == 1 {
				app = args[0]
			}
			rs, err := g.client().Releases(cmd.Context(), app, limit)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), rs, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tAPP\tVERSION\tPIPELINE\tPHASE\tSTAGE\tCREATED")
				for _, r := range rs {
					stage := r.Stages[r.Stage]
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %s\t%s\n", escape(r.ID), escape(r.App), escape(r.Version), escape(r.Pipeline),
						r.Phase, escape(stage.Name), stage.State, r.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "the most releases to list (0: all)")
	return cmd
}

// newPipelineCommand is `slipway pipeline status NAME`.
func newPipelineCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Show pipelines"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status NAME",
		Short: "Show where each stage of a pipeline stands: its current release, what it waits for, the queue",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := g.client().PipelineStatus(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ps, func(w io.Writer) error {
				var b strings.Builder
				fmt.Fprintf(&b, "Pipeline %s: %s\n", escape(ps.Pipeline.Name), escape(strings.Join(ps.Pipeline.Apps, ", ")))
				for _, s := range ps.Stages {
					fmt.Fprintf(&b, "\n%s (%s)\n", escape(s.Name), escape(strings.Join(s.Environments, ", ")))
					if s.Passed != nil {
						fmt.Fprintf(&b, "  passed:  %s %s %s\n", escape(s.Passed.ID), escape(s.Passed.App), escape(s.Passed.Version))
					}
					if s.Current != nil {
						fmt.Fprintf(&b, "  current: %s %s %s (%s)\n", escape(s.Current.ID), escape(s.Current.App), escape(s.Current.Version), s.Current.State)
					}
					if s.Waiting != "" {
						fmt.Fprintf(&b, "  waits:   %s: %s\n", escape(s.Name), escape(s.Waiting))
					}
					for _, q := range s.Queue {
						fmt.Fprintf(&b, "  queued:  %s %s %s\n", escape(q.ID), escape(q.App), escape(q.Version))
					}
				}
				_, err := io.WriteString(w, b.String())
				return err
			})
		},
	})
	return cmd
}

// writeRelease prints a release's journey, stage by stage, escaped.
func writeRelease(w io.Writer, r slipway.Release) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Release:   %s (%s %s, pipeline %s)\n", escape(r.ID), escape(r.App), escape(r.Version), escape(r.Pipeline))
	src := r.Source.Trigger
	if r.Source.Commit != "" {
		src += ", commit " + r.Source.Commit
	}
	if r.Source.URL != "" {
		src += ", " + r.Source.URL
	}
	fmt.Fprintf(&b, "Source:    %s, by %s\n", escape(src), escape(r.CreatedBy))
	fmt.Fprintf(&b, "Changed:   %s; created %s\n", r.ChangedAt.Format(time.RFC3339), r.CreatedAt.Format(time.RFC3339))
	phase := string(r.Phase)
	if r.Fix {
		phase += " (fix)"
	}
	fmt.Fprintf(&b, "Phase:     %s\n", escape(phase))
	if r.Reason != "" {
		fmt.Fprintf(&b, "Reason:    %s\n", escape(r.Reason))
	}
	for i, s := range r.Stages {
		mark := "  "
		if i == r.Stage && !r.Phase.Terminal() {
			mark = "->"
		}
		fmt.Fprintf(&b, "\n%s %s: %s\n", mark, escape(s.Name), s.State)
		at := func(what string, t *time.Time) {
			if t != nil {
				fmt.Fprintf(&b, "     %-9s %s\n", what, t.Format(time.RFC3339))
			}
		}
		at("entered", s.EnteredAt)
		if s.Waiting != "" {
			fmt.Fprintf(&b, "     waits for %s\n", escape(s.Waiting))
		}
		for _, a := range s.Approvals {
			fmt.Fprintf(&b, "     approved by %s at %s %s\n", escape(a.Actor), a.Time.Format(time.RFC3339), escape(a.Reason))
		}
		for _, o := range s.Overrides {
			fmt.Fprintf(&b, "     overridden by %s at %s: %s\n", escape(o.Actor), o.Time.Format(time.RFC3339), escape(o.Reason))
		}
		at("deployed", s.DeployedAt)
		for _, ro := range s.Rollouts {
			id := ro.Rollout
			if id == "" {
				id = "(ran the version already)"
			}
			fmt.Fprintf(&b, "     %s: %s %s\n", escape(ro.Environment), escape(id), ro.Phase)
		}
		for _, v := range s.Verified {
			fmt.Fprintf(&b, "     verified: %s\n", escape(v))
		}
		at("soaks to", s.SoakUntil)
		at("passed", s.PassedAt)
		if s.Message != "" {
			fmt.Fprintf(&b, "     %s\n", escape(s.Message))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
