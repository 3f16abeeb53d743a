package kubernetes_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/kubernetes"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

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
	// A canary's first step: a header route to v2 before v2 takes any weight.
	first := d
	first.Split = weights(v1, 100)
	first.Split.Routes = d.Split.Routes
	if err := p.Apply(ctx, first); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 2, v2.ID: 1}, first.Split)
	check(p, 100, 0, 1)
	if sel := e.service(t, "web-canary").Spec.Selector[kubernetes.LabelRevision]; sel != v2.ID {
		t.Errorf("canary Service selects %q with only a header route to %s, want it", sel, v2.ID)
	}

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

// TestPlatform_AppsShareARoute: two apps whose rules are in one HTTPRoute, applied at once,
// each end with their own weights set: neither write undoes the other's.
func TestPlatform_AppsShareARoute(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := e.start(t, nil)
	if err := e.route(ctx, "shared", []gwv1.HTTPRouteRule{pathRule("/a", backend("a-stable", 1)), pathRule("/b", backend("b-stable", 1))}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i, app := range []string{"a", "b"} {
		go func() {
			v1, v2 := revisions(app)
			errs <- p.Apply(ctx, slipway.Desired{App: app, Traffic: slipway.Traffic{Route: &slipway.RouteRef{Name: "shared"}},
				Revisions: []slipway.Placement{place(v1, 1), place(v2, 1)}, Split: weights(v2, 10+10*i, v1, 90-10*i)})
		}()
	}
	for range 2 {
		if err := <-errs; err != nil && slipway.ErrorCode(err) != slipway.ECONFLICT {
			t.Fatal(err)
		}
	}
	slipwaytest.Eventually(t, wait, "both apps' weights on the shared route", func() bool {
		rt, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(ctx, "shared", metav1.GetOptions{})
		if err != nil {
			return false
		}
		a, b := findRule(rt, "/a", "a-stable"), findRule(rt, "/b", "b-stable")
		return a != nil && b != nil && weightOf(*a, "a-canary") == 10 && weightOf(*a, "a-stable") == 90 &&
			weightOf(*b, "b-canary") == 20 && weightOf(*b, "b-stable") == 80 && weightOf(*a, "b-canary") == -1
	})
}
