package gitsource_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/delivery"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/gitsource"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

// gitRepo is a real git repository on disk, written with go-git.
type gitRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	// when is the time of the next commit; each commit moves it a minute on.
	when time.Time
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &gitRepo{t: t, dir: dir, repo: r, when: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

// commit writes files (path -> content; "" removes the file) and commits them on the
// current branch; it returns the commit's hash.
func (g *gitRepo) commit(msg string, files map[string]string) string {
	g.t.Helper()
	h := slipwaytest.GitCommit(g.t, g.dir, msg, g.when, files)
	g.when = g.when.Add(time.Minute)
	return h
}

// resetTo moves the current branch (and the work tree) to commit sha: the history after
// it is gone from the branch, as after a force-push.
func (g *gitRepo) resetTo(sha string) {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: plumbing.NewHash(sha), Mode: git.HardReset}); err != nil {
		g.t.Fatal(err)
	}
}

// checkout switches to branch, creating it at the current commit when create.
func (g *gitRepo) checkout(branch string, create bool) {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}); err != nil {
		g.t.Fatal(err)
	}
}

// runtime is an environment on a real engine, a real SQLite file and the sim platform.
type runtime struct {
	store  *sqlite.Store
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func openRuntime(t *testing.T, dir, name string) *runtime {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{ReadyDelay: 2 * time.Millisecond}),
		Analysis: analysis.NewRunner(analysis.Config{Store: st}), Poll: 5 * time.Millisecond, Resync: time.Hour,
		Environment: name, Target: slipway.TargetSim})
	ctx, cancel := context.WithCancel(context.Background())
	r := &runtime{store: st, eng: eng, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- eng.Run(ctx) }()
	return r
}

func (r *runtime) Deployer() slipway.Deployer { return r.eng }
func (r *runtime) State() slipway.StateReader { return r.store }
func (r *runtime) Handler() http.Handler      { return http.NotFoundHandler() }
func (r *runtime) Handover() error            { return nil }
func (r *runtime) Resume()                    {}
func (r *runtime) Settled() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
func (r *runtime) Close() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		err = <-r.done
		if cerr := r.store.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// world is a server's worth: a default environment, a fleet that starts the environments
// commits declare, a delivery Manager running the pipelines, all on real stores.
type world struct {
	t     *testing.T
	dir   string
	def   *runtime
	fleet *fleet.Fleet
	m     *delivery.Manager
	mu    sync.Mutex
	envs  map[string]*runtime
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), envs: map[string]*runtime{}}
	w.def = openRuntime(t, w.dir, slipway.DefaultEnvironment)
	w.m = delivery.New(delivery.Config{Store: w.def.store, Poll: 5 * time.Millisecond, GatePoll: 10 * time.Millisecond,
		Places: func(name string) (delivery.Place, bool) {
			env, d, st, ok := w.fleet.Place(name)
			return delivery.Place{Environment: env, Deployer: d, State: st}, ok
		}})
	f, err := fleet.Open(context.Background(), fleet.Config{Store: w.def.store, DefaultState: w.def.store, Pipelines: w.m,
		Default: func() slipway.Deployer { return w.def.eng }, DefaultTarget: slipway.TargetSim, Targets: []string{slipway.TargetSim},
		Start: func(_ context.Context, env slipway.Environment, _ bool) (fleet.Runtime, error) {
			r := openRuntime(t, filepath.Join(w.dir, "env", env.Name), env.Name)
			w.mu.Lock()
			w.envs[env.Name] = r
			w.mu.Unlock()
			return r, nil
		}}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.fleet = f
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("close fleet: %v", err)
		}
		if err := w.def.Close(); err != nil {
			t.Errorf("close default: %v", err)
		}
	})
	return w
}

// watcher returns a new Watcher of repo's branch main, directory deploy, on the world.
func (w *world) watcher(repo string) *gitsource.Watcher {
	w.t.Helper()
	g, err := gitsource.New(gitsource.Config{Repo: repo, Branch: "main", Path: "deploy", CloneDir: filepath.Join(w.dir, "git"),
		Poll: 10 * time.Millisecond, Deployer: w.fleet, Releases: w.m, Apps: fleetApps{w.fleet}, Store: w.def.store})
	if err != nil {
		w.t.Fatal(err)
	}
	return g
}

// fleetApps says what runs where from the fleet's stores (as the server's wiring does).
type fleetApps struct{ f *fleet.Fleet }

func (a fleetApps) AppVersion(ctx context.Context, env, app string) (string, error) {
	_, _, st, ok := a.f.Place(env)
	if !ok {
		return "", slipway.Errorf(slipway.ENOTFOUND, "environment %s does not exist", env)
	}
	s, err := st.App(ctx, app)
	return s.Spec.Version, err
}

// sync runs one look of g and fails the test on an error.
func (w *world) sync(g *gitsource.Watcher) slipway.GitSync {
	w.t.Helper()
	out, err := g.Sync(context.Background())
	if err != nil {
		w.t.Fatalf("sync: %v", err)
	}
	return out
}

// version returns the version app's spec has in environment env ("" when it does not
// exist there).
func (w *world) version(env, app string) string {
	w.t.Helper()
	v, err := fleetApps{w.fleet}.AppVersion(context.Background(), env, app)
	if slipway.ErrorCode(err) == slipway.ENOTFOUND {
		return ""
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) releases(app string) []slipway.Release {
	w.t.Helper()
	rs, err := w.m.Releases(context.Background(), app, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return rs
}

// events returns the default store's events of kind.
func (w *world) events(kind string) []slipway.Event {
	w.t.Helper()
	evs, err := w.def.store.Events(context.Background(), slipway.EventFilter{})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []slipway.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Files of the repository.
const (
	environmentsYAML = `apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: staging}
spec:
  target: {kind: sim}
---
apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: production}
spec:
  target: {kind: sim}
`
	pipelineYAML = `apiVersion: slipway.dev/v1alpha1
kind: Pipeline
metadata: {name: web}
spec:
  apps: [web]
  stages:
    - name: staging
      environments: [staging]
    - name: production
      environments: [production]
      approval: {role: deployer}
`
)

// appYAML is app name's document in environment env ("" for the default) at version.
func appYAML(name, env, version string) string {
	meta := "{name: " + name + "}"
	if env != "" {
		meta = "{name: " + name + ", environment: " + env + "}"
	}
	return strings.Join([]string{
		"apiVersion: slipway.dev/v1alpha1",
		"kind: App",
		"metadata: " + meta,
		"spec:",
		"  replicas: 2",
		"  version: " + version,
		"  run: {command: ./" + name + "}",
		"  strategy: {rolling: {}}",
		"",
	}, "\n")
}

// webFiles are the files of the web app in staging and production at version.
func webFiles(staging, production string) map[string]string {
	return map[string]string{
		"deploy/web-staging.yaml":    appYAML("web", "staging", staging),
		"deploy/web-production.yaml": appYAML("web", "production", production),
	}
}

// initial is the first commit's files: two environments, the pipeline, web in both at v1,
// and api (carried by no pipeline) in the default environment at v1.
func initial() map[string]string {
	files := webFiles("v1", "v1")
	files["deploy/environments.yaml"] = environmentsYAML
	files["deploy/pipeline.yaml"] = pipelineYAML
	files["deploy/api.yaml"] = appYAML("api", "", "v1")
	files["README.md"] = "not a slipway file\n"
	return files
}
