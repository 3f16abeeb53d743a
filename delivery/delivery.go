// Package delivery is slipway's continuous deployment: pipelines (kind: Pipeline) carry each
// release of an app — a new version, with where it came from — through stages of
// environments by themselves. A release waits at a stage's gates (freezes, deploy windows,
// an error budget, an approval), then deploys to every environment of the stage at once
// (each environment's own engine rolls it out), runs the stage's verification jobs, soaks
// with the apps still healthy, and moves on; a release that fails in a stage stops there.
//
// Each active release is moved on by one worker of a progress.Group (the primitive the
// apps' rollouts and the flags' ramps use): the only goroutine that changes it by itself.
// People approve and override through Approve and Override, which write the release with an
// optimistic generation and wake its worker.
//
// Start reading at Manager, then worker.go (the stage machine) and gates.go.
package delivery

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/progress"
)

// Defaults of Config.
const (
	DefaultPoll     = time.Second
	DefaultGatePoll = time.Minute
	DefaultResync   = 30 * time.Second
)

// Place is an environment a release deploys to: its engine and its store.
type Place struct {
	Environment slipway.Environment
	Deployer    slipway.Deployer
	State       slipway.StateReader
}

// Config is what a Manager needs.
type Config struct {
	// Store keeps pipelines, releases and their events (the default environment's store).
	Store slipway.ReleaseStore
	// Places returns environment name's engine and store; false when the server does not
	// serve it.
	Places func(name string) (Place, bool)
	// Measure measures error budgets' metrics; Verify runs verification jobs (the job
	// provider). Nil refuses them: a gate or a job without evidence never passes.
	Measure slipway.Provider
	Verify  slipway.Provider
	// Poll is how often a release looks at its rollouts and soak; GatePoll how often it
	// measures an error budget again while it waits on one.
	Poll, GatePoll time.Duration
	// Resync is how often every active release is looked at (a missed wake is repaired).
	Resync time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// Manager runs the server's pipelines. It implements slipway.ReleaseOperator.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	workers   *progress.Group[*releaseWorker]
	pipelines atomic.Pointer[map[string]slipway.Pipeline]
	// applyMu serialises changes of pipelines and creations of releases, so that the
	// pipeline of an app and the releases it supersedes are read and written as one.
	applyMu chan struct{}
}

var _ slipway.ReleaseOperator = (*Manager)(nil)

// New returns a Manager; it starts nothing.
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.GatePoll <= 0 {
		cfg.GatePoll = DefaultGatePoll
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	m := &Manager{cfg: cfg, log: cfg.Log, applyMu: make(chan struct{}, 1)}
	m.workers = progress.NewGroup(progress.Config[*releaseWorker]{
		New:  func(id string) *releaseWorker { return &releaseWorker{m: m, id: id} },
		Poll: cfg.Poll, Now: cfg.Now, Log: cfg.Log, LogKey: "release",
	})
	empty := map[string]slipway.Pipeline{}
	m.pipelines.Store(&empty)
	return m
}

// Run loads the pipelines, carries every active release on, and looks at them all again
// every Config.Resync until ctx ends; it returns once every worker has stopped.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.loadPipelines(ctx); err != nil {
		return err
	}
	m.workers.Start(ctx)
	defer m.workers.Wait()
	if err := m.resync(ctx); err != nil && ctx.Err() == nil {
		m.log.Error("release resync failed", "err", err)
	}
	t := time.NewTicker(m.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.resync(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("release resync failed", "err", err)
			}
		}
	}
}

// Resync wakes the worker of every active release now (after the clock or the world moved in
// a way no wake announced).
func (m *Manager) Resync(ctx context.Context) error { return m.resync(ctx) }

// resync wakes the worker of every active release.
func (m *Manager) resync(ctx context.Context) error {
	rs, err := m.cfg.Store.ActiveReleases(ctx)
	if err != nil {
		return err
	}
	for _, r := range rs {
		m.workers.Wake(r.ID, nil)
	}
	return nil
}

// loadPipelines reads the pipelines into the cache the workers read.
func (m *Manager) loadPipelines(ctx context.Context) error {
	ps, err := m.cfg.Store.Pipelines(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]slipway.Pipeline, len(ps))
	for _, p := range ps {
		byName[p.Name] = p
	}
	m.pipelines.Store(&byName)
	return nil
}

// pipeline returns pipeline name from the cache.
func (m *Manager) pipeline(name string) (slipway.Pipeline, bool) {
	p, ok := (*m.pipelines.Load())[name]
	return p, ok
}

// pipelineOf returns the pipeline that carries app.
func (m *Manager) pipelineOf(app string) (slipway.Pipeline, bool) {
	for _, p := range *m.pipelines.Load() {
		for _, a := range p.Apps {
			if a == app {
				return p, true
			}
		}
	}
	return slipway.Pipeline{}, false
}

// lock takes applyMu, or returns ctx's error.
func (m *Manager) lock(ctx context.Context) error {
	select {
	case m.applyMu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) unlock() { <-m.applyMu }
