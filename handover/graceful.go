package handover

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"slipway.dev/slipway/proxy/fastpath"
)

// Graceful serves an http.Server on a listening socket that may be shared with another
// process (a restart in place), and stops it without dropping a request.
// http.Server.Shutdown alone can drop one: a request it reads after Shutdown began, on a
// connection accepted just before, gets the connection closed unanswered, although the next
// server on the shared socket would have answered it.
//
// Stop therefore stops accepting first, turns keep-alives off (each HTTP/1 connection
// closes after the response to what it already sent), waits until no connection has a
// request in flight or one just accepted that has not sent its request yet, and only then
// calls Shutdown. What remains is the race every HTTP server has with keep-alive: a client
// that sends on an idle connection as the server closes it sees the connection closed, and
// clients retry idempotent requests then (Go's http.Transport does).
type Graceful struct {
	srv *http.Server

	mu       sync.Mutex
	ln       net.Listener
	stopping bool
	served   chan struct{}       // closed when Serve returned
	conns    fastpath.ConnStates // the server's connections
}

// NewGraceful returns srv ready to Serve and Stop. It sets srv.ConnState (calling the
// hook srv had, if any).
func NewGraceful(srv *http.Server) *Graceful {
	g := &Graceful{srv: srv, served: make(chan struct{})}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		g.conns.Track(c, st)
		if prev != nil {
			prev(c, st)
		}
	}
	return g
}

// Server returns the http.Server g serves.
func (g *Graceful) Server() *http.Server { return g.srv }

// Serve serves ln until Stop (then it returns nil) or until it fails. It may be called once.
func (g *Graceful) Serve(ln net.Listener) error {
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		close(g.served)
		_ = ln.Close()
		return nil
	}
	g.ln = ln
	g.mu.Unlock()
	err := g.srv.Serve(ln)
	close(g.served)
	g.mu.Lock()
	stopping := g.stopping
	g.mu.Unlock()
	if stopping && (errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed)) {
		return nil
	}
	return err
}

// Stop stops accepting (closing the listener here; a copy of the socket in another process
// keeps it open there), lets the requests already sent finish, and shuts the server down.
// Connections still busy when ctx ends are closed, and ctx's error is returned.
func (g *Graceful) Stop(ctx context.Context) error {
	g.mu.Lock()
	g.stopping = true
	ln := g.ln
	g.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
		// Serve has set up every connection it accepted once it returns.
		select {
		case <-g.served:
		case <-ctx.Done():
			_ = g.srv.Close()
			return ctx.Err()
		}
	}
	g.srv.SetKeepAlivesEnabled(false)
	if err := g.conns.Quiet(ctx); err != nil {
		_ = g.srv.Close()
		return err
	}
	if err := g.srv.Shutdown(ctx); err != nil {
		_ = g.srv.Close()
		return err
	}
	return nil
}
