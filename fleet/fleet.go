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
	"net/http"
	"slices"
	"sort"
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

// StartFunc starts the runtime of env. held says this server was started by a restart in
// place: the runtime's platform must change nothing, and its engine not run, until Resume.
type StartFunc func(ctx context.Context, env slipway.Environment, held bool) (Runtime, error)

// Config is what a Fleet needs.
type Config struct {
	// Store keeps the environments' list (the default environment's store).
	Store slipway.EnvironmentStore
	// Start starts an environment's runtime.
	Start StartFunc
	// Default returns the default environment's deployer (its engine now); DefaultState
	// reads its store.
	Default      func() slipway.Deployer
	DefaultState slipway.StateReader
	// Pipelines plans and applies Pipeline documents (they belong to the server); without
	// it they are refused.
	Pipelines Pipelines
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

	// mu guards envs and held, and serialises changes of environments; an apply to an
	// environment's apps holds it only while it creates or updates environments.
	mu   sync.Mutex
	envs map[string]*entry
	held bool
}

type entry struct {
	env slipway.Environment
	rt  Runtime
}

// Open starts the runtime of each stored environment (held: see StartFunc) and returns the
// fleet; the runtimes run until ctx ends or Close. A runtime that cannot start fails Open,
// after closing those that started.
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
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		f.envs[env.Name] = &entry{env: env, rt: rt}
		cfg.Log.Info("environment started", "environment", env.Name, "target", env.Target.Kind)
	}
	return f, nil
}

// Lookup returns the handler of environment name (DefaultEnvironment is not the fleet's).
func (f *Fleet) Lookup(name string) (http.Handler, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.envs[name]
	if !ok {
		return nil, false
	}
	return e.rt.Handler(), true
}

// Environments lists the default environment and the fleet's, by name (default first).
func (f *Fleet) Environments(context.Context) ([]slipway.Environment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []slipway.Environment{{Name: slipway.DefaultEnvironment, Target: slipway.Target{Kind: f.cfg.DefaultTarget}}}
	for _, name := range f.namesLocked() {
		out = append(out, f.envs[name].env)
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
	if !ok {
		return slipway.Environment{}, nil, nil, false
	}
	return e.env, e.rt.Deployer(), e.rt.State(), true
}

// Names returns the fleet's environments' names, sorted.
func (f *Fleet) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.namesLocked()
}

func (f *Fleet) namesLocked() []string {
	names := make([]string, 0, len(f.envs))
	for n := range f.envs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Handover holds every environment for a restart in place, and refuses new environments
// until Resume; when one cannot hold, those held are resumed and the error returned.
func (f *Fleet) Handover() error {
	f.mu.Lock()
	f.held = true
	f.mu.Unlock()
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
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := make([]handover.Platform, 0, len(f.envs))
	for _, n := range f.namesLocked() {
		ps = append(ps, f.envs[n].rt)
	}
	return ps
}

// Close stops every environment, at once, and returns their errors.
func (f *Fleet) Close() error {
	f.mu.Lock()
	rts := make([]Runtime, 0, len(f.envs))
	for _, e := range f.envs {
		rts = append(rts, e.rt)
	}
	f.envs = map[string]*entry{}
	f.mu.Unlock()
	errs := make([]error, len(rts))
	var wg sync.WaitGroup
	for i, rt := range rts {
		wg.Go(func() { errs[i] = rt.Close() })
	}
	wg.Wait()
	return errors.Join(slices.DeleteFunc(errs, func(e error) bool { return e == nil })...)
}
