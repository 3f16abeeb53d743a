package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/handover"
)

var _ handover.Platform = (*Platform)(nil)

// Handing over to another server process.
//
// A restart of the server in place runs two server processes for a moment: the old one calls
// Handover and the new one starts with Config.StartHeld, on the same edge (the data plane
// process, which serves the apps' listeners throughout: no listener changes hands). While a
// Platform is held it starts, restarts and stops no process and writes no state file, and
// when its Run ends it leaves every instance running and the edge serving. After Handover
// the old one no longer sets traffic entries; the new one sets them once the instances that
// took traffic are ready again. So two processes never both manage an instance: the old one
// lets go at Handover, the new one takes over at Resume, and the state file written at
// Handover carries the instances from one to the other.

// warmTimeout bounds how long the tables in effect are kept while the adopted instances
// that were taking traffic pass readiness again (or the readiness of adopted instances is
// learnt) before the app's own are set anyway.
const warmTimeout = 10 * time.Second

var (
	// errHeld is why an instance was not started: the Platform is held.
	errHeld = errors.New("platform held for a handover")
	// errNoDataDir is why a Platform without a data directory cannot hand over.
	errNoDataDir = slipway.Errorf(slipway.EINVALID, "no data directory to write the state for the next server in")
	// errOwnEdge is why a Platform serving traffic in its own process cannot hand over.
	errOwnEdge = slipway.Errorf(slipway.EINVALID, "the traffic is served in this process (no data plane process to keep it)")
)

// holdState says whether the Platform is held. Its mutex is only ever held briefly, never
// while another lock is taken.
type holdState struct {
	mu   sync.Mutex
	held bool
	thaw chan struct{} // closed when the hold ends
	// waiting counts the instances waiting in awaitThaw: what the hold holds back. Only
	// tests read it (export_test.go), to wait for a hold to take effect instead of sleeping.
	waiting int
}

// Handover prepares a restart in place: it holds p (no process is started, restarted or
// stopped any more, and the state file is not written), stops setting traffic entries, and
// writes the state file for the next server (every instance that is not being stopped, with
// whether it takes traffic). The edge keeps serving; when Run's context ends it leaves
// every instance running for the next server to adopt. If the next server does not take
// over, Resume undoes the hold.
//
// Handover returns EINVALID when p has no DataDir (there would be no state to hand over) or
// its edge is its own (it would close with p), and an error when Run is not running.
func (p *Platform) Handover() error {
	if p.cfg.DataDir == "" {
		return fmt.Errorf("local: handover: %w", errNoDataDir)
	}
	if p.ownEdge != nil {
		return fmt.Errorf("local: handover: %w", errOwnEdge)
	}
	p.mu.Lock()
	running := p.phase == phaseRunning
	p.mu.Unlock()
	if !running {
		return errors.New("local: handover: the platform is not running")
	}
	p.hold()
	p.handedOver.Store(true)
	if err := p.save(true); err != nil {
		p.Resume()
		return fmt.Errorf("local: handover: %w", err)
	}
	p.log.Info("held for a handover")
	return nil
}

// Resume ends a hold (Handover, or Config.StartHeld): supervisors start, restart and stop
// processes again, and the state file is written again. The strays are stopped first: the
// processes marked as instances of the data directory that no instance accounts for, now
// that no other server manages any (strays.go). Resuming a Platform that is not held does
// nothing.
func (p *Platform) Resume() {
	h := &p.holdState
	h.mu.Lock()
	if !h.held {
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	p.sweep()
	h.mu.Lock()
	if !h.held {
		h.mu.Unlock()
		return
	}
	h.held = false
	close(h.thaw)
	h.mu.Unlock()
	handedOver := p.handedOver.Swap(false)
	p.log.Info("hold ended")
	p.persist()
	apps := p.appList()
	for _, a := range apps {
		if handedOver {
			// The next server may have set tables meanwhile (a restart in place that
			// failed late): what this Platform last set is no longer known to be in effect.
			a.mu.Lock()
			a.sent = nil
			a.mu.Unlock()
		}
		a.poke()
	}
}

// sweep stops, in the background, the strays of a running Platform: marked processes that
// are none of its instances (nor theirs, nor its own children). It runs while the Platform
// is held, so that no process is being started meanwhile.
func (p *Platform) sweep() {
	p.mu.Lock()
	running, g := p.phase == phaseRunning, p.group
	apps := slices.Collect(maps.Values(p.apps))
	p.mu.Unlock()
	if !running || p.mark == "" {
		return
	}
	known, ids := map[int]bool{}, map[string]bool{}
	for _, a := range apps {
		a.mu.Lock()
		for _, in := range a.instances {
			if in.pid > 0 {
				known[in.pid] = true
			}
			ids[a.name+"/"+in.id] = true
		}
		a.mu.Unlock()
	}
	if ms := strays(scanMarked(p.mark), known, ids); len(ms) > 0 {
		g.Go(func() error { p.stopStrays(ms, p.cfg.StopGrace); return nil })
	}
}

// hold makes p held. It waits for a process start under way, so that once it returns no
// process is started until Resume.
func (p *Platform) hold() {
	p.starting.Lock()
	defer p.starting.Unlock()
	h := &p.holdState
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		h.held, h.thaw = true, make(chan struct{})
	}
}

// isHeld reports whether p is held.
func (p *Platform) isHeld() bool {
	h := &p.holdState
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// awaitThaw waits while p is held and reports whether the hold ended (false: ctx ended).
func (p *Platform) awaitThaw(ctx context.Context) bool {
	for {
		h := &p.holdState
		h.mu.Lock()
		held, thaw := h.held, h.thaw
		if held {
			h.waiting++
		}
		h.mu.Unlock()
		if !held {
			return true
		}
		cancelled := false
		select {
		case <-ctx.Done():
			cancelled = true
		case <-thaw:
		}
		h.mu.Lock()
		h.waiting--
		h.mu.Unlock()
		if cancelled {
			return false
		}
	}
}

// warm reports whether the app's listeners may be served and its extra instances chosen:
// the readiness of every adopted instance is known (see Settled), every one that took
// traffic at a handover is ready again (or has ended), or warmTimeout passed since Run
// started. The caller holds a.mu.
func (a *app) warm() bool {
	if time.Now().After(a.p.warmBy) {
		return true
	}
	for _, in := range a.instances {
		if (in.awaited && in.adopted && !in.ready) || (in.unknown && in.adopted) {
			return false
		}
	}
	return true
}
