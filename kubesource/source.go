// Package kubesource serves slipway's custom resources (App, AnalysisTemplate, FlagSet and
// Environment in the API group slipway.dev) from Kubernetes namespaces: it watches them with
// informers, applies them through the same validate, plan and apply path as files, and
// writes each App's status subresource (phase, step, weights, revisions, conditions), so that
// kubectl and GitOps tools manage delivery as they manage any other resource.
//
// Each resource is checked on its own, like one file: an invalid one is refused with a
// condition naming the field and what would be valid, and changes nothing, while the
// namespace's other resources are applied. Deleting an App resource deletes the app it
// created (and nothing slipway did not create from a resource).
package kubesource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"slipway.dev/slipway"
	"slipway.dev/slipway/spec"
)

// EnvironmentLabel on a resource names the slipway environment its app runs in; without it,
// the namespace's environment (Config.Environments) or the server's default environment.
const EnvironmentLabel = "slipway.dev/environment"

// ActorKubernetes is the actor of the changes made from custom resources.
const ActorKubernetes = "kubernetes"

// resources are the watched kinds, by kind, in the order a namespace's set lists them.
var resources = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{"Environment", gvr("environments")},
	{"AnalysisTemplate", gvr("analysistemplates")},
	{"FlagSet", gvr("flagsets")},
	{"App", gvr("apps")},
}

func gvr(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: spec.CRDGroup, Version: spec.CRDVersion, Resource: plural}
}

// AppsGVR is the resource of App custom resources.
var AppsGVR = gvr("apps")

// Place is what an environment holds: its deployer (engine), its stored state, its statuses.
type Place struct {
	Deployer slipway.Deployer
	State    slipway.StateReader
	Status   slipway.StatusReader
}

// Store keeps which apps each namespace's resources created (the default environment's
// store), so that deleting a resource while the server is down still deletes its app.
type Store interface {
	Meta(ctx context.Context, key string) (string, error)
	PutMeta(ctx context.Context, key, value string, events ...slipway.Event) error
}

// Config is what a Source needs.
type Config struct {
	Client dynamic.Interface
	// Namespaces are the namespaces watched.
	Namespaces []string
	// Environments maps a namespace to the environment its apps run in when a resource does
	// not say (EnvironmentLabel); unlisted namespaces use the default environment.
	Environments map[string]string
	// Place returns an environment's place; false when the server does not serve it.
	Place func(env string) (Place, bool)
	Store Store
	// StatusEvery is how often App statuses are refreshed besides after each change (1s
	// when zero): a rollout moves on its own.
	StatusEvery time.Duration
	Log         *slog.Logger
}

// Source applies the watched namespaces' resources and writes App statuses.
type Source struct {
	cfg   Config
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	listers map[string]map[string]cache.GenericNamespaceLister // namespace -> kind -> lister
	// invalid holds the last problem of each invalid resource, by namespace/kind/name.
	invalid map[string]string
	// synced is closed once every informer has listed its resources.
	synced chan struct{}
}

// New checks cfg and returns a Source; it starts nothing.
func New(cfg Config) (*Source, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("kubesource: no client")
	case len(cfg.Namespaces) == 0:
		return nil, errors.New("kubesource: no namespaces to watch")
	case cfg.Place == nil || cfg.Store == nil:
		return nil, errors.New("kubesource: no place or store")
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{
		cfg: cfg, log: log.With("source", "kubernetes"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "slipway-resources"}),
		listers: map[string]map[string]cache.GenericNamespaceLister{},
		invalid: map[string]string{},
		synced:  make(chan struct{}),
	}, nil
}

// Run watches until ctx ends: each change to a namespace's resources syncs that namespace
// (retried with backoff when it fails), and App statuses are written after each sync and
// every StatusEvery.
func (s *Source) Run(ctx context.Context) error {
	defer s.queue.ShutDown()
	var hasSynced []cache.InformerSynced
	for _, ns := range s.cfg.Namespaces {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.cfg.Client, 10*time.Minute, ns, nil)
		s.listers[ns] = map[string]cache.GenericNamespaceLister{}
		for _, r := range resources {
			inf := f.ForResource(r.gvr)
			s.listers[ns][r.kind] = inf.Lister().ByNamespace(ns)
			enqueue := func(any) { s.queue.Add(ns) }
			if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc: enqueue, DeleteFunc: enqueue,
				UpdateFunc: func(old, cur any) {
					// A status write changes the resource too: only a new generation (or
					// labels, which may move the app) is a change to apply.
					if changed(old, cur) {
						s.queue.Add(ns)
					}
				},
			}); err != nil {
				return err
			}
			hasSynced = append(hasSynced, inf.Informer().HasSynced)
		}
		f.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return ctx.Err()
	}
	close(s.synced)
	for _, ns := range s.cfg.Namespaces {
		s.queue.Add(ns)
	}
	go s.work(ctx)
	t := time.NewTicker(s.cfg.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, ns := range s.cfg.Namespaces {
				s.writeStatuses(ctx, ns)
			}
		}
	}
}

// Synced is closed once the informers have listed the resources of every namespace.
func (s *Source) Synced() <-chan struct{} { return s.synced }

func changed(old, cur any) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	c, ok2 := cur.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	return o.GetGeneration() != c.GetGeneration() || !maps.Equal(o.GetLabels(), c.GetLabels())
}

func (s *Source) work(ctx context.Context) {
	for {
		ns, quit := s.queue.Get()
		if quit {
			return
		}
		err := s.Sync(ctx, ns)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("custom resources not applied; retrying", "namespace", ns, "err", err)
			s.queue.AddRateLimited(ns)
		} else {
			s.queue.Forget(ns)
		}
		s.queue.Done(ns)
		s.writeStatuses(ctx, ns)
	}
}

// resource is one watched object of a namespace, as a document of a set.
type resource struct {
	kind, name, env string
	obj             *unstructured.Unstructured
	file            spec.File
}

func (r resource) key() string { return r.obj.GetNamespace() + "/" + r.kind + "/" + r.name }

// list reads a namespace's resources from the informers' caches, in a stable order.
func (s *Source) list(ns string) ([]resource, error) {
	var out []resource
	for _, r := range resources {
		objs, err := s.listers[ns][r.kind].List(labels.Everything())
		if err != nil {
			return nil, err
		}
		slices.SortFunc(objs, func(a, b runtime.Object) int {
			return strings.Compare(name(a), name(b))
		})
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok || u.GetDeletionTimestamp() != nil {
				continue
			}
			res, err := s.document(r.kind, u)
			if err != nil {
				return nil, err
			}
			out = append(out, res)
		}
	}
	return out, nil
}

// name is an object's name ("" for one that has no metadata).
func name(o runtime.Object) string {
	if u, ok := o.(*unstructured.Unstructured); ok {
		return u.GetName()
	}
	return ""
}

// document turns an object into the slipway document it stands for: its kind, name and
// spec, with the app's environment.
func (s *Source) document(kind string, u *unstructured.Unstructured) (resource, error) {
	res := resource{kind: kind, name: u.GetName(), obj: u}
	meta := map[string]any{"name": u.GetName()}
	if kind == "App" {
		res.env = s.environment(u)
		if res.env != slipway.DefaultEnvironment {
			meta["environment"] = res.env
		}
	}
	if kind == "Environment" {
		labels := map[string]any{}
		for k, v := range u.GetLabels() {
			if !strings.Contains(k, "/") {
				labels[k] = v
			}
		}
		if len(labels) > 0 {
			meta["labels"] = labels
		}
	}
	doc := map[string]any{"apiVersion": spec.CRDGroup + "/" + spec.CRDVersion, "kind": kind, "metadata": meta, "spec": u.Object["spec"]}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return resource{}, fmt.Errorf("%s %s/%s: %w", kind, u.GetNamespace(), u.GetName(), err)
	}
	res.file = spec.File{Name: fmt.Sprintf("%s/%s %s", u.GetNamespace(), u.GetName(), strings.ToLower(kind)+"s."+spec.CRDGroup), Data: data}
	return res, nil
}

// environment is the environment an App resource's app runs in.
func (s *Source) environment(u *unstructured.Unstructured) string {
	if e := u.GetLabels()[EnvironmentLabel]; e != "" {
		return e
	}
	if e := s.cfg.Environments[u.GetNamespace()]; e != "" {
		return e
	}
	return slipway.DefaultEnvironment
}

// managedKey is the store key of the apps a namespace's resources created.
func managedKey(ns string) string { return "kubesource/" + ns }

// managed is the apps a namespace's resources created, by environment.
type managed map[string][]string

func (s *Source) managed(ctx context.Context, ns string) (managed, error) {
	v, err := s.cfg.Store.Meta(ctx, managedKey(ns))
	if err != nil || v == "" {
		return managed{}, err
	}
	m := managed{}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("kubesource: stored apps of namespace %s: %w", ns, err)
	}
	return m, nil
}

// Sync applies namespace ns's resources now: each resource is checked on its own and an
// invalid one is left out (its app keeps what was applied before); the valid ones are
// applied as one set per environment; an app created from a resource that no longer exists
// is deleted.
func (s *Source) Sync(ctx context.Context, ns string) error {
	res, err := s.list(ns)
	if err != nil {
		return err
	}
	templates := map[string]bool{}
	for _, r := range res {
		if r.kind == "AnalysisTemplate" {
			templates[r.name] = true
		}
	}
	valid := map[string]slipway.Set{} // by environment ("" for the kinds of the server)
	declared := managed{}
	invalid := map[string]string{}
	for _, r := range res {
		if r.kind == "App" {
			declared[r.env] = append(declared[r.env], r.name)
		}
		known := func(name string) bool {
			if templates[name] {
				return true
			}
			if p, ok := s.cfg.Place(r.env); ok {
				_, err := p.State.Template(ctx, name)
				return err == nil
			}
			return false
		}
		set, err := spec.ParseFiles(known, r.file.Name, r.file)
		if err != nil {
			invalid[r.key()] = problems(err)
			continue
		}
		env := r.env
		if r.kind != "App" {
			env = "" // templates and flag sets go to every environment of the namespace's apps below
		}
		v := valid[env]
		v.Apps = append(v.Apps, set.Apps...)
		v.Templates = append(v.Templates, set.Templates...)
		v.FlagSets = append(v.FlagSets, set.FlagSets...)
		v.Environments = append(v.Environments, set.Environments...)
		valid[env] = v
	}
	s.mu.Lock()
	for k := range s.invalid {
		if strings.HasPrefix(k, ns+"/") {
			delete(s.invalid, k)
		}
	}
	for k, v := range invalid {
		s.invalid[k] = v
	}
	s.mu.Unlock()

	shared := valid[""]
	delete(valid, "")
	if len(shared.Environments) > 0 || len(shared.FlagSets) > 0 {
		// Environments first (an app may run in one of them), and flag sets, through the
		// default environment's deployer, which serves the server's kinds.
		p, ok := s.cfg.Place(slipway.DefaultEnvironment)
		if !ok {
			return fmt.Errorf("kubesource: the default environment is not served")
		}
		if _, err := p.Deployer.Apply(ctx, slipway.Set{Environments: shared.Environments, FlagSets: shared.FlagSets},
			slipway.ApplyOptions{Actor: ActorKubernetes, Reason: "custom resources in namespace " + ns}); err != nil {
			return err
		}
	}
	prev, err := s.managed(ctx, ns)
	if err != nil {
		return err
	}
	envs := map[string]bool{}
	for e := range valid {
		envs[e] = true
	}
	for e := range prev {
		envs[e] = true
	}
	for _, env := range slices.Sorted(maps.Keys(envs)) {
		if err := s.apply(ctx, ns, env, valid[env], shared.Templates, prev[env], declared[env]); err != nil {
			return err
		}
	}
	data, err := json.Marshal(declared)
	if err != nil {
		return err
	}
	return s.cfg.Store.PutMeta(ctx, managedKey(ns), string(data))
}

// apply applies one environment's apps of namespace ns with the namespace's templates, and
// deletes the apps an earlier sync created whose resource is gone (gone: not declared at
// all, valid or not).
func (s *Source) apply(ctx context.Context, ns, env string, set slipway.Set, templates []slipway.AnalysisTemplate, before, declared []string) error {
	p, ok := s.cfg.Place(env)
	if !ok {
		return fmt.Errorf("kubesource: environment %q is not served (namespace %s)", env, ns)
	}
	set.Templates = templates
	opts := slipway.ApplyOptions{Actor: ActorKubernetes, Reason: "custom resources in namespace " + ns}
	var gone []string
	for _, name := range before {
		if !slices.Contains(declared, name) {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		// Delete by pruning: every other app and template of the environment is declared as
		// it is stored, so the prune removes exactly the gone apps.
		apps, err := p.State.Apps(ctx)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, a := range set.Apps {
			have[a.Name] = true
		}
		for _, a := range apps {
			if !have[a.Spec.Name] && !slices.Contains(gone, a.Spec.Name) {
				set.Apps = append(set.Apps, a.Spec)
			}
		}
		stored, err := p.State.Templates(ctx)
		if err != nil {
			return err
		}
		haveT := map[string]bool{}
		for _, t := range set.Templates {
			haveT[t.Name] = true
		}
		for _, t := range stored {
			if !haveT[t.Name] {
				set.Templates = append(set.Templates, t)
			}
		}
		opts.Prune = true
		s.log.Info("deleting apps whose resources are gone", "namespace", ns, "environment", env, "apps", gone)
	}
	if len(set.Apps) == 0 && len(set.Templates) == 0 && !opts.Prune {
		return nil
	}
	if env != slipway.DefaultEnvironment {
		for i := range set.Apps {
			set.Apps[i].Environment = env
		}
	}
	_, err := p.Deployer.Apply(ctx, set, opts)
	return err
}

// problems is an error's problems in one line each, joined.
func problems(err error) string {
	var e *slipway.Error
	if errors.As(err, &e) && len(e.Details) > 0 {
		return strings.Join(e.Details, "; ")
	}
	return slipway.ErrorMessage(err)
}
