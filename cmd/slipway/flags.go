package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

// defaultStaleFor is how long `flags stale` waits before it calls a flag stale.
const defaultStaleFor = 7 * 24 * time.Hour

func newFlagsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flags",
		Short: "Manage feature flags: list, inspect, evaluate, switch, roll back, find stale ones",
		Long: `flags manages the feature flags the server serves (declared as FlagSet documents or
flagd flag files and applied with slipway apply). Every change makes a new version of the
flag's set, recorded with who (the API token's name), when and why (--reason), and can
be rolled back.`,
	}
	cmd.AddCommand(
		newFlagsListCommand(g),
		newFlagsGetCommand(g),
		newFlagsEvalCommand(g),
		newFlagsToggleCommand(g, slipway.FlagEnable),
		newFlagsToggleCommand(g, slipway.FlagDisable),
		newFlagsSetCommand(g),
		newFlagsHistoryCommand(g),
		newFlagsRollbackCommand(g),
		newFlagsStaleCommand(g),
		newFlagsRampCommand(g),
	)
	return cmd
}

func newFlagsListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every flag with its set, state, default variant and last evaluation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs, err := g.client().Flags(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), fs, func(w io.Writer) error { return writeFlagTable(w, fs, false) })
		},
	}
}

// writeFlagTable prints one line per flag; stale adds the reason it is stale.
func writeFlagTable(w io.Writer, fs []slipway.FlagInfo, stale bool) error {
	if len(fs) == 0 {
		_, err := io.WriteString(w, "No flags.\n")
		return err
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if stale {
		fmt.Fprintln(tw, "KEY\tSET\tSTATE\tDEFAULT\tLAST EVALUATED\tWHY")
	} else {
		fmt.Fprintln(tw, "KEY\tSET\tSTATE\tDEFAULT\tVARIANTS\tLAST EVALUATED")
	}
	for _, f := range fs {
		last := "never"
		if f.LastEvaluated != nil {
			last = stamp(*f.LastEvaluated)
		}
		if stale {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", escape(f.Key), escape(f.Set), escape(f.State), defaultName(f.DefaultVariant), last, escape(f.Stale))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", escape(f.Key), escape(f.Set), escape(f.State), defaultName(f.DefaultVariant), escape(strings.Join(f.Variants, ",")), last)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, tidy(b.String()))
	return err
}

// defaultName names a default variant, escaped.
func defaultName(v *string) string {
	if v == nil {
		return "(code default)"
	}
	return escape(*v)
}

func newFlagsGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Show one flag: its set, version, state, variants and targeting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.client().Flag(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), f, func(w io.Writer) error { return writeFlag(w, f) })
		},
	}
}

func writeFlag(w io.Writer, f slipway.FlagInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Flag:      %s\n", escape(f.Key))
	fmt.Fprintf(&b, "Set:       %s (version %d, changed %s)\n", escape(f.Set), f.Version, stamp(f.UpdatedAt))
	fmt.Fprintf(&b, "State:     %s\n", escape(f.State))
	fmt.Fprintf(&b, "Default:   %s\n", defaultName(f.DefaultVariant))
	if f.Flag != nil {
		b.WriteString("Variants:\n")
		for _, name := range f.Variants {
			fmt.Fprintf(&b, "  %s: %s\n", escape(name), escape(string(f.Flag.Variants[name])))
		}
		targeting := "none"
		if f.Targeting {
			targeting = escape(string(f.Flag.Targeting))
		}
		fmt.Fprintf(&b, "Targeting: %s\n", targeting)
	}
	last := "never"
	if f.LastEvaluated != nil {
		last = fmt.Sprintf("%s (variant %s)", stamp(*f.LastEvaluated), orDash(escape(f.LastVariant)))
	}
	fmt.Fprintf(&b, "Evaluated: %s\n", last)
	_, err := io.WriteString(w, b.String())
	return err
}

func newFlagsEvalCommand(g *globals) *cobra.Command {
	var evalCtx string
	cmd := &cobra.Command{
		Use:   "eval KEY [--context JSON]",
		Short: "Evaluate a flag on the server for an evaluation context",
		Long: `eval evaluates a flag as an OpenFeature client would, for the evaluation context given
as a JSON object (for example '{"targetingKey": "user-42", "email": "ann@example.com"}').
Evaluations made by eval do not count as uses of the flag for flags stale.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m map[string]any
			if strings.TrimSpace(evalCtx) != "" {
				if err := json.Unmarshal([]byte(evalCtx), &m); err != nil {
					return slipway.Errorf(slipway.EINVALID, "--context must be a JSON object, like '{\"targetingKey\": \"user-42\"}'")
				}
			}
			ev, err := g.client().EvaluateFlag(cmd.Context(), args[0], m)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ev, func(w io.Writer) error {
				var b strings.Builder
				fmt.Fprintf(&b, "Flag:    %s\n", escape(ev.Key))
				if ev.Variant != "" {
					v, _ := json.Marshal(ev.Value)
					fmt.Fprintf(&b, "Variant: %s\nValue:   %s\n", escape(ev.Variant), escape(string(v)))
				} else {
					b.WriteString("Value:   none (the caller's default is used)\n")
				}
				fmt.Fprintf(&b, "Reason:  %s\n", escape(ev.Reason))
				if ev.ErrorCode != "" {
					fmt.Fprintf(&b, "Error:   %s: %s\n", escape(ev.ErrorCode), escape(ev.ErrorDetails))
				}
				_, err := io.WriteString(w, b.String())
				return err
			})
		},
	}
	cmd.Flags().StringVar(&evalCtx, "context", "", "evaluation context as a JSON object")
	return cmd
}

func newFlagsToggleCommand(g *globals, kind slipway.FlagChangeKind) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   string(kind) + " KEY [--reason TEXT]",
		Short: strings.ToUpper(string(kind[:1])) + string(kind[1:]) + " a flag (a new version of its set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return changeFlag(cmd, g, slipway.FlagChange{Kind: kind, Key: args[0], Reason: reason})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the flag's history")
	return cmd
}

func newFlagsSetCommand(g *globals) *cobra.Command {
	var reason, def string
	cmd := &cobra.Command{
		Use:   "set KEY --default VARIANT [--reason TEXT]",
		Short: "Set a flag's default variant (a new version of its set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return changeFlag(cmd, g, slipway.FlagChange{Kind: slipway.FlagSetDefault, Key: args[0], Variant: def, Reason: reason})
		},
	}
	cmd.Flags().StringVar(&def, "default", "", "the variant to serve by default")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the flag's history")
	_ = cmd.MarkFlagRequired("default")
	return cmd
}

func changeFlag(cmd *cobra.Command, g *globals, ch slipway.FlagChange) error {
	f, err := g.client().ChangeFlag(cmd.Context(), ch)
	if err != nil {
		return err
	}
	return g.emit(cmd.OutOrStdout(), f, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "flag %s: %s, default %s (set %s version %d)\n", escape(f.Key), escape(f.State), defaultName(f.DefaultVariant), escape(f.Set), f.Version)
		return err
	})
}

func newFlagsHistoryCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history KEY",
		Short: "List the versions of a flag's set, newest first, with who changed what and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hs, err := g.client().FlagHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), hs, func(w io.Writer) error {
				var b strings.Builder
				tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SET\tVERSION\tTIME\tACTOR\tSTATE\tDEFAULT\tREASON")
				for _, h := range hs {
					state, def := "(absent)", "-"
					if h.Flag != nil {
						state, def = escape(h.Flag.State), defaultName(h.Flag.DefaultVariant)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", escape(h.Set), h.Version, stamp(h.Time), escape(h.Actor), state, def, escape(h.Reason))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err := io.WriteString(w, tidy(b.String()))
				return err
			})
		},
	}
}

func newFlagsRollbackCommand(g *globals) *cobra.Command {
	var to, reason string
	cmd := &cobra.Command{
		Use:   "rollback SET --to VERSION [--reason TEXT]",
		Short: "Make an earlier version of a flag set its newest version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(strings.TrimPrefix(to, "v"), 10, 64)
			if err != nil || n <= 0 {
				return slipway.Errorf(slipway.EINVALID, "--to %q is not a version; use a number from flags history", to)
			}
			v, err := g.client().RollbackFlagSet(cmd.Context(), slipway.FlagRollback{Set: args[0], Version: n, Reason: reason})
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "flag set %s rolled back to version %d: now version %d\n", escape(v.Set), n, v.Version)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the version to go back to")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the set's history")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newFlagsStaleCommand(g *globals) *cobra.Command {
	q := slipway.StaleQuery{}
	cmd := &cobra.Command{
		Use:   "stale [--unevaluated-for 168h] [--single-variant-for 168h]",
		Short: "List flags nobody evaluates any more, or that serve one variant to everyone",
		Long: `stale lists the flags not evaluated for --unevaluated-for (a flag never evaluated counts
from when its set first declared it), and those that served one variant to every evaluation
for --single-variant-for: candidates for removal from the code. 0 turns a test off.
Evaluations are counted by the server and written every few seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs, err := g.client().StaleFlags(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), fs, func(w io.Writer) error {
				if len(fs) == 0 {
					_, err := io.WriteString(w, "No stale flags.\n")
					return err
				}
				return writeFlagTable(w, fs, true)
			})
		},
	}
	cmd.Flags().DurationVar(&q.UnevaluatedFor, "unevaluated-for", defaultStaleFor, "stale when not evaluated for this long")
	cmd.Flags().DurationVar(&q.SingleVariantFor, "single-variant-for", defaultStaleFor, "stale when serving one variant to everyone for this long")
	return cmd
}
