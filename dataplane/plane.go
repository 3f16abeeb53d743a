package dataplane

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/proxy"
)

// DefaultDrainTimeout bounds how long the requests in flight on a closing listener, or to a
// backend being drained, may take.
const DefaultDrainTimeout = 10 * time.Second

// Spec is what one app's traffic entry should be: its proxy table and stickiness, and the
// addresses of its main and preview listeners ("" for none).
type Spec struct {
	Stickiness *slipway.Stickiness `json:"stickiness,omitempty"`
	Table      proxy.Table         `json:"table"`
	Listen     string              `json:"listen,omitempty"`
	Preview    string              `json:"preview,omitempty"`
}

// Status is what an app's traffic entry is: the table in effect and its listeners.
type Status struct {
	Table   proxy.Table `json:"table"`
	Listen  Listener    `json:"listen"`
	Preview Listener    `json:"preview"`
}

// Listener is one listener of an app.
type Listener struct {
	// Addr is the address asked for, Bound the one the socket is bound to ("" when closed).
	Addr  string `json:"addr,omitempty"`
	Bound string `json:"bound,omitempty"`
	// Error says why Addr could not be bound (the next Set tries again).
	Error string `json:"error,omitempty"`
}

// Failed reports whether a listener asked for could not be bound.
func (s Status) Failed() bool { return s.Listen.Error != "" || s.Preview.Error != "" }

// Config configures a Plane.
type Config struct {
	// Metrics receives the proxies' per-revision metrics; nil records none.
	Metrics *proxy.Metrics
	// Log receives the plane's logs; nil discards them.
	Log *slog.Logger
	// DrainTimeout bounds the requests in flight on a closing listener (default
	// DefaultDrainTimeout).
	DrainTimeout time.Duration
}

// Plane serves the traffic of many apps: for each, a proxy and its listeners. It is safe
// for concurrent use; Set, Remove and Drain of one app are serialized.
type Plane struct {
	cfg  Config
	log  *slog.Logger
	boot string

	mu     sync.Mutex
	apps   map[string]*entry
	closed bool
}

// entry is one app's proxy and listeners.
type entry struct {
	p    *Plane
	name string
	log  *slog.Logger

	// front is the proxy the listeners serve; it is replaced when the stickiness changes.
	front atomic.Pointer[front]

	mu sync.Mutex // serializes Set, Remove; guards the fields below
	// retired is the proxy a stickiness change replaced: it may still finish requests, so
	// drains also wait on it and it follows the tables.
	retired   *proxy.Proxy
	listeners [2]listener
	wg        sync.WaitGroup // the listeners' serving goroutines
}

type front struct {
	px     *proxy.Proxy
	sticky *slipway.Stickiness
}

type listener struct {
	addr  string
	ln    net.Listener
	stop  context.CancelFunc // ends ServeWith, which stops without dropping a request
	err   string
	bound string
}

var listenerNames = [2]string{"main", "preview"}

// New returns a Plane serving nothing.
func New(cfg Config) *Plane {
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plane{cfg: cfg, log: log, boot: rand.Text(), apps: map[string]*entry{}}
}

// Boot names this Plane: a random word fixed at New. A client that sees it change knows it
// talks to a new data plane, which has none of the traffic entries the old one had.
func (p *Plane) Boot(ctx context.Context) (string, error) { return p.boot, ctx.Err() }

// errClosed is what a closed Plane answers.
var errClosed = slipway.Errorf(slipway.EUNAVAILABLE, "the data plane is stopping")

// Set makes app's traffic entry match s: it replaces the proxy when the stickiness changed,
// gives it s.Table, and opens, moves or closes the listeners. A table the proxy refuses is
// an EINVALID error and changes nothing; a listener that cannot be bound is reported in the
// Status (and tried again by the next Set). It returns what is in effect.
func (p *Plane) Set(ctx context.Context, app string, s Spec) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	if err := slipway.ValidKey("app", app); err != nil {
		return Status{}, err
	}
	e, err := p.entry(app, true)
	if err != nil {
		return Status{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ensureFront(s.Stickiness)
	if err := e.front.Load().px.Update(s.Table); err != nil {
		return Status{}, fmt.Errorf("app %s: %w", app, err)
	}
	if e.retired != nil {
		_ = e.retired.Update(s.Table)
	}
	e.reconcileListeners([2]string{s.Listen, s.Preview})
	return e.status(), nil
}

// State returns the status of every app.
func (p *Plane) State(ctx context.Context) (map[string]Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	es := slices.Collect(maps.Values(p.apps))
	p.mu.Unlock()
	out := make(map[string]Status, len(es))
	for _, e := range es {
		e.mu.Lock()
		out[e.name] = e.status()
		e.mu.Unlock()
	}
	return out, nil
}

// Drain waits until backend of app, which must already have left the table, has no
// request in flight on either proxy of the app, at most DrainTimeout (or until ctx ends). A
// backend or app the plane does not know is drained already.
func (p *Plane) Drain(ctx context.Context, app, backend string) error {
	e, err := p.entry(app, false)
	if err != nil || e == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DrainTimeout)
	defer cancel()
	e.mu.Lock()
	pxs := []*proxy.Proxy{e.front.Load().px}
	if e.retired != nil {
		pxs = append(pxs, e.retired)
	}
	e.mu.Unlock()
	var errs []error
	for _, px := range pxs {
		errs = append(errs, px.Drain(ctx, backend))
	}
	return errors.Join(errs...)
}

// Remove closes app's listeners, letting the requests in flight finish (at most
// DrainTimeout), and forgets the app. Removing an unknown app does nothing.
func (p *Plane) Remove(ctx context.Context, app string) error {
	p.mu.Lock()
	e := p.apps[app]
	delete(p.apps, app)
	p.mu.Unlock()
	if e == nil {
		return ctx.Err()
	}
	e.close()
	return nil
}

// Close removes every app (listeners closed, requests in flight finished) and refuses
// every later call. It returns once every listener has stopped.
func (p *Plane) Close() {
	p.mu.Lock()
	p.closed = true
	es := slices.Collect(maps.Values(p.apps))
	p.apps = map[string]*entry{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Go(e.close)
	}
	wg.Wait()
}

// RequestWindow returns what app's revision served over the last d (see
// proxy.Metrics.Window); an error when the plane records no metrics.
func (p *Plane) RequestWindow(ctx context.Context, app, revision string, d time.Duration) (slipway.RequestWindow, error) {
	if p.cfg.Metrics == nil {
		return slipway.RequestWindow{}, errors.New("the data plane records no metrics")
	}
	return p.cfg.Metrics.RequestWindow(ctx, app, revision, d)
}

var _ slipway.RequestMetrics = (*Plane)(nil)

// entry returns app's entry, created when create is set (nil when not and unknown).
func (p *Plane) entry(app string, create bool) (*entry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	e := p.apps[app]
	if e == nil && create {
		e = &entry{p: p, name: app, log: p.log.With("app", app)}
		e.front.Store(e.newFront(nil))
		p.apps[app] = e
	}
	return e, nil
}

// newFront returns a proxy for the given stickiness, with the proxy's own transport (so
// its listeners take the fast path) and DrainTimeout for a closing listener's requests.
func (e *entry) newFront(s *slipway.Stickiness) *front {
	px := proxy.New(proxy.Config{
		App: e.name, Stickiness: s, Metrics: e.p.cfg.Metrics, Log: e.log.With("component", "proxy"),
		ShutdownGrace: e.p.cfg.DrainTimeout,
	})
	return &front{px: px, sticky: s}
}

// ensureFront replaces the proxy when the stickiness changed, carrying the table over. The
// caller holds e.mu.
func (e *entry) ensureFront(s *slipway.Stickiness) {
	f := e.front.Load()
	if reflect.DeepEqual(f.sticky, s) {
		return
	}
	nf := e.newFront(slipway.Traffic{Stickiness: s}.Clone().Stickiness)
	if err := nf.px.Update(f.px.Current()); err != nil {
		e.log.Error("proxy table refused", "err", err)
	}
	if e.retired != nil {
		e.retired.CloseIdleConnections() // replaced twice: nothing takes its idle connections again
	}
	e.retired = f.px
	e.front.Store(nf)
}

// status returns what is in effect. The caller holds e.mu.
func (e *entry) status() Status {
	st := Status{Table: e.front.Load().px.Current()}
	for i, l := range e.listeners {
		ls := Listener{Addr: l.addr, Bound: l.bound, Error: l.err}
		if i == 0 {
			st.Listen = ls
		} else {
			st.Preview = ls
		}
	}
	return st
}

// reconcileListeners opens, moves and closes the main and preview listeners. The caller
// holds e.mu.
func (e *entry) reconcileListeners(want [2]string) {
	for i := range e.listeners {
		l := &e.listeners[i]
		if l.ln != nil && l.addr != want[i] {
			e.log.Info("listener closed", "listener", listenerNames[i], "addr", l.bound)
			l.stop()
			*l = listener{}
		}
		if want[i] == "" {
			*l = listener{}
			continue
		}
		if l.ln != nil {
			continue
		}
		ln, err := net.Listen("tcp", want[i])
		if err != nil {
			if msg := err.Error(); msg != l.err {
				e.log.Error("listener not bound", "listener", listenerNames[i], "addr", want[i], "err", err)
			}
			*l = listener{addr: want[i], err: err.Error()}
			continue
		}
		*l = listener{addr: want[i], bound: ln.Addr().String(), ln: ln}
		e.serve(l, i == 1)
		e.log.Info("listening", "listener", listenerNames[i], "addr", l.bound)
	}
}

// serve serves l with the current proxy, by its fast path (HTTP/1.x; h2c and upgrades go
// to net/http on the same connection), until l is closed.
func (e *entry) serve(l *listener, preview bool) {
	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	ln := l.ln
	current := func() *proxy.Proxy { return e.front.Load().px }
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := proxy.ServeWith(ctx, ln, current, preview); err != nil {
			e.log.Error("listener failed", "err", err)
		}
	}()
}

// close stops every listener, waits until they have stopped (requests in flight finished)
// and closes the proxies' idle connections.
func (e *entry) close() {
	e.mu.Lock()
	for i := range e.listeners {
		if e.listeners[i].ln != nil {
			e.listeners[i].stop() // requests in flight get DrainTimeout (ShutdownGrace)
		}
		e.listeners[i] = listener{}
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.front.Load().px.CloseIdleConnections()
	if e.retired != nil {
		e.retired.CloseIdleConnections()
	}
}
