package sim

import (
	"fmt"

	"slipway.dev/slipway"
)

// FailMessage is the Message of an instance whose revision was failed with FailRevision.
const FailMessage = "failing: injected"

// FailRevision makes every instance of revision rev of app, present and future, fail its
// readiness: once its ready delay has passed it is reported Failed, not ready, with Message
// FailMessage, and an instance that was ready stops being ready. It lasts until Heal and
// survives Remove. The app need not exist yet. It records no op: it changes how instances
// behave, not what runs.
func (p *Platform) FailRevision(app, rev string) {
	a := p.ensure(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing[rev] = true
}

// Heal undoes FailRevision: instances of rev whose ready delay has passed become ready at the
// moment of healing (ReadySince is now), the others when their delay passes.
func (p *Platform) Heal(app, rev string) {
	a := p.lookup(app)
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.now()
	if !a.failing[rev] {
		return
	}
	delete(a.failing, rev)
	if r := a.revs[rev]; r != nil {
		for _, in := range r.instances {
			if in.readyAt.Before(now) {
				in.readyAt = now
			}
		}
	}
}

// Kill removes instance id of app as if it had crashed, and records an OpKill. The split is
// left as it is, so the engine sees the drift (a revision short of its replicas) and repairs
// it with Apply, which starts a replacement with the lowest free ordinal, often the same ID.
// It returns ENOTFOUND when app has no such instance.
func (p *Platform) Kill(app, id string) error {
	a := p.lookup(app)
	if a == nil {
		return fmt.Errorf("sim: kill %s: %w", id, slipway.Errorf(slipway.ENOTFOUND, "app %s has no instance %s", app, id))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.now()
	for _, r := range a.revs {
		for _, in := range r.instances {
			if in.id != id {
				continue
			}
			r.remove(in)
			if len(r.instances) == 0 {
				delete(a.revs, r.id)
			}
			p.record(a, now, OpKill, r.id, id, "")
			return nil
		}
	}
	return fmt.Errorf("sim: kill %s: %w", id, slipway.Errorf(slipway.ENOTFOUND, "app %s has no instance %s", app, id))
}
