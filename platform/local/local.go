// Package local is the slipway.Platform that runs apps as real processes on this machine,
// behind slipway's own traffic-splitting proxy (package proxy). It backs
// `slipway server --platform local`.
//
// Each app has one supervisor goroutine (app.go). Apply records the desired state and
// nudges it; the supervisor converges: it starts missing instances, gives the edge (package
// dataplane: the app's proxy and its main and preview listeners) the app's whole traffic
// entry whenever the set of ready instances, the split or the listeners change, and stops
// extra instances. Stopping never drops a request: the instance leaves the proxy table
// first, its in-flight requests drain (Config.DrainTimeout), and only then does its process
// group get SIGTERM, and SIGKILL after Config.StopGrace. Observe reports the split the edge
// has in effect, not the one asked for.
//
// The edge is a dataplane.Plane of the Platform's own (Config.Edge nil), or the data plane
// process (a dataplane.Client), which the server uses so that the apps' traffic outlives
// it: when Run starts it reads the tables the data plane has in effect, and it leaves the
// data plane serving whenever it leaves the instances running.
//
// Each instance has one goroutine (instance.go) that starts its process (its own process
// group, a free port in PORT and ${PORT}, stdout and stderr appended to
// DataDir/logs/<app>/<instance>.log, rotated by size), probes it (probe.go: readiness
// decides whether it is in the proxy table, liveness restarts it; with no readiness probe a
// TCP connect to its port is the readiness probe) and restarts it when it exits, with a
// capped exponential backoff.
//
// Restarts of the server. Every change of an instance process is recorded in
// DataDir/instances.json (state.go, written atomically) with the app, revision, instance
// ID, pid, port and the process start time, along with each app's last desired state, and
// always before it is acted on: an instance is recorded as starting before its process
// starts (and with its pid right after), and as draining before it is stopped, until its
// process is gone. Every instance process is marked in its environment with the data
// directory and its app and instance ID (strays.go), and every process it starts inherits
// the marks. When Run starts, an instance whose pid is alive and still has the recorded
// start time is adopted: it keeps running, is watched by polling (it is not this server's
// child) and by its probes, and takes traffic again once readiness passes; one recorded as
// starting is found by its marks and adopted; one recorded as draining is stopped. An
// instance whose process is gone, or whose pid now belongs to another process, is dropped,
// and the supervisor starts a replacement if the app still wants one. Any other live
// process marked with the data directory is a stray and is stopped with its process group.
// An app's traffic entry is set, and Settled closes (the server starts its engine after
// it), only once the readiness of every adopted instance is known, so that neither the
// proxy nor the engine takes an instance that was not probed yet for one that is not ready;
// until then the edge keeps the table it had. When Run's context ends it stops every
// instance, so adoption matters after a crash or a SIGKILL of the server (instances run in
// their own process group and outlive it), or with Config.KeepOnExit. After a SIGKILL at
// any instant the next Run leaves no process it does not know, and a clean stop after it
// leaves none at all.
//
// Restarts in place (handover.go). Platform.Handover lets a new server process take over:
// it holds the platform (no process is started, restarted or stopped, no traffic entry is
// set, the state file is left alone) and writes the state file. The new server starts held
// (Config.StartHeld) on the same data plane, adopts the instances, and calls Resume once the
// old server is gone (Resume stops the strays then, no longer the old server's business);
// the old one's Run then ends leaving every instance running and the data plane serving.
//
// Start reading at Platform.Run and Platform.Apply (this file), then app.converge; for
// crashes, restore (state.go) and strays.go.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway"
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/proxy"
)

var _ slipway.Platform = (*Platform)(nil)

// Defaults of Config.
const (
	// DefaultDrainTimeout bounds how long a stopping instance's in-flight requests may take.
	DefaultDrainTimeout = 10 * time.Second
	// DefaultStopGrace is how long a process has between SIGTERM and SIGKILL.
	DefaultStopGrace = 10 * time.Second
	// DefaultLogMaxBytes is the size at which an instance log is rotated.
	DefaultLogMaxBytes = 10 << 20
)

// Timings of the supervisors.
const (
	// backoffMin is the first delay before restarting a crashed instance; it doubles on each
	// crash up to backoffMax and resets once an instance stayed ready for backoffReset.
	backoffMin   = 100 * time.Millisecond
	backoffMax   = 10 * time.Second
	backoffReset = 30 * time.Second
	// retryEvery is how often a supervisor converges without being nudged (to retry a
	// listener that could not bind or a table the proxy refused).
	retryEvery = time.Second
	// exitPoll is how often an instance's process is checked for having ended.
	exitPoll = 50 * time.Millisecond
	// rotateEvery is how often an instance's log size is checked.
	rotateEvery = time.Second
	// killWait bounds the wait for a process to end after SIGKILL.
	killWait = 5 * time.Second
	// pushTimeout bounds one call to the edge that does not wait on requests in flight.
	pushTimeout = 5 * time.Second
)

// Config configures a Platform.
type Config struct {
	// DataDir holds the instance logs (DataDir/logs/<app>/<instance>.log) and the state file
	// (DataDir/instances.json). "" keeps logs in the working directory and no state.
	DataDir string
	// Metrics receives the proxies' per-revision metrics; nil records none.
	Metrics *proxy.Metrics
	// Log receives the platform's logs; nil discards them.
	Log *slog.Logger
	// DrainTimeout bounds how long a stopping instance's in-flight requests may take (default
	// DefaultDrainTimeout).
	DrainTimeout time.Duration
	// StopGrace is how long a process has between SIGTERM and SIGKILL (default
	// DefaultStopGrace).
	StopGrace time.Duration
	// LogMaxBytes is the size at which an instance log is rotated (default
	// DefaultLogMaxBytes); LogKeep rotated files are kept.
	LogMaxBytes int64
	// KeepOnExit leaves every instance process running when Run returns, and the state file
	// as it was, exactly as if the server had been killed. A later Run on the same DataDir
	// adopts them. It serves tests of adoption; a restart in place decides it at shutdown
	// time instead (Handover).
	KeepOnExit bool
	// Edge serves the apps' traffic: their proxies and listeners (package dataplane). nil
	// gives the Platform a dataplane.Plane of its own in this process, closed when Run ends.
	// A *dataplane.Client drives the data plane process, which outlives the server: Run
	// starts from the tables it has in effect, and leaves it serving when the instances are
	// left running (KeepOnExit, held); a clean stop stops it last.
	Edge Edge
	// StartHeld makes Run start held, as a Platform is after Handover: it adopts and probes
	// instances and serves traffic but starts, restarts and stops no process and writes no
	// state file until Resume, and leaves every instance running if Run ends before that.
	// The next server of a restart in place starts so, until the old one has let go.
	StartHeld bool
}

// Edge is what serves the apps' traffic: a *dataplane.Plane in this process or a
// *dataplane.Client for the data plane process.
type Edge interface {
	// Boot names the run of the edge; a new word means a new edge, with no traffic entry.
	Boot(ctx context.Context) (string, error)
	Set(ctx context.Context, app string, s dataplane.Spec) (dataplane.Status, error)
	State(ctx context.Context) (map[string]dataplane.Status, error)
	Drain(ctx context.Context, app, backend string) error
	Remove(ctx context.Context, app string) error
}

var (
	_ Edge = (*dataplane.Plane)(nil)
	_ Edge = (*dataplane.Client)(nil)
)

// Platform runs apps as local processes behind per-app proxies. It is safe for concurrent
// use. New starts nothing; Run owns every goroutine.
type Platform struct {
	cfg Config
	log *slog.Logger
	// mark is the data directory as instance processes are marked with it (strays.go).
	mark string
	// probeClient runs HTTP probes; it keeps no connections.
	probeClient *http.Client

	stateMu   sync.Mutex // serialises persist
	lastState []byte
	// restored is set once Run has read the state file: an Apply before that must not
	// overwrite the file, or the instances it records would never be adopted.
	restored atomic.Bool

	// holdState says whether the Platform is held for a handover (handover.go); starting is
	// held for reading while a process starts, so that hold can wait for starts under way.
	holdState holdState
	starting  sync.RWMutex

	// edge serves the traffic; ownEdge is set when it is the Platform's own (Config.Edge
	// nil). handedOver is set by Handover: the next server pushes the tables from then on.
	edge       Edge
	ownEdge    *dataplane.Plane
	handedOver atomic.Bool
	// edgeBoot is the edge's boot word when Run read its tables (seedEdge).
	edgeBoot string
	// edgeDown is set while the edge does not answer (watchEdge saw it so, or a push did):
	// the apps do not try to set their traffic entries meanwhile, each of which would hold
	// its app's lock for pushTimeout, and so Observe and the instances' supervision with it.
	// watchEdge clears it, and nudges every app, once the edge answers again.
	edgeDown atomic.Bool
	// warmBy is when listeners are served even if the readiness of adopted instances is not
	// known yet; set by Run before any supervisor starts.
	warmBy time.Time
	// settled is closed once the readiness of every adopted instance is known (Settled).
	settled     chan struct{}
	settledOnce sync.Once

	mu     sync.Mutex
	apps   map[string]*app
	runCtx context.Context // set while Run runs
	group  *errgroup.Group
	phase  runPhase
}

// runPhase is where the Platform is in its one life.
type runPhase uint8

const (
	phaseNew runPhase = iota
	phaseRunning
	phaseStopping
)

// New returns a Platform. It starts nothing: supervisors run once Run is called.
func New(cfg Config) *Platform {
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.LogMaxBytes <= 0 {
		cfg.LogMaxBytes = DefaultLogMaxBytes
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Platform{
		cfg:  cfg,
		log:  log,
		edge: cfg.Edge,
		mark: markOf(cfg.DataDir),
		probeClient: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true},
			// A redirect answers the probe (3xx passes); it is not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		apps:    map[string]*app{},
		settled: make(chan struct{}),
	}
	if p.edge == nil {
		p.ownEdge = dataplane.New(dataplane.Config{Metrics: cfg.Metrics, Log: log.With("component", "proxy"), DrainTimeout: cfg.DrainTimeout})
		p.edge = p.ownEdge
	}
	return p
}

// Run adopts the instances recorded in the state file, stops the strays (processes marked
// as instances of the data directory that no adopted instance accounts for; not while
// held), runs one supervisor per app until ctx ends, and then stops everything: each app's
// listeners first, then every instance (drain, SIGTERM, SIGKILL), so that no process
// outlives the server (unless Config.KeepOnExit, or while held: see Handover). It returns
// after every goroutine it started has exited. Run may be called once.
func (p *Platform) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.phase != phaseNew {
		p.mu.Unlock()
		return errors.New("local: Run called twice")
	}
	p.mu.Unlock()
	if p.cfg.StartHeld {
		p.hold()
	}
	strays, err := p.restore()
	if err != nil {
		p.closeEdge(ctx)
		p.settle()
		return fmt.Errorf("local: %w", err)
	}
	p.restored.Store(true)
	p.persist() // what was applied before Run, and what was adopted
	p.warmBy = time.Now().Add(warmTimeout)
	g, gctx := errgroup.WithContext(ctx)
	p.seedEdge(ctx, g)
	g.Go(func() error { p.watchEdge(gctx); return nil })
	defer p.settle()
	if len(strays) > 0 && !p.isHeld() {
		// Held, they may be the previous server's: Resume looks again once it has gone.
		g.Go(func() error { p.stopStrays(strays, p.cfg.StopGrace); return nil })
	}
	p.mu.Lock()
	p.runCtx, p.group, p.phase = gctx, g, phaseRunning
	for _, a := range p.apps {
		g.Go(func() error { return a.supervise(gctx) })
	}
	p.mu.Unlock()
	p.checkSettled()
	// This goroutine keeps the group from reaching zero while supervisors may still be added.
	g.Go(func() error {
		<-gctx.Done()
		p.mu.Lock()
		p.phase = phaseStopping
		p.mu.Unlock()
		return nil
	})
	err = g.Wait()
	if !p.keepOnExit() {
		p.persist()
	}
	p.closeEdge(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

// Settled returns a channel that is closed once the readiness of every instance Run adopted
// is known: it passed its readiness probe, failed it as often as the probe's failure
// threshold, or its process ended (or 10 s passed since Run started, or Run returned).
// Until then an adopted instance that is not ready may simply not have been probed yet:
// whatever decides from Observe (the engine) waits for it, as the app's listeners do.
func (p *Platform) Settled() <-chan struct{} { return p.settled }

// settle closes Settled.
func (p *Platform) settle() { p.settledOnce.Do(func() { close(p.settled) }) }

// checkSettled closes Settled once every app is warm.
func (p *Platform) checkSettled() {
	select {
	case <-p.settled:
		return
	default:
	}
	apps := p.appList()
	for _, a := range apps {
		a.mu.Lock()
		warm := a.warm()
		a.mu.Unlock()
		if !warm {
			return
		}
	}
	p.settle()
}

// keepOnExit reports whether the end of Run leaves every instance running: with
// Config.KeepOnExit, or while held (handed over, or not yet taken over).
func (p *Platform) keepOnExit() bool { return p.cfg.KeepOnExit || p.isHeld() }

// appList returns the apps as they are now.
func (p *Platform) appList() []*app {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Values(p.apps))
}

// lookup returns the app named name, or nil.
func (p *Platform) lookup(name string) *app {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apps[name]
}

// ensure returns the app named name, creating it (and starting its supervisor while Run
// runs) when needed.
func (p *Platform) ensure(name string) (*app, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.apps[name]; a != nil {
		return a, false
	}
	a := newApp(p, name)
	p.apps[name] = a
	if p.phase == phaseRunning {
		ctx := p.runCtx
		p.group.Go(func() error { return a.supervise(ctx) })
	}
	return a, true
}

// Apply records d as app d.App's desired state and nudges the app's supervisor; it returns
// at once, before anything has converged (Observe tells how far it got). Applying the same
// Desired again changes nothing.
//
// Apply returns EINVALID, and changes nothing, when d cannot be run: an app or revision name
// that cannot be a file name, a revision placed twice or with negative replicas, weights that
// do not sum to 100 (when any are given), a negative or repeated weight, a weight, route or
// preview naming a revision d does not place, or a listen address that is not host:port.
func (p *Platform) Apply(ctx context.Context, d slipway.Desired) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: apply %s: %w", d.App, err)
	}
	if err := validate(d); err != nil {
		return fmt.Errorf("local: apply %s: %w", d.App, err)
	}
	a, _ := p.ensure(d.App)
	if a.setDesired(cloneDesired(d)) {
		p.persist()
	}
	a.poke()
	return nil
}

// Observe reports app's instances per revision (sorted by ID), the split the proxy has in
// effect and the revision behind the preview listener. An unknown app is reported with no
// revisions.
func (p *Platform) Observe(ctx context.Context, name string) (slipway.Observed, error) {
	if err := ctx.Err(); err != nil {
		return slipway.Observed{}, fmt.Errorf("local: observe %s: %w", name, err)
	}
	a := p.lookup(name)
	if a == nil {
		return slipway.Observed{App: name, Revisions: []slipway.RevisionStatus{}}, nil
	}
	return a.observe(), nil
}

// Remove stops everything of app: its traffic first (an empty proxy table, listeners
// closed), then its instances, drained and stopped. It returns at once; Observe shows the
// instances draining until they are gone. Removing an unknown app is not an error.
func (p *Platform) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: remove %s: %w", name, err)
	}
	a := p.lookup(name)
	if a == nil {
		return nil
	}
	if a.setDesired(&slipway.Desired{App: name}) {
		p.persist()
	}
	a.poke()
	return nil
}

// validate checks d before anything changes and returns every problem at once: the checks
// every platform makes (slipway.Desired.Problems) and those of running processes here.
func validate(d slipway.Desired) error {
	problems := d.Problems()
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if d.App != "" && !safeName(d.App) {
		bad("app: %q is not a valid name (letters, digits, '.', '_' and '-')", d.App)
	}
	for i, pl := range d.Revisions {
		id := pl.Revision.ID
		if id != "" && !safeName(id) {
			bad("revisions[%d]: %q is not a valid revision ID", i, id)
		}
		if pl.Replicas > 0 && pl.Revision.Spec.Run.Command == "" {
			bad("revisions[%d]: revision %s has no run command", i, id)
		}
	}
	for i, rt := range d.Split.Routes {
		if len(rt.Match) == 0 {
			bad("split.routes[%d] (%s): no match", i, rt.Name)
		}
		for j, m := range rt.Match {
			if (m.Header == "") == (m.Cookie == "") {
				bad("split.routes[%d] (%s).match[%d]: want exactly one of header or cookie", i, rt.Name, j)
			}
			if n := btoi(m.Exact != "") + btoi(m.Prefix != "") + btoi(m.Regex != ""); n != 1 {
				bad("split.routes[%d] (%s).match[%d]: want exactly one of exact, prefix or regex", i, rt.Name, j)
			}
			if m.Regex != "" {
				if _, err := regexp.Compile(m.Regex); err != nil {
					bad("split.routes[%d] (%s).match[%d]: regex %q: %v", i, rt.Name, j, m.Regex, err)
				}
			}
		}
	}
	for i, pl := range d.Revisions {
		h := pl.Revision.Spec.Health
		for _, pr := range []struct {
			name string
			p    *slipway.Probe
		}{{"readiness", h.Readiness}, {"liveness", h.Liveness}} {
			if pr.p == nil {
				continue
			}
			if btoi(pr.p.HTTP != nil)+btoi(pr.p.TCP != nil)+btoi(pr.p.Exec != nil) > 1 {
				bad("revisions[%d]: %s probe: want one of http, tcp or exec", i, pr.name)
			}
			if pr.p.Exec != nil && len(pr.p.Exec.Command) == 0 {
				bad("revisions[%d]: %s probe: exec without a command", i, pr.name)
			}
		}
	}
	for _, l := range []struct{ field, addr string }{{"traffic.listen", d.Traffic.Listen}, {"traffic.preview", d.Traffic.Preview}} {
		if l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.addr); err != nil {
			bad("%s: %q is not host:port", l.field, l.addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("%s: %q has no valid port", l.field, l.addr)
		}
	}
	if _, port, _ := net.SplitHostPort(d.Traffic.Listen); d.Traffic.Listen != "" && d.Traffic.Listen == d.Traffic.Preview && port != "0" {
		bad("traffic.preview: %q is also the main listener", d.Traffic.Preview)
	}
	if len(problems) == 0 {
		return nil
	}
	return &slipway.Error{Code: slipway.EINVALID, Message: "desired state is invalid", Details: problems}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cloneDesired returns a deep copy of d, so the caller may reuse what it passed.
func cloneDesired(d slipway.Desired) *slipway.Desired {
	c := d
	c.Traffic = d.Traffic.Clone()
	c.Split = d.Split.Clone()
	c.Revisions = make([]slipway.Placement, len(d.Revisions))
	for i, pl := range d.Revisions {
		run := pl.Revision.Spec.Run
		run.Args = slices.Clone(run.Args)
		if run.Env != nil {
			env := make(map[string]string, len(run.Env))
			for k, v := range run.Env {
				env[k] = v
			}
			run.Env = env
		}
		pl.Revision.Spec.Run = run
		pl.Revision.Spec.Health = cloneHealth(pl.Revision.Spec.Health)
		c.Revisions[i] = pl
	}
	return &c
}

func cloneHealth(h slipway.Health) slipway.Health {
	cp := func(p *slipway.Probe) *slipway.Probe {
		if p == nil {
			return nil
		}
		c := *p
		if p.HTTP != nil {
			x := *p.HTTP
			c.HTTP = &x
		}
		if p.TCP != nil {
			x := *p.TCP
			c.TCP = &x
		}
		if p.Exec != nil {
			c.Exec = &slipway.ExecProbe{Command: slices.Clone(p.Exec.Command)}
		}
		return &c
	}
	return slipway.Health{Readiness: cp(h.Readiness), Liveness: cp(h.Liveness)}
}

// seedEdge starts each app from what the edge has in effect (the data plane kept serving
// while no server ran): the split Observe reports and the instances still in the table. A
// traffic entry no app of the state accounts for (its app was removed) is removed, in the
// background, unless p is held (then it may be the other server's business).
func (p *Platform) seedEdge(ctx context.Context, g *errgroup.Group) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	p.edgeBoot, _ = p.edge.Boot(ctx)
	st, err := p.edge.State(ctx)
	if err != nil {
		p.log.Error("traffic entries in effect not known; they are set again once the apps are warm", "err", err)
		return
	}
	for name, s := range st {
		if a := p.lookup(name); a != nil {
			a.mu.Lock()
			a.status = s
			a.mu.Unlock()
			continue
		}
		if p.isHeld() {
			continue
		}
		p.log.Warn("traffic entry of an app the state does not know removed", "app", name)
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DrainTimeout+pushTimeout)
			defer cancel()
			if err := p.edge.Remove(ctx, name); err != nil {
				p.log.Error("traffic entry not removed", "app", name, "err", err)
			}
			return nil
		})
	}
}

// watchEdge asks the edge for its boot word every retryEvery until ctx ends. When a new
// edge serves (the data plane process died and a new one was started: see
// dataplane.Supervisor), it has none of the traffic entries: every app sets its own again.
func (p *Platform) watchEdge(ctx context.Context) {
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	var changed <-chan struct{} // a data plane the edge started ended: look at once
	if c, ok := p.edge.(interface{ Changed() <-chan struct{} }); ok {
		changed = c.Changed()
	}
	last, lastErr := p.edgeBoot, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
		cctx, cancel := context.WithTimeout(ctx, pushTimeout)
		b, err := p.edge.Boot(cctx)
		cancel()
		if err != nil {
			p.edgeDown.Store(true)
			if msg := err.Error(); msg != lastErr && ctx.Err() == nil {
				lastErr = msg
				p.log.Error("the data plane does not answer", "err", err)
			}
			continue
		}
		wasDown := p.edgeDown.Swap(false)
		switch {
		case last == "":
			last = b
		case b != last:
			last = b
			p.log.Warn("a new data plane serves; every app's traffic entry is set again")
			p.resetEdge(ctx)
			wasDown = false // every app was nudged
		}
		if wasDown {
			p.pokeAll()
		}
		lastErr = ""
	}
}

// pokeAll nudges every app.
func (p *Platform) pokeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.apps {
		a.poke()
	}
}

// resetEdge forgets what each app set on the edge, takes what the edge has now, and nudges
// every app to set its traffic entry again.
func (p *Platform) resetEdge(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	st, err := p.edge.State(ctx)
	if err != nil {
		p.log.Error("traffic entries of the new data plane not known", "err", err)
	}
	apps := p.appList()
	for _, a := range apps {
		a.mu.Lock()
		a.sent, a.status = nil, st[a.name]
		a.mu.Unlock()
		a.poke()
	}
}

// closeEdge ends the edge when Run ends: the Platform's own is closed; the data plane
// process is stopped unless the instances are left running (KeepOnExit, held), which the
// next server takes over with it.
func (p *Platform) closeEdge(ctx context.Context) {
	if p.ownEdge != nil {
		p.ownEdge.Close()
		return
	}
	if p.keepOnExit() {
		return
	}
	if s, ok := p.edge.(interface{ Stop(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.DrainTimeout+pushTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			p.log.Error("data plane not stopped", "err", err)
		}
	}
}
