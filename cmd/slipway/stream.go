package main

// The commands that hold a stream open (status --watch and --wait, events --follow, logs -f)
// carry on when the connection to the server breaks: the client connects again and resumes
// where it stopped (httpapi/client_stream.go); this file gives them the flag that bounds
// how long, and the two lines they print to stderr about it.
//
// A connection that goes silent (no event and no heartbeat for httpapi.DefaultIdle, three of
// the server's heartbeats) counts as broken too. It has no flag: `slipway server` always
// sends its heartbeat every httpapi.DefaultHeartbeat, so the default always fits it.

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/httpapi"
)

// defaultReconnectTimeout is how long a stream keeps trying to reach a server it lost: long
// enough for a server to be upgraded or moved, short enough that a script learns of a
// server that is gone.
const defaultReconnectTimeout = 5 * time.Minute

// reconnectFlag adds --reconnect-timeout to a command that holds a stream open.
func reconnectFlag(cmd *cobra.Command, d *time.Duration) {
	cmd.Flags().DurationVar(d, "reconnect-timeout", defaultReconnectTimeout,
		"when the connection to the server breaks, keep trying to reconnect for this long (0: forever)")
}

// streamClient returns an API client whose streams reconnect for up to timeout (0: with no
// limit) after their connection broke, saying so on stderr once when it is lost and once
// when it is back.
func streamClient(g *globals, stderr io.Writer, timeout time.Duration) (*httpapi.Client, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("--reconnect-timeout %s is negative; use a duration such as 30s or 10m, or 0 to keep trying forever", timeout)
	}
	c := g.client()
	limit := "until it is back"
	if timeout > 0 {
		limit = "for up to " + timeout.String() + " (--reconnect-timeout)"
	}
	c.SetReconnect(httpapi.Reconnect{
		Timeout: timeout,
		Lost: func(err error) {
			fmt.Fprintf(stderr, "connection to the slipway server at %s lost: %s; reconnecting %s\n", g.server, errorText(err), limit)
		},
		Back: func() {
			fmt.Fprintf(stderr, "reconnected to the slipway server at %s\n", g.server)
		},
	})
	return c, nil
}
