package local

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/proxy"
)

// app is the live state of one app, converged by its supervisor goroutine (supervise).
type app struct {
	p    *Platform
	name string
	log  *slog.Logger
	wake chan struct{} // one slot: a nudge is never lost and never blocks

	// front is the proxy behind the listeners; it is replaced when the stickiness changes.
	front atomic.Pointer[front]

	// wg counts the goroutines the supervisor started (instances, servers); it waits for
	// them before it returns.
	wg sync.WaitGroup

	mu sync.Mutex
	// desired is the last desired state; nil until the first Apply (or a restored state).
	desired *slipway.Desired
	// instances holds every instance, draining ones included.
	instances []*instance
	// pushed is the last table the proxy accepted; pushErr is why the last push failed.
	pushed  *proxy.Table
	pushErr string
	// listeners are the main (0) and preview (1) listeners.
	listeners [2]listener
	// retired is the proxy a stickiness change replaced; drains also wait on it.
	retired *proxy.Proxy
}

// front is what the listeners serve.
type front struct {
	px     *proxy.Proxy
	sticky *slipway.Stickiness
}

// listener is one of an app's traffic entries.
type listener struct {
	addr  string // as configured ("" when closed)
	bound string // the address it is bound to
	ln    net.Listener
	srv   *server
	err   string // why it could not bind (retried every retryEvery)
}

// server is a listener served by proxy.ServeWith.
type server struct {
	stop context.CancelFunc // ends ServeWith, which then stops without dropping a request
	done chan struct{}      // closed when ServeWith has returned
}

var listenerNames = [2]string{"main", "preview"}

func newApp(p *Platform, name string) *app {
	a := &app{p: p, name: name, log: p.log.With("app", name), wake: make(chan struct{}, 1)}
	a.front.Store(a.newFront(nil))
	return a
}

// newFront returns a proxy for the given stickiness. It uses the proxy's own transport (a
// Config.Transport would turn the listeners' fast path off), and gives a closing listener's
// requests DrainTimeout.
func (a *app) newFront(s *slipway.Stickiness) *front {
	px := proxy.New(proxy.Config{
		App: a.name, Stickiness: s, Metrics: a.p.cfg.Metrics, Log: a.log.With("component", "proxy"),
		ShutdownGrace: a.p.cfg.DrainTimeout,
	})
	return &front{px: px, sticky: s}
}

// poke nudges the supervisor without blocking.
func (a *app) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// setDesired records d and reports whether it differs from what was recorded.
func (a *app) setDesired(d *slipway.Desired) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.desired != nil && reflect.DeepEqual(*a.desired, *d) {
		return false
	}
	a.desired = d
	return true
}

// supervise converges the app whenever it is nudged (and every retryEvery) until ctx ends,
// then closes its listeners and stops (or, with KeepOnExit or while held, leaves) its
// instances.
func (a *app) supervise(ctx context.Context) error {
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		a.converge()
		a.p.checkSettled()
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case <-a.wake:
		case <-t.C:
		}
	}
	a.shutdown()
	return nil
}

// converge moves the app one step toward its desired state. It starts first, moves traffic
// next and stops last. An instance to stop is recorded as draining first (persist, then act:
// a server that starts after a crash does not give it traffic again), then leaves the proxy
// table, and is told to stop only once the table in effect no longer has it.
func (a *app) converge() {
	if a.plan() {
		if err := a.p.record(); err != nil {
			a.log.Error("state not saved; instances to stop keep serving until it is", "err", err)
		} else {
			a.mu.Lock()
			for _, in := range a.instances {
				if in.leaving {
					in.leaving, in.draining = false, true
				}
			}
			a.mu.Unlock()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, in := range a.instances {
		if !in.launched {
			in.launched = true
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				in.run()
			}()
		}
	}
	a.push()
	cur := a.front.Load().px.Current()
	held := a.p.isHeld() // while held, instances are stopped by whoever takes over
	for _, in := range a.instances {
		if !held && in.draining && !in.stopping && !inTable(cur, in.id) {
			in.stopping = true
			in.stop(false)
		}
	}
	a.reconcileListeners()
}

// plan decides which instances the app wants: it adds the missing ones (their goroutines
// start them) and marks the extra ones leaving. It reports whether any instance is leaving,
// so that the caller records that before the instance drains (it keeps serving meanwhile).
// Extra instances of a placed revision are chosen only once the app's readiness is known
// (warm), so that a server that just adopted instances does not pick a ready one as if it
// were not.
func (a *app) plan() (leaving bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.desired; d != nil {
		a.ensureFront(d.Traffic.Stickiness)
		warm := a.warm()
		for _, pl := range d.Revisions {
			live := a.live(pl.Revision.ID)
			for n := len(live); n < pl.Replicas; n++ {
				a.instances = append(a.instances, a.newInstance(pl.Revision))
			}
			if len(live) > pl.Replicas && warm {
				for _, in := range victims(live, len(live)-pl.Replicas) {
					in.leaving = true
				}
			}
		}
		for _, in := range a.instances {
			if !in.draining && !d.Places(in.rev) {
				in.leaving = true
			}
		}
	}
	return slices.ContainsFunc(a.instances, func(in *instance) bool { return in.leaving })
}

// live returns the instances of rev that are not draining or leaving.
func (a *app) live(rev string) []*instance {
	var out []*instance
	for _, in := range a.instances {
		if in.rev == rev && !in.draining && !in.leaving {
			out = append(out, in)
		}
	}
	return out
}

// victims picks n instances to stop when scaling down: unready ones first, then the highest
// ordinals.
func victims(live []*instance, n int) []*instance {
	c := slices.Clone(live)
	slices.SortFunc(c, func(x, y *instance) int {
		if x.ready != y.ready {
			if x.ready {
				return 1
			}
			return -1
		}
		return cmp.Compare(y.ordinal, x.ordinal)
	})
	return c[:n]
}

// newInstance returns an instance of rev with the lowest free ordinal (draining instances
// keep theirs: IDs name proxy backends and log files).
func (a *app) newInstance(rev slipway.Revision) *instance {
	used := map[int]bool{}
	for _, in := range a.instances {
		if in.rev == rev.ID {
			used[in.ordinal] = true
		}
	}
	n := 0
	for used[n] {
		n++
	}
	return a.instance(rev.ID, n, rev.Version, rev.Spec)
}

// adopt adds an instance whose process survived a restart of the server, and reports
// whether it did (not when the app already has an instance of that ID). Until its readiness
// is known it holds the app's listeners and the Platform's Settled back (warm); one recorded
// as draining never takes traffic again and is stopped.
func (a *app) adopt(rec instanceRecord) bool {
	_, n, _ := parseID(rec.ID)
	in := a.instance(rec.Revision, n, rec.Version, rec.Spec)
	in.pid, in.port, in.startTime, in.restarts, in.adopted = rec.PID, rec.Port, rec.StartTime, rec.Restarts, true
	in.awaited = rec.Ready && !rec.Draining
	in.draining = rec.Draining
	in.unknown = !rec.Draining
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.ContainsFunc(a.instances, func(x *instance) bool { return x.id == in.id }) {
		return false
	}
	a.instances = append(a.instances, in)
	return true
}

// ensureFront replaces the proxy when the stickiness changed, carrying the table over.
func (a *app) ensureFront(s *slipway.Stickiness) {
	f := a.front.Load()
	if reflect.DeepEqual(f.sticky, s) {
		return
	}
	nf := a.newFront(slipway.Traffic{Stickiness: s}.Clone().Stickiness)
	if a.pushed != nil {
		if err := nf.px.Update(*a.pushed); err != nil {
			a.log.Error("proxy table refused", "err", err)
		}
	}
	if a.retired != nil {
		a.retired.CloseIdleConnections() // replaced twice: nothing takes its idle connections again
	}
	a.retired = f.px
	a.front.Store(nf)
}

// table returns the proxy table the app wants now: the desired split and preview, and the
// ready instances that are not draining. Every desired revision is listed in Backends (even
// with no ready instance) so the proxy knows it.
func (a *app) table() proxy.Table {
	t := proxy.Table{Backends: map[string][]proxy.Backend{}, Versions: map[string]string{}}
	if d := a.desired; d != nil {
		t.Split = d.Split.Clone()
		t.Preview = d.Preview
		for _, pl := range d.Revisions {
			t.Backends[pl.Revision.ID] = []proxy.Backend{}
			if pl.Revision.Version != "" {
				t.Versions[pl.Revision.ID] = pl.Revision.Version
			}
		}
	}
	for _, in := range a.instances {
		if in.ready && !in.draining && in.port > 0 {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port))
			t.Backends[in.rev] = append(t.Backends[in.rev], proxy.Backend{ID: in.id, Revision: in.rev, Addr: addr})
		}
	}
	for _, bs := range t.Backends {
		slices.SortFunc(bs, func(x, y proxy.Backend) int { return strings.Compare(x.ID, y.ID) })
	}
	return t
}

// push gives the proxy the table the app wants when it differs from the last one pushed.
func (a *app) push() {
	t := a.table()
	if a.pushed != nil && reflect.DeepEqual(*a.pushed, t) {
		return
	}
	if err := a.front.Load().px.Update(t); err != nil {
		if msg := err.Error(); msg != a.pushErr {
			a.pushErr = msg
			a.log.Error("proxy table refused", "err", err)
		}
		return
	}
	if a.retired != nil {
		// The replaced proxy may still finish requests; it follows the tables so that it
		// can tell when a stopping instance has drained.
		_ = a.retired.Update(t)
	}
	a.pushed, a.pushErr = &t, ""
}

// inTable reports whether backend id is in t.
func inTable(t proxy.Table, id string) bool {
	for _, bs := range t.Backends {
		for _, b := range bs {
			if b.ID == id {
				return true
			}
		}
	}
	return false
}

// reconcileListeners opens, moves and closes the main and preview listeners. A listener that
// cannot bind is retried on the next convergence; its error shows in Observe. A listener is
// opened only once the app is warm (the readiness of its adopted instances is known); one
// handed over by a previous server (Config.Inherit) is used instead of binding anew, and
// until the app is warm the previous server keeps serving it.
func (a *app) reconcileListeners() {
	var want [2]string
	if d := a.desired; d != nil {
		want = [2]string{d.Traffic.Listen, d.Traffic.Preview}
	}
	for i := range a.listeners {
		l := &a.listeners[i]
		if l.srv != nil && l.addr != want[i] {
			a.log.Info("listener closed", "listener", listenerNames[i], "addr", l.bound)
			a.closeServer(l.srv)
			*l = listener{}
		}
		if want[i] == "" {
			*l = listener{}
			continue
		}
		if l.srv != nil {
			continue
		}
		key := ListenerKey(a.name, i == 1)
		var ln net.Listener
		var err error
		switch {
		case !a.warm():
			// Not before the readiness of every adopted instance is known: the first table
			// served must not pass the traffic of instances not probed yet to the others.
			continue
		case a.p.inherited(key, want[i]):
			ln = a.p.claim(key)
			a.log.Info("inherited listener taken over", "listener", listenerNames[i])
		default:
			ln, err = net.Listen("tcp", want[i])
		}
		if err != nil {
			if msg := err.Error(); msg != l.err {
				a.log.Error("listener not bound", "listener", listenerNames[i], "addr", want[i], "err", err)
				l.err = msg
			}
			l.addr = want[i]
			continue
		}
		*l = listener{addr: want[i], bound: ln.Addr().String(), ln: ln, srv: a.serve(ln, i == 1)}
		a.log.Info("listening", "listener", listenerNames[i], "addr", l.bound)
	}
}

// serve serves ln (the preview listener when preview is set) with the current proxy, by
// its fast path (HTTP/1.x; h2c and upgrades go to net/http on the same connection), until
// the returned server is stopped.
func (a *app) serve(ln net.Listener, preview bool) *server {
	ctx, stop := context.WithCancel(context.Background())
	srv := &server{stop: stop, done: make(chan struct{})}
	current := func() *proxy.Proxy { return a.front.Load().px }
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(srv.done)
		if err := proxy.ServeWith(ctx, ln, current, preview); err != nil {
			a.log.Error("listener failed", "err", err)
		}
	}()
	return srv
}

// closeServer stops srv in the background: in-flight requests get DrainTimeout.
func (a *app) closeServer(srv *server) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.shutdownServer(srv)
	}()
}

// shutdownServer stops srv and waits until it has stopped. No request already sent is
// dropped, even on a socket another process still serves (see proxy.Serve); in-flight
// requests get DrainTimeout (the proxy's ShutdownGrace).
func (a *app) shutdownServer(srv *server) {
	srv.stop()
	<-srv.done
}

// shutdown ends the app when Run ends: its listeners first (letting their requests finish),
// then its instances (left running with KeepOnExit or while held), and waits for every
// goroutine it started.
func (a *app) shutdown() {
	a.mu.Lock()
	var srvs []*server
	for i := range a.listeners {
		if s := a.listeners[i].srv; s != nil {
			srvs = append(srvs, s)
		}
		a.listeners[i] = listener{}
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(func() { a.shutdownServer(s) })
	}
	wg.Wait()

	keep := a.p.keepOnExit()
	if !keep {
		a.mu.Lock()
		for _, in := range a.instances {
			in.draining = true
		}
		a.push() // out of the table, so the proxy can tell they drained
		a.mu.Unlock()
		a.p.persist() // a server started after this one is killed mid-stop finishes the stops
	}
	a.mu.Lock()
	for _, in := range a.instances {
		if !in.stopping {
			in.stopping = true
			in.stop(keep)
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
	a.front.Load().px.CloseIdleConnections()
	a.mu.Lock()
	if a.retired != nil {
		a.retired.CloseIdleConnections()
	}
	a.mu.Unlock()
}

// remove deletes in from the app once its process is gone.
func (a *app) remove(in *instance) {
	a.mu.Lock()
	a.instances = slices.DeleteFunc(a.instances, func(x *instance) bool { return x == in })
	a.mu.Unlock()
	a.poke()
}

// drain waits until the proxies have no request in flight to backend id, at most
// DrainTimeout.
func (a *app) drain(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), a.p.cfg.DrainTimeout)
	defer cancel()
	a.mu.Lock()
	pxs := []*proxy.Proxy{a.front.Load().px}
	if a.retired != nil {
		pxs = append(pxs, a.retired)
	}
	a.mu.Unlock()
	for _, px := range pxs {
		if err := px.Drain(ctx, id); err != nil {
			a.log.Warn("instance stopped before its requests finished", "instance", id, "err", err)
		}
	}
}

// observe reports the app's live state.
func (a *app) observe() slipway.Observed {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Tables are pushed under a.mu: read under it, the split in effect and the instances'
	// readiness tell the same moment.
	cur := a.front.Load().px.Current()
	obs := slipway.Observed{App: a.name, Revisions: []slipway.RevisionStatus{}, Split: cur.Split.Clone(), Preview: cur.Preview}
	var lnErr []string
	for i, l := range a.listeners {
		if l.err != "" && l.srv == nil {
			lnErr = append(lnErr, listenerNames[i]+" listener "+l.addr+": "+l.err)
		}
	}
	ins := slices.Clone(a.instances)
	slices.SortFunc(ins, func(x, y *instance) int {
		if c := strings.Compare(x.rev, y.rev); c != 0 {
			return c
		}
		return cmp.Compare(x.ordinal, y.ordinal)
	})
	for _, in := range ins {
		if n := len(obs.Revisions); n == 0 || obs.Revisions[n-1].Revision != in.rev {
			obs.Revisions = append(obs.Revisions, slipway.RevisionStatus{Revision: in.rev})
		}
		st := in.status()
		if len(lnErr) > 0 {
			st.Message = strings.Join(append(nonEmpty(st.Message), lnErr...), "; ")
		}
		r := &obs.Revisions[len(obs.Revisions)-1]
		r.Instances = append(r.Instances, st)
	}
	return obs
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// ListenAddrs returns the addresses app's main and preview listeners are bound to ("" for a
// listener that is not open). With a configured port 0 this is how to learn the port.
func (p *Platform) ListenAddrs(app string) (main, preview string) {
	a := p.lookup(app)
	if a == nil {
		return "", ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listeners[0].bound, a.listeners[1].bound
}
