package fleet_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

// runtime is an environment on a real engine, a real SQLite file and the sim platform.
type runtime struct {
	env      slipway.Environment
	store    *sqlite.Store
	eng      *engine.Engine
	cancel   context.CancelFunc
	done     chan error
	mu       sync.Mutex // guards closed
	closed   bool
	held     atomic.Bool
	platform slipway.Platform
}

func (r *runtime) Deployer() slipway.Deployer { return r.eng }

func (r *runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
func (r *runtime) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(r.env.Name)) })
}
func (r *runtime) State() slipway.StateReader { return r.store }
func (r *runtime) Handover() error            { r.held.Store(true); return nil }
func (r *runtime) Resume()                    { r.held.Store(false) }
func (r *runtime) Settled() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
func (r *runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	err := <-r.done
	if cerr := r.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// world is a default environment and a fleet, each environment in its own directory.
type world struct {
	t     *testing.T
	dir   string
	def   *runtime
	fleet *fleet.Fleet
	// platforms, when set, gives an environment's platform (a slow one, say).
	platforms map[string]slipway.Platform
	// defaultTarget is the default environment's kind of target (sim when "").
	defaultTarget string

	mu       sync.Mutex
	runtimes map[string]*runtime
	starts   int
	// fail, when it names an environment, makes its start fail with that error; gate, when
	// it names one, makes its start tell entered and wait until the gate is closed.
	fail    map[string]error
	gate    map[string]chan struct{}
	entered chan string
}

func (w *world) start(_ context.Context, env slipway.Environment, _ bool) (fleet.Runtime, error) {
	w.mu.Lock()
	err, gate := w.fail[env.Name], w.gate[env.Name]
	w.mu.Unlock()
	if gate != nil {
		w.entered <- env.Name
		<-gate
	}
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(w.dir, "env", env.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r, err := w.open(dir, env)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.runtimes[env.Name] = r
	w.starts++
	w.mu.Unlock()
	return r, nil
}

func (w *world) open(dir string, env slipway.Environment) (*runtime, error) {
	st, err := sqlite.Open(filepath.Join(dir, "slipway.db"), time.Now)
	if err != nil {
		return nil, err
	}
	var p slipway.Platform = sim.New(sim.Config{ReadyDelay: 5 * time.Millisecond})
	if wp, ok := w.platforms[env.Name]; ok {
		p = wp
	}
	eng := engine.New(engine.Config{Store: st, Platform: p, Analysis: analysis.NewRunner(analysis.Config{Store: st}),
		Poll: 5 * time.Millisecond, Resync: time.Hour, Environment: env.Name, Target: env.Target.Kind})
	ctx, cancel := context.WithCancel(context.Background())
	r := &runtime{env: env, store: st, eng: eng, cancel: cancel, done: make(chan error, 1), platform: p}
	go func() { r.done <- eng.Run(ctx) }()
	return r, nil
}

func newWorld(t *testing.T, platforms map[string]slipway.Platform) *world {
	t.Helper()
	return newWorldOn(t, platforms, slipway.TargetSim)
}

// newWorldOn is newWorld with a default environment on a target of kind target.
func newWorldOn(t *testing.T, platforms map[string]slipway.Platform, target string) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), platforms: platforms, runtimes: map[string]*runtime{}, defaultTarget: target,
		fail: map[string]error{}, gate: map[string]chan struct{}{}, entered: make(chan string, 1)}
	def, err := w.open(w.dir, slipway.Environment{Name: slipway.DefaultEnvironment, Target: slipway.Target{Kind: slipway.TargetSim}})
	if err != nil {
		t.Fatal(err)
	}
	w.def = def
	w.reopen()
	t.Cleanup(func() {
		if err := w.fleet.Close(); err != nil {
			t.Errorf("close fleet: %v", err)
		}
		if err := w.def.Close(); err != nil {
			t.Errorf("close default: %v", err)
		}
	})
	return w
}

// reopen opens the fleet again from the default store.
func (w *world) reopen() {
	w.t.Helper()
	if err := w.reopenHeld(false); err != nil {
		w.t.Fatal(err)
	}
}

// reopenHeld closes the fleet and opens it again, held or not (see fleet.StartFunc); when
// Open fails, the fleet is an empty one.
func (w *world) reopenHeld(held bool) error {
	w.t.Helper()
	if w.fleet != nil {
		if err := w.fleet.Close(); err != nil {
			w.t.Fatal(err)
		}
	}
	target := w.defaultTarget
	if target == "" {
		target = slipway.TargetSim
	}
	cfg := fleet.Config{Store: w.def.store, Start: w.start, DefaultState: w.def.store,
		Default: func() slipway.Deployer { return w.def.eng }, DefaultTarget: target,
		Targets: []string{slipway.TargetLocal, slipway.TargetSim}}
	f, err := fleet.Open(context.Background(), cfg, held)
	if err != nil {
		cfg.Store = noEnvironments{}
		w.fleet, _ = fleet.Open(context.Background(), cfg, false)
		return err
	}
	w.fleet = f
	return nil
}

// noEnvironments is a store of no environments.
type noEnvironments struct{ slipway.EnvironmentStore }

func (noEnvironments) Environments(context.Context) ([]slipway.Environment, error) { return nil, nil }

func (w *world) runtime(name string) *runtime {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runtimes[name]
}

func env(name string) slipway.Environment {
	return slipway.Environment{Name: name, Target: slipway.Target{Kind: slipway.TargetSim}}
}

func app(name, envName, version string) slipway.App {
	return slipway.App{Name: name, Environment: envName, Replicas: 2,
		Run:      slipway.RunSpec{Command: "./" + name, Args: []string{version}},
		Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}
}

// waitCompleted waits until app's latest rollout in d completed.
func waitCompleted(t *testing.T, d slipway.StatusReader, name string) slipway.AppStatus {
	t.Helper()
	var st slipway.AppStatus
	slipwaytest.Eventually(t, 15*time.Second, "rollout of "+name+" completed", func() bool {
		s, err := d.Status(context.Background(), name)
		st = s
		return err == nil && s.Rollout != nil && s.Rollout.Phase == slipway.PhaseCompleted
	})
	return st
}

// TestFleet_OneSetAcrossEnvironments: a set that declares two environments and the same app
// in each (and one in default) creates both environments, each app in its own engine and
// store, rolled out independently; plan first changes nothing; the fleet opens them again
// from the store.
func TestFleet_OneSetAcrossEnvironments(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	set := slipway.Set{
		Environments: []slipway.Environment{env("staging"), env("production")},
		Apps:         []slipway.App{app("web", "staging", "v1"), app("web", "production", "v1"), app("api", "", "v1")},
	}
	p, err := w.fleet.Plan(ctx, set, slipway.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]slipway.Action{"Environment production": slipway.ActionCreate, "Environment staging": slipway.ActionCreate,
		"App api": slipway.ActionCreate, "App web in production": slipway.ActionCreate, "App web in staging": slipway.ActionCreate}
	got := map[string]slipway.Action{}
	for _, ch := range p.Changes {
		k := ch.Kind + " " + ch.Name
		if ch.Environment != "" {
			k += " in " + ch.Environment
		}
		got[k] = ch.Action
	}
	if len(got) != len(want) {
		t.Fatalf("plan = %v, want %v", got, want)
	}
	for k, a := range want {
		if got[k] != a {
			t.Errorf("plan %s = %q, want %q", k, got[k], a)
		}
	}
	if envs, _ := w.def.store.Environments(ctx); len(envs) != 0 || w.starts != 0 {
		t.Fatalf("plan stored %d environments and started %d", len(envs), w.starts)
	}

	if _, err := w.fleet.Apply(ctx, set, slipway.ApplyOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	staging, production := w.runtime("staging"), w.runtime("production")
	if staging == nil || production == nil {
		t.Fatal("environments not started")
	}
	waitCompleted(t, staging.eng, "web")
	waitCompleted(t, production.eng, "web")
	waitCompleted(t, w.def.eng, "api")
	if _, err := w.def.eng.Status(ctx, "web"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("web in default: %v, want ENOTFOUND", err)
	}
	if _, err := staging.eng.Status(ctx, "api"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("api in staging: %v, want ENOTFOUND", err)
	}

	// A new version in staging only: production keeps its revision.
	prodBefore := waitCompleted(t, production.eng, "web")
	p, err = w.fleet.Apply(ctx, slipway.Set{Apps: []slipway.App{app("web", "staging", "v2")}}, slipway.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Action != slipway.ActionNewRevision || p.Changes[0].Environment != "staging" {
		t.Fatalf("apply v2 to staging: %+v", p.Changes)
	}
	st := waitCompleted(t, staging.eng, "web")
	if st.Rollout.ID != p.Changes[0].Rollout {
		t.Fatalf("staging's latest rollout %s, want %s", st.Rollout.ID, p.Changes[0].Rollout)
	}
	if prod := waitCompleted(t, production.eng, "web"); prod.Stable.Revision != prodBefore.Stable.Revision {
		t.Errorf("production moved from %s to %s on staging's apply", prodBefore.Stable.Revision, prod.Stable.Revision)
	}

	// Both environments are listed, with the event of their creation, and open again.
	envs, err := w.fleet.Environments(ctx)
	if err != nil || len(envs) != 3 || envs[0].Name != "default" || envs[1].Name != "production" || envs[2].Name != "staging" {
		t.Fatalf("environments = %+v, %v", envs, err)
	}
	evs, _ := w.def.store.Events(ctx, slipway.EventFilter{})
	created := 0
	for _, e := range evs {
		if e.Kind == slipway.EventEnvironmentCreated && e.Actor == "test" {
			created++
		}
	}
	if created != 2 {
		t.Errorf("%d environment.created events, want 2", created)
	}
	w.reopen()
	if _, err := w.fleet.Lookup("staging"); err != nil {
		t.Fatal("staging not served after the fleet opened again")
	}
	waitCompleted(t, w.runtime("staging").eng, "web")
}

// TestFleet_RefusesABadSetWhole: each refusal names the document and changes nothing: no
// environment stored or started, no app applied in any environment.
func TestFleet_RefusesABadSetWhole(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	if _, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env("staging")}}, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kube := slipway.Environment{Name: "cluster", Target: slipway.Target{Kind: slipway.TargetKubernetes, Kubernetes: &slipway.KubernetesTarget{Namespace: "shop"}}}
	bad := app("web", "qa", "v1")
	bad.Replicas = slipway.DefaultMaxReplicas + 1
	for name, tc := range map[string]struct {
		set  slipway.Set
		opts slipway.ApplyOptions
		want string
	}{
		"an unknown environment": {slipway.Set{Apps: []slipway.App{app("web", "nowhere", "v1"), app("api", "", "v1")}}, slipway.ApplyOptions{},
			"environment nowhere does not exist; declare it (kind: Environment) or use one of: default, staging"},
		"a target this server cannot run": {slipway.Set{Environments: []slipway.Environment{kube}, Apps: []slipway.App{app("api", "", "v1")}}, slipway.ApplyOptions{},
			"Environment/cluster: spec.target.kind: this server cannot run environments on kubernetes targets"},
		"a changed target": {slipway.Set{Environments: []slipway.Environment{{Name: "staging", Target: slipway.Target{Kind: slipway.TargetLocal}}}}, slipway.ApplyOptions{},
			"environment staging runs on sim; its target cannot change to local"},
		"the default environment": {slipway.Set{Environments: []slipway.Environment{env("default")}}, slipway.ApplyOptions{},
			"the default environment is the server's own"},
		"prune across environments": {slipway.Set{Apps: []slipway.App{app("web", "staging", "v1")}}, slipway.ApplyOptions{Prune: true},
			"--prune works on one environment at a time"},
		"a bad app in a new environment": {slipway.Set{Environments: []slipway.Environment{env("qa")}, Apps: []slipway.App{bad, app("api", "", "v1")}}, slipway.ApplyOptions{},
			"environment qa: App/web: spec.replicas"},
		"a bad app in an existing environment": {slipway.Set{Environments: []slipway.Environment{env("qa")},
			Apps: []slipway.App{func() slipway.App { a := bad; a.Environment = "staging"; return a }(), app("api", "", "v1")}}, slipway.ApplyOptions{},
			"environment staging: App/web: spec.replicas"},
	} {
		for call, f := range map[string]func() error{
			"plan":  func() error { _, err := w.fleet.Plan(ctx, tc.set, tc.opts); return err },
			"apply": func() error { _, err := w.fleet.Apply(ctx, tc.set, tc.opts); return err },
		} {
			if err := f(); slipway.ErrorCode(err) != slipway.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s, %s: %v; want EINVALID saying %q", name, call, err, tc.want)
			}
		}
	}
	if envs, _ := w.def.store.Environments(ctx); len(envs) != 1 || w.starts != 1 {
		t.Errorf("after refused applies: %d environments stored, %d started; want staging alone", len(envs), w.starts)
	}
	if apps, _ := w.def.store.Apps(ctx); len(apps) != 0 {
		t.Errorf("default holds %d apps after refused applies", len(apps))
	}
	if apps, _ := w.runtime("staging").store.Apps(ctx); len(apps) != 0 {
		t.Errorf("staging holds %d apps after refused applies", len(apps))
	}
}

// stuck is a platform whose Apply blocks until released: a slow or hung target.
type stuck struct {
	slipway.Platform
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (s *stuck) Apply(ctx context.Context, d slipway.Desired) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Platform.Apply(ctx, d)
}

// TestFleet_ASlowPlatformHoldsUpNoOtherEnvironment: while environment slow's platform hangs
// in the middle of a rollout, applies to another environment — by itself and in a set that
// spans environments — and to slow itself return, and the other environment's rollouts
// complete.
func TestFleet_ASlowPlatformHoldsUpNoOtherEnvironment(t *testing.T) {
	hung := &stuck{Platform: sim.New(sim.Config{ReadyDelay: 5 * time.Millisecond}), release: make(chan struct{}), entered: make(chan struct{})}
	w := newWorld(t, map[string]slipway.Platform{"slow": hung})
	defer close(hung.release)
	ctx := context.Background()
	if _, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env("slow"), env("fast")},
		Apps: []slipway.App{app("web", "slow", "v1")}}, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hung.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("slow's platform never asked to apply")
	}
	// Each apply must return while slow's platform is still hung.
	bounded := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			t.Fatalf("%s while slow hangs: %v", what, err)
		}
	}
	bounded("apply to fast", func(ctx context.Context) error {
		_, err := w.fleet.Apply(ctx, slipway.Set{Apps: []slipway.App{app("web", "fast", "v1")}}, slipway.ApplyOptions{})
		return err
	})
	bounded("apply across slow, fast and default", func(ctx context.Context) error {
		_, err := w.fleet.Apply(ctx, slipway.Set{Apps: []slipway.App{app("web", "slow", "v2"), app("api", "fast", "v1"), app("api", "", "v1")}}, slipway.ApplyOptions{})
		return err
	})
	waitCompleted(t, w.runtime("fast").eng, "web")
	waitCompleted(t, w.runtime("fast").eng, "api")
	waitCompleted(t, w.def.eng, "api")
	st, err := w.runtime("slow").eng.Status(ctx, "web")
	if err != nil || st.Rollout == nil || st.Rollout.Phase == slipway.PhaseCompleted {
		t.Fatalf("slow's rollout: %+v, %v; want it still in progress behind the hung platform", st.Rollout, err)
	}
}
