//go:build !linux

package dataplane

import (
	"log/slog"
	"net"
)

// peerListener relies on the socket's mode (0600) alone where peer credentials are not read.
type peerListener struct {
	net.Listener
	log *slog.Logger
}
