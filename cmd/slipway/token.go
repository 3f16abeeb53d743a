package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

func newTokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens: create, list, revoke, and show the one in use",
		Long: `token manages the API tokens every request to the server needs (admin role, except
whoami). A token has a name, which is the actor of every event it causes, a role and, for a
deployer, an optional scope of apps:

  viewer    reads everything and may plan
  deployer  also applies files and operates rollouts; with --apps only the apps its globs
            match (analysis templates, flags and ramps need a deployer without --apps)
  admin     also manages tokens

The secret is printed once, at creation; the server keeps only its hash. On first start the
server makes an admin token of its own (DATA/admin.token), which the CLI on the same machine
finds by itself.`,
	}
	cmd.AddCommand(newTokenCreateCommand(g), newTokenListCommand(g), newTokenRevokeCommand(g), newTokenWhoamiCommand(g))
	return cmd
}

func newTokenCreateCommand(g *globals) *cobra.Command {
	var (
		role    string
		apps    []string
		expires string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role viewer|deployer|admin",
		Short: "Create a token and print its secret (shown only this once)",
		Long: `create makes a token and prints its secret on standard output, alone on its line in
text output, so that a script can capture it. The secret cannot be shown again: keep it in a
secret store (a CI secret, for SLIPWAY_TOKEN).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := slipway.NewToken{Name: args[0], Role: slipway.Role(role), Scope: slipway.Scope{Apps: apps}}
			if expires != "" {
				d, err := parseExpiry(expires)
				if err != nil {
					return err
				}
				n.ExpiresIn = slipway.Duration(d)
			}
			created, err := g.client().CreateToken(cmd.Context(), n)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), created, func(w io.Writer) error {
				fmt.Fprintf(cmd.ErrOrStderr(), "token %s created (%s); its secret, shown only this once:\n", escape(created.Token.Name), describeToken(created.Token))
				_, err := fmt.Fprintln(w, created.Secret)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "viewer, deployer or admin (required)")
	f.StringSliceVar(&apps, "apps", nil, "deployer only: the apps it may change, as globs (web-*); repeat or comma-separate")
	f.StringVar(&expires, "expires", "", "expire after this long: 90d, 12h, 30m (default: never)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// parseExpiry reads a duration that may be in days (90d) as well as Go units.
func parseExpiry(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == days {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q is not a positive duration; use for example 90d, 12h or 30m", s)
	}
	return d, nil
}

func newTokenListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every token with its role, scope, expiry and state (never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := g.client().Tokens(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), ts, func(w io.Writer) error {
				var b bytes.Buffer
				tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tAPPS\tCREATED\tBY\tEXPIRES\tSTATE")
				now := time.Now()
				for _, t := range ts {
					apps := "*"
					if !t.Scope.Unlimited() {
						apps = strings.Join(t.Scope.Apps, ",")
					}
					exp := "never"
					if t.ExpiresAt != nil {
						exp = t.ExpiresAt.Local().Format(time.DateTime)
					}
					state := "active"
					switch {
					case t.RevokedAt != nil:
						state = "revoked " + t.RevokedAt.Local().Format(time.DateTime)
					case !t.Active(now):
						state = "expired"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", escape(t.Name), t.Role, escape(apps),
						t.CreatedAt.Local().Format(time.DateTime), escape(t.CreatedBy), exp, state)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err := w.Write(b.Bytes())
				return err
			})
		},
	}
}

func newTokenRevokeCommand(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: its next request is refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.client().RevokeToken(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), t, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "token %s revoked\n", escape(t.Name))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the event log")
	return cmd
}

func newTokenWhoamiCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the token the CLI uses: its name, role and scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.client().WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(cmd.OutOrStdout(), t, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s (%s)\n", escape(t.Name), describeToken(t))
				return err
			})
		},
	}
}

// describeToken says a token's role, scope and expiry in words.
func describeToken(t slipway.Token) string {
	s := "role " + string(t.Role)
	if !t.Scope.Unlimited() {
		s += ", apps " + strings.Join(t.Scope.Apps, ",")
	}
	if t.ExpiresAt != nil {
		s += ", expires " + t.ExpiresAt.Local().Format(time.DateTime)
	}
	return escape(s)
}
