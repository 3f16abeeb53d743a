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
