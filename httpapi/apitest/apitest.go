// Package apitest provides an in-memory slipway service and a running API server for tests
// of API clients: the httpapi Client, the CLI and the server's own routing, encoding and
// streaming, in the manner of net/http/httptest.
//
// Start reading at NewServer; Service (service.go) is the engine and store it serves, seeded
// with one app mid-rollout. Service stands in for the real engine and store only in tests of
// the API's plumbing; a feature is tested against the real ones. Only tests import this
// package.
package apitest

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/httpapi"
)

// EventPoll is how often a Server's event streams poll for new events unless its Config
// says otherwise: short, so that a test sees an event it adds at once.
const EventPoll = 5 * time.Millisecond

// Server is an API server over a Service, listening on a loopback port for the length of a
// test. The embedded httptest.Server gives its URL and a Client for it.
type Server struct {
	*httptest.Server
	// Service is the engine and store the server serves; a test reads what it was asked
	// and changes what it answers.
	Service *Service
	// Logs holds what the server logged, at debug level and up, unless the Config passed to
	// NewServer had its own Log.
	Logs *Buffer
	// Tokens authenticates requests unless the Config passed to NewServer had its own.
	Tokens *Tokens
}

// NewServer starts an API server over a new Service and closes it when tb's test ends. cfg
// gives the rest of the server's configuration (Logs, Flags, Heartbeat, ...): its Deployer,
// Operator, Status and State are replaced by the Service, a nil Log by one writing to
// Server.Logs, a nil Tokens by Server.Tokens, and a zero EventPoll by EventPoll.
//
// The server's Client sends AdminSecret on every request that has no Authorization header
// of its own; a test of authentication itself sends its own header, or uses another client.
func NewServer(tb testing.TB, cfg httpapi.Config) *Server {
	tb.Helper()
	svc := NewService()
	logs := &Buffer{}
	cfg.Deployer, cfg.Operator, cfg.Status, cfg.State = svc, svc, svc, svc
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.EventPoll == 0 {
		cfg.EventPoll = EventPoll
	}
	tokens := NewTokens()
	if cfg.Tokens == nil {
		cfg.Tokens = tokens
	}
	srv := httptest.NewServer(httpapi.NewServer(cfg))
	tb.Cleanup(srv.Close)
	hc := srv.Client()
	hc.Transport = bearer{secret: AdminSecret, base: hc.Transport}
	return &Server{Server: srv, Service: svc, Logs: logs, Tokens: tokens}
}

// Buffer collects what a server, command or stream writes while the test reads what has
// arrived so far. It is safe for concurrent use; the zero value is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
