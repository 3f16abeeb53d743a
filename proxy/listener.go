package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"slipway.dev/slipway/proxy/fastpath"
)

// Serve serves the main listener on ln until ctx ends: the same stages as ServeHTTP, by a
// fast path for plain HTTP/1.x that does not go through net/http (see the package
// documentation), with anything else (HTTP/2 with prior knowledge, upgrades, Expect,
// unusual requests) handed to an http.Server on the same connection. It closes ln. It
// returns an error only when accepting fails for good.
//
// When ctx ends, Serve stops without dropping a request, even when ln's socket is shared
// with another server that goes on accepting (a restart in place): it stops accepting;
// every request already sent, in full or in part, is answered, with Connection: close; a
// connection accepted less than 500 ms before that has sent nothing yet may still send its
// request, which is answered too; connections idle after a response are closed (the
// keep-alive race every server has: clients retry idempotent requests on them). Handed-off
// connections get the same treatment from the http.Server (keep-alives off, then
// Shutdown). Everything is bounded by Config.ShutdownGrace, after which Serve closes what
// is left and returns nil.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	return ServeWith(ctx, ln, func() *Proxy { return p }, false)
}

// ServePreview is Serve for the preview listener (the Preview handler's routing).
func (p *Proxy) ServePreview(ctx context.Context, ln net.Listener) error {
	return ServeWith(ctx, ln, func() *Proxy { return p }, true)
}

// ServeWith is Serve for a listener whose proxy may be replaced while it runs: current is
// called for each request (it must not return nil), and preview selects the preview
// listener's routing. The listener's settings (Config.ShutdownGrace, MaxConns, Log) are
// those of the Proxy current when it starts.
func ServeWith(ctx context.Context, ln net.Listener, current func() *Proxy, preview bool) error {
	p := current()
	l := &listener{current: current, preview: preview}
	return fastpath.Serve(ctx, ln, l, fastpath.Config{
		Handler:       l,
		ShutdownGrace: p.grace,
		MaxConns:      p.maxConns,
		Log:           p.log,
	})
}

// listener routes the requests of one listener served by ServeWith, by the Proxy current
// for each: it is the fast path's Router, and the handler of what the fast path hands to
// net/http.
type listener struct {
	current func() *Proxy
	preview bool
}

var (
	_ fastpath.Router   = (*listener)(nil)
	_ fastpath.Exchange = (*fastExchange)(nil)
	_ http.Handler      = (*listener)(nil)
)

// Route runs the stages of ServeHTTP up to the backend pick for a request the fast path
// serves, and counts it in (Done counts it out). A Proxy with a Transport of its own hands
// every request to net/http, since the fast path speaks HTTP/1.1 to backends itself.
func (l *listener) Route(r *fastpath.Request) fastpath.Exchange {
	p := l.current()
	if !p.fast {
		return nil
	}
	rs := p.states.Get().(*reqState)
	rs.p, rs.fr, rs.preview = p, r, l.preview
	if p.acquire(rs) != nil {
		if m := rs.rev.metrics; m != nil {
			m.inflight.Inc()
		}
	}
	return (*fastExchange)(rs)
}

// ServeHTTP serves a request the fast path handed over.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.current().serve(w, r, l.preview)
}

// fastExchange is a request on the fast path: its reqState, seen as the fast path's
// Exchange.
type fastExchange reqState

func (x *fastExchange) Upstream() *fastpath.Upstream {
	if x.be == nil {
		return nil
	}
	return x.be.up
}

func (x *fastExchange) ResponseHeader() string { return cookieLine(x.setCookie) }

func (x *fastExchange) Unavailable() []byte { return x.p.noBackend }

// Retry moves the request to another backend under the rules of the net/http path
// (retryOn).
func (x *fastExchange) Retry(err error, replayable bool) *fastpath.Upstream {
	rs := (*reqState)(x)
	if b := rs.p.retryOn(rs, err, rs.fr.Method(), replayable); b != nil {
		return b.up
	}
	return nil
}

// Done counts the request out of its backend and records it, as finish does on the
// net/http path; a request answered 503 had no backend and is not recorded.
func (x *fastExchange) Done(code int, start, end time.Time) {
	rs := (*reqState)(x)
	p := rs.p
	if rs.be == nil {
		rs.reset()
		p.states.Put(rs)
		return
	}
	rs.code = code
	p.finishAt(rs, start, end)
}

// cookieLine returns a Set-Cookie header line for v ("" for none).
func cookieLine(v string) string {
	if v == "" {
		return ""
	}
	return "Set-Cookie: " + v + "\r\n"
}
