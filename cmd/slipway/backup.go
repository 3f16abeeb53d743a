package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newBackupCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Save a consistent copy of the server's store to FILE (admin)",
		Long: `backup asks the server for a consistent copy of its store, taken while it keeps
serving, and writes it to FILE (mode 0600; written whole or not at all). The copy holds
every app, revision, rollout, analysis run, flag version, token hash and event.

To restore: stop the server, replace DATA/slipway.db with the copy (and remove
DATA/slipway.db-wal and DATA/slipway.db-shm), and start the server again. See
docs/operations.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer func() { _ = os.Remove(f.Name()) }() // gone after the rename; removes it after a failure
			n, err := g.client().Backup(cmd.Context(), f)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.Rename(f.Name(), path); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s (%d bytes)\n", path, n)
			return nil
		},
	}
}
