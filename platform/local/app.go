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
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/proxy"
)

// app is the live state of one app, converged by its supervisor goroutine (supervise).
type app struct {
	p    *Platform
	name string
	log  *slog.Logger
	wake chan struct{} // one slot: a nudge is never lost and never blocks

	// wg counts the goroutines the supervisor started (instances, servers); it waits for
	// them before it returns.
	wg sync.WaitGroup

	mu sync.Mutex
	// desired is the last desired state; nil until the first Apply (or a restored state).
	desired *slipway.Desired
	// instances holds every instance, draining ones included.
	instances []*instance
	// sent is the last traffic entry the edge accepted (nil before the first); status is
	// what the edge has in effect (as it said at Run's start, or answered the last Set);
	// edgeErr is why the last Set failed.
	sent    *dataplane.Spec
	status  dataplane.Status
	edgeErr string
	// adopted holds the IDs of the instances when adoption started (adopt): a record is
	// adopted once.
	adopted map[string]bool

	// passes counts the supervisor's finished passes. Only tests read it (export_test.go),
	// to wait for a pass that saw an Apply instead of sleeping.
	passes atomic.Uint64
}

func newApp(p *Platform, name string) *app {
	return &app{p: p, name: name, log: p.log.With("app", name), wake: make(chan struct{}, 1)}
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
		a.passes.Add(1)
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
	held := a.p.isHeld() // while held, instances are stopped by whoever takes over
	var inEffect map[string]bool
	for _, in := range a.instances {
		if held || !in.draining || in.stopping {
			continue
		}
		if inEffect == nil {
			inEffect = tableIDs(a.status.Table)
		}
		if !inEffect[in.id] {
			in.stopping = true
			in.stop(false)
		}
	}
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
		warm := a.warm()
		live := a.liveByRevision()
		for _, pl := range d.Revisions {
			rl := live[pl.Revision.ID]
			if n := pl.Replicas - len(rl); n > 0 {
				a.instances = append(a.instances, a.newInstances(pl.Revision, n)...)
			}
			if len(rl) > pl.Replicas && warm {
				for _, in := range victims(rl, len(rl)-pl.Replicas) {
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

// liveByRevision returns the instances that are not draining or leaving, by revision.
func (a *app) liveByRevision() map[string][]*instance {
	out := map[string][]*instance{}
	for _, in := range a.instances {
		if !in.draining && !in.leaving {
			out[in.rev] = append(out[in.rev], in)
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

// newInstances returns n instances of rev with the lowest free ordinals (draining
// instances keep theirs: IDs name proxy backends and log files).
func (a *app) newInstances(rev slipway.Revision, n int) []*instance {
	used := map[int]bool{}
	for _, in := range a.instances {
		if in.rev == rev.ID {
			used[in.ordinal] = true
		}
	}
	out := make([]*instance, 0, n)
	for ord := 0; len(out) < n; ord++ {
		if !used[ord] {
			out = append(out, a.instance(rev.ID, ord, rev.Version, rev.Spec))
		}
	}
	return out
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
	if a.adopted == nil {
		a.adopted = map[string]bool{}
		for _, x := range a.instances {
			a.adopted[x.id] = true
		}
	}
	if a.adopted[in.id] {
		return false
	}
	a.adopted[in.id] = true
	a.instances = append(a.instances, in)
	return true
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

// push gives the edge the traffic entry the app wants (its table, stickiness and listeners)
// when it differs from the last one accepted, or a listener could not be bound. Not before
// the app is warm (the readiness of every adopted instance is known): until then the edge
// keeps the table it has, which after a restart of the server is the last one the previous
// server gave it. Not after a Handover: the next server pushes. Not while the edge does not
// answer (Platform.edgeDown): the call would hold a.mu until it timed out. The caller holds
// a.mu.
func (a *app) push() {
	if a.p.handedOver.Load() || !a.warm() || a.p.edgeDown.Load() {
		return
	}
	spec := dataplane.Spec{Table: a.table()}
	if d := a.desired; d != nil {
		spec.Stickiness = d.Traffic.Clone().Stickiness
		spec.Listen, spec.Preview = d.Traffic.Listen, d.Traffic.Preview
	}
	if a.sent != nil && reflect.DeepEqual(*a.sent, spec) && !a.status.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	st, err := a.p.edge.Set(ctx, a.name, spec)
	cancel()
	if err != nil {
		if slipway.ErrorCode(err) == slipway.EUNAVAILABLE {
			a.p.edgeDown.Store(true) // until watchEdge hears from it again
		}
		if msg := err.Error(); msg != a.edgeErr {
			a.edgeErr = msg
			a.log.Error("traffic entry not set", "err", err)
		}
		return
	}
	for i, l := range [2]dataplane.Listener{st.Listen, st.Preview} {
		old := [2]dataplane.Listener{a.status.Listen, a.status.Preview}[i]
		switch {
		case l.Error != "" && l.Error != old.Error:
			a.log.Error("listener not bound", "listener", listenerNames[i], "addr", l.Addr, "err", l.Error)
		case l.Bound != "" && l.Bound != old.Bound:
			a.log.Info("listening", "listener", listenerNames[i], "addr", l.Bound)
		}
	}
	a.sent, a.status, a.edgeErr = &spec, st, ""
}

// tableIDs returns the IDs of the backends in t.
func tableIDs(t proxy.Table) map[string]bool {
	ids := map[string]bool{}
	for _, bs := range t.Backends {
		for _, b := range bs {
			ids[b.ID] = true
		}
	}
	return ids
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

// shutdown ends the app when Run ends: its traffic entry first (the listeners close,
// letting their requests finish), then its instances. With KeepOnExit or while held the
// instances are left running, and so is the traffic entry on an edge the Platform does not
// own (the data plane process): the next server takes both over.
func (a *app) shutdown() {
	keep := a.p.keepOnExit()
	if !keep || a.p.ownEdge != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.p.cfg.DrainTimeout+pushTimeout)
		if err := a.p.edge.Remove(ctx, a.name); err != nil {
			a.log.Error("traffic entry not removed", "err", err)
		}
		cancel()
		a.mu.Lock()
		a.status, a.sent = dataplane.Status{}, nil
		a.mu.Unlock()
	}
	if !keep {
		a.mu.Lock()
		for _, in := range a.instances {
			in.draining = true
		}
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
}

var listenerNames = [2]string{"main", "preview"}

// remove deletes in from the app once its process is gone.
func (a *app) remove(in *instance) {
	a.mu.Lock()
	a.instances = slices.DeleteFunc(a.instances, func(x *instance) bool { return x == in })
	a.mu.Unlock()
	a.poke()
}

// drain waits until the edge has no request in flight to backend id, at most
// DrainTimeout.
func (a *app) drain(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), a.p.cfg.DrainTimeout+pushTimeout)
	defer cancel()
	if err := a.p.edge.Drain(ctx, a.name, id); err != nil {
		a.log.Warn("instance stopped before its requests finished", "instance", id, "err", err)
	}
}

// observe reports the app's live state.
func (a *app) observe() slipway.Observed {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Tables are pushed under a.mu: read under it, the split in effect and the instances'
	// readiness tell the same moment.
	cur := a.status.Table
	obs := slipway.Observed{App: a.name, Revisions: []slipway.RevisionStatus{}, Split: cur.Split.Clone(), Preview: cur.Preview}
	var lnErr []string
	for i, l := range [2]dataplane.Listener{a.status.Listen, a.status.Preview} {
		if l.Error != "" {
			lnErr = append(lnErr, listenerNames[i]+" listener "+l.Addr+": "+l.Error)
		}
	}
	if a.edgeErr != "" {
		lnErr = append(lnErr, "traffic: "+a.edgeErr)
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
	return a.status.Listen.Bound, a.status.Preview.Bound
}
