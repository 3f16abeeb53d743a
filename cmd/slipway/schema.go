package main

import (
	"github.com/spf13/cobra"

	"slipway.dev/slipway/spec"
)

func newSchemaCommand() *cobra.Command {
	var crds bool
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of slipway files, or the Kubernetes CRDs made from it",
		Long: `schema prints the JSON Schema that slipway documents follow, for editors and linters (for
example yaml-language-server).

With --crd it prints the Kubernetes CustomResourceDefinitions of App, AnalysisTemplate,
FlagSet and Environment made from the same schema (deploy/kubernetes/crds.yaml is this
output), so that kubectl and GitOps tools can manage slipway's resources.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := spec.Schema()
			if crds {
				var err error
				if out, err = spec.CRDs(); err != nil {
					return err
				}
			}
			_, err := cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&crds, "crd", false, "print the Kubernetes CustomResourceDefinitions instead")
	return cmd
}
