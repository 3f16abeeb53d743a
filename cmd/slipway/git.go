package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/gitsource"
)

// gitDirName is the directory under the data directory that holds the private clones of
// the repositories the server watches by URL.
const gitDirName = "git"

// gitCloneDir is the clone directory of repository repo: one per repository, so that a
// server pointed at another one does not fetch into the first one's.
func gitCloneDir(dataDir, repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return filepath.Join(dataDir, gitDirName, hex.EncodeToString(sum[:8]))
}

// fleetApps says, for the git source, what runs where: from the fleet's stores.
type fleetApps struct{ fl *fleet.Fleet }

var _ gitsource.Apps = fleetApps{}

func (a fleetApps) AppVersion(ctx context.Context, env, app string) (string, error) {
	_, _, st, ok := a.fl.Place(env)
	if !ok {
		if slices.Contains(a.fl.Names(), env) {
			return "", slipway.Errorf(slipway.EUNAVAILABLE, "environment %s is not running", env)
		}
		return "", slipway.Errorf(slipway.ENOTFOUND, "environment %s does not exist", env)
	}
	s, err := st.App(ctx, app)
	return s.Spec.Version, err
}

// newGitCommand is `slipway git sync`.
func newGitCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git",
		Short: "The server's git source (slipway server --git-repo)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "sync",
		Short: "Apply the watched branch's head now, without waiting for the next poll",
		Long: `sync asks the server to look at the branch it watches (slipway server --git-repo URL
--git-branch B --git-path DIR) now: a head not handled before is applied (and the releases
of pipeline apps it implies created), or refused when its files are invalid, exactly as the
poll would. It prints what was done. Exit status 1 when the head is invalid (each problem
is printed with its file:line).

It needs a deployer token of unlimited scope: the branch may change any app.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.client().GitSync(cmd.Context())
			if err != nil {
				return err
			}
			if err := g.emit(cmd.OutOrStdout(), s, func(w io.Writer) error { return writeGitSync(w, s) }); err != nil {
				return err
			}
			if s.Result == slipway.GitInvalid {
				return &exitStatus{code: exitError, err: errors.New("commit " + shortCommit(s.Commit) + " is invalid; nothing was changed")}
			}
			return nil
		},
	})
	return cmd
}

func writeGitSync(w io.Writer, s slipway.GitSync) error {
	what := fmt.Sprintf("commit %s of %s branch %s", escape(shortCommit(s.Commit)), escape(s.Repo), escape(s.Branch))
	var err error
	switch s.Result {
	case slipway.GitUnchanged:
		_, err = fmt.Fprintf(w, "%s was handled already; nothing to do\n", what)
	case slipway.GitInvalid:
		_, err = fmt.Fprintf(w, "%s is invalid; nothing was changed:\n", what)
		for _, e := range s.Errors {
			if err == nil {
				_, err = fmt.Fprintf(w, "  %s\n", escape(e))
			}
		}
	default:
		if _, err = fmt.Fprintf(w, "%s applied\n", what); err == nil && len(s.Changes) > 0 {
			err = writePlan(w, slipway.Plan{Changes: s.Changes}, true)
		}
		for _, id := range s.Releases {
			if err == nil {
				_, err = fmt.Fprintf(w, "release %s started\n", escape(id))
			}
		}
	}
	return err
}

func shortCommit(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
