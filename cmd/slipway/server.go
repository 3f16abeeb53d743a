package main

import "github.com/spf13/cobra"

// addServerCommand adds the server commands to root.
func addServerCommand(root *cobra.Command) {}
