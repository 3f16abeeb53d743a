package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/spec"
)

func newPlanCommand(g *globals) *cobra.Command {
	var files []string
	var prune bool
	cmd := &cobra.Command{
		Use:   "plan -f PATH...",
		Short: "Show what apply would change",
		Long: `plan checks the files locally (every problem with its file:line), then asks the server
what applying them would change, and prints one line per document:

  + App web (create)
  ~ App web: new revision 1a2b3c4d5e6f→6f5e4d3c2b1a (run.args)
  ~ App web: scaled 3→5
  = App web (unchanged)
  - App old (delete)

Exit status: 0 when nothing would change, 2 when something would, 1 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			set, err := loadSet(ctx, c, files)
			if err != nil {
				return err
			}
			p, err := c.Plan(ctx, set, slipway.ApplyOptions{Prune: prune})
			if err != nil {
				return err
			}
			err = g.emit(cmd.OutOrStdout(), p, func(w io.Writer) error {
				return writePlan(w, p, false)
			})
			if err != nil {
				return err
			}
			if p.HasChanges() {
				return &exitStatus{code: exitChanges}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "file", "f", nil, "file or directory to read (repeatable)")
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete apps and templates the files do not declare")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// loadSet reads and checks files. An AnalysisTemplate the files use but do not declare is
// looked up on the server, once, only when needed; if the server cannot be asked, the
// reference is let through and the server judges it.
func loadSet(ctx context.Context, c *httpapi.Client, files []string) (slipway.Set, error) {
	var known map[string]bool
	lookup := func(name string) bool {
		if known == nil {
			known = map[string]bool{}
			ts, err := c.Templates(ctx)
			if err != nil {
				return true
			}
			for _, t := range ts {
				known[t.Name] = true
			}
		}
		return known[name]
	}
	return spec.LoadWith(lookup, files...)
}

// writePlan prints one line per change and a summary. applied words it as done.
func writePlan(w io.Writer, p slipway.Plan, applied bool) error {
	var created, changed, deleted, same int
	var b strings.Builder
	for _, c := range p.Changes {
		switch c.Action {
		case slipway.ActionCreate:
			created++
		case slipway.ActionNewRevision, slipway.ActionScale, slipway.ActionUpdate:
			changed++
		case slipway.ActionDelete:
			deleted++
		case slipway.ActionUnchanged:
			same++
		}
		b.WriteString(changeLine(c))
		if applied && c.Rollout != "" {
			b.WriteString("; rollout " + escape(c.Rollout) + " started")
		}
		b.WriteByte('\n')
	}
	switch {
	case applied:
		fmt.Fprintf(&b, "\nApplied: %d created, %d changed, %d deleted, %d unchanged.\n", created, changed, deleted, same)
	case !p.HasChanges():
		fmt.Fprintf(&b, "\nNo changes: %d unchanged.\n", same)
	default:
		fmt.Fprintf(&b, "\nPlan: %d to create, %d to change, %d to delete, %d unchanged.\n", created, changed, deleted, same)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// changeLine describes one change: + create, ~ change, = unchanged, - delete. Its text
// from the server is escaped.
func changeLine(c slipway.PlanChange) string {
	doc := escape(c.Kind + " " + c.Name)
	if c.Environment != "" {
		doc += " in " + escape(c.Environment)
	}
	scaled := c.FromReplicas != c.ToReplicas && (c.FromReplicas != 0 || c.ToReplicas != 0)
	switch c.Action {
	case slipway.ActionCreate:
		return "+ " + doc + " (create)"
	case slipway.ActionNewRevision:
		s := fmt.Sprintf("~ %s: new revision %s→%s", doc, orDash(escape(c.FromRevision)), orDash(escape(c.ToRevision)))
		fields := slices.DeleteFunc(slices.Clone(c.Fields), func(f string) bool { return scaled && f == "replicas" })
		if len(fields) > 0 {
			s += " (" + escape(strings.Join(fields, ", ")) + ")"
		}
		if scaled {
			s += fmt.Sprintf("; scaled %d→%d", c.FromReplicas, c.ToReplicas)
		}
		return s
	case slipway.ActionScale:
		return fmt.Sprintf("~ %s: scaled %d→%d", doc, c.FromReplicas, c.ToReplicas)
	case slipway.ActionUpdate:
		s := "~ " + doc + ": updated"
		if len(c.Fields) > 0 {
			s += " (" + escape(strings.Join(c.Fields, ", ")) + ")"
		}
		return s
	case slipway.ActionUnchanged:
		return "= " + doc + " (unchanged)"
	case slipway.ActionDelete:
		return "- " + doc + " (delete)"
	}
	return fmt.Sprintf("? %s (%s)", doc, escape(c.Action))
}
