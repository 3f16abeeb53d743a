package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"

	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

// kubeEnv is the slipway Environment, with target kubernetes, that the kubernetes tests'
// apps run in.
const kubeEnv = "cluster"

// kubeWait bounds every wait of the kubernetes tests: pods are Ready about a second after
// they are created, so a step that takes this long is stuck.
const kubeWait = 60 * time.Second

// kubeSlipway is the slipway binary's server beside the shared test cluster, running the
// apps of an Environment with target kubernetes (kubeEnv) in a namespace of the test's own,
// with a kubeconfig that authenticates as the ServiceAccount of deploy/kubernetes/rbac.yaml
// bound in that namespace by the file's own RoleBindings: whatever slipway does there, the
// install manifests grant. The server's own environment runs on sim.
type kubeSlipway struct {
	*cluster
	k  *kubetest.Cluster
	ns string
	// kubeconfig is the ServiceAccount's, a token the API server issued.
	kubeconfig string
	// gw and dyn are the cluster administrator's, for what the tests do behind slipway's back.
	gw  gateway.Interface
	dyn dynamic.Interface
}

// kubeOptions change how newKubeSlipway starts the server.
type kubeOptions struct {
	// resources: the server also watches the namespace's custom resources
	// (--kube-namespaces), its apps in kubeEnv (--kube-environment).
	resources bool
	// flags are further server flags.
	flags []string
}

// newKubeSlipway makes a namespace, binds slipway's ServiceAccount in it as rbac.yaml does,
// starts the server with the ServiceAccount's kubeconfig and declares kubeEnv on the
// namespace. A cleanup stops the server before the namespace is deleted.
func newKubeSlipway(t *testing.T, opts kubeOptions) *kubeSlipway {
	t.Helper()
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	ks := &kubeSlipway{k: k, ns: ns}
	var err error
	if ks.gw, err = gateway.NewForConfig(k.Config); err != nil {
		t.Fatal(err)
	}
	if ks.dyn, err = dynamic.NewForConfig(k.Config); err != nil {
		t.Fatal(err)
	}
	installOnce(t, k)
	applyManifests(t, k, "rbac.yaml", func(obj *unstructured.Unstructured) {
		if obj.GetKind() == "RoleBinding" {
			obj.SetNamespace(ns)
		}
	})
	ks.kubeconfig = serviceAccountKubeconfig(t, k, ns)

	ks.cluster = &cluster{t: t, data: t.TempDir(), dir: t.TempDir(), platform: "sim"}
	ks.flags = append(ks.flags, opts.flags...)
	if opts.resources {
		ks.flags = append(ks.flags, "--kube-namespaces", ns, "--kubeconfig", ks.kubeconfig, "--kube-environment", ns+"="+kubeEnv)
	}
	ks.start()
	t.Cleanup(ks.stop)
	env := filepath.Join(ks.dir, "environment.yaml")
	doc := fmt.Sprintf("apiVersion: slipway.dev/v1alpha1\nkind: Environment\nmetadata: {name: %s}\nspec:\n  target: {kind: kubernetes, kubernetes: {kubeconfig: %q, namespace: %s}}\n",
		kubeEnv, ks.kubeconfig, ns)
	if err := os.WriteFile(env, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ks.must("apply", "-f", env)
	return ks
}

// installed holds the clusters installOnce installed slipway's cluster-wide objects in.
var installed struct {
	sync.Mutex
	done map[*kubetest.Cluster]bool
}

// installOnce applies what deploy/kubernetes installs once per cluster: slipway's
// namespace and CRDs, which it waits to be Established.
func installOnce(t *testing.T, k *kubetest.Cluster) {
	t.Helper()
	installed.Lock()
	defer installed.Unlock()
	if installed.done[k] {
		return
	}
	applyManifests(t, k, "namespace.yaml", nil)
	applyManifests(t, k, "crds.yaml", nil)
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range crdNames(t) {
		slipwaytest.Eventually(t, kubeWait, "CRD "+name+" Established", func() bool {
			crd, err := dyn.Resource(crdGVR).Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("CRD %s: %v", name, err)
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if c, _ := c.(map[string]any); c["type"] == "Established" && c["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
	if installed.done == nil {
		installed.done = map[*kubetest.Cluster]bool{}
	}
	installed.done[k] = true
}

// applyManifests applies the documents of the file name of deploy/kubernetes as the
// cluster's administrator (server-side, field manager e2e), each first changed by edit when
// it is not nil.
func applyManifests(t *testing.T, k *kubetest.Cluster, name string, edit func(*unstructured.Unstructured)) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	disco, err := kubernetes.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco.Discovery()))
	for _, d := range manifests(t, name) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(d, &obj.Object); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if edit != nil {
			edit(obj)
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, gvk, err)
		}
		body, err := obj.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		force := true
		if _, err := ri.Patch(t.Context(), obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "e2e", Force: &force}); err != nil {
			t.Fatalf("apply %s %s from %s: %v", gvk.Kind, obj.GetName(), name, err)
		}
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as slipway's
// ServiceAccount with a token the API server issued (TokenRequest), and returns its path once
// the ServiceAccount may watch ReplicaSets in ns (the RoleBindings are in force).
func serviceAccountKubeconfig(t *testing.T, k *kubetest.Cluster, ns string) string {
	t.Helper()
	ctx := t.Context()
	sa := serviceAccountConfig(t, ctx, k)
	ca := k.Config.CAData
	if len(ca) == 0 && k.Config.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(k.Config.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: k.Config.Host, CertificateAuthorityData: ca}
	cfg.AuthInfos["slipway"] = &clientcmdapi.AuthInfo{Token: sa.BearerToken}
	cfg.Contexts["slipway"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "slipway", Namespace: ns}
	cfg.CurrentContext = "slipway"
	path := filepath.Join(t.TempDir(), "slipway.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, kubeWait, "the ServiceAccount's RoleBindings in force", func() bool {
		return can(t, ctx, c, ns, "apps", "replicasets", "watch") && can(t, ctx, c, ns, "gateway.networking.k8s.io", "httproutes", "patch")
	})
	return path
}

// slipway runs a slipway command about kubeEnv and returns its output; the test fails when it
// exits other than 0.
func (ks *kubeSlipway) slipway(args ...string) string {
	ks.t.Helper()
	return ks.must(append([]string{"-e", kubeEnv}, args...)...)
}

// appStatus is `slipway status APP -o json` in kubeEnv.
func (ks *kubeSlipway) appStatus(app string) status {
	ks.t.Helper()
	return ks.statusIn(kubeEnv, app)
}

// waitStatus polls app's status until ok, for at most kubeWait.
func (ks *kubeSlipway) waitStatus(app, what string, ok func(status) bool) status {
	ks.t.Helper()
	var s status
	slipwaytest.Eventually(ks.t, kubeWait, app+": "+what, func() bool {
		s = ks.appStatus(app)
		return ok(s)
	})
	return s
}

// waitPhase waits for app's rollout of version to reach phase.
func (ks *kubeSlipway) waitPhase(app, version, phase string) status {
	ks.t.Helper()
	return ks.waitStatus(app, "rollout of "+version+" "+phase, func(s status) bool {
		if r := s.Rollout; r != nil && r.Phase == "Aborted" && phase != "Aborted" {
			ks.t.Fatalf("%s: rollout aborted: %s", app, r.Reason)
		}
		return s.Rollout != nil && s.Rollout.Phase == phase && s.Rollout.Version == version
	})
}

// kubeApp writes an App of kubeEnv that runs image registry.example/NAME:VERSION with
// replicas replicas, more spec (YAML indented by two spaces: traffic, strategy, analysis)
// after its container, and returns the file's path.
func (ks *kubeSlipway) kubeApp(name, version string, replicas int, more string) string {
	ks.t.Helper()
	doc := fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: %s, environment: %s}
spec:
  replicas: %d
  version: %s
  container:
    image: registry.example/%s:%s
    port: 8080
  health:
    readiness: {http: {path: /ready}, period: 1s}
%s
`, name, kubeEnv, replicas, version, name, version, more)
	p := filepath.Join(ks.dir, name+"-"+version+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		ks.t.Fatal(err)
	}
	return p
}

// managedBy selects the objects slipway made for app.
func managedBy(app string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: "slipway.dev/app=" + app + ",app.kubernetes.io/managed-by=slipway"}
}

// replicaSets returns the ReplicaSets slipway made for app by the version it annotates them
// with.
func (ks *kubeSlipway) replicaSets(app string) map[string]appsv1.ReplicaSet {
	ks.t.Helper()
	list, err := ks.k.Client.AppsV1().ReplicaSets(ks.ns).List(ks.t.Context(), managedBy(app))
	if err != nil {
		ks.t.Fatal(err)
	}
	out := map[string]appsv1.ReplicaSet{}
	for _, rs := range list.Items {
		out[rs.Annotations["slipway.dev/version"]] = rs
	}
	return out
}

// pods returns the pods of app's ReplicaSets that are not being deleted, by revision.
func (ks *kubeSlipway) pods(app string) map[string][]corev1.Pod {
	ks.t.Helper()
	list, err := ks.k.Client.CoreV1().Pods(ks.ns).List(ks.t.Context(), managedBy(app))
	if err != nil {
		ks.t.Fatal(err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Labels["slipway.dev/revision"]] = append(out[p.Labels["slipway.dev/revision"]], p)
		}
	}
	return out
}

// service returns Service name of the test's namespace (nil when there is none).
func (ks *kubeSlipway) service(name string) *corev1.Service {
	ks.t.Helper()
	svc, err := ks.k.Client.CoreV1().Services(ks.ns).Get(ks.t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		ks.t.Fatal(err)
	}
	return svc
}

// selects returns the revision Service name selects ("" when it has none or selects by
// another label).
func (ks *kubeSlipway) selects(name string) string {
	ks.t.Helper()
	if svc := ks.service(name); svc != nil {
		return svc.Spec.Selector["slipway.dev/revision"]
	}
	return ""
}

// revisionOf returns the revision of app's ReplicaSet of version, failing when it has none.
func (ks *kubeSlipway) revisionOf(app, version string) string {
	ks.t.Helper()
	rs, ok := ks.replicaSets(app)[version]
	if !ok {
		ks.t.Fatalf("%s has no ReplicaSet of version %s", app, version)
	}
	return rs.Labels["slipway.dev/revision"]
}

// ready counts the pods of pods that are Ready.
func ready(pods []corev1.Pod) int {
	n := 0
	for i := range pods {
		if podReady(&pods[i]) {
			n++
		}
	}
	return n
}

// newKubeApp applies version v1 of app and waits for it to be stable with its pods ready.
func (ks *kubeSlipway) newKubeApp(app string, replicas int, more string) {
	ks.t.Helper()
	ks.slipway("apply", "-f", ks.kubeApp(app, "v1", replicas, more))
	ks.slipway("status", app, "--wait", "--timeout", kubeWait.String())
	slipwaytest.Eventually(ks.t, kubeWait, app+" v1's pods ready", func() bool {
		pods := ks.pods(app)
		return len(pods) == 1 && ready(pods[ks.revisionOf(app, "v1")]) == replicas
	})
}

// contains fails the test unless out holds each of want.
func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// timeline records every change to an app's ReplicaSets and pods, from when it starts, in
// the order the API server made them: their resource versions are the revisions of the one
// etcd behind it, so the two watches merge into one history.
type timeline struct {
	mu      sync.Mutex
	changes []change
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// change is one object as a watch saw it; deleted when the watch said it was deleted.
type change struct {
	rv      uint64
	rs      *appsv1.ReplicaSet
	pod     *corev1.Pod
	deleted bool
}

// watchApp starts a timeline of app's ReplicaSets and pods, from their state now.
func (ks *kubeSlipway) watchApp(app string) *timeline {
	ks.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tl := &timeline{cancel: cancel}
	ks.t.Cleanup(func() { tl.stop() })
	opts := managedBy(app)
	rss, err := ks.k.Client.AppsV1().ReplicaSets(ks.ns).List(ctx, opts)
	if err != nil {
		ks.t.Fatal(err)
	}
	pods, err := ks.k.Client.CoreV1().Pods(ks.ns).List(ctx, opts)
	if err != nil {
		ks.t.Fatal(err)
	}
	// The state listed is the history's start: resource version 0. (The objects' own
	// versions are those of their last changes, which came in another order.)
	for i := range rss.Items {
		tl.add("", &rss.Items[i])
	}
	for i := range pods.Items {
		tl.add("", &pods.Items[i])
	}
	for _, w := range []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			o := opts
			o.ResourceVersion = rss.ResourceVersion
			return ks.k.Client.AppsV1().ReplicaSets(ks.ns).Watch(ctx, o)
		},
		func() (watch.Interface, error) {
			o := opts
			o.ResourceVersion = pods.ResourceVersion
			return ks.k.Client.CoreV1().Pods(ks.ns).Watch(ctx, o)
		},
	} {
		wi, err := w()
		if err != nil {
			ks.t.Fatal(err)
		}
		tl.done.Add(1)
		go func() {
			defer tl.done.Done()
			defer wi.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-wi.ResultChan():
					if !ok {
						return
					}
					tl.add(ev.Type, ev.Object)
				}
			}
		}()
	}
	return tl
}

// add records obj as a watch event of type typ reported it ("" for the state listed first).
func (tl *timeline) add(typ watch.EventType, obj runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	var rv uint64
	if typ != "" {
		rv, _ = strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	}
	c := change{rv: rv, deleted: typ == watch.Deleted}
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		c.rs = o
	case *corev1.Pod:
		c.pod = o
	default:
		return
	}
	tl.mu.Lock()
	tl.changes = append(tl.changes, c)
	tl.mu.Unlock()
}

// stop ends the watches and returns the changes, oldest first.
func (tl *timeline) stop() []change {
	tl.cancel()
	tl.done.Wait()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := slices.Clone(tl.changes)
	slices.SortStableFunc(out, func(a, b change) int { return cmp.Compare(a.rv, b.rv) })
	return out
}

// world is an app's ReplicaSets and pods as a timeline's changes leave them.
type world struct {
	rss  map[string]*appsv1.ReplicaSet
	pods map[string]*corev1.Pod
}

// replay calls f with the world after each change of changes that came after the state
// listed first.
func replay(changes []change, f func(c change, w world)) {
	w := world{rss: map[string]*appsv1.ReplicaSet{}, pods: map[string]*corev1.Pod{}}
	for _, c := range changes {
		switch {
		case c.rs != nil && c.deleted:
			delete(w.rss, c.rs.Name)
		case c.rs != nil:
			w.rss[c.rs.Name] = c.rs
		case c.pod != nil && c.deleted:
			delete(w.pods, c.pod.Name)
		case c.pod != nil:
			w.pods[c.pod.Name] = c.pod
		}
		if c.rv > 0 {
			f(c, w)
		}
	}
}

// replicas is the replica count of revision rev's ReplicaSet (0 when it has none).
func (w world) replicas(rev string) int {
	for _, rs := range w.rss {
		if rs.Labels["slipway.dev/revision"] == rev && rs.Spec.Replicas != nil {
			return int(*rs.Spec.Replicas)
		}
	}
	return 0
}

// readyPods counts revision rev's pods that are Ready and not being deleted.
func (w world) readyPods(rev string) int {
	n := 0
	for _, p := range w.pods {
		if p.Labels["slipway.dev/revision"] == rev && p.DeletionTimestamp == nil && podReady(p) {
			n++
		}
	}
	return n
}

// keys returns the keys of m, sorted.
func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// userRoute is the user's HTTPRoute the canary tests give their app: a rule for / that
// sends to web-stable and to a backend of the user's (legacy, weight 10) through a filter of
// the user's, and a rule for /admin of the user's alone.
func (ks *kubeSlipway) userRoute(name string) *gwv1.HTTPRoute {
	ks.t.Helper()
	port := gwv1.PortNumber(8080)
	prefix := gwv1.PathMatchPathPrefix
	root, admin := "/", "/admin"
	weight := func(w int32) *int32 { return &w }
	rt := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ks.ns}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "public"}}},
		Rules: []gwv1.HTTPRouteRule{
			{
				Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &prefix, Value: &root}}},
				Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
					RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: "X-Env", Value: "production"}}}}},
				BackendRefs: []gwv1.HTTPBackendRef{
					{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web-stable", Port: &port}, Weight: weight(90)}},
					{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "legacy", Port: &port}, Weight: weight(10)}},
				},
			},
			{
				Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &prefix, Value: &admin}}},
				BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "admin", Port: &port}}}},
			},
		},
	}}
	rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Create(ks.t.Context(), rt, metav1.CreateOptions{FieldManager: "user"})
	if err != nil {
		ks.t.Fatal(err)
	}
	return rt
}

// routeWeights are the weights of the backends web-stable and web-canary in a route's first
// rule (-1 for one it lacks).
type routeWeights struct{ stable, canary int }

func weightsOf(rt *gwv1.HTTPRoute) routeWeights {
	w := routeWeights{-1, -1}
	for _, b := range rt.Spec.Rules[0].BackendRefs {
		n := 1
		if b.Weight != nil {
			n = int(*b.Weight)
		}
		switch b.Name {
		case "web-stable":
			w.stable = n
		case "web-canary":
			w.canary = n
		}
	}
	return w
}

// keptUsersParts fails the test unless route rt holds what userRoute wrote besides
// slipway's backends: its parent, both rules' matches, the filter, the legacy backend and
// its weight, and the /admin rule as it was.
func keptUsersParts(t *testing.T, user, rt *gwv1.HTTPRoute) {
	t.Helper()
	if len(rt.Spec.Rules) != 2 {
		t.Errorf("route version %s has %d rules, want the user's 2", rt.ResourceVersion, len(rt.Spec.Rules))
		return
	}
	r, u := rt.Spec.Rules[0], user.Spec.Rules[0]
	var legacy []gwv1.HTTPBackendRef
	for _, b := range r.BackendRefs {
		if b.Name != "web-stable" && b.Name != "web-canary" {
			legacy = append(legacy, b)
		}
	}
	switch {
	case !equality.Semantic.DeepEqual(rt.Spec.ParentRefs, user.Spec.ParentRefs):
		t.Errorf("route version %s: parents %+v, want the user's %+v", rt.ResourceVersion, rt.Spec.ParentRefs, user.Spec.ParentRefs)
	case !equality.Semantic.DeepEqual(r.Matches, u.Matches) || !equality.Semantic.DeepEqual(r.Filters, u.Filters):
		t.Errorf("route version %s: rule / has matches %+v and filters %+v, want the user's", rt.ResourceVersion, r.Matches, r.Filters)
	case !equality.Semantic.DeepEqual(legacy, u.BackendRefs[1:]):
		t.Errorf("route version %s: rule / has the user's backends %+v, want %+v", rt.ResourceVersion, legacy, u.BackendRefs[1:])
	case !equality.Semantic.DeepEqual(rt.Spec.Rules[1], user.Spec.Rules[1]):
		t.Errorf("route version %s: rule /admin is %+v, want the user's %+v", rt.ResourceVersion, rt.Spec.Rules[1], user.Spec.Rules[1])
	}
}

// watchRoute records every version of HTTPRoute rt from its own on.
func (ks *kubeSlipway) watchRoute(rt *gwv1.HTTPRoute) func() []*gwv1.HTTPRoute {
	ks.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + rt.Name, ResourceVersion: rt.ResourceVersion})
	if err != nil {
		cancel()
		ks.t.Fatal(err)
	}
	var mu sync.Mutex
	versions := []*gwv1.HTTPRoute{rt}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if v, ok := ev.Object.(*gwv1.HTTPRoute); ok && ev.Type == watch.Modified {
				mu.Lock()
				versions = append(versions, v)
				mu.Unlock()
			}
		}
	}()
	stop := func() []*gwv1.HTTPRoute {
		cancel()
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(versions)
	}
	ks.t.Cleanup(func() { stop() })
	return stop
}

// waitEvent waits for a drift.repaired event of app, by the actor drift, with message.
func (ks *kubeSlipway) waitEvent(app, message string) {
	ks.t.Helper()
	var evs []struct{ Kind, Actor, Message string }
	defer func() {
		if ks.t.Failed() {
			ks.t.Logf("events of %s: %+v", app, evs)
		}
	}()
	slipwaytest.Eventually(ks.t, kubeWait, "event "+message, func() bool {
		if err := json.Unmarshal([]byte(ks.slipway("events", app, "-o", "json")), &evs); err != nil {
			ks.t.Fatal(err)
		}
		return slices.ContainsFunc(evs, func(e struct{ Kind, Actor, Message string }) bool {
			return e.Kind == "drift.repaired" && e.Actor == "drift" && e.Message == message
		})
	})
}

// appRow reads the one row of a kubectl get table by its header's columns.
func appRow(t *testing.T, table string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get: want a header and one row:\n%s", table)
	}
	header, line := lines[0], lines[1]
	var names []string
	var starts []int
	for i := 0; i < len(header); {
		if header[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(header) && header[j] != ' ' {
			j++
		}
		names, starts = append(names, header[i:j]), append(starts, i)
		i = j
	}
	row := map[string]string{}
	for k, name := range names {
		end := len(line)
		if k+1 < len(starts) {
			end = min(starts[k+1], len(line))
		}
		if starts[k] < end {
			row[name] = strings.TrimSpace(line[starts[k]:end])
		}
	}
	return row
}
