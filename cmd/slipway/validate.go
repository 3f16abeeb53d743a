package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
	"slipway.dev/slipway/spec"
)

func newValidateCommand(g *globals) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f PATH...",
		Short: "Check slipway files without a server",
		Long: `validate reads the files (or every .yaml and .yml file under the directories) and
checks them as one set (a .json or .yaml file that is a plain flagd flag file is read as one
FlagSet). It prints "ok: N apps, M templates" (and the flag sets, environments and pipelines
when there are any), or every problem as
file:line:col: field.path: what is wrong; what would be valid. Exit status 1 on any problem.

It needs no server, so AnalysisTemplates an app uses must be in the files given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			type result struct {
				OK        bool     `json:"ok"`
				Apps      int      `json:"apps"`
				Templates int      `json:"templates"`
				FlagSets  int      `json:"flagSets,omitempty"`
				Envs      int      `json:"environments,omitempty"`
				Pipelines int      `json:"pipelines,omitempty"`
				Error     string   `json:"error,omitempty"`
				Details   []string `json:"details,omitempty"`
			}
			set, err := spec.Load(files...)
			if err != nil {
				// -o json and -o yaml say what is wrong in their own format, on stdout, and the
				// exit status is 1 all the same.
				var e *slipway.Error
				if g.output == outputText || !errors.As(err, &e) {
					return err
				}
				bad := result{Error: e.Message, Details: e.Details}
				if werr := g.emit(cmd.OutOrStdout(), bad, nil); werr != nil {
					return werr
				}
				return &exitStatus{code: exitError}
			}
			out := result{OK: true, Apps: len(set.Apps), Templates: len(set.Templates), FlagSets: len(set.FlagSets), Envs: len(set.Environments), Pipelines: len(set.Pipelines)}
			return g.emit(cmd.OutOrStdout(), out, func(w io.Writer) error {
				extra := ""
				if out.FlagSets > 0 {
					extra = fmt.Sprintf(", %d flag sets", out.FlagSets)
				}
				if out.Envs > 0 {
					extra += fmt.Sprintf(", %d environments", out.Envs)
				}
				if out.Pipelines > 0 {
					extra += fmt.Sprintf(", %d pipelines", out.Pipelines)
				}
				_, err := fmt.Fprintf(w, "ok: %d apps, %d templates%s\n", out.Apps, out.Templates, extra)
				return err
			})
		},
	}
	cmd.Flags().StringSliceVarP(&files, "file", "f", nil, "file or directory to read (repeatable)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
