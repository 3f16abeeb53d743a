// Package kubernetes is the slipway.Platform of a Kubernetes namespace: each revision of an
// app is a ReplicaSet, the app's traffic goes through its Services, and a split is either
// the backend weights of a Gateway API HTTPRoute the app names or, without one, the ratio
// of instances its main Service sends to.
//
// The platform is level-triggered. Apply records what the engine wants for an app and
// converges the cluster to it at once; shared informers (ReplicaSets, Pods, Services and the
// HTTPRoutes apps name) keep a cache of the live objects and wake a worker whenever one of
// an app's objects changes, so a canary's weight moves once its pods are ready and an object
// changed behind slipway's back is put back. Every write is a server-side apply with
// slipway's own field manager, made only when the fields slipway owns differ from what it
// wants, so applying the same Desired again writes nothing.
//
// Start reading at Platform.Apply (this file), then reconcile.go (the order of the writes);
// objects.go builds the ReplicaSets and Services, split.go decides which revision each
// Service selects and how many instances serve, route.go edits the HTTPRoute, observe.go
// reports the live state, await.go waits for the caches to hold a convergence's writes,
// errors.go turns API errors into slipway errors that say what to do.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"slipway.dev/slipway"
)

var _ slipway.Platform = (*Platform)(nil)

// Labels and annotations slipway puts on the objects it creates.
const (
	// LabelApp names the app an object belongs to.
	LabelApp = "slipway.dev/app"
	// LabelRevision names the revision of a ReplicaSet and its pods.
	LabelRevision = "slipway.dev/revision"
	// LabelServing marks a pod the app's main Service sends traffic to while two revisions
	// share it without an HTTPRoute (value "true").
	LabelServing = "slipway.dev/serving"
	// LabelManagedBy is the standard label that says slipway created the object; the
	// platform's informers watch only objects that carry it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "slipway"

	// annotationVersion is the revision's version label, on a ReplicaSet.
	annotationVersion = "slipway.dev/version"
	// annotationSplit is the split the main Service carries out, on that Service.
	annotationSplit = "slipway.dev/split"
	// annotationRoute names the HTTPRoute (namespace/name) whose rules slipway edits for the
	// app, on the main Service: a route the app no longer names is restored from it, also
	// after a restart.
	annotationRoute = "slipway.dev/route"
)

// DefaultFieldManager is the field manager of slipway's server-side applies.
const DefaultFieldManager = "slipway"

// noClientRateLimit is the QPS of a client configuration that turns client-go's own rate
// limiter off (any negative value does).
const noClientRateLimit = -1

// Config configures a Platform.
type Config struct {
	// RESTConfig reaches the cluster; the clients below are made from it when nil. When it
	// sets neither QPS nor RateLimiter, the clients made from it do not limit their own
	// rate (client-go would send 5 requests a second): the API server's Priority and
	// Fairness does.
	RESTConfig *rest.Config
	// Kube and Gateway are the clients to use instead of ones made from RESTConfig.
	Kube    kubernetes.Interface
	Gateway gateway.Interface
	// Namespace is where the apps' objects live. Required.
	Namespace string
	// FieldManager names slipway's server-side applies; "" means DefaultFieldManager.
	FieldManager string
	// Log receives what the background worker does; nil discards it.
	Log *slog.Logger
	// Repaired, when set, is told of each repair the platform makes by itself: an app's
	// ReplicaSet or Service that another writer changed or deleted, put back as slipway
	// last wrote it, in words (what was changed, by which field manager, and how it was put
	// back). The platform repairs such drift as soon as its informers see it, before the
	// engine could; this is how the repair is recorded. It is called from the platform's
	// goroutines, with the app's convergence waiting on it.
	Repaired func(app, what string)
}

// Platform runs apps in one namespace of a cluster. It is safe for concurrent use; each app
// is converged by one goroutine at a time.
type Platform struct {
	kube     kubernetes.Interface
	gw       gateway.Interface
	ns       string
	manager  string
	log      *slog.Logger
	onRepair func(app, what string)

	factory  kubeinformers.SharedInformerFactory
	rsets    appslisters.ReplicaSetLister
	pods     corelisters.PodLister
	services corelisters.ServiceLister
	// rsByApp and podsByApp index the caches of ReplicaSets and Pods by app (indexByApp):
	// a lister's List with a label selector would read every object of the namespace, for
	// every app, on every Observe and convergence.
	rsByApp, podsByApp cache.Indexer
	synced             []cache.InformerSynced
	// queue holds the apps whose objects changed, for the background worker; Run makes it.
	queue workqueue.TypedRateLimitingInterface[string]

	// ready is closed once Run has filled the caches; runCtx is Run's context then.
	ready  chan struct{}
	runCtx context.Context

	mu      sync.Mutex
	desired map[string]*slipway.Desired // by app; guarded by mu
	locks   map[string]*sync.Mutex      // one per app, held while it converges
	routes  map[string]*routeCache      // HTTPRoute informers by namespace
	written map[string]lastWrite        // what slipway last wrote, by kind/name (repair.go)
}

// New returns a Platform for cfg's namespace. It starts nothing: Run fills the caches and
// converges in the background, and Apply, Observe and Remove wait for Run to be ready.
func New(cfg Config) (*Platform, error) {
	if cfg.Namespace == "" {
		return nil, slipway.Errorf(slipway.EINVALID, "kubernetes platform: no namespace; name the namespace the apps run in")
	}
	kube, gw := cfg.Kube, cfg.Gateway
	var err error
	if rc := cfg.RESTConfig; rc != nil && rc.QPS == 0 && rc.RateLimiter == nil {
		// client-go's default (5 requests a second, bursts of 10) would make a rollout of
		// many apps wait in the client: 1,000 apps' steps of two or three writes each take
		// minutes at 5 a second. The API server's Priority and Fairness protects it instead
		// (on by default since Kubernetes 1.20), as Kubernetes' API machinery group
		// recommends and controller-runtime does by default; the engine's reconcilers bound
		// how many of slipway's requests are in flight. A config that sets QPS or a rate
		// limiter keeps it.
		rc = rest.CopyConfig(rc)
		rc.QPS = noClientRateLimit
		cfg.RESTConfig = rc
	}
	if kube == nil {
		if cfg.RESTConfig == nil {
			return nil, slipway.Errorf(slipway.EINVALID, "kubernetes platform: no cluster; give a REST config or clients")
		}
		if kube, err = kubernetes.NewForConfig(cfg.RESTConfig); err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
	}
	if gw == nil {
		if cfg.RESTConfig == nil {
			return nil, slipway.Errorf(slipway.EINVALID, "kubernetes platform: no Gateway API client; give a REST config or the client")
		}
		if gw, err = gateway.NewForConfig(cfg.RESTConfig); err != nil {
			return nil, fmt.Errorf("gateway API client: %w", err)
		}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	manager := cfg.FieldManager
	if manager == "" {
		manager = DefaultFieldManager
	}
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0,
		kubeinformers.WithNamespace(cfg.Namespace),
		kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelManagedBy + "=" + ManagedBy }))
	p := &Platform{
		kube: kube, gw: gw, ns: cfg.Namespace, manager: manager, log: log, onRepair: cfg.Repaired,
		factory: factory,
		ready:   make(chan struct{}),
		desired: map[string]*slipway.Desired{},
		locks:   map[string]*sync.Mutex{},
		routes:  map[string]*routeCache{},
		written: map[string]lastWrite{},
	}
	rs := factory.Apps().V1().ReplicaSets()
	pods := factory.Core().V1().Pods()
	svcs := factory.Core().V1().Services()
	p.rsets, p.pods, p.services = rs.Lister(), pods.Lister(), svcs.Lister()
	for _, inf := range []cache.SharedIndexInformer{rs.Informer(), pods.Informer()} {
		if err := inf.AddIndexers(cache.Indexers{indexByApp: appOf}); err != nil {
			return nil, fmt.Errorf("index %s by app: %w", p.ns, err)
		}
	}
	p.rsByApp, p.podsByApp = rs.Informer().GetIndexer(), pods.Informer().GetIndexer()
	for _, inf := range []cache.SharedIndexInformer{rs.Informer(), pods.Informer(), svcs.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    p.nudgeObject,
			UpdateFunc: func(_, obj any) { p.nudgeObject(obj) },
			DeleteFunc: p.nudgeObject,
		}); err != nil {
			return nil, fmt.Errorf("watch %s: %w", p.ns, err)
		}
		p.synced = append(p.synced, inf.HasSynced)
	}
	return p, nil
}

// indexByApp names the index of the caches by the app an object belongs to (appOf).
const indexByApp = "app"

// appOf is the index function of indexByApp: the app an object's LabelApp names, if any.
// The informers watch one namespace, so the app alone is the key.
func appOf(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if app := m.GetLabels()[LabelApp]; app != "" {
		return []string{app}, nil
	}
	return nil, nil
}

// Back-off of the background worker's retries of an app that failed to converge.
const (
	retryBase = 200 * time.Millisecond
	retryMax  = 1 * time.Minute
)

// Run fills the caches, then converges the apps whose objects change until ctx ends. It
// returns after its goroutines have exited. Call it once.
func (p *Platform) Run(ctx context.Context) error {
	p.runCtx = ctx
	// The queue is made here, not in New: it starts a goroutine. The informers that add to
	// it start below.
	p.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryBase, retryMax),
			&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(50), 100)},
		),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "slipway-kubernetes"})
	defer p.queue.ShutDown() // also when the caches are not filled
	p.factory.Start(ctx.Done())
	defer p.factory.Shutdown()
	defer p.stopRoutes()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return fmt.Errorf("kubernetes platform: caches of namespace %s not filled: %w", p.ns, context.Cause(ctx))
	}
	close(p.ready)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p.work() {
		}
	}()
	<-ctx.Done()
	p.queue.ShutDown()
	<-done
	return nil
}

// wait blocks until Run is ready or ctx ends.
func (p *Platform) wait(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kubernetes platform not running (its caches are not filled): %w", ctx.Err())
	}
}

// work converges the next app of the queue; it returns false once the queue is shut down.
func (p *Platform) work() bool {
	app, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(app)
	if err := p.converge(p.runCtx, app); err != nil {
		if errors.Is(err, context.Canceled) {
			return true
		}
		p.log.Warn("converge failed; retrying", "app", app, "retries", p.queue.NumRequeues(app), "err", err)
		p.queue.AddRateLimited(app)
		return true
	}
	p.queue.Forget(app)
	return true
}

// nudgeObject queues the app an object of the namespace belongs to.
func (p *Platform) nudgeObject(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if app := m.GetLabels()[LabelApp]; app != "" {
		p.queue.Add(app)
	}
}

// lock returns app's lock, held while the app converges or is removed.
func (p *Platform) lock(app string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.locks[app]
	if !ok {
		l = &sync.Mutex{}
		p.locks[app] = l
	}
	return l
}

// Apply records d as app d.App's desired state and converges the cluster to it: the
// ReplicaSets of its revisions, the pods its main Service sends to, its Services and the
// weights and header rules of its HTTPRoute. It returns once every write is made, not once
// pods are ready; the background worker carries on as pods become ready.
//
// It returns EINVALID, and writes nothing, for a Desired no platform or this one cannot
// run (a revision without a container, more than two revisions taking traffic, header
// routes without an HTTPRoute); EFORBIDDEN, ENOTFOUND or ECONFLICT, saying what to do, when
// the cluster refuses a write.
func (p *Platform) Apply(ctx context.Context, d slipway.Desired) error {
	if problems := append(d.Problems(), p.problems(d)...); len(problems) > 0 {
		return &slipway.Error{Code: slipway.EINVALID, Message: fmt.Sprintf("desired state of %s cannot run on kubernetes", d.App), Details: problems}
	}
	if err := p.wait(ctx); err != nil {
		return err
	}
	l := p.lock(d.App)
	l.Lock()
	defer l.Unlock()
	cp := d
	cp.Split = d.Split.Clone()
	cp.Traffic = d.Traffic.Clone()
	p.mu.Lock()
	p.desired[d.App] = &cp
	p.mu.Unlock()
	var w wrote
	err := p.reconcile(ctx, &w, cp)
	p.await(ctx, w)
	if err != nil {
		// The worker tries again, backing off, whether or not the caller does.
		p.queue.AddRateLimited(d.App)
	}
	return err
}

// converge converges app to its recorded desired state, if it has one.
func (p *Platform) converge(ctx context.Context, app string) error {
	l := p.lock(app)
	l.Lock()
	defer l.Unlock()
	p.mu.Lock()
	d := p.desired[app]
	p.mu.Unlock()
	if d == nil {
		return nil
	}
	var w wrote
	err := p.reconcile(ctx, &w, *d)
	p.await(ctx, w)
	return err
}

// Remove takes app's traffic off (its header rules and backend out of the HTTPRoute, its
// Services), then deletes its ReplicaSets, whose pods the cluster then deletes. Objects of
// the app that slipway did not create are left alone. Removing an unknown app does nothing.
func (p *Platform) Remove(ctx context.Context, app string) error {
	if err := p.wait(ctx); err != nil {
		return err
	}
	l := p.lock(app)
	l.Lock()
	defer l.Unlock()
	p.mu.Lock()
	delete(p.desired, app)
	p.mu.Unlock()
	var w wrote
	defer func() { p.await(ctx, w) }()
	if ref, ok := p.routeOf(app); ok {
		if err := p.releaseRoute(ctx, &w, app, ref); err != nil {
			return err
		}
	}
	for _, role := range roles {
		if err := p.deleteService(ctx, &w, app, serviceName(app, role)); err != nil {
			return err
		}
	}
	rss, err := p.appReplicaSets(app)
	if err != nil {
		return err
	}
	for _, rs := range rss {
		if err := p.deleteReplicaSet(ctx, &w, rs); err != nil {
			return err
		}
	}
	return nil
}

// problems lists what makes d impossible on this platform (nil when nothing does).
func (p *Platform) problems(d slipway.Desired) []string {
	var out []string
	for i, pl := range d.Revisions {
		if pl.Revision.Spec.Container == nil {
			out = append(out, fmt.Sprintf("revisions[%d]: revision %s has no container; an app on kubernetes runs an image (spec.container)", i, pl.Revision.ID))
		}
	}
	weighted := 0
	for _, w := range d.Split.Weights {
		if w.Weight > 0 {
			weighted++
		}
	}
	if weighted > 2 {
		out = append(out, fmt.Sprintf("split.weights: %d revisions take traffic; on kubernetes at most two do (stable and canary)", weighted))
	}
	if len(d.Split.Routes) > 0 && d.Traffic.Route == nil {
		out = append(out, "split.routes: header routes on kubernetes are rules of an HTTPRoute; name the app's route in spec.traffic.route")
	}
	return out
}

// Settled returns a channel closed once Run has filled the caches: from then on Observe
// reports the cluster as it is, and the engine may decide on it.
func (p *Platform) Settled() <-chan struct{} { return p.ready }

// RESTConfig returns the client configuration of a kubeconfig file and context: the
// default loading rules ($KUBECONFIG, ~/.kube/config, then the in-cluster configuration of
// a pod's service account) when kubeconfig is "", the file's current context when context
// is "".
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", slipway.Errorf(slipway.EINVALID, "cannot load the kubeconfig %q (context %q); name a readable kubeconfig and one of its contexts, or run slipway in the cluster", kubeconfig, context), err)
	}
	return cfg, nil
}
