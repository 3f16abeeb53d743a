// Package fleet serves a server's environments besides its default one (kind: Environment).
// It keeps their list in the default store (slipway.EnvironmentStore), runs each as a
// Runtime of its own — a store, a platform, an engine and an API, with its own locks, so that
// a slow platform in one never holds up another — and applies a set whose documents span
// environments (apply.go).
//
// Start reading at Open, then Apply. cmd/slipway builds each Runtime (its Start function);
// the server routes /env/NAME/ to Lookup(NAME).
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/handover"
)

// Runtime is one environment served: what Start returns.
type Runtime interface {
	// Deployer applies the environment's apps (its engine); State reads its store.
	Deployer() slipway.Deployer
	State() slipway.StateReader
	// Handler serves the environment's API and OFREP, paths without the /env/NAME prefix.
	Handler() http.Handler
	// Handover holds the environment for a restart in place (its engine stops, its platform
	// holds); Resume undoes it; Settled is closed once its platform's adopted instances'
	// readiness is known.
	handover.Platform
	// Close stops the environment: its engine, then its platform.
	Close() error
}

// Pipelines plans and applies Pipeline documents: delivery.Manager.
type Pipelines interface {
	PlanPipelines(ctx context.Context, ps []slipway.Pipeline) ([]slipway.PlanChange, error)
	ApplyPipelines(ctx context.Context, ps []slipway.Pipeline, opts slipway.ApplyOptions) ([]slipway.PlanChange, error)
}

// Notifications plans and applies Notification documents: notify.Notifier.
type Notifications interface {
	PlanNotifications(ctx context.Context, ns []slipway.Notification) ([]slipway.PlanChange, error)
	ApplyNotifications(ctx context.Context, ns []slipway.Notification, opts slipway.ApplyOptions) ([]slipway.PlanChange, error)
}

// StartFunc starts the runtime of env. held says this server was started by a restart in
// place: the runtime's platform must change nothing, and its engine not run, until Resume.
type StartFunc func(ctx context.Context, env slipway.Environment, held bool) (Runtime, error)

// Config is what a Fleet needs.
type Config struct {
	// Store keeps the environments' list (the default environment's store).
	Store slipway.EnvironmentStore
	// Start starts an environment's runtime.
	Start StartFunc
	// Default returns the default environment's deployer (its engine now).
	Default func() slipway.Deployer
	// DefaultState reads the default environment's store (its apps' traffic addresses are
	// checked against the other environments'; nil: they are not), and gives pipelines the
	// default environment's apps.
	DefaultState slipway.StateReader
	// Pipelines plans and applies Pipeline documents and Notifications Notification
	// documents (they belong to the server); without them those documents are refused.
	Pipelines     Pipelines
	Notifications Notifications
	// DefaultTarget is the kind of target of the default environment (the server's
	// platform).
	DefaultTarget string
	// Targets are the kinds of targets this server can run environments on.
	Targets []string
	// MaxReplicas is the most replicas one app may ask for (slipway.DefaultMaxReplicas when
	// zero).
	MaxReplicas int
	Log         *slog.Logger
	Now         func() time.Time
}

// Fleet is the environments a server serves besides its default one.
type Fleet struct {
	cfg Config
	// ctx is the context runtimes run under (Open's).
	ctx context.Context

	// change serialises changes of environments and the plans they are made from; it is
	// held while a new environment starts (seconds, for a data plane), which mu never is,
	// so that no request to another environment waits on a start.
	change sync.Mutex
	// addresses is held by an apply of apps with traffic addresses on the local target from
	// its check of them (addresses.go) to its end, so that two environments' applies cannot
	// take one address at once. It is taken before change.
	addresses sync.Mutex
	// mu guards envs, held and closed, held only to read or swap them; entries are never
	// changed in place.
	mu     sync.Mutex
	envs   map[string]*entry
	held   bool
	closed bool
}

// entry is an environment of the fleet: its runtime, or why it could not start.
type entry struct {
	env slipway.Environment
	rt  Runtime
	err error // set when rt is nil
}

// unavailable is the refusal of anything about e, which could not start.
func (e *entry) unavailable() error {
	return slipway.Errorf(slipway.EUNAVAILABLE, "environment %s could not start: %s; fix it and restart the server (its log says more)",
		e.env.Name, startError(e.err))
}

// Open starts the runtime of each stored environment (held: see StartFunc) and returns the
// fleet; the runtimes run until ctx ends or Close. An environment whose runtime cannot start
// is logged and kept as unavailable (Lookup, Plan and Apply say why) so that one broken
// environment keeps neither the server nor the others from serving; it starts again with
// the next Open. Held (a restart in place), such an environment fails Open instead, after
// closing those that started, so that the server handing over carries on with all of them.
func Open(ctx context.Context, cfg Config, held bool) (*Fleet, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxReplicas <= 0 {
		cfg.MaxReplicas = slipway.DefaultMaxReplicas
	}
	f := &Fleet{cfg: cfg, ctx: ctx, envs: map[string]*entry{}, held: held}
	envs, err := cfg.Store.Environments(ctx)
	if err != nil {
		return nil, err
	}
	for _, env := range envs {
		rt, err := cfg.Start(ctx, env, held)
		if err != nil && held {
			_ = f.Close()
			return nil, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		if err != nil {
			f.envs[env.Name] = &entry{env: env, err: err}
			cfg.Log.Error("environment could not start; the others are served", "environment", env.Name, "target", env.Target.Kind, "err", err)
			continue
		}
		f.envs[env.Name] = &entry{env: env, rt: rt}
		cfg.Log.Info("environment started", "environment", env.Name, "target", env.Target.Kind)
	}
	return f, nil
}

// Lookup returns the handler of environment name (DefaultEnvironment is not the fleet's):
// ENOTFOUND when the fleet has no such environment, EUNAVAILABLE when it could not start.
func (f *Fleet) Lookup(name string) (http.Handler, error) {
	f.mu.Lock()
	e, ok := f.envs[name]
	f.mu.Unlock()
	switch {
	case !ok:
		return nil, slipway.Errorf(slipway.ENOTFOUND, "environment %s does not exist on this server (slipway get environments lists those it serves)", name)
	case e.rt == nil:
		return nil, e.unavailable()
	}
	return e.rt.Handler(), nil
}

// Environments lists the default environment and the fleet's, by name (default first).
func (f *Fleet) Environments(context.Context) ([]slipway.Environment, error) {
	envs := f.snapshot()
	out := []slipway.Environment{{Name: slipway.DefaultEnvironment, Target: slipway.Target{Kind: f.cfg.DefaultTarget}}}
	for _, name := range names(envs) {
		out = append(out, envs[name].env)
	}
	return out, nil
}

// Place returns environment name's environment, deployer and store (the default
// environment's too); false when the server does not serve it.
func (f *Fleet) Place(name string) (slipway.Environment, slipway.Deployer, slipway.StateReader, bool) {
	if name == slipway.DefaultEnvironment {
		return slipway.Environment{Name: name, Target: slipway.Target{Kind: f.cfg.DefaultTarget}}, f.cfg.Default(), f.cfg.DefaultState, f.cfg.DefaultState != nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.envs[name]
	if !ok || e.rt == nil {
		return slipway.Environment{}, nil, nil, false
	}
	return e.env, e.rt.Deployer(), e.rt.State(), true
}

// Names returns the fleet's environments' names, sorted.
func (f *Fleet) Names() []string { return names(f.snapshot()) }

// snapshot returns a copy of the fleet's environments.
func (f *Fleet) snapshot() map[string]*entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.envs)
}

func names(envs map[string]*entry) []string {
	return slices.Sorted(maps.Keys(envs))
}

// Handover holds every environment for a restart in place, and refuses new environments
// until Resume; when one cannot hold, those held are resumed and the error returned. An
// environment being created is waited for, and held with the others: the next server opens
// it from the store, so it must not go on unheld in this one.
func (f *Fleet) Handover() error {
	f.change.Lock()
	f.mu.Lock()
	f.held = true
	f.mu.Unlock()
	f.change.Unlock()
	if err := handover.Join(f.platforms).Handover(); err != nil {
		f.mu.Lock()
		f.held = false
		f.mu.Unlock()
		return err
	}
	return nil
}

// Resume ends a hold: every environment runs again, and environments may be created.
func (f *Fleet) Resume() {
	handover.Join(f.platforms).Resume()
	f.mu.Lock()
	f.held = false
	f.mu.Unlock()
}

// Settled is closed once every environment's platform is.
func (f *Fleet) Settled() <-chan struct{} { return handover.Join(f.platforms).Settled() }

func (f *Fleet) platforms() []handover.Platform {
	envs := f.snapshot()
	ps := make([]handover.Platform, 0, len(envs))
	for _, n := range names(envs) {
		if rt := envs[n].rt; rt != nil {
			ps = append(ps, rt)
		}
	}
	return ps
}

// Close stops every environment, at once, and returns their errors. An environment being
// created is waited for (a start ends early when the server's context has) and stopped
// with the others, so that nothing it started outlives the server; an apply after Close
// creates none.
func (f *Fleet) Close() error {
	f.change.Lock()
	defer f.change.Unlock()
	f.mu.Lock()
	var rts []Runtime
	for _, e := range f.envs {
		if e.rt != nil {
			rts = append(rts, e.rt)
		}
	}
	f.envs, f.closed = map[string]*entry{}, true
	f.mu.Unlock()
	errs := make([]error, len(rts))
	var wg sync.WaitGroup
	for i, rt := range rts {
		wg.Go(func() { errs[i] = rt.Close() })
	}
	wg.Wait()
	return errors.Join(slices.DeleteFunc(errs, func(e error) bool { return e == nil })...)
}
