package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

// newFlagsRampCommand is `slipway flags ramp KEY status|pause|resume|abort`.
func newFlagsRampCommand(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "ramp KEY [status|pause|resume|abort] [--reason TEXT]",
		Short: "Show or operate a flag's guarded ramp",
		Long: `ramp shows where a flag's ramp stands (status, the default): its phase, step, the ramped
variant's share and the step's analysis. pause holds the share where it is; resume carries on
(after an inconclusive analysis it judges the step again; a rolled back ramp starts again from
its first step); abort sets the variant's share to 0 at once.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := "status"
			if len(args) == 2 {
				op = args[1]
			}
			c := g.client()
			var r slipway.Ramp
			var err error
			switch op {
			case "status":
				r, err = c.Ramp(cmd.Context(), args[0])
			case string(slipway.RampPause), string(slipway.RampResume), string(slipway.RampAbort):
				r, err = c.OperateRamp(cmd.Context(), slipway.RampOperation{Op: slipway.RampOp(op), Flag: args[0], Reason: reason})
			default:
				return slipway.Errorf(slipway.EINVALID, "%q is not a ramp command; use status, pause, resume or abort", op)
			}
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), r, func(w io.Writer) error { return writeRamp(w, r) })
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the ramp's events")
	return cmd
}

// writeRamp prints a ramp's state and its steps, escaped.
func writeRamp(w io.Writer, r slipway.Ramp) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Flag:     %s (set %s)\n", escape(r.Flag), escape(r.Set))
	fmt.Fprintf(&b, "Variant:  %s at %s%%\n", escape(r.Spec.Variant), pct(r.Weight))
	phase := escape(r.Phase)
	if r.Pause != slipway.PauseNone {
		phase += " (" + escape(r.Pause) + ")"
	}
	fmt.Fprintf(&b, "Phase:    %s\n", phase)
	if r.Reason != "" {
		fmt.Fprintf(&b, "Reason:   %s\n", escape(r.Reason))
	}
	if r.Run != nil {
		fmt.Fprintf(&b, "Analysis: %s %s", escape(r.Run.ID), escape(r.Run.Phase))
		if r.Run.Message != "" {
			fmt.Fprintf(&b, ": %s", escape(r.Run.Message))
		}
		b.WriteString("\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tWEIGHT\tPAUSE\t")
	for i, s := range r.Spec.Steps {
		mark := ""
		if i == r.Step {
			mark = "<-"
		}
		fmt.Fprintf(tw, "%d\t%d%%\t%s\t%s\n", i+1, s.Weight, s.Pause, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// pct formats basis points as a percentage.
func pct(bp int) string {
	if bp%100 == 0 {
		return fmt.Sprint(bp / 100)
	}
	return fmt.Sprintf("%.2f", float64(bp)/100)
}
