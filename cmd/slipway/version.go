package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"
)

// version is slipway's release, set at build time with
// -ldflags "-X main.version=v1.2.3"; without it, the module version Go recorded, else "dev".
var version = ""

// buildInfo is the version and the source commit this binary was built from.
var buildInfo = sync.OnceValues(func() (ver, commit string) {
	ver, commit = version, "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return orDev(ver), commit
	}
	if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit != "unknown" {
		commit += "-dirty"
	}
	return orDev(ver), commit
})

func orDev(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}

// versionString is this binary's version as the API sends it: version and commit.
func versionString() string {
	v, c := buildInfo()
	if len(c) > 12 {
		c = c[:12]
	}
	return v + "+" + c
}

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version and commit, and the server's when it answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, commit := buildInfo()
			out := struct {
				Client string `json:"client"`
				Commit string `json:"commit"`
				Server string `json:"server,omitempty"`
				Error  string `json:"serverError,omitempty"`
			}{Client: v, Commit: commit}
			c := g.client()
			if _, err := c.WhoAmI(cmd.Context()); c.ServerVersion() != "" {
				out.Server = c.ServerVersion()
			} else if err != nil {
				out.Error = errorText(err)
			}
			return g.emit(cmd.OutOrStdout(), out, func(w io.Writer) error {
				fmt.Fprintf(w, "client: %s (commit %s)\n", v, commit)
				if out.Server != "" {
					_, err := fmt.Fprintf(w, "server: %s\n", escape(out.Server))
					return err
				}
				_, err := fmt.Fprintf(w, "server: unknown (%s)\n", out.Error)
				return err
			})
		},
	}
}

// warnVersion tells the user, once, when the server answered with another version than
// this CLI's.
func warnVersion(w io.Writer, server string) {
	if server == "" || server == versionString() {
		return
	}
	fmt.Fprintf(w, "warning: this CLI is %s and the server %s; update the older one\n", versionString(), escape(server))
}
