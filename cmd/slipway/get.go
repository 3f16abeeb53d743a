package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

func newGetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "List apps, analysis templates, environments or pipelines",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "pipelines",
		Short: "List the pipelines: their apps and stages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := g.client().Pipelines(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ps, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tAPPS\tSTAGES")
				for _, p := range ps {
					var stages []string
					for _, st := range p.Stages {
						stages = append(stages, escape(st.Name)+"("+escape(strings.Join(st.Environments, ","))+")")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", escape(p.Name), escape(strings.Join(p.Apps, ",")), strings.Join(stages, " -> "))
				}
				return tw.Flush()
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "environments",
		Short: "List the environments the server serves, with their targets",
		Long: `get environments prints one row per environment the server serves: NAME, TARGET (local,
sim or kubernetes) and LABELS. Use -e NAME on any command to address one. -o json|yaml
prints them as the API returns them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			envs, err := g.client().Environments(cmd.Context())
			if err != nil {
				return err
			}
			if g.output != outputText {
				return g.emit(cmd.OutOrStdout(), envs, nil)
			}
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTARGET\tLABELS")
			for _, e := range envs {
				var labels []string
				for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
					labels = append(labels, escape(k)+"="+escape(e.Labels[k]))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", escape(e.Name), orDash(escape(e.Target.Kind)), orDash(strings.Join(labels, ",")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), b.String())
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "apps",
		Short: "List apps with their stable revision and latest rollout",
		Long: `get apps prints one row per app: NAME, REPLICAS, STABLE (the stable revision), VERSION
(the declared version), ROLLOUT and PHASE (the latest rollout). -o json|yaml prints the apps
as the API returns them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			apps, err := c.Apps(ctx)
			if err != nil {
				return err
			}
			if g.output != outputText {
				return g.emit(cmd.OutOrStdout(), apps, nil)
			}
			latest := make([]*slipway.Rollout, len(apps))
			for i, a := range apps {
				ros, err := c.Rollouts(ctx, a.Spec.Name, 1)
				if err != nil {
					return err
				}
				if len(ros) > 0 {
					latest[i] = &ros[0]
				}
			}
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREPLICAS\tSTABLE\tVERSION\tROLLOUT\tPHASE")
			for i, a := range apps {
				rollout, phase := "-", "-"
				if r := latest[i]; r != nil {
					rollout, phase = escape(r.ID), escape(r.Phase)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", escape(a.Spec.Name), a.Spec.Replicas, orDash(escape(a.Stable)), orDash(escape(a.Spec.Version)), rollout, phase)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), b.String())
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "templates",
		Short: "List analysis templates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := g.client().Templates(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ts, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tMETRICS\tARGS")
				for _, t := range ts {
					var metrics, args []string
					for _, m := range t.Metrics {
						metrics = append(metrics, escape(m.Name))
					}
					for _, a := range t.Args {
						args = append(args, escape(a.Name))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", escape(t.Name), orDash(strings.Join(metrics, ",")), orDash(strings.Join(args, ",")))
				}
				return tw.Flush()
			})
		},
	})
	return cmd
}
