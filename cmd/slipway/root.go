package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"slipway.dev/slipway/httpapi"
)

// Defaults and environment variables of the global flags.
const (
	defaultServer = "http://127.0.0.1:7070"
	envServer     = "SLIPWAY_SERVER"
	envActor      = "SLIPWAY_ACTOR"
	defaultActor  = "cli"
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
	output string
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
(--server, or $SLIPWAY_SERVER). Changes are recorded as made by $SLIPWAY_ACTOR, else $USER.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch g.output {
			case outputText, outputJSON, outputYAML:
				return nil
			}
			return fmt.Errorf("--output %q is not a format; use text, json or yaml", g.output)
		},
	}
	server := os.Getenv(envServer)
	if server == "" {
		server = defaultServer
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", server, "slipway server address ($"+envServer+")")
	pf.StringVarP(&g.output, "output", "o", outputText, "output format: text, json or yaml")

	root.AddCommand(
		newValidateCommand(g),
		newSchemaCommand(),
		newPlanCommand(g),
		newApplyCommand(g),
		newStatusCommand(g),
		newGetCommand(g),
		newHistoryCommand(g),
		newEventsCommand(g),
		newLogsCommand(g),
		newFlagsCommand(g),
		newDemoAppCommand(),
		newDemoCommand(),
	)
	root.AddCommand(newOperationCommands(g)...)
	for _, add := range extra {
		add(root)
	}
	return root
}

// client returns an API client that records changes as made by the user.
func (g *globals) client() *httpapi.Client {
	c := httpapi.NewClient(g.server, nil)
	c.SetActor(actor())
	return c
}

// actor is who the CLI's changes are recorded as: $SLIPWAY_ACTOR, $USER or "cli".
func actor() string {
	for _, k := range []string{envActor, "USER"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return defaultActor
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
