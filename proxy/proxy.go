package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/proxy/fastpath"
)

// drainPoll is how often Drain looks at a backend's in-flight count.
const drainPoll = 5 * time.Millisecond

// StickyCookieMaxAge is the lifetime of the cookie the proxy sets to keep a user on one
// revision.
const StickyCookieMaxAge = 30 * 24 * time.Hour

// acquireTries bounds how often a request re-picks because the table changed under it.
const acquireTries = 3

// Config configures a Proxy.
type Config struct {
	// App names the app the proxy fronts (metric label, sticky cookie name).
	App string
	// Stickiness, when enabled, keeps a user on one revision; nil or disabled splits each
	// request at random.
	Stickiness *slipway.Stickiness
	// Metrics receives per-revision telemetry; nil records none.
	Metrics *Metrics
	// Log receives the proxy's logs; nil discards them.
	Log *slog.Logger
	// Transport carries requests to backends; nil uses a tuned *http.Transport of the
	// proxy's own (HTTP/1.1 to backends, no environment proxy, no compression). Give an
	// *http.Transport whose Protocols hold only UnencryptedHTTP2 to speak h2c to backends.
	Transport http.RoundTripper
	// ShutdownGrace is how long Serve lets requests in progress finish after its ctx ends,
	// before it closes their connections; 0 means 30 s. ServeWith takes it from the Proxy
	// current when it starts.
	ShutdownGrace time.Duration
	// MaxConns bounds the client connections a listener served by Serve holds open at once,
	// those handed to net/http included: at the bound, Serve accepts no more until one
	// closes, and new clients wait in the listen queue. 0 means DefaultMaxConns; a
	// negative value means no bound. ServeWith takes it from the Proxy current when it
	// starts.
	MaxConns int
}

// DefaultMaxConns is Config.MaxConns's default: room for many clients and their backend
// connections within the usual limit of open files once Go has raised it, and a bound on
// what a flood of idle connections can hold.
const DefaultMaxConns = 10000

// Proxy is one app's traffic-splitting reverse proxy. It is an http.Handler for the main
// listener; Preview returns the handler for the preview listener. Serve and ServePreview
// serve a listener directly, by the fast path. Its zero value is not
// usable: call New, then Update with a table.
type Proxy struct {
	app       string
	log       *slog.Logger
	metrics   *Metrics
	transport http.RoundTripper
	fast      bool          // Serve may use the fast path: the transport is the proxy's own
	grace     time.Duration // 0: fastpath's default
	maxConns  int           // 0: no bound

	sticky     bool
	keyHeader  string // canonical header key naming the user, "" for none
	keyCookie  string // cookie naming the user, "" for none
	cookieName string // the cookie the proxy sets: slipway_<app>
	noBackend  []byte // 503 body

	table atomic.Pointer[compiled]

	mu       sync.Mutex          // serializes Update, guards backends; never taken per request
	backends map[string]*backend // by ID; outlives tables so counts survive route changes

	states  sync.Pool // *reqState
	buffers fastpath.BufferPool
	preview previewHandler
}

var (
	_ http.Handler        = (*Proxy)(nil)
	_ http.Handler        = (*previewHandler)(nil)
	_ httputil.BufferPool = (*fastpath.BufferPool)(nil)
)

// New returns a Proxy with an empty table (every request gets 503 until Update). It starts
// nothing.
func New(cfg Config) *Proxy {
	p := &Proxy{
		app:        cfg.App,
		log:        cfg.Log,
		metrics:    cfg.Metrics,
		transport:  cfg.Transport,
		cookieName: "slipway_" + cookieSafe(cfg.App),
		noBackend:  fmt.Appendf(nil, "slipway: no ready instance of app %q\n", cfg.App),
		backends:   map[string]*backend{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("app", cfg.App)
	if p.transport == nil {
		p.transport = newTransport()
		p.fast = true
	}
	p.grace = cfg.ShutdownGrace
	switch {
	case cfg.MaxConns == 0:
		p.maxConns = DefaultMaxConns
	case cfg.MaxConns > 0:
		p.maxConns = cfg.MaxConns
	}
	if s := cfg.Stickiness; s != nil && s.Enabled {
		p.sticky = true
		if s.Header != "" {
			p.keyHeader = http.CanonicalHeaderKey(s.Header)
		}
		p.keyCookie = s.Cookie
	}
	p.states.New = func() any { return new(reqState) }
	p.preview.p = p
	p.table.Store(compile(Table{}, nil, nil))
	return p
}

// cookieSafe replaces the characters a cookie name may not hold.
func cookieSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f && !strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return r
		}
		return '_'
	}, s)
}

// Update validates t and swaps it in atomically: every request that starts after Update
// returns is routed by t. It returns EINVALID (with one detail per problem) for weights that
// are negative, over 100, duplicated or do not sum to 100 when present, a route to a
// revision that is neither weighted nor has backends, a route without matches or with a bad
// match, and backends with an empty or duplicate ID or an address that is not host:port.
//
// A backend keeps its state (in-flight count) across tables by ID, as long as its revision
// and address stay the same.
func (p *Proxy) Update(t Table) error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("update proxy of app %s: %w", p.app, err)
	}
	t = t.clone()
	p.mu.Lock()
	defer p.mu.Unlock()
	var metricsFor func(rev, version string) *revMetrics
	if p.metrics != nil {
		metricsFor = func(rev, version string) *revMetrics { return p.metrics.revision(p.app, rev, version) }
	}
	c := compile(t, p.backendFor, metricsFor)
	p.table.Store(c)
	// A backend state no table holds is dropped once idle. A request that picked it from
	// the old table sees the swap after counting itself in and re-picks (acquire).
	for id, b := range p.backends {
		if !c.ids[id] && b.inflight.Load() == 0 {
			delete(p.backends, id)
			b.up.Retire()
		}
	}
	if p.metrics != nil {
		p.metrics.retain(p.app, c.byName)
	}
	p.log.Debug("table updated", "weights", len(t.Split.Weights), "routes", len(t.Split.Routes), "backends", len(c.ids))
	return nil
}

// backendFor returns the long-lived state of b, creating it when new (p.mu held).
func (p *Proxy) backendFor(b Backend) *backend {
	old := p.backends[b.ID]
	if old != nil && old.addr == b.Addr && old.revision == b.Revision {
		return old
	}
	if old != nil {
		old.up.Retire()
	}
	nb := p.newBackend(b)
	p.backends[b.ID] = nb
	return nb
}

// Current returns a copy of the table in effect.
func (p *Proxy) Current() Table {
	return p.table.Load().table.clone()
}

// InFlight returns how many requests backend backendID is serving now (0 when unknown).
func (p *Proxy) InFlight(backendID string) int64 {
	p.mu.Lock()
	b := p.backends[backendID]
	p.mu.Unlock()
	if b == nil {
		return 0
	}
	return b.inflight.Load()
}

// Drain waits until backend backendID, which must already have left the table, has no
// request in flight, or ctx ends (then it returns ctx.Err()). It returns ECONFLICT when the
// backend is still in the table, since new requests would keep reaching it. A backend the
// proxy does not know is drained already.
func (p *Proxy) Drain(ctx context.Context, backendID string) error {
	p.mu.Lock()
	b := p.backends[backendID]
	inTable := p.table.Load().ids[backendID]
	p.mu.Unlock()
	if inTable {
		return fmt.Errorf("drain backend %s of app %s: %w", backendID, p.app,
			slipway.Errorf(slipway.ECONFLICT, "backend %s is still in the table: remove it before draining", backendID))
	}
	if b == nil {
		return nil
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for b.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	p.mu.Lock()
	if p.backends[backendID] == b && !p.table.Load().ids[backendID] {
		delete(p.backends, backendID)
		b.up.Retire()
	}
	p.mu.Unlock()
	return nil
}

// Preview returns the handler for the preview listener: every request goes to the table's
// Preview revision (503 when there is none or it has no ready instance), with no split and
// no fallback.
func (p *Proxy) Preview() http.Handler { return &p.preview }

type previewHandler struct{ p *Proxy }

func (h *previewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.p.serve(w, r, true) }

// ServeHTTP serves the main listener: accounting, route match, split, backend pick, forward
// (see the package documentation).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.serve(w, r, false) }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, preview bool) {
	start := time.Now()
	rs := p.states.Get().(*reqState)
	rs.w, rs.in, rs.preview = w, r, preview
	be := p.acquire(rs)
	if be == nil {
		rs.reset()
		p.states.Put(rs)
		p.unavailable(w)
		return
	}
	if m := rs.rev.metrics; m != nil {
		m.inflight.Inc()
	}
	defer p.finish(rs, start)
	be.rp.ServeHTTP(rs, r)
}

// finish releases the request's backend and records it; it runs even when forwarding panics
// (http.ErrAbortHandler on a broken response body).
func (p *Proxy) finish(rs *reqState, start time.Time) { p.finishAt(rs, start, time.Now()) }

// finishAt is finish for a request that ended at end.
func (p *Proxy) finishAt(rs *reqState, start, end time.Time) {
	rs.be.inflight.Add(-1)
	if m := rs.rev.metrics; m != nil {
		m.inflight.Dec()
		code := rs.code
		if code == 0 {
			code = http.StatusOK // nothing written: net/http answers 200
			if rs.in != nil && rs.in.Header.Get("Upgrade") != "" {
				code = http.StatusSwitchingProtocols // hijacked by the upgrade
			}
		}
		m.record(code, end.Sub(start), end)
	}
	rs.reset()
	p.states.Put(rs)
}

// unavailable answers 503 when no revision of the table has a ready instance.
func (p *Proxy) unavailable(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Retry-After"] = []string{"1"}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(p.noBackend)
}

// acquire picks the request's revision and backend and counts the request in on it. If the
// table was swapped between the load and the count, it backs out and picks again from the
// new table: so once Update has returned, a backend that left the table can only gain
// requests that will immediately leave it, and Drain sees every request that stays.
func (p *Proxy) acquire(rs *reqState) *backend {
	for try := 1; ; try++ {
		t := p.table.Load()
		v := p.pickRevision(t, rs)
		if v == nil {
			return nil
		}
		b := v.pick(nil)
		b.inflight.Add(1)
		if try == acquireTries || p.table.Load() == t {
			rs.rev, rs.be = v, b
			return b
		}
		b.inflight.Add(-1)
	}
}

// pickRevision runs the route match and the split for rs on table t: the first matching
// route wins if its revision has a ready instance; otherwise the weights decide, by the
// user's sticky bucket or a random one, falling back along the weights' priority order.
func (p *Proxy) pickRevision(t *compiled, rs *reqState) *revision {
	if rs.preview {
		if t.preview == nil || len(t.preview.backends) == 0 {
			return nil
		}
		return t.preview
	}
	if v := t.routed(rs); v != nil && len(v.backends) > 0 {
		return v
	}
	if len(t.weights) == 0 {
		return nil
	}
	if !rs.hasBucket {
		rs.bucket, rs.hasBucket = p.bucket(rs), true
	}
	return t.split(rs.bucket)
}

// bucket returns the request's bucket in 0..99. Sticky: the hash of the user key (the app's
// header or cookie, else the proxy's cookie, which it sets when absent); otherwise random.
func (p *Proxy) bucket(rs *reqState) uint32 {
	if !p.sticky {
		return uint32((uint64(rand.Uint32()) * 100) >> 32)
	}
	if p.keyHeader != "" {
		if v, _, ok := rs.header(p.keyHeader, 0); ok && v != "" {
			return bucketOf(v)
		}
	}
	if p.keyCookie != "" {
		if v, ok := rs.cookie(p.keyCookie); ok && v != "" {
			return bucketOf(v)
		}
	}
	if v, ok := rs.cookie(p.cookieName); ok && v != "" {
		return bucketOf(v)
	}
	id := newUserID()
	c := http.Cookie{ //nolint:gosec // G124: Secure follows the request's TLS; listeners may be cleartext.
		Name:     p.cookieName,
		Value:    id,
		Path:     "/",
		MaxAge:   int(StickyCookieMaxAge / time.Second),
		HttpOnly: true,
		Secure:   rs.in != nil && rs.in.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	rs.addCookie(c.String())
	return bucketOf(id)
}

// newUserID returns 128 random bits in hex.
func newUserID() string {
	const hex = "0123456789abcdef"
	var b [32]byte
	for i := 0; i < 32; i += 16 {
		v := rand.Uint64()
		for j := range 16 {
			b[i+j] = hex[v&15]
			v >>= 4
		}
	}
	return string(b[:])
}

// scanMax is the most backends pick compares all of; above it, it compares two at random.
const scanMax = 16

// pick returns the ready backend of v with the fewest requests in flight, skipping except;
// the scan starts at a random index so that ties spread. With more than scanMax backends it
// takes the better of two chosen at random (the "power of two choices", as Envoy and
// Finagle balance least-requests), so that a request costs the same for any number of
// instances. It returns nil when none is left.
func (v *revision) pick(except *backend) *backend {
	n := len(v.backends)
	switch n {
	case 0:
		return nil
	case 1:
		if b := v.backends[0]; b != except {
			return b
		}
		return nil
	}
	if n > scanMax {
		i := rand.Uint32N(uint32(n))
		j := rand.Uint32N(uint32(n - 1))
		if j >= i {
			j++
		}
		x, y := v.backends[i], v.backends[j]
		switch {
		case x == except:
			return y
		case y == except, x.inflight.Load() <= y.inflight.Load():
			return x
		}
		return y
	}
	start := int(rand.Uint32N(uint32(n)))
	var best *backend
	var bestN int64
	for i := range n {
		b := v.backends[(start+i)%n]
		if b == except {
			continue
		}
		if c := b.inflight.Load(); best == nil || c < bestN {
			best, bestN = b, c
		}
	}
	return best
}

// CloseIdleConnections closes the idle connections to backends (the transport's, when it
// can, and the fast path's), for shutdown; connections in use are left alone.
func (p *Proxy) CloseIdleConnections() {
	p.mu.Lock()
	for _, b := range p.backends {
		b.up.CloseIdle()
	}
	p.mu.Unlock()
	if c, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Protocols returns the protocols a listener serving a Proxy should accept: HTTP/1.1 and
// HTTP/2 with prior knowledge over cleartext (h2c), as in
//
//	srv := &http.Server{Addr: addr, Handler: p, Protocols: proxy.Protocols()}
//
// (Add SetHTTP2(true) for a TLS listener.)
func Protocols() *http.Protocols {
	var ps http.Protocols
	ps.SetHTTP1(true)
	ps.SetUnencryptedHTTP2(true)
	return &ps
}
