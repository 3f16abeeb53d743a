package kubernetes_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/kubernetes"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

// TestMain stops the test cluster the tests share, then checks that no platform left a
// goroutine running.
func TestMain(m *testing.M) {
	code := kubetest.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// wait is how long a test waits for the cluster to converge.
const wait = 30 * time.Second

// container is what the tests' revisions run; kwok makes its pods Ready without running it.
var container = slipway.ContainerSpec{Image: "registry.example/web:1", Port: 8080,
	Ports:     []slipway.ContainerPort{{Name: "metrics", Port: 9090}},
	Env:       map[string]string{"B": "2", "A": "1"},
	Resources: &slipway.Resources{Requests: map[string]slipway.Quantity{"cpu": "0.01", "memory": "16Mi"}, Limits: map[string]slipway.Quantity{"memory": "1e9"}}}

// env is a namespace of the test cluster with clients.
type env struct {
	cfg *rest.Config
	ns  string
	gw  gateway.Interface
	k   *kubetest.Cluster
}

func newEnv(t *testing.T) env {
	t.Helper()
	k := kubetest.Shared(t)
	gw, err := gateway.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	return env{cfg: k.Config, ns: k.Namespace(t), gw: gw, k: k}
}

// start returns a running platform of e's namespace with cfg's REST config (e's when nil);
// a cleanup stops it and waits for Run to return.
func (e env) start(t *testing.T, cfg *rest.Config) *kubernetes.Platform {
	t.Helper()
	p, _ := e.run(t, cfg)
	return p
}

// run is start that also returns a function that stops the platform (as a restart of
// slipway does) and waits for Run to return.
func (e env) run(t *testing.T, cfg *rest.Config) (*kubernetes.Platform, func()) {
	t.Helper()
	if cfg == nil {
		cfg = e.cfg
	}
	return e.runConfig(t, kubernetes.Config{RESTConfig: cfg, Namespace: e.ns})
}

// runConfig is run with a platform configuration of the test's own.
func (e env) runConfig(t *testing.T, c kubernetes.Config) (*kubernetes.Platform, func()) {
	t.Helper()
	p, err := kubernetes.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}

// route creates HTTPRoute name in e's namespace with rules, unless it exists.
func (e env) route(ctx context.Context, name string, rules []gwv1.HTTPRouteRule) error {
	rt := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: gwv1.HTTPRouteSpec{Rules: rules}}
	_, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Create(ctx, rt, metav1.CreateOptions{FieldManager: "user"})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func backend(name string, weight int) gwv1.HTTPBackendRef {
	port := gwv1.PortNumber(8080)
	w := int32(weight)
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: &port}, Weight: &w}}
}

func pathRule(path string, refs ...gwv1.HTTPBackendRef) gwv1.HTTPRouteRule {
	typ := gwv1.PathMatchPathPrefix
	return gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &typ, Value: &path}}}, BackendRefs: refs}
}

// TestPlatform_Conformance runs the suite every platform passes, each app split by an
// HTTPRoute of its own that sends to its stable Service.
func TestPlatform_Conformance(t *testing.T) {
	slipwaytest.TestPlatform(t, slipwaytest.PlatformHarness{
		New: func(t *testing.T) slipway.Platform {
			e := newEnv(t)
			var r repairs
			p, _ := e.runConfig(t, kubernetes.Config{RESTConfig: e.cfg, Namespace: e.ns, Repaired: r.add})
			t.Cleanup(func() {
				// Nothing changes the objects behind slipway's back here: its own changes,
				// and the cluster catching up with them, are no drift.
				if got := r.take(); len(got) > 0 {
					t.Errorf("repairs reported with no other writer: %q", got)
				}
			})
			return harnessPlatform{p: p, e: e}
		},
		Container: &container,
		Wait:      wait,
	})
}

// harnessPlatform makes, before an app's first apply, the HTTPRoute its traffic names.
type harnessPlatform struct {
	p *kubernetes.Platform
	e env
}

func (h harnessPlatform) Apply(ctx context.Context, d slipway.Desired) error {
	if err := h.e.route(ctx, d.App, []gwv1.HTTPRouteRule{pathRule("/", backend(d.App+"-stable", 1))}); err != nil {
		return fmt.Errorf("create the app's HTTPRoute: %w", err)
	}
	d.Traffic.Route = &slipway.RouteRef{Name: d.App}
	return h.p.Apply(ctx, d)
}

func (h harnessPlatform) Observe(ctx context.Context, app string) (slipway.Observed, error) {
	return h.p.Observe(ctx, app)
}

func (h harnessPlatform) Remove(ctx context.Context, app string) error { return h.p.Remove(ctx, app) }

// revisions returns two revisions of app.
func revisions(app string) (v1, v2 slipway.Revision) {
	return slipwaytest.ContainerRevision(app, "v1", container), slipwaytest.ContainerRevision(app, "v2", container)
}

func weights(ws ...any) slipway.Split {
	var s slipway.Split
	for i := 0; i+1 < len(ws); i += 2 {
		s.Weights = append(s.Weights, slipway.Weight{Revision: ws[i].(slipway.Revision).ID, Weight: ws[i+1].(int)})
	}
	return s
}

func place(r slipway.Revision, n int) slipway.Placement {
	return slipway.Placement{Revision: r, Replicas: n}
}

// converged waits until p observes app with want ready instances per revision and split
// equal to split, and returns the observation.
func converged(t *testing.T, p slipway.Platform, app string, want map[string]int, split slipway.Split) slipway.Observed {
	t.Helper()
	var obs slipway.Observed
	slipwaytest.Eventually(t, wait, fmt.Sprintf("%s at %v ready with split %+v", app, want, split), func() bool {
		var err error
		obs, err = p.Observe(context.Background(), app)
		if err != nil {
			return false
		}
		for _, r := range obs.Revisions {
			if r.Ready() != want[r.Revision] || len(r.Instances) != want[r.Revision] {
				return false
			}
		}
		for rev, n := range want {
			if obs.Revision(rev).Ready() != n {
				return false
			}
		}
		return obs.Split.Equal(split)
	})
	return obs
}

// writes counts the requests that change the cluster (any method but GET) made with a
// config, by resource.
type writes struct {
	mu sync.Mutex
	n  map[string]int
}

func (w *writes) config(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet {
				w.mu.Lock()
				if w.n == nil {
					w.n = map[string]int{}
				}
				w.n[r.Method+" "+r.URL.Path]++
				w.mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	}
	return c
}

func (w *writes) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.n
	w.n = nil
	return n
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPlatform_ReapplyWritesNothing: once converged, applying the same desired state again
// makes no write to the cluster, with an HTTPRoute and header route, and with a split by
// pods.
func TestPlatform_ReapplyWritesNothing(t *testing.T) {
	e := newEnv(t)
	var w writes
	p := e.start(t, w.config(e.cfg))
	ctx := t.Context()
	if err := e.route(ctx, "routed", []gwv1.HTTPRouteRule{pathRule("/", backend("routed-stable", 1))}); err != nil {
		t.Fatal(err)
	}
	r1, r2 := revisions("routed")
	p1, p2 := revisions("pods")
	routed := weights(r2, 20, r1, 80)
	routed.Routes = []slipway.Route{{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}, Revision: r2.ID}}
	desired := []slipway.Desired{
		{App: "routed", Traffic: slipway.Traffic{Route: &slipway.RouteRef{Name: "routed"}}, Revisions: []slipway.Placement{place(r1, 3), place(r2, 1)}, Split: routed},
		{App: "pods", Revisions: []slipway.Placement{place(p1, 4), place(p2, 1)}, Split: weights(p2, 20, p1, 80)},
	}
	for _, d := range desired {
		if err := p.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, p, "routed", map[string]int{r1.ID: 3, r2.ID: 1}, routed)
	converged(t, p, "pods", map[string]int{p1.ID: 4, p2.ID: 1}, weights(p2, 20, p1, 80))
	// Let the worker finish what pod readiness started (labels, weights).
	slipwaytest.Eventually(t, wait, "the worker to stop writing", func() bool {
		if len(w.take()) > 0 {
			return false
		}
		time.Sleep(300 * time.Millisecond)
		return len(w.take()) == 0
	})
	for range 3 {
		for _, d := range desired {
			if err := p.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := w.take(); len(got) > 0 {
		t.Errorf("re-applying the same desired states wrote %v", got)
	}
}

// TestPlatform_RouteKeepsWhatIsNotSlipways: slipway sets the weights of the app's backends
// and its header rules in a user's HTTPRoute and leaves the user's other rules, matches,
// filters, timeouts and backends as it found them, also from a new platform (a restart) and
// after the user edits the route; removing the app takes slipway's parts out again.
func TestPlatform_RouteKeepsWhatIsNotSlipways(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	api := pathRule("/api", backend("web-stable", 1), backend("legacy", 3))
	filter := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: "X-From", Value: "gateway"}}}}
	api.Filters = []gwv1.HTTPRouteFilter{filter}
	timeout := gwv1.Duration("10s")
	api.Timeouts = &gwv1.HTTPRouteTimeouts{Request: &timeout}
	other := pathRule("/", backend("other", 1))
	if err := e.route(ctx, "shop", []gwv1.HTTPRouteRule{api, other}); err != nil {
		t.Fatal(err)
	}
	v1, v2 := revisions("web")
	d := slipway.Desired{App: "web", Traffic: slipway.Traffic{Route: &slipway.RouteRef{Name: "shop"}},
		Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: weights(v2, 20, v1, 80)}
	d.Split.Routes = []slipway.Route{{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}, Revision: v2.ID}}

	check := func(p slipway.Platform, stableW, canaryW int, headerRules int) {
		t.Helper()
		var rt *gwv1.HTTPRoute
		slipwaytest.Eventually(t, wait, fmt.Sprintf("weights %d/%d on the route", stableW, canaryW), func() bool {
			var err error
			rt, err = e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "shop", metav1.GetOptions{})
			if err != nil {
				return false
			}
			r := findRule(rt, "/api", "web-stable")
			return r != nil && weightOf(*r, "web-stable") == stableW && weightOf(*r, "web-canary") == canaryW
		})
		r := findRule(rt, "/api", "web-stable")
		if weightOf(*r, "legacy") != 3 || len(r.Filters) != 1 || r.Filters[0].RequestHeaderModifier.Add[0].Value != "gateway" ||
			r.Timeouts == nil || *r.Timeouts.Request != "10s" {
			t.Errorf("the user's rule lost its own parts: %+v", r)
		}
		if o := findRule(rt, "/", "other"); o == nil || len(o.BackendRefs) != 1 {
			t.Errorf("the user's other rule changed: %+v", rt.Spec.Rules)
		}
		own := 0
		for _, r := range rt.Spec.Rules {
			if r.Name != nil && strings.HasPrefix(string(*r.Name), "slipway.web.") {
				own++
				if len(r.BackendRefs) != 1 || r.BackendRefs[0].Name != "web-canary" || len(r.Filters) != 1 {
					t.Errorf("header rule %s: %+v, want one backend web-canary and the rule's filter", *r.Name, r)
				}
			}
		}
		if own != headerRules {
			t.Errorf("%d header rules of slipway in %+v, want %d", own, rt.Spec.Rules, headerRules)
		}
	}

	p, stop := e.run(t, nil)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 2, v2.ID: 1}, d.Split)
	check(p, 80, 20, 1)

	// The user changes their rule behind slipway's back: a new weight for the legacy backend
	// stays, weights slipway owns are put back.
	rt, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := findRule(rt, "/api", "web-stable")
	for i := range r.BackendRefs {
		w := int32(7)
		r.BackendRefs[i].Weight = &w
	}
	if _, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Update(ctx, rt, metav1.UpdateOptions{FieldManager: "user"}); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, wait, "slipway's weights put back", func() bool {
		rt, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return false
		}
		r := findRule(rt, "/api", "web-stable")
		return r != nil && weightOf(*r, "web-stable") == 80 && weightOf(*r, "web-canary") == 20 && weightOf(*r, "legacy") == 7
	})

	// A new platform (slipway restarted) moves the weights and keeps the user's parts.
	stop()
	p2 := e.start(t, nil)
	d.Split = weights(v2, 50, v1, 50)
	if err := p2.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p2, "web", map[string]int{v1.ID: 2, v2.ID: 1}, d.Split)
	rt, err = e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := findRule(rt, "/api", "web-stable"); r == nil || weightOf(*r, "legacy") != 7 {
		t.Errorf("the user's legacy weight did not survive the restart: %+v", rt.Spec.Rules)
	}
	if n := len(rt.Spec.Rules); n != 2 {
		t.Errorf("%d rules after the header route ended, want the user's 2", n)
	}

	if err := p2.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	rt, err = e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := findRule(rt, "/api", "web-stable"); r == nil || weightOf(*r, "web-canary") != -1 || weightOf(*r, "legacy") != 7 || len(rt.Spec.Rules) != 2 {
		t.Errorf("after remove the route is %+v; want the user's rules without slipway's canary backend", rt.Spec.Rules)
	}
	if _, ok := rt.Annotations["routes.slipway.dev/web"]; ok {
		t.Error("after remove the route keeps slipway's annotation")
	}
}

func findRule(rt *gwv1.HTTPRoute, path, backend string) *gwv1.HTTPRouteRule {
	for i, r := range rt.Spec.Rules {
		if r.Name != nil {
			continue
		}
		for _, m := range r.Matches {
			if m.Path != nil && m.Path.Value != nil && *m.Path.Value == path && weightOf(r, backend) >= 0 {
				return &rt.Spec.Rules[i]
			}
		}
	}
	return nil
}

func weightOf(r gwv1.HTTPRouteRule, name string) int {
	for _, b := range r.BackendRefs {
		if string(b.Name) == name {
			if b.Weight == nil {
				return 1
			}
			return int(*b.Weight)
		}
	}
	return -1
}

// TestPlatform_SplitsByPodsWithoutRoute: without an HTTPRoute, two revisions share the main
// Service by the pods it selects, in the closest ratio to the weight, and the split is
// reported as approximate; when one revision takes everything the Service selects it by its
// revision label again.
func TestPlatform_SplitsByPodsWithoutRoute(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := e.start(t, nil)
	v1, v2 := revisions("web")
	d := slipway.Desired{App: "web", Revisions: []slipway.Placement{place(v1, 5), place(v2, 1)}, Split: weights(v1, 100)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 5, v2.ID: 1}, d.Split)
	main := e.service(t, "web")
	if main.Spec.Selector[kubernetes.LabelRevision] != v1.ID {
		t.Errorf("main selector %v, want revision %s", main.Spec.Selector, v1.ID)
	}

	d.Split = weights(v2, 20, v1, 80)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	obs := converged(t, p, "web", map[string]int{v1.ID: 5, v2.ID: 1}, d.Split)
	if !obs.Split.Approximate {
		t.Errorf("split %+v not marked approximate", obs.Split)
	}
	slipwaytest.Eventually(t, wait, "4 stable and 1 canary pods serving", func() bool {
		n := e.servingPods(t, "web")
		return n[v1.ID] == 4 && n[v2.ID] == 1
	})
	main = e.service(t, "web")
	if main.Spec.Selector[kubernetes.LabelServing] != "true" || main.Spec.Selector[kubernetes.LabelRevision] != "" {
		t.Errorf("main selector %v, want the serving pods", main.Spec.Selector)
	}
	if sel := e.service(t, "web-canary").Spec.Selector[kubernetes.LabelRevision]; sel != v2.ID {
		t.Errorf("canary Service selects %q, want %s", sel, v2.ID)
	}

	d.Split = weights(v2, 100)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	obs = converged(t, p, "web", map[string]int{v1.ID: 5, v2.ID: 1}, d.Split)
	if obs.Split.Approximate {
		t.Errorf("split %+v marked approximate with one revision", obs.Split)
	}
	if sel := e.service(t, "web").Spec.Selector; sel[kubernetes.LabelRevision] != v2.ID {
		t.Errorf("main selector %v, want revision %s", sel, v2.ID)
	}
}

func (e env) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	svc, err := e.k.Client.CoreV1().Services(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// servingPods counts the pods of app labelled serving, by revision.
func (e env) servingPods(t *testing.T, app string) map[string]int {
	t.Helper()
	pods, err := e.k.Client.CoreV1().Pods(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: kubernetes.LabelApp + "=" + app + "," + kubernetes.LabelServing + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			n[p.Labels[kubernetes.LabelRevision]]++
		}
	}
	return n
}

// TestPlatform_BlueGreenSwitchesSelectors: the preview Service selects the new revision
// until the switch, which moves the main and stable Services' selectors to it.
func TestPlatform_BlueGreenSwitchesSelectors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := e.start(t, nil)
	v1, v2 := revisions("web")
	d := slipway.Desired{App: "web", Revisions: []slipway.Placement{place(v1, 2), place(v2, 2)}, Split: weights(v1, 100), Preview: v2.ID}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 2, v2.ID: 2}, d.Split)
	slipwaytest.Eventually(t, wait, "previewing "+v2.ID, func() bool {
		obs, err := p.Observe(ctx, "web")
		return err == nil && obs.Preview == v2.ID
	})
	for name, rev := range map[string]string{"web": v1.ID, "web-stable": v1.ID, "web-preview": v2.ID} {
		if sel := e.service(t, name).Spec.Selector[kubernetes.LabelRevision]; sel != rev {
			t.Errorf("Service %s selects %q, want %s", name, sel, rev)
		}
	}
	d.Split, d.Preview = weights(v2, 100), ""
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 2, v2.ID: 2}, d.Split)
	slipwaytest.Eventually(t, wait, "no preview after the switch", func() bool {
		obs, err := p.Observe(ctx, "web")
		return err == nil && obs.Preview == ""
	})
	for _, name := range []string{"web", "web-stable", "web-canary", "web-preview"} {
		if sel := e.service(t, name).Spec.Selector[kubernetes.LabelRevision]; sel != v2.ID {
			t.Errorf("Service %s selects %q after the switch, want %s", name, sel, v2.ID)
		}
	}
}

// TestPlatform_RefusalsSayWhatToDo: a write the cluster forbids, one its quota refuses, and
// an HTTPRoute that does not exist come back as slipway errors that say what to do.
func TestPlatform_RefusalsSayWhatToDo(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	kc := e.k.Client
	v1, _ := revisions("web")
	d := slipway.Desired{App: "web", Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)}

	// A user who may read the namespace but not write to it.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: e.ns}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"", "apps"}, Resources: []string{"pods", "services", "replicasets"}, Verbs: []string{"get", "list", "watch"}}}}
	if _, err := kc.RbacV1().Roles(e.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: e.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "reader"}}}
	if _, err := kc.RbacV1().RoleBindings(e.ns).Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reader := rest.CopyConfig(e.cfg)
	reader.Impersonate = rest.ImpersonationConfig{UserName: "reader"}
	err := e.start(t, reader).Apply(ctx, d)
	if code := slipway.ErrorCode(err); code != slipway.EFORBIDDEN || !strings.Contains(err.Error(), "grant slipway's account") {
		t.Errorf("a forbidden write: %v (code %s), want EFORBIDDEN saying what to grant", err, code)
	}

	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-replicasets", Namespace: e.ns},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/replicasets.apps": resource.MustParse("0")}}}
	if _, err := kc.CoreV1().ResourceQuotas(e.ns).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.start(t, nil)
	slipwaytest.Eventually(t, wait, "the quota to refuse", func() bool {
		err = p.Apply(ctx, d)
		return err != nil && strings.Contains(err.Error(), "exceeded quota")
	})
	if code := slipway.ErrorCode(err); code != slipway.EUNAVAILABLE || !strings.Contains(err.Error(), "raise the quota") {
		t.Errorf("a quota refusal: %v (code %s), want EUNAVAILABLE saying to raise the quota", err, code)
	}
	if err := kc.CoreV1().ResourceQuotas(e.ns).Delete(ctx, "no-replicasets", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	d.Traffic.Route = &slipway.RouteRef{Name: "missing"}
	err = p.Apply(ctx, d)
	if code := slipway.ErrorCode(err); code != slipway.ENOTFOUND || !strings.Contains(err.Error(), "web-stable") {
		t.Errorf("a missing HTTPRoute: %v (code %s), want ENOTFOUND saying what to create", err, code)
	}

	bad := d
	bad.Traffic = slipway.Traffic{}
	bad.Revisions = []slipway.Placement{place(slipwaytest.Revision("web", "v9", slipway.RunSpec{Command: "x"}), 1)}
	bad.Split = slipway.Split{}
	if err := p.Apply(ctx, bad); slipway.ErrorCode(err) != slipway.EINVALID {
		t.Errorf("a revision without a container: %v, want EINVALID", err)
	}
}

// TestPlatform_WeightWaitsForReadyCanary: a canary whose pods are not ready takes no
// traffic, with an HTTPRoute (its backend stays at weight 0) and without (no pod of it
// serves, stable's serve in its stead); once its pod is ready, the weight moves.
func TestPlatform_WeightWaitsForReadyCanary(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	kc := e.k.Client
	p := e.start(t, nil)
	if err := e.route(ctx, "routed", []gwv1.HTTPRouteRule{pathRule("/", backend("routed-stable", 1))}); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"routed", "pods"} {
		t.Run(app, func(t *testing.T) {
			v1, v2 := revisions(app)
			d := slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 0)}, Split: weights(v1, 100)}
			if app == "routed" {
				d.Traffic.Route = &slipway.RouteRef{Name: "routed"}
			}
			if err := p.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			converged(t, p, app, map[string]int{v1.ID: 2}, d.Split)
			// The canary's pods will stay unready: the test cluster keeps pods with this
			// label from becoming Ready. A label of another field manager's on the template
			// is not slipway's to remove.
			rs := app + "-" + v2.ID
			unready := fmt.Sprintf(`{"spec":{"template":{"metadata":{"labels":{%q:"true"}}}}}`, kubetest.UnreadyLabel)
			if _, err := kc.AppsV1().ReplicaSets(e.ns).Patch(ctx, rs, types.MergePatchType, []byte(unready), metav1.PatchOptions{FieldManager: "test"}); err != nil {
				t.Fatal(err)
			}
			d.Revisions = []slipway.Placement{place(v1, 2), place(v2, 1)}
			d.Split = weights(v2, 20, v1, 80)
			if err := p.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
			var pod string
			slipwaytest.Eventually(t, wait, "the canary's pod running unready", func() bool {
				obs, err := p.Observe(ctx, app)
				if err != nil || len(obs.Revision(v2.ID).Instances) != 1 {
					return false
				}
				pod = obs.Revision(v2.ID).Instances[0].ID
				got, err := kc.CoreV1().Pods(e.ns).Get(ctx, pod, metav1.GetOptions{})
				return err == nil && got.Status.Phase == corev1.PodRunning
			})
			time.Sleep(500 * time.Millisecond) // what the worker would do on the pod's news
			obs, err := p.Observe(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			if !obs.Split.Equal(weights(v1, 100)) {
				t.Errorf("split %+v with the canary unready, want everything on %s", obs.Split, v1.ID)
			}
			if app == "routed" {
				rt, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "routed", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if r := findRule(rt, "/", "routed-stable"); r == nil || weightOf(*r, "routed-stable") != 100 || weightOf(*r, "routed-canary") != 0 {
					t.Errorf("route rules %+v with the canary unready, want stable 100 and canary 0", rt.Spec.Rules)
				}
			} else if n := e.servingPods(t, app); n[v1.ID] != 2 || n[v2.ID] != 0 {
				t.Errorf("serving pods %v with the canary unready, want both stable pods and no canary", n)
			}

			// A ready pod replaces it: the weight moves.
			ready := fmt.Sprintf(`{"spec":{"template":{"metadata":{"labels":{%q:null}}}}}`, kubetest.UnreadyLabel)
			if _, err := kc.AppsV1().ReplicaSets(e.ns).Patch(ctx, rs, types.MergePatchType, []byte(ready), metav1.PatchOptions{FieldManager: "test"}); err != nil {
				t.Fatal(err)
			}
			if err := kc.CoreV1().Pods(e.ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			converged(t, p, app, map[string]int{v1.ID: 2, v2.ID: 1}, d.Split)
			if app == "pods" {
				slipwaytest.Eventually(t, wait, "a canary pod serving", func() bool {
					n := e.servingPods(t, app)
					return n[v1.ID] == 2 && n[v2.ID] == 1
				})
			}
		})
	}
}

// TestPlatform_PodTemplate: a revision's ReplicaSet runs its container with its command,
// environment, ports, resources and slipway's probes, and its sidecars beside it, in pods
// labelled for the Services.
func TestPlatform_PodTemplate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := e.start(t, nil)
	c := container
	c.Command, c.Args = []string{"/bin/web"}, []string{"--listen", ":8080"}
	spec := slipway.RevisionSpec{Version: "v1", Container: &c,
		Sidecars: []slipway.ContainerSpec{{Name: "shipper", Image: "registry.example/shipper:2", Ports: []slipway.ContainerPort{{Name: "fluent", Port: 24224}}}},
		Health: slipway.Health{
			Readiness: &slipway.Probe{HTTP: &slipway.HTTPProbe{Path: "/ready"}, Period: slipway.Duration(2 * time.Second), FailureThreshold: 3},
			Liveness:  &slipway.Probe{Exec: &slipway.ExecProbe{Command: []string{"/bin/check"}}, Timeout: slipway.Duration(1500 * time.Millisecond)},
		}}
	rev := slipway.Revision{App: "web", ID: spec.Hash(), Version: "v1", Spec: spec}
	d := slipway.Desired{App: "web", Revisions: []slipway.Placement{place(rev, 1)}, Split: weights(rev, 100)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{rev.ID: 1}, d.Split)
	rs, err := e.k.Client.AppsV1().ReplicaSets(e.ns).Get(ctx, "web-"+rev.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := rs.Spec.Template.Labels; l[kubernetes.LabelApp] != "web" || l[kubernetes.LabelRevision] != rev.ID || l[kubernetes.LabelManagedBy] != kubernetes.ManagedBy {
		t.Errorf("pod labels %v", l)
	}
	cs := rs.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Name != "app" || cs[1].Name != "shipper" || cs[1].Image != "registry.example/shipper:2" {
		t.Fatalf("containers %+v, want app and shipper", cs)
	}
	app := cs[0]
	if app.Image != c.Image || app.Command[0] != "/bin/web" || app.Args[1] != ":8080" {
		t.Errorf("app container %+v", app)
	}
	if len(app.Env) != 2 || app.Env[0].Name != "A" || app.Env[1].Value != "2" {
		t.Errorf("env %+v, want A=1 and B=2 in order", app.Env)
	}
	if len(app.Ports) != 2 || app.Ports[0].Name != "http" || app.Ports[0].ContainerPort != 8080 || app.Ports[1].Name != "metrics" {
		t.Errorf("ports %+v", app.Ports)
	}
	if q := app.Resources.Requests[corev1.ResourceCPU]; q.String() != "10m" {
		t.Errorf("cpu request %s, want 10m", q.String())
	}
	if q := app.Resources.Limits[corev1.ResourceMemory]; q.Value() != 1e9 {
		t.Errorf("memory limit %s, want 1e9", q.String())
	}
	if r := app.ReadinessProbe; r == nil || r.HTTPGet == nil || r.HTTPGet.Path != "/ready" || r.HTTPGet.Port.StrVal != "http" || r.PeriodSeconds != 2 || r.FailureThreshold != 3 {
		t.Errorf("readiness probe %+v", r)
	}
	if l := app.LivenessProbe; l == nil || l.Exec == nil || l.Exec.Command[0] != "/bin/check" || l.TimeoutSeconds != 2 {
		t.Errorf("liveness probe %+v, want exec with a 2 s timeout (1.5 s rounded up)", l)
	}
	if cs[1].ReadinessProbe != nil || len(cs[1].Ports) != 1 {
		t.Errorf("sidecar %+v, want no probe and its port", cs[1])
	}
}
