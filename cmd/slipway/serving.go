package main

// What serves one environment: its store, platform, analysis, flags, OFREP and API, for the
// default environment (runServer) and for each environment of the fleet (envRuntime).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/handover"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/metric/builtin"
	"slipway.dev/slipway/metric/job"
	prommetric "slipway.dev/slipway/metric/prometheus"
	"slipway.dev/slipway/metric/web"
	"slipway.dev/slipway/ofrep"
	"slipway.dev/slipway/proxy"
	"slipway.dev/slipway/sqlite"
	"slipway.dev/slipway/telemetry"
)

// envDirName is the directory under the data directory that holds the environments besides
// the default one: DATA/env/NAME/ has each one's store, logs and data plane.
const envDirName = "env"

// serverShared is what every environment of a server shares: its configuration, its log and
// its tokens (one set for the whole server), and the fleet of environments.
type serverShared struct {
	cfg    serverConfig
	log    *slog.Logger
	tokens slipway.TokenManager
	fleet  *fleet.Fleet
	// releases runs the pipelines; every environment's API serves them. webhook, when set,
	// serves POST /hooks/releases (the default environment's address only).
	releases      slipway.ReleaseOperator
	notifications slipway.NotificationReader
	webhook       slipway.WebhookReceiver
	// git, when set, is the git source (--git-repo); the default environment's API serves
	// POST /api/v1/git/sync with it.
	git slipway.GitSyncer
	// insights computes the delivery figures of every environment; every environment's API
	// serves them.
	insights slipway.InsightsReader
}

// environments lists the environments the server serves (the fleet is made after the
// default environment's serving pieces, hence the indirection).
func (sh *serverShared) environments(ctx context.Context) ([]slipway.Environment, error) {
	return sh.fleet.Environments(ctx)
}

// envServing is one environment's serving pieces that outlive each of its engines.
type envServing struct {
	shared   *serverShared
	env      slipway.Environment
	store    *sqlite.Store
	platform platformRun
	log      *slog.Logger
	gatherer prometheus.Gatherer
	runner   *analysis.Runner
	outcomes *flags.Outcomes
	flagsNow *flags.Current
	stats    *flags.Stats
	ofrep    *ofrep.Server
}

// newEnvServing wires environment env's analysis, flags and OFREP on its store and platform;
// reg is where its own series are registered (served beside the platform's on /metrics).
func newEnvServing(shared *serverShared, env slipway.Environment, store *sqlite.Store, platform platformRun, reg *prometheus.Registry, log *slog.Logger) *envServing {
	cfg := shared.cfg
	windows := platform.windows
	if windows == nil {
		windows = proxy.NewMetrics(reg) // no proxy: every window is empty
	}
	gatherer := prometheus.Gatherer(reg)
	if platform.metrics != nil {
		gatherer = prometheus.Gatherers{reg, platform.metrics}
	}
	// The rollouts' and analysis runs' own series, read from the store at each scrape.
	reg.MustRegister(telemetry.New(store, env.Name, log.With("component", "telemetry")))
	s := &envServing{shared: shared, env: env, store: store, platform: platform, log: log, gatherer: gatherer}
	// The outcomes apps report per flag variant (POST /api/v1/flags/{key}/outcomes) outlive
	// each engine; the builtin provider reads them for guarded flag ramps.
	s.outcomes = flags.NewOutcomes(nil)
	s.runner = analysis.NewRunner(analysis.Config{Store: store, Log: log.With("component", "analysis"), Providers: map[string]slipway.Provider{
		"web":        web.New(&http.Client{}),
		"job":        job.New(),
		"builtin":    builtin.NewWithOutcomes(windows, s.outcomes),
		"prometheus": prommetric.New(prommetric.Config{Log: log.With("component", "prometheus")}),
	}})
	// The flags in force and their evaluation counts outlive each engine (restart.go). OFREP
	// (the protocol OpenFeature SDKs speak) is served beside the API, from the same flags;
	// each change of them tells its event streams to refetch.
	s.flagsNow, s.stats = flags.NewCurrent(nil), &flags.Stats{}
	s.ofrep = ofrep.New(ofrep.Config{Flags: s.flagsNow, Stats: s.stats, Metrics: reg, APIKeys: cfg.ofrepKeys,
		RateLimit: cfg.ofrepRate, Burst: cfg.ofrepBurst, Log: log.With("component", "ofrep")})
	return s
}

// newEngine returns a new engine of the environment and the handler that serves its API
// (driving that engine), OFREP and metrics. The default environment's API applies through
// the fleet (a set may span environments); the others' through their engine, after the
// fleet's check of what they share (envDeployer).
func (s *envServing) newEngine(fl *fleet.Fleet) (*engine.Engine, http.Handler) {
	cfg := s.shared.cfg
	eng := engine.New(engine.Config{Store: s.store, Platform: s.platform, Analysis: s.runner, Log: s.log.With("component", "engine"),
		Poll: cfg.poll, Resync: cfg.resync, MaxReplicas: cfg.maxReplicas, Environment: s.env.Name, Target: s.env.Target.Kind,
		Flags: s.flagsNow, FlagStats: s.stats, OnFlagsChanged: s.ofrep.Notify, Outcomes: s.outcomes})
	var deployer slipway.Deployer = envDeployer{shared: s.shared, env: s.env.Name, eng: eng}
	if s.env.Name == slipway.DefaultEnvironment {
		deployer = fl
	}
	apiCfg := httpapi.Config{Deployer: deployer, Operator: eng, Status: eng, State: s.store, Log: s.log.With("component", "api"),
		Flags: eng.FlagManager(), FlagOperator: eng.FlagManager(), Ramps: eng.FlagManager(), Outcomes: eng.FlagManager(),
		Tokens: s.shared.tokens, AllowedHosts: cfg.allowedHosts, AllowedOrigins: cfg.allowedOrigins,
		Health: s.store.Ping, Backup: s.store, Environments: s.shared.environments, Environment: s.env.Name, Releases: s.shared.releases,
		Notifications: s.shared.notifications, Insights: s.shared.insights,
		Version: versionString(), Commit: func() string { _, c := buildInfo(); return c }()}
	if s.shared.git != nil && s.env.Name == slipway.DefaultEnvironment {
		apiCfg.Git = s.shared.git
	}
	if logs, ok := s.platform.Platform.(slipway.LogSource); ok {
		apiCfg.Logs = logs
	}
	mux := http.NewServeMux()
	// Metrics need a token like the API (Prometheus sends one with authorization:
	// credentials_file), unless --public-metrics. OFREP keeps its own access rule (OFREP
	// keys); neither takes a Host that a DNS rebinding attack would send.
	metricsHandler := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}) // the server's own series even when the data plane does not answer
	if cfg.publicMetrics {
		mux.Handle("GET /metrics", httpapi.HostGuard(cfg.allowedHosts, metricsHandler))
	} else {
		apiCfg.Metrics = metricsHandler
	}
	mux.Handle("/ofrep/", httpapi.HostGuard(cfg.allowedHosts, s.ofrep))
	if s.shared.webhook != nil && s.env.Name == slipway.DefaultEnvironment {
		// Signed by the sender, not authenticated by a token (delivery.Webhook).
		mux.Handle("/hooks/releases", httpapi.Webhooks(cfg.allowedHosts, s.shared.webhook))
	}
	mux.Handle("/", httpapi.NewServer(apiCfg))
	return eng, mux
}

// envDeployer applies an environment's sets by its engine, after the fleet's check of the
// traffic addresses its apps take against the other environments' (fleet.ApplyIn).
type envDeployer struct {
	shared *serverShared // its fleet is set once every environment has started
	env    string
	eng    *engine.Engine
}

func (d envDeployer) Plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	return d.shared.fleet.PlanIn(ctx, d.env, d.eng, s, opts)
}

func (d envDeployer) Apply(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	return d.shared.fleet.ApplyIn(ctx, d.env, d.eng, s, opts)
}

// environmentTargets are the kinds of targets this server runs environments on: those it
// has a platform for.
func environmentTargets() []string {
	var out []string
	for _, k := range slipway.TargetKinds() {
		if _, ok := platforms[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// commitEvents returns a function that commits events to store.
func commitEvents(store *sqlite.Store) func(ctx context.Context, evs ...slipway.Event) error {
	return func(ctx context.Context, evs ...slipway.Event) error {
		return store.Commit(ctx, &slipway.Change{Events: evs})
	}
}

// startEnvironment returns the fleet's StartFunc: environment env gets the directory
// DATA/env/NAME with a store of its own, and a platform of its target's kind there (on the
// local target, a data plane process of its own).
func (sh *serverShared) startEnvironment(ctx context.Context) fleet.StartFunc {
	return func(_ context.Context, env slipway.Environment, held bool) (fleet.Runtime, error) {
		newPlatform, ok := platforms[env.Target.Kind]
		if !ok {
			return nil, slipway.Errorf(slipway.EINVALID, "this server cannot run %s targets", env.Target.Kind)
		}
		if err := slipway.ValidEnvironmentName(env.Name); err != nil {
			return nil, err
		}
		dir := filepath.Join(sh.cfg.dataDir, envDirName, env.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create the environment's directory: %w", err)
		}
		// The checks of the default environment's store (storecheck.go): a store that went
		// missing, was emptied or replaced is refused, not started empty.
		dbPath := filepath.Join(dir, "slipway.db")
		if err := checkStoreFile(dir, dbPath); err != nil {
			return nil, err
		}
		store, err := sqlite.Open(dbPath, time.Now)
		if err != nil {
			return nil, err
		}
		if err := checkStoreID(ctx, dir, store); err != nil {
			_ = store.Close()
			return nil, err
		}
		log := sh.log.With("environment", env.Name)
		rctx, cancel := context.WithCancel(ctx)
		pcfg := sh.cfg
		pcfg.dataDir = dir
		platform, err := newPlatform(pcfg, runtimeDeps{ctx: rctx, log: log, held: held, target: env.Target, record: commitEvents(store)})
		if err != nil {
			cancel()
			_ = store.Close()
			return nil, err
		}
		rt := &envRuntime{serving: newEnvServing(sh, env, store, platform, prometheus.NewRegistry(), log), cancel: cancel,
			platformDone: make(chan error, 1), held: held}
		go func() {
			var err error
			if platform.run != nil {
				err = platform.run(rctx)
			}
			rt.platformDone <- err
		}()
		rt.swapEngine()
		if !held {
			go rt.startWhenSettled(rctx)
		}
		return rt, nil
	}
}

// envRuntime is a running environment of the fleet: its platform runs from start to Close;
// its engine runs once the platform has settled, stops for a restart in place (Handover)
// and starts anew on Resume.
type envRuntime struct {
	serving      *envServing
	cancel       context.CancelFunc
	platformDone chan error

	handler atomic.Pointer[http.Handler]
	deploy  atomic.Pointer[engine.Engine]

	mu      sync.Mutex
	held    bool
	closed  bool
	stopEng func() error // stops the running engine; nil when none runs
}

var _ fleet.Runtime = (*envRuntime)(nil)

func (r *envRuntime) Deployer() slipway.Deployer { return r.deploy.Load() }

func (r *envRuntime) State() slipway.StateReader { return r.serving.store }

func (r *envRuntime) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { (*r.handler.Load()).ServeHTTP(w, req) })
}

// swapEngine makes a new engine the one the API drives; it does not run it.
func (r *envRuntime) swapEngine() *engine.Engine {
	eng, h := r.serving.newEngine(r.serving.shared.fleet)
	r.handler.Store(&h)
	r.deploy.Store(eng)
	return eng
}

// startWhenSettled runs the engine once the platform knows its adopted instances' readiness.
func (r *envRuntime) startWhenSettled(ctx context.Context) {
	if r.serving.platform.settled != nil {
		select {
		case <-r.serving.platform.settled():
		case <-ctx.Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held && !r.closed && r.stopEng == nil {
		r.runEngineLocked(r.deploy.Load())
	}
}

// runEngineLocked runs eng until stopEng; r.mu is held.
func (r *envRuntime) runEngineLocked(eng *engine.Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	r.stopEng = func() error { cancel(); return <-done }
}

// stopEngineLocked stops the running engine, if any; r.mu is held.
func (r *envRuntime) stopEngineLocked() error {
	if r.stopEng == nil {
		return nil
	}
	err := r.stopEng()
	r.stopEng = nil
	return err
}

// Handover stops the engine and holds the platform, when it can hand its instances over
// (one that keeps nothing across a restart, the sim platform, only stops its engine).
func (r *envRuntime) Handover() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.stopEngineLocked(); err != nil {
		r.serving.log.Error("engine stopped with an error before the restart", "err", err)
	}
	r.held = true
	if hp, ok := r.serving.platform.Platform.(handover.Platform); ok {
		if err := hp.Handover(); err != nil {
			r.held = false
			r.runEngineLocked(r.swapEngine())
			return fmt.Errorf("environment %s: %w", r.serving.env.Name, err)
		}
	}
	return nil
}

// Resume ends a hold: the platform manages its instances again and a new engine runs.
func (r *envRuntime) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if hp, ok := r.serving.platform.Platform.(handover.Platform); ok {
		hp.Resume()
	}
	r.held = false
	if r.stopEng == nil {
		r.runEngineLocked(r.swapEngine())
	}
}

// Settled is closed once the platform's adopted instances' readiness is known.
func (r *envRuntime) Settled() <-chan struct{} {
	if r.serving.platform.settled != nil {
		return r.serving.platform.settled()
	}
	c := make(chan struct{})
	close(c)
	return c
}

// Close stops the engine, then the platform (which, unless held, stops its instances and
// data plane), then closes the store.
func (r *envRuntime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	err := r.stopEngineLocked()
	r.mu.Unlock()
	r.cancel()
	if perr := <-r.platformDone; perr != nil && !errors.Is(perr, context.Canceled) {
		err = errors.Join(err, perr)
	}
	if cerr := r.serving.store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("environment %s: %w", r.serving.env.Name, err)
	}
	return nil
}
