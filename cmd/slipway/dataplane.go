package main

import (
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/dataplane"
)

// newDataPlaneCommand is `slipway dataplane`: the process that serves the local platform's
// app traffic, started by the server (package dataplane).
func newDataPlaneCommand() *cobra.Command {
	var dir, level string
	cmd := &cobra.Command{
		Use:   "dataplane",
		Short: "Serve the local platform's app traffic (started by slipway server)",
		Long: `Serve the local platform's app traffic: each app's listeners and traffic-splitting
proxy, driven by the server over DATA/dataplane.sock (readable by this user only).

slipway server starts it on the local platform and stops it on a clean stop. It runs in a
session of its own and outlives a server that crashes or is killed: it keeps serving with
its last tables until a server on the same data directory takes it over. There is no need
to run it by hand. One data plane serves a data directory (DATA/dataplane.lock); its pid is
in DATA/dataplane.pid, and SIGTERM stops it, letting requests in flight finish.`,
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := parseLevel(level)
			if err != nil {
				return err
			}
			// As the server: a directory another user can write is refused (one could have
			// planted the pid file as a link to a file of this user's, or take the socket).
			if err := checkDataDir(dir); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl})).With("component", "dataplane")
			// SIGTERM and SIGINT end cmd.Context() (main).
			signal.Ignore(syscall.SIGHUP)
			return dataplane.Serve(cmd.Context(), dataplane.ServeConfig{Dir: dir, Version: versionString(), Log: log})
		},
	}
	cmd.Flags().StringVar(&dir, "data", envOr(envData, defaultDataDir), "data directory ($"+envData+")")
	cmd.Flags().StringVar(&level, "log-level", envOr(envLogLevel, defaultLogLevel), "debug, info, warn or error")
	return cmd
}
