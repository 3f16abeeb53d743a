// Package flagops manages feature flags over the store: the flag sets an apply declares
// (planned into the apply's one transaction, Plan), the flags in force (Reload), changes and
// rollbacks of single flags and sets, evaluation counts and the outcomes apps report, and
// ramps: a flag's variant raised step by step with analysis, each ramp moved on by a worker
// of a progress.Group (the primitive the apps' rollouts use too).
//
// Start reading at Manager, then ramp.go (NextRamp, pure) and rampworker.go. The engine owns
// a Manager: its Apply plans flag sets with Plan and commits them with the apps, and its Run
// runs the Manager's (Load, Start, Resync).
package flagops

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/progress"
)

// DefaultFlagStatsFlush is how often flag evaluation counts are written to the store.
const DefaultFlagStatsFlush = 10 * time.Second

// Config is what a Manager needs.
type Config struct {
	// FlagStore keeps flag sets; without one, flag operations and FlagSet documents are
	// refused.
	FlagStore slipway.FlagStore
	// RampStore keeps ramps; without one, flags that declare a ramp keep the targeting
	// apply gave them (weight 0).
	RampStore slipway.RampStore
	// Commit writes a change in one transaction (the engine's store).
	Commit func(ctx context.Context, c *slipway.Change) error
	// Lock serialises flag changes with the engine's applies, so plans don't race.
	Lock sync.Locker
	// Templates returns the analysis templates in force, for ramps' analysis.
	Templates func() map[string]slipway.AnalysisTemplate
	// Measure takes the measurements of ramp analysis; nil refuses them (no data).
	Measure slipway.Provider
	// Flags receives the merged, compiled flags after every change (a new Current when nil).
	Flags *flags.Current
	// OnFlagsChanged, when set, is called after every change of the flags in force. It must
	// not block.
	OnFlagsChanged func()
	// FlagStats is where the flag server counts evaluations (a new Stats when nil); they are
	// written to the store every FlagStatsFlush (DefaultFlagStatsFlush when 0).
	FlagStats      *flags.Stats
	FlagStatsFlush time.Duration
	// Outcomes counts the outcomes apps report per flag variant (a new Outcomes when nil).
	Outcomes *flags.Outcomes
	// Poll is how long a ramp whose pass failed waits before the next.
	Poll time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// Manager manages a store's feature flags. It implements slipway.FlagReader,
// slipway.FlagOperator and slipway.RampOperator.
type Manager struct {
	cfg Config
	log *slog.Logger

	flagsDB   slipway.FlagStore // nil: the store keeps no flags
	flagMu    sync.Mutex        // serialises rebuilding the flags in force
	flushMu   sync.Mutex        // guards lastFlush; serialises flushes of flag stats
	lastFlush time.Time

	rampsDB     slipway.RampStore // nil: the store keeps no ramps
	measurer    slipway.Provider  // measures ramp analysis; may be nil
	rampWorkers *progress.Group[*rampWorker]
	variants    atomic.Pointer[map[string][]string]

	wg sync.WaitGroup
}

var (
	_ slipway.FlagReader   = (*Manager)(nil)
	_ slipway.FlagOperator = (*Manager)(nil)
	_ slipway.RampOperator = (*Manager)(nil)
)

// New returns a Manager; it starts nothing.
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Lock == nil {
		cfg.Lock = &sync.Mutex{}
	}
	if cfg.Templates == nil {
		cfg.Templates = func() map[string]slipway.AnalysisTemplate { return nil }
	}
	if cfg.Flags == nil {
		cfg.Flags = flags.NewCurrent(nil)
	}
	if cfg.FlagStats == nil {
		cfg.FlagStats = &flags.Stats{}
	}
	if cfg.Outcomes == nil {
		cfg.Outcomes = flags.NewOutcomes(cfg.Now)
	}
	if cfg.FlagStatsFlush <= 0 {
		cfg.FlagStatsFlush = DefaultFlagStatsFlush
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	m := &Manager{cfg: cfg, log: cfg.Log, flagsDB: cfg.FlagStore, rampsDB: cfg.RampStore, measurer: cfg.Measure}
	m.rampWorkers = progress.NewGroup(progress.Config[*rampWorker]{
		New:  func(key string) *rampWorker { return &rampWorker{m: m, key: key} },
		Poll: cfg.Poll, Now: cfg.Now, Log: cfg.Log, LogKey: "flag",
	})
	return m
}

// Load puts the stored flags in force; call it before Start.
func (m *Manager) Load(ctx context.Context) error { return m.reloadFlags(ctx) }

// Start runs the flags' goroutines until ctx ends — the writer of evaluation counts and the
// ramps' workers — and looks at every ramp once; Wait waits for them.
func (m *Manager) Start(ctx context.Context) error {
	m.rampWorkers.Start(ctx)
	if m.flagsDB != nil {
		m.flushMu.Lock()
		m.lastFlush = m.cfg.Now()
		m.flushMu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.runFlagStats(ctx)
		}()
	}
	return m.Resync(ctx)
}

// Resync wakes the worker of every ramp, declared or stored and unfinished.
func (m *Manager) Resync(ctx context.Context) error { return m.resyncRamps(ctx) }

// Wait returns once every goroutine Start started has ended (after its context ended).
func (m *Manager) Wait() {
	m.rampWorkers.Wait()
	m.wg.Wait()
}

// Plan adds to c and p what applying the flag sets of s implies (Apply commits c in one
// transaction with the rest of the set); actor and now stamp its records and events.
func (m *Manager) Plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions, p *slipway.Plan, c *slipway.Change, actor string, now time.Time) error {
	return m.planFlagSets(ctx, s, opts, p, c, actor, now)
}

// Reload puts the stored flags in force again after a commit that changed flag sets, and
// wakes the ramps they declare.
func (m *Manager) Reload(ctx context.Context) error { return m.reloadFlags(ctx) }

// maxAttempts bounds the retries of an operation whose optimistic write conflicts.
const maxAttempts = 8
