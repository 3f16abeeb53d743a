// Package sim is an in-memory slipway.Platform: instances are records, readiness is a matter
// of time, and traffic splits are confirmed the instant they are applied. It backs
// `slipway server --platform sim`, the engine's tests and the scale benchmarks.
//
// Nothing in sim runs in the background. Apply converges at once (instances are created and
// deleted, the split is set), and Observe derives each instance's state from the clock: an
// instance is Starting until ReadyDelay has passed since it started, then Running and Ready.
// With a fake clock (Config.Now) the platform is fully deterministic.
//
// Every change is recorded in an operation log (Ops), so tests can assert exactly what the
// engine asked for. Faults are injected with FailRevision, Heal and Kill.
//
// Start reading at Platform.Apply (this file), then the log (ops.go) and faults (fault.go).
package sim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
)

var _ slipway.Platform = (*Platform)(nil)

// Config configures a Platform. The zero value is valid: instances are ready at once and the
// clock is time.Now.
type Config struct {
	// ReadyDelay is how long an instance stays Starting before it becomes Running and Ready.
	ReadyDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxOps caps the operation log of each app: once it holds MaxOps entries the oldest are
	// dropped. 0 keeps every entry.
	MaxOps int
}

// Platform is the in-memory platform. It is safe for concurrent use: apps are found through a
// read-mostly index and each app has its own lock, so goroutines working on different apps
// do not wait for each other.
type Platform struct {
	now        func() time.Time
	readyDelay atomic.Int64 // time.Duration
	seq        atomic.Int64 // last Op.Seq handed out
	maxOps     int

	mu   sync.RWMutex
	apps map[string]*app
}

// app is the live state of one app. Every field is guarded by mu.
type app struct {
	mu      sync.Mutex
	name    string
	traffic slipway.Traffic
	revs    map[string]*revision
	split   slipway.Split
	preview string
	// failing holds the revisions whose instances never become ready, with FailRevision.
	failing map[string]bool
	ops     []Op
}

// revision holds the instances of one revision, sorted by ID.
type revision struct {
	id        string
	instances []*instance
}

// instance is one simulated copy of a revision. Its state is derived from the clock.
type instance struct {
	id      string
	ordinal int
	started time.Time
	// readyAt is when the instance becomes ready (unless its revision is failing).
	readyAt time.Time
}

// New returns a Platform with no apps. It starts nothing.
func New(cfg Config) *Platform {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	p := &Platform{now: now, maxOps: cfg.MaxOps, apps: map[string]*app{}}
	p.readyDelay.Store(int64(cfg.ReadyDelay))
	return p
}

// lookup returns the app named name, or nil.
func (p *Platform) lookup(name string) *app {
	p.mu.RLock()
	a := p.apps[name]
	p.mu.RUnlock()
	return a
}

// ensure returns the app named name, creating it when needed.
func (p *Platform) ensure(name string) *app {
	if a := p.lookup(name); a != nil {
		return a
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.apps[name]
	if a == nil {
		a = &app{name: name, revs: map[string]*revision{}, failing: map[string]bool{}}
		p.apps[name] = a
	}
	return a
}

// Apply converges app d.App to d at once. For each placement it starts instances up to
// Replicas, naming them "<revision>-<n>" with the lowest free ordinal n, then sets the split
// and the preview revision when they differ from the current ones, then stops instances:
// those above Replicas (unready ones first, then the highest ordinals), and every instance of
// a revision d does not place. Each change is one Op; applying the same Desired twice records
// nothing the second time.
//
// Apply returns EINVALID, and changes nothing, when d cannot be run: no app name, a placement
// without a revision ID or placed twice or with negative replicas, weights that do not sum to
// 100 (when any are given), a negative or repeated weight, or a weight, route or preview that
// names a revision d does not place.
func (p *Platform) Apply(ctx context.Context, d slipway.Desired) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: apply %s: %w", d.App, err)
	}
	if err := validate(d); err != nil {
		return fmt.Errorf("sim: apply %s: %w", d.App, err)
	}
	a := p.ensure(d.App)
	a.mu.Lock()
	defer a.mu.Unlock()
	// Read the clock under the lock so that an app's ops are in time order.
	now := p.now()
	delay := time.Duration(p.readyDelay.Load())

	// Start first, move traffic next, stop last: traffic never points at a stopped instance.
	for _, pl := range d.Revisions {
		id := pl.Revision.ID
		r := a.revs[id]
		if r == nil {
			if pl.Replicas == 0 {
				continue
			}
			r = &revision{id: id}
			a.revs[id] = r
		}
		for _, in := range r.start(pl.Replicas-len(r.instances), now, delay) {
			p.record(a, now, OpStart, id, in.id, "")
		}
	}
	if !a.split.Equal(d.Split) {
		a.split = d.Split.Clone()
		p.record(a, now, OpSplit, "", "", SplitString(a.split))
	}
	if a.preview != d.Preview {
		a.preview = d.Preview
		p.record(a, now, OpPreview, d.Preview, "", "")
	}
	for _, pl := range d.Revisions {
		r := a.revs[pl.Revision.ID]
		if r == nil || len(r.instances) <= pl.Replicas {
			continue
		}
		victims := r.victims(len(r.instances)-pl.Replicas, now, a.failing[r.id])
		r.remove(victims...)
		for _, in := range victims {
			p.record(a, now, OpStop, r.id, in.id, "")
		}
		if len(r.instances) == 0 {
			delete(a.revs, r.id)
		}
	}
	var retired []string
	for id := range a.revs {
		if !d.Places(id) {
			retired = append(retired, id)
		}
	}
	slices.Sort(retired)
	for _, id := range retired {
		for _, in := range a.revs[id].byOrdinalDesc() {
			p.record(a, now, OpStop, id, in.id, "")
		}
		delete(a.revs, id)
	}
	a.traffic = d.Traffic.Clone()
	return nil
}

// Observe reports the live state of app: per revision its instances sorted by ID, the split
// (confirmed as soon as it is applied) and the preview revision. An unknown app is reported
// with no revisions.
func (p *Platform) Observe(ctx context.Context, name string) (slipway.Observed, error) {
	if err := ctx.Err(); err != nil {
		return slipway.Observed{}, fmt.Errorf("sim: observe %s: %w", name, err)
	}
	obs := slipway.Observed{App: name, Revisions: []slipway.RevisionStatus{}}
	a := p.lookup(name)
	if a == nil {
		return obs, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.now()
	obs.Revisions = make([]slipway.RevisionStatus, 0, len(a.revs))
	obs.Split = a.split.Clone()
	obs.Preview = a.preview
	for _, id := range sortedKeys(a.revs) {
		r := a.revs[id]
		failing := a.failing[id]
		st := slipway.RevisionStatus{Revision: id, Instances: make([]slipway.Instance, len(r.instances))}
		since := make([]time.Time, len(r.instances)) // one allocation for every ReadySince
		for i, in := range r.instances {
			st.Instances[i] = in.status(now, failing, &since[i])
		}
		obs.Revisions = append(obs.Revisions, st)
	}
	return obs, nil
}

// Remove stops everything of app, traffic first, then instances, and records one "remove" op.
// Removing an app that has nothing is not an error and records nothing. Faults injected with
// FailRevision stay in force.
func (p *Platform) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: remove %s: %w", name, err)
	}
	a := p.lookup(name)
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.now()
	n := 0
	for _, r := range a.revs {
		n += len(r.instances)
	}
	if n == 0 && len(a.split.Weights) == 0 && len(a.split.Routes) == 0 && a.preview == "" {
		return nil
	}
	a.split = slipway.Split{}
	a.preview = ""
	a.traffic = slipway.Traffic{}
	clear(a.revs)
	p.record(a, now, OpRemove, "", "", "instances="+strconv.Itoa(n))
	return nil
}

// Traffic returns the traffic config last applied for app (zero for an unknown or removed app).
func (p *Platform) Traffic(name string) slipway.Traffic {
	a := p.lookup(name)
	if a == nil {
		return slipway.Traffic{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.traffic.Clone()
}

// SetReadyDelay changes how long instances started from now on stay Starting. Instances that
// already exist keep the delay they started with.
func (p *Platform) SetReadyDelay(d time.Duration) {
	p.readyDelay.Store(int64(d))
}

// start adds k instances (none when k <= 0), each with the lowest ordinal still free, and
// returns them in the order they took their ordinals. It takes time linear in the instances
// there are and k: a revision scaled to thousands of instances is started in one pass.
func (r *revision) start(k int, now time.Time, delay time.Duration) []*instance {
	if k <= 0 {
		return nil
	}
	used := make(map[int]bool, len(r.instances))
	for _, in := range r.instances {
		used[in.ordinal] = true
	}
	started := make([]*instance, 0, k)
	for n := 0; len(started) < k; n++ {
		if used[n] {
			continue
		}
		started = append(started, &instance{id: r.id + "-" + strconv.Itoa(n), ordinal: n, started: now, readyAt: now.Add(delay)})
	}
	r.instances = append(r.instances, started...)
	slices.SortFunc(r.instances, func(x, y *instance) int { return strings.Compare(x.id, y.id) })
	return started
}

// byOrdinalDesc returns r's instances, highest ordinal first.
func (r *revision) byOrdinalDesc() []*instance {
	c := slices.Clone(r.instances)
	slices.SortFunc(c, func(x, y *instance) int { return cmp.Compare(y.ordinal, x.ordinal) })
	return c
}

// remove deletes gone from r, in one pass over its instances.
func (r *revision) remove(gone ...*instance) {
	if len(gone) == 1 {
		r.instances = slices.DeleteFunc(r.instances, func(x *instance) bool { return x == gone[0] })
		return
	}
	set := make(map[*instance]bool, len(gone))
	for _, in := range gone {
		set[in] = true
	}
	r.instances = slices.DeleteFunc(r.instances, func(x *instance) bool { return set[x] })
}

// victims picks the n instances to stop when scaling down: unready ones first, then the
// highest ordinals.
func (r *revision) victims(n int, now time.Time, failing bool) []*instance {
	c := slices.Clone(r.instances)
	slices.SortFunc(c, func(x, y *instance) int {
		rx, ry := x.ready(now, failing), y.ready(now, failing)
		if rx != ry {
			if rx {
				return 1
			}
			return -1
		}
		return cmp.Compare(y.ordinal, x.ordinal)
	})
	return c[:n]
}

// ready reports whether in passed readiness at now.
func (in *instance) ready(now time.Time, failing bool) bool {
	return !failing && !now.Before(in.readyAt)
}

// status derives the instance's reported state at now. since is where ReadySince points.
func (in *instance) status(now time.Time, failing bool, since *time.Time) slipway.Instance {
	s := slipway.Instance{ID: in.id, State: slipway.InstanceStarting}
	switch {
	case now.Before(in.readyAt):
		// Still starting, failing or not.
	case failing:
		s.State = slipway.InstanceFailed
		s.Message = FailMessage
	default:
		*since = in.readyAt
		s.State, s.Ready, s.ReadySince = slipway.InstanceRunning, true, since
	}
	return s
}

// validate checks d before anything changes.
func validate(d slipway.Desired) error {
	if problems := d.Problems(); len(problems) > 0 {
		return &slipway.Error{Code: slipway.EINVALID, Message: "desired state is invalid", Details: problems}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
