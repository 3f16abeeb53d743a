// Package engine is slipway's controller. It decides purely (Next, Operate, Desired) and acts
// separately: one goroutine per app with an active rollout persists each decision, then tells
// the platform and the analysis runner. Start reading at Next (next.go), then Engine.Run.
//
// Invariants kept here: a transition is committed before the platform hears of it; re-running
// a reconcile changes nothing; a restart resumes every rollout from the store.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flagops"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/progress"
)

// Defaults of Config.
const (
	DefaultPoll   = time.Second
	DefaultResync = 10 * time.Second
	// DefaultReconcilersPerCPU sets how many reconcile passes run at once by default, per
	// CPU the process may use (runtime.GOMAXPROCS): enough to keep group commit's
	// transactions full and the platform busy, few enough that a pass is not slowed by
	// thousands of others sharing the CPU.
	DefaultReconcilersPerCPU = 8
)

// Executor measures an analysis run until it ends (analysis.Runner).
type Executor interface {
	Execute(ctx context.Context, runID string, changed func()) error
}

// Config wires an Engine.
type Config struct {
	Store    slipway.Store
	Platform slipway.Platform
	Analysis Executor
	Now      func() time.Time
	Log      *slog.Logger
	// Poll is how often a worker observes the platform while a rollout waits on it.
	Poll time.Duration
	// Resync is how often every app is reconciled to catch and repair drift.
	Resync time.Duration
	// MaxReplicas is the most replicas plan and apply accept for one app
	// (slipway.DefaultMaxReplicas when zero; never above slipway.MaxReplicas).
	MaxReplicas int
	// Environment is the environment whose apps this engine manages
	// (slipway.DefaultEnvironment when ""), and Target the kind of target its platform is
	// (slipway.TargetLocal, ...; "" skips the check of how apps say they run). Plan and
	// apply refuse an app of another environment and one its target cannot run.
	Environment string
	Target      string
	// Reconcilers is how many reconcile passes run at once (DefaultReconcilersPerCPU per
	// CPU when 0). The others wait their turn, first come first served: when one apply
	// starts thousands of rollouts, each pass then takes its own time instead of the whole
	// burst's, and the burst is carried out in the order it arrived. A platform whose calls
	// wait on the network may want more.
	Reconcilers int
	// OnReconcile, when set, is called with the duration of every reconcile pass (metrics,
	// benchmarks).
	OnReconcile func(time.Duration)
	// OnReconcileTurn, when set, is called after every reconcile pass with how long it
	// waited for its turn (see Reconcilers) and how long it took from when it was due (its
	// worker was woken) until it ended: the wait and the pass.
	OnReconcileTurn func(wait, total time.Duration)

	// FlagStore keeps flag sets; nil means Store, when it implements slipway.FlagStore.
	// Without one, documents of kind FlagSet are refused.
	FlagStore slipway.FlagStore
	// Flags receives the merged, compiled flags after every change (a new Current when nil).
	// The flag server evaluates from it.
	Flags *flags.Current
	// OnFlagsChanged, when set, is called after every change of the flags in force (for the
	// flag server's change stream). It must not block.
	OnFlagsChanged func()
	// FlagStats is where the flag server counts evaluations (a new Stats when nil); Run
	// writes its counts to the store every FlagStatsFlush (DefaultFlagStatsFlush when 0).
	FlagStats      *flags.Stats
	FlagStatsFlush time.Duration

	// RampStore keeps flag ramps; nil means Store, when it implements slipway.RampStore.
	// Without one, flags that declare a ramp keep the targeting apply gave them (weight 0).
	RampStore slipway.RampStore
	// Measure takes the measurements of ramp analysis, which the ramp's worker runs itself;
	// nil means Analysis, when it implements slipway.Provider (analysis.Runner does).
	Measure slipway.Provider
	// Outcomes counts the outcomes apps report per flag variant (a new Outcomes when nil);
	// the builtin provider reads it for ramp analysis.
	Outcomes *flags.Outcomes
}

// FlagManager returns the manager of the store's feature flags (slipway.FlagReader,
// slipway.FlagOperator, slipway.RampOperator, outcomes and evaluation counts).
func (e *Engine) FlagManager() *flagops.Manager { return e.flags }

// Engine carries rollouts through their steps. It implements slipway.Deployer,
// slipway.Operator and slipway.StatusReader.
type Engine struct {
	cfg Config
	log *slog.Logger

	// passes hands workers' reconcile passes to the Config.Reconcilers goroutines that run
	// them (runPass).
	passes chan *worker

	// workers are the apps' workers, one per app (progress.Group): kept, idle, with their
	// caches until the app is deleted.
	workers *progress.Group[*worker]
	mu      sync.Mutex
	wg      sync.WaitGroup
	// applied is the last Desired handed to the platform per app; drift is judged against it.
	applied map[string]slipway.Desired

	templates atomic.Pointer[map[string]slipway.AnalysisTemplate]
	tmplMu    sync.Mutex // serialises loadTemplates
	applyMu   sync.Mutex // serialises Apply, rollback and flag changes so plans don't race each other

	// flags manages the store's feature flags: the flag sets Apply plans, the flags in
	// force, their operations and ramps (package flagops).
	flags *flagops.Manager
}

var (
	_ slipway.Deployer     = (*Engine)(nil)
	_ slipway.Operator     = (*Engine)(nil)
	_ slipway.StatusReader = (*Engine)(nil)
)

// New returns an Engine; it starts nothing.
func New(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.MaxReplicas <= 0 || cfg.MaxReplicas > slipway.MaxReplicas {
		cfg.MaxReplicas = slipway.DefaultMaxReplicas
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Reconcilers <= 0 {
		cfg.Reconcilers = DefaultReconcilersPerCPU * runtime.GOMAXPROCS(0)
	}
	fst := cfg.FlagStore
	if fst == nil {
		fst, _ = cfg.Store.(slipway.FlagStore)
	}
	rst := cfg.RampStore
	if rst == nil {
		rst, _ = cfg.Store.(slipway.RampStore)
	}
	measure := cfg.Measure
	if measure == nil {
		measure, _ = cfg.Analysis.(slipway.Provider)
	}
	e := &Engine{cfg: cfg, log: cfg.Log, passes: make(chan *worker), applied: map[string]slipway.Desired{}}
	e.workers = progress.NewGroup(progress.Config[*worker]{
		New: func(app string) *worker {
			return &worker{e: e, app: app, done: make(chan struct{}, 1), runs: map[string]context.CancelFunc{}}
		},
		Keep: func(w *worker) bool { return !w.deleted },
		Poll: cfg.Poll, Now: cfg.Now, Log: cfg.Log, LogKey: "app",
	})
	e.flags = flagops.New(flagops.Config{FlagStore: fst, RampStore: rst, Commit: e.commit, Lock: &e.applyMu,
		Templates: e.templateMap, Measure: measure, Flags: cfg.Flags, OnFlagsChanged: cfg.OnFlagsChanged,
		FlagStats: cfg.FlagStats, FlagStatsFlush: cfg.FlagStatsFlush, Outcomes: cfg.Outcomes,
		Poll: cfg.Poll, Now: cfg.Now, Log: cfg.Log.With("component", "flags")})
	return e
}

// Run resumes every active rollout from the store, then reconciles until ctx ends. It returns
// after every goroutine it started has exited.
func (e *Engine) Run(ctx context.Context) error {
	// Under the apply lock: an Apply that commits meanwhile loads what it wrote after these
	// reads, never before them (flags and templates read before its commit and stored
	// after its own load would hide what it applied).
	e.applyMu.Lock()
	err := e.flags.Load(ctx)
	if err == nil {
		err = e.loadTemplates(ctx)
	}
	e.applyMu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer e.wg.Wait()
	defer e.flags.Wait()
	defer e.workers.Wait()
	for range e.cfg.Reconcilers {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.reconciler(ctx)
		}()
	}
	e.workers.Start(ctx)

	if err := e.resync(ctx, 0); err != nil && ctx.Err() == nil {
		return err
	}
	if err := e.flags.Start(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	t := time.NewTicker(e.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := e.resync(ctx, e.cfg.Resync/2); err != nil && ctx.Err() == nil {
				e.log.Error("resync failed", "err", err)
			}
			if err := e.flags.Resync(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("ramp resync failed", "err", err)
			}
		}
	}
}

// resync pokes a worker for every app: those with an active rollout carry it on, the others
// reconcile once (drift repair) and exit.
//
// With spread > 0 the nudges are spaced evenly over spread, so that a periodic resync of
// many apps is not a burst.
//
// The first resync reads the apps from the store; later ones take the names of the workers
// the engine keeps (every app has one from its first reconcile until it is deleted), so a
// periodic resync reads nothing.
func (e *Engine) resync(ctx context.Context, spread time.Duration) error {
	var names []string
	if spread == 0 {
		apps, err := e.cfg.Store.Apps(ctx)
		if err != nil {
			return err
		}
		for _, a := range apps {
			names = append(names, a.Spec.Name)
		}
	} else {
		names = e.workers.Keys()
	}
	var gap time.Duration
	if len(names) > 0 {
		gap = spread / time.Duration(len(names))
	}
	for i, name := range names {
		if gap > 0 && i > 0 {
			t := time.NewTimer(gap)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		e.wake(name, false)
	}
	return nil
}

func (e *Engine) loadTemplates(ctx context.Context) error {
	// One load at a time, each storing what it read: a load that read before a commit can
	// never store its map after one that read after it.
	e.tmplMu.Lock()
	defer e.tmplMu.Unlock()
	ts, err := e.cfg.Store.Templates(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]slipway.AnalysisTemplate, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	e.templates.Store(&m)
	return nil
}

func (e *Engine) templateMap() map[string]slipway.AnalysisTemplate {
	if p := e.templates.Load(); p != nil {
		return *p
	}
	return nil
}

// Poke tells app's worker that the app or its rollout changed in the store and asks it to
// reconcile now, starting one if none runs. Before Run it does nothing (Run reconciles
// everything when it starts).
func (e *Engine) Poke(app string) { e.wake(app, true) }

// wake asks app's worker to reconcile now; changed says the stored state moved, so the
// worker must read it again.
func (e *Engine) wake(app string, changed bool) {
	e.workers.Wake(app, func(w *worker) {
		if changed {
			w.announce()
		}
	})
}

// announce tells w that its app's stored state moved; the group's lock is held.
func (w *worker) announce() {
	w.dirty, w.seed = true, nil
	w.gen++
}

// seed is what a writer of an app's state committed, handed to the app's worker (see
// worker.seed): the app, its latest rollout, and revisions it added.
type seed struct {
	st     slipway.AppState
	latest slipway.Rollout
	revs   []slipway.Revision
}

// generations returns the worker generation (worker.gen) of each app, taken before a commit
// that may seed them (pokeSeeded).
func (e *Engine) generations(apps []string) map[string]uint64 {
	gens := make(map[string]uint64, len(apps))
	for _, app := range apps {
		e.workers.With(app, func(w *worker) { gens[app] = w.gen })
	}
	return gens
}

// pokeSeeded is Poke for a commit that wrote s (nil: nothing to hand over): the worker
// starts from s instead of reading the store, unless its generation moved since gen was
// taken before the commit (something else changed the app, or the worker read it since:
// either may be newer than s). Then it reads the store, as after Poke.
func (e *Engine) pokeSeeded(app string, s *seed, gen uint64) {
	e.workers.Wake(app, func(w *worker) {
		// The wake moves the generation by one: the commit's own announcement.
		w.announce()
		if s != nil && w.gen == gen+1 {
			w.seed, w.dirty = s, false
		}
	})
}

func (e *Engine) lastApplied(app string) (slipway.Desired, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.applied[app]
	return d, ok
}

// forget drops what the engine remembers of a deleted app's live state.
func (e *Engine) forget(app string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.applied, app)
}

func (e *Engine) setApplied(app string, d slipway.Desired) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applied[app] = d
}

// runPass runs w's next reconcile pass on one of the reconciler goroutines once its turn
// comes, and returns when it has run; it reports false, having run nothing, when ctx ended
// first. Waiting senders on a channel are served in the order they came, so turns are first
// come first served. The passes run on a few long-lived goroutines rather than on each
// worker's own: a worker's goroutine, idle most of the time, would have its stack shrunk by
// every garbage collection and grown again by every pass.
func (e *Engine) runPass(ctx context.Context, w *worker) bool {
	w.due = time.Now()
	select {
	case e.passes <- w:
	case <-ctx.Done():
		return false
	}
	<-w.done
	if f := e.cfg.OnReconcileTurn; f != nil {
		f(w.waited, time.Since(w.due))
	}
	return true
}

// reconciler runs the passes handed to it until ctx ends.
func (e *Engine) reconciler(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-e.passes:
			w.runTurn(ctx)
		}
	}
}

// commit writes c, retrying nothing: a conflict means state moved and the caller decides again.
func (e *Engine) commit(ctx context.Context, c *slipway.Change) error {
	if c.Empty() {
		return nil
	}
	return e.cfg.Store.Commit(ctx, c)
}

func isCode(err error, code string) bool {
	var se *slipway.Error
	return errors.As(err, &se) && se.Code == code
}
