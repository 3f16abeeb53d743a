package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
)

// Defaults and environment variables of the global flags.
const (
	defaultServer = "http://127.0.0.1:7070"
	envServer     = "SLIPWAY_SERVER"
	envEnv        = "SLIPWAY_ENV"
)

// Output formats of -o.
const (
	outputText = "text"
	outputJSON = "json"
	outputYAML = "yaml"
)

// globals holds the global flags every client command reads.
type globals struct {
	server string
	env    string
	output string
	token  string
	tlsCA  string
	// clients are the API clients the command made, for the version check after it.
	clients []*httpapi.Client
}

// newRootCommand builds the command tree. Each extra function adds commands to the root (the
// server commands are wired this way, apart from the client commands).
func newRootCommand(extra ...func(*cobra.Command)) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Progressive delivery: rolling, blue-green and canary rollouts with automatic analysis",
		Long: `slipway takes a new version of a service to production step by step, measures it while
it takes traffic, and promotes it or rolls it back by itself.

Every command but validate, schema and server talks to a slipway server over its HTTP API
(--server, or $SLIPWAY_SERVER) with an API token: --token, else $SLIPWAY_TOKEN, else, for a
server on this machine, the admin token the server wrote in its data directory. Changes are
recorded as made by the token's name.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.env != "" {
				if err := slipway.ValidEnvironmentName(g.env); err != nil {
					return fmt.Errorf("--env: %s", slipway.ErrorMessage(err))
				}
			}
			switch g.output {
			case outputText, outputJSON, outputYAML:
				return nil
			}
			return fmt.Errorf("--output %q is not a format; use text, json or yaml", g.output)
		},
		PersistentPostRun: func(cmd *cobra.Command, _ []string) {
			if cmd.Name() != "version" {
				g.checkVersions(cmd.ErrOrStderr())
			}
		},
	}
	server := os.Getenv(envServer)
	if server == "" {
		server = defaultServer
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", server, "slipway server address ($"+envServer+")")
	pf.StringVarP(&g.env, "env", "e", os.Getenv(envEnv), "environment the command is about ($"+envEnv+"; default: "+slipway.DefaultEnvironment+")")
	pf.StringVarP(&g.output, "output", "o", outputText, "output format: text, json or yaml")
	pf.StringVar(&g.token, "token", "", "API token ($"+envToken+"; default: the local server's admin token)")
	pf.StringVar(&g.tlsCA, "tls-ca", os.Getenv(envTLSCA), "PEM file of the CA that signed an https server's certificate ($"+envTLSCA+")")

	root.AddCommand(
		newValidateCommand(g),
		newSchemaCommand(),
		newPlanCommand(g),
		newApplyCommand(g),
		newStatusCommand(g),
		newGetCommand(g),
		newHistoryCommand(g),
		newAnalysisCommand(g),
		newEventsCommand(g),
		newLogsCommand(g),
		newFlagsCommand(g),
		newReleaseCommand(g),
		newReleasesCommand(g),
		newPipelineCommand(g),
		newNotificationsCommand(g),
		newGitCommand(g),
		newInsightsCommand(g),
		newTokenCommand(g),
		newBackupCommand(g),
		newVersionCommand(g),
		newDemoAppCommand(),
		newDemoCommand(),
		newDataPlaneCommand(),
	)
	root.AddCommand(newOperationCommands(g)...)
	for _, add := range extra {
		add(root)
	}
	return root
}

// client returns an API client with the token found for the server (see credentials.go).
// A CA file that cannot be read is reported by the first request.
func (g *globals) client() *httpapi.Client { return g.clientOf(g.env) }

// clientOf returns an API client of environment env's API ("" or default: the server's
// own), with the token found for the server.
func (g *globals) clientOf(env string) *httpapi.Client {
	c := httpapi.NewClient(serverFor(g.server, env), g.httpClient())
	token := strings.TrimSpace(g.token)
	if token == "" {
		token = strings.TrimSpace(os.Getenv(envToken))
	}
	if token == "" {
		token = discoverToken(g.server)
	}
	c.SetToken(token)
	g.clients = append(g.clients, c)
	return c
}

// checkVersions warns when a server the command talked to is of another version.
func (g *globals) checkVersions(w io.Writer) {
	for _, c := range g.clients {
		if v := c.ServerVersion(); v != "" {
			warnVersion(w, v)
			return
		}
	}
}

// httpClient returns the HTTP client for the API: without a timeout (streams last; calls are
// bound by their contexts), trusting --tls-ca besides the system's CAs.
func (g *globals) httpClient() *http.Client {
	if g.tlsCA == "" {
		return &http.Client{}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	pem, err := os.ReadFile(g.tlsCA)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		msg := fmt.Sprintf("--tls-ca %s holds no PEM certificate", g.tlsCA)
		if err != nil {
			msg = fmt.Sprintf("--tls-ca: %v", err)
		}
		tr.DialContext = func(context.Context, string, string) (net.Conn, error) { return nil, errors.New(msg) }
		tr.DialTLSContext = tr.DialContext
	}
	tr.TLSClientConfig.RootCAs = pool
	return &http.Client{Transport: tr}
}

// emit prints v in the chosen format; text draws the text form.
func (g *globals) emit(w io.Writer, v any, text func(io.Writer) error) error {
	switch g.output {
	case outputJSON:
		return writeJSON(w, v)
	case outputYAML:
		return writeYAML(w, v)
	}
	return text(w)
}

// writeJSON prints v as indented JSON, escaping what a terminal would act on (escape.go).
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeEncoded(buf.Bytes(), false))
	return err
}

// writeYAML prints v as YAML with the field names and order of its JSON form, escaping what a
// terminal would act on (escape.go).
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	var n yaml.Node
	// YAML does not allow DEL or C1 controls as they are, even in quoted strings.
	if err := yaml.Unmarshal(escapeEncoded(b, true), &n); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	plain(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = w.Write(escapeEncoded(buf.Bytes(), true))
	return err
}

// plain drops the JSON (flow, quoted) styles a node parsed from JSON carries, so that it
// prints as block YAML; the encoder still quotes strings that would read as another type.
// A string with a rune escapeEncoded rewrites is double-quoted: only there is \u an escape.
func plain(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && needsEncodedEscape(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		plain(c)
	}
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
