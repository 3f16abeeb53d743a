package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

// The kubernetes tests: the slipway binary's server beside a real control plane (package
// kubetest), its apps in an Environment with target kubernetes, acting as the ServiceAccount
// of deploy/kubernetes/rbac.yaml (kubernetes_harness_test.go). No traffic flows through the
// cluster: they check what slipway writes and how it follows pod readiness.

// TestKubernetes_RollingUpdate: a rolling update of 4 replicas with maxSurge 1 and
// maxUnavailable 0 scales v2's ReplicaSet up and v1's down one pod at a time: in the whole
// history of the cluster's ReplicaSets and pods, never more than 5 pods are asked for, and
// v1's is scaled down only as far as v2's ready pods make up for. It completes with v2's
// ReplicaSet alone and the main Service on v2.
func TestKubernetes_RollingUpdate(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	const strategy = "  strategy:\n    rolling: {maxSurge: 1, maxUnavailable: 0}"
	ks.newKubeApp("web", 4, strategy)
	v1 := ks.revisionOf("web", "v1")

	tl := ks.watchApp("web")
	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 4, strategy))
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	v2 := ks.waitStatus("web", "v2 stable", func(s status) bool { return s.Stable != nil && s.Stable.Version == "v2" }).Stable.Revision
	if rss := ks.replicaSets("web"); len(rss) != 1 || *rss["v2"].Spec.Replicas != 4 {
		t.Errorf("after the update: ReplicaSets %v, want v2's alone with 4 replicas", keys(rss))
	}
	if sel := ks.selects("web"); sel != v2 {
		t.Errorf("Service web selects %q, want v2 (%s)", sel, v2)
	}

	var olds, news []int // v1's and v2's replica counts as they changed
	replay(tl.stop(), func(c change, w world) {
		o, n := w.replicas(v1), w.replicas(v2)
		if len(olds) == 0 || olds[len(olds)-1] != o {
			olds = append(olds, o)
		}
		if _, ok := w.rss["web-"+v2]; ok && (len(news) == 0 || news[len(news)-1] != n) {
			news = append(news, n)
		}
		if o+n > 5 {
			t.Errorf("at resource version %d: v1 %d + v2 %d replicas, more than 4 + maxSurge 1", c.rv, o, n)
		}
		if ready := w.readyPods(v2); o+ready < 4 {
			t.Errorf("at resource version %d: v1 scaled to %d with %d ready pods of v2: below 4 - maxUnavailable 0", c.rv, o, ready)
		}
	})
	if want := []int{4, 3, 2, 1, 0}; !slices.Equal(olds, want) {
		t.Errorf("v1's replicas went %v, want %v", olds, want)
	}
	if want := []int{1, 2, 3, 4}; !slices.Equal(news, want) {
		t.Errorf("v2's replicas went %v, want %v", news, want)
	}
}

// TestKubernetes_BlueGreen: a blue-green update brings v2 up in full behind the preview
// Service while the main and stable Services stay on v1; promote switches their selectors to
// v2 and keeps v1's ReplicaSet for scaleDownDelay; a rollback within it switches them back to
// v1's pods as they are (its ReplicaSet never scaled, no pod of it made anew), and v2's goes
// once the delay has passed.
func TestKubernetes_BlueGreen(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	const delay = 8 * time.Second
	strategy := fmt.Sprintf("  strategy:\n    blueGreen: {autoPromote: false, scaleDownDelay: %s}", delay)
	ks.newKubeApp("web", 2, strategy)
	v1 := ks.revisionOf("web", "v1")

	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 2, strategy))
	ks.waitPhase("web", "v2", "Paused")
	v2 := ks.revisionOf("web", "v2")
	slipwaytest.Eventually(t, kubeWait, "v2's pods ready", func() bool { return ready(ks.pods("web")[v2]) == 2 })
	for svc, want := range map[string]string{"web": v1, "web-stable": v1, "web-preview": v2} {
		if got := ks.selects(svc); got != want {
			t.Errorf("before promotion: Service %s selects %q, want %q", svc, got, want)
		}
	}
	before := ks.replicaSets("web")["v1"]
	var pods []string
	for _, p := range ks.pods("web")[v1] {
		pods = append(pods, p.Name)
	}

	tl := ks.watchApp("web")
	ks.slipway("promote", "web")
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	slipwaytest.Eventually(t, kubeWait, "the Services on v2", func() bool {
		return ks.selects("web") == v2 && ks.selects("web-stable") == v2
	})
	if rs, ok := ks.replicaSets("web")["v1"]; !ok || *rs.Spec.Replicas != 2 {
		t.Fatalf("after promotion, within scaleDownDelay: v1's ReplicaSet %v, want it kept with 2 replicas", keys(ks.replicaSets("web")))
	}

	start := time.Now()
	ks.slipway("rollback", "web")
	slipwaytest.Eventually(t, kubeWait, "the Services back on v1", func() bool {
		return ks.selects("web") == v1 && ks.selects("web-stable") == v1
	})
	t.Logf("the Services were back on v1 %v after the rollback", time.Since(start).Round(time.Millisecond))
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	s := ks.appStatus("web")
	if s.Stable == nil || s.Stable.Version != "v1" || s.Rollout.CompletedAt == nil {
		t.Fatalf("after the rollback: stable %+v, rollout %+v", s.Stable, s.Rollout)
	}
	done := *s.Rollout.CompletedAt
	after := ks.replicaSets("web")["v1"]
	if after.UID != before.UID || after.Generation != before.Generation {
		t.Errorf("v1's ReplicaSet: UID %s generation %d before promotion, %s %d after the rollback; want it untouched",
			before.UID, before.Generation, after.UID, after.Generation)
	}
	replay(tl.stop(), func(c change, w world) {
		if n := w.replicas(v1); n != 2 {
			t.Errorf("at resource version %d: v1's ReplicaSet has %d replicas, want 2 throughout", c.rv, n)
		}
		if c.pod != nil && c.pod.Labels["slipway.dev/revision"] == v1 && !slices.Contains(pods, c.pod.Name) {
			t.Errorf("at resource version %d: a new pod %s of v1", c.rv, c.pod.Name)
		}
	})

	// v2's ReplicaSet, the old capacity now, stays for scaleDownDelay too.
	if _, ok := ks.replicaSets("web")["v2"]; !ok {
		t.Fatal("v2's ReplicaSet is gone as soon as the rollback completed; want it kept for scaleDownDelay")
	}
	slipwaytest.Eventually(t, kubeWait, "v2's ReplicaSet gone", func() bool {
		_, ok := ks.replicaSets("web")["v2"]
		return !ok
	})
	if gone := time.Since(done); gone < delay {
		t.Errorf("v2's ReplicaSet was gone %v after the rollback completed; want it kept for scaleDownDelay %v", gone, delay)
	}
}

// TestKubernetes_CanaryWithRoute: a canary of an app that names the user's HTTPRoute sets
// the weights of web-stable and web-canary in its rule at each step, 80/20 then 50/50 while
// paused, then 100/0 on v2 after promotion; every version of the route keeps the user's
// parent, matches, filter, other backend and other rule; and slipway writes the route once
// per weight, no more.
func TestKubernetes_CanaryWithRoute(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	user := ks.userRoute("shop")
	versions := ks.watchRoute(user)
	const spec = `  traffic:
    route: {name: shop}
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 1s}
      - setWeight: 50
      - pause: {}`
	ks.newKubeApp("web", 4, spec)
	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 4, spec))
	s := ks.waitPhase("web", "v2", "Paused")
	if s.Rollout.Weight != 50 {
		t.Errorf("paused at weight %d, want 50", s.Rollout.Weight)
	}
	slipwaytest.Eventually(t, kubeWait, "the route at 50/50", func() bool {
		rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return weightsOf(rt) == routeWeights{50, 50}
	})
	contains(t, "status while paused", ks.slipway("status", "web"), "Weight:    50%")
	v1, v2 := ks.revisionOf("web", "v1"), ks.revisionOf("web", "v2")
	if ks.selects("web-stable") != v1 || ks.selects("web-canary") != v2 {
		t.Errorf("while paused: web-stable selects %q, web-canary %q; want v1 (%s) and v2 (%s)", ks.selects("web-stable"), ks.selects("web-canary"), v1, v2)
	}

	ks.slipway("promote", "web")
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	slipwaytest.Eventually(t, kubeWait, "v1's ReplicaSet gone", func() bool { return len(ks.replicaSets("web")) == 1 })
	if ks.selects("web-stable") != v2 || ks.selects("web-canary") != v2 {
		t.Errorf("after promotion: web-stable selects %q, web-canary %q; want v2 (%s)", ks.selects("web-stable"), ks.selects("web-canary"), v2)
	}

	var got []routeWeights
	for _, rt := range versions() {
		got = append(got, weightsOf(rt))
		keptUsersParts(t, user, rt)
	}
	want := []routeWeights{{90, -1}, {100, 0}, {80, 20}, {50, 50}, {100, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("the route's weights (web-stable, web-canary) went %v, want %v: one write per step", got, want)
	}
}

// TestKubernetes_CanaryWithoutRoute: without an HTTPRoute the main Service carries the
// split by the pods it selects: at 10% with 4 replicas, the canary's one pod and the 4 of
// v1 are labelled serving and the Service selects the label (1 in 5, the closest ratio);
// `slipway status` says the weights are approximate. Promotion puts the Service back on a
// revision's selector.
func TestKubernetes_CanaryWithoutRoute(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	const spec = `  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause: {}`
	ks.newKubeApp("web", 4, spec)
	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 4, spec))
	ks.waitPhase("web", "v2", "Paused")
	v1, v2 := ks.revisionOf("web", "v1"), ks.revisionOf("web", "v2")
	serving := func() map[string]int {
		n := map[string]int{}
		for rev, pods := range ks.pods("web") {
			for _, p := range pods {
				if p.Labels["slipway.dev/serving"] == "true" && podReady(&p) {
					n[rev]++
				}
			}
		}
		return n
	}
	slipwaytest.Eventually(t, kubeWait, "4 pods of v1 and 1 of v2 serving", func() bool {
		n := serving()
		return n[v1] == 4 && n[v2] == 1
	})
	if sel := ks.service("web").Spec.Selector; sel["slipway.dev/serving"] != "true" || sel["slipway.dev/revision"] != "" {
		t.Errorf("while paused: Service web selects %v, want the serving pods", sel)
	}
	s := ks.appStatus("web")
	if !s.Split.Approximate || len(s.Split.Weights) != 2 {
		t.Errorf("status split %+v, want two weights, approximate", s.Split)
	}
	contains(t, "status while paused", ks.slipway("status", "web"), "Weight:    10%", "weights are approximate")

	ks.slipway("promote", "web")
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	slipwaytest.Eventually(t, kubeWait, "the Service on v2 and v1's ReplicaSet gone", func() bool {
		sel := ks.service("web").Spec.Selector
		return sel["slipway.dev/revision"] == v2 && sel["slipway.dev/serving"] == "" && len(ks.replicaSets("web")) == 1
	})
	if s := ks.appStatus("web"); s.Split.Approximate {
		t.Errorf("after promotion: status split %+v, want exact", s.Split)
	}
}

// TestKubernetes_AbortedByAnalysis: a canary whose analysis step measures a failing value (a
// web metric against an HTTP server that answers an error rate of 0.5 for the canary's
// revision) is aborted by itself: the route back at 100/0, every Service on v1, v2's
// ReplicaSet gone and v1's untouched.
func TestKubernetes_AbortedByAnalysis(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Query().Get("revision"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"errorRate": 0.5}`)
	}))
	defer metrics.Close()

	ks := newKubeSlipway(t, kubeOptions{})
	tmpl := filepath.Join(ks.dir, "errors.yaml")
	doc := fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      interval: 200ms
      count: 3
      failureLimit: 0
      successCondition: result < 0.05
      provider:
        web:
          url: %s/errors?revision={{canary.revision}}
          jsonPath: $.errorRate
`, metrics.URL)
	if err := os.WriteFile(tmpl, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ks.slipway("apply", "-f", tmpl)
	user := ks.userRoute("shop")
	const spec = `  traffic:
    route: {name: shop}
  strategy:
    canary:
      steps:
      - setWeight: 25
      - analysis: {templates: [errors]}
      - setWeight: 100`
	ks.newKubeApp("web", 2, spec)
	v1 := ks.revisionOf("web", "v1")
	before := ks.replicaSets("web")["v1"]

	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 2, spec))
	out, code := ks.cli("-e", kubeEnv, "status", "web", "--wait", "--timeout", kubeWait.String())
	if code != 3 {
		t.Fatalf("status --wait: exit %d, want 3 (aborted)\n%s", code, out)
	}
	s := ks.appStatus("web")
	if s.Rollout.Phase != "Aborted" || s.Stable == nil || s.Stable.Revision != v1 {
		t.Fatalf("after the analysis failed: rollout %+v, stable %+v; want aborted with v1 stable", s.Rollout, s.Stable)
	}
	t.Logf("aborted: %s", s.Rollout.Reason)
	mu.Lock()
	v2 := s.Rollout.Revision
	if len(asked) == 0 || asked[0] != v2 {
		t.Errorf("the metric's server was asked for revisions %v, want the canary %s", asked, v2)
	}
	mu.Unlock()

	slipwaytest.Eventually(t, kubeWait, "everything back on v1", func() bool {
		rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, canary := ks.replicaSets("web")["v2"]
		return weightsOf(rt) == routeWeights{100, 0} && !canary &&
			ks.selects("web") == v1 && ks.selects("web-stable") == v1 && ks.selects("web-canary") == v1
	})
	rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(t.Context(), "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keptUsersParts(t, user, rt)
	if after := ks.replicaSets("web")["v1"]; after.UID != before.UID || after.Generation != before.Generation {
		t.Errorf("v1's ReplicaSet changed during the canary: generation %d, then %d", before.Generation, after.Generation)
	}
	slipwaytest.Eventually(t, kubeWait, "v2's pods gone", func() bool { return len(ks.pods("web")[v2]) == 0 })
}

// TestKubernetes_UnreadyAbortedAtProgressDeadline: a rolling update to a revision whose pods
// run but never become ready (the test cluster keeps pods of an image ending in -unready
// unready) never scales v1 down, and is aborted once its progressDeadline passes: v2's
// ReplicaSet and pods go, v1 was never touched and keeps every Service.
func TestKubernetes_UnreadyAbortedAtProgressDeadline(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	ks.k.UnreadyImages(t, ks.ns)
	const deadline = 3 * time.Second
	spec := fmt.Sprintf("  strategy:\n    rolling: {maxSurge: 1, maxUnavailable: 0, progressDeadline: %s}", deadline)
	ks.newKubeApp("web", 2, spec)
	v1 := ks.revisionOf("web", "v1")
	before := ks.replicaSets("web")["v1"]

	bad := "v2" + kubetest.UnreadyImageSuffix
	start := time.Now()
	ks.slipway("apply", "-f", ks.kubeApp("web", bad, 2, spec))
	slipwaytest.Eventually(t, kubeWait, "v2's pod running unready", func() bool {
		rs, ok := ks.replicaSets("web")[bad]
		if !ok {
			return false
		}
		pods := ks.pods("web")[rs.Labels["slipway.dev/revision"]]
		return len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning && ready(pods) == 0
	})
	out, code := ks.cli("-e", kubeEnv, "status", "web", "--wait", "--timeout", kubeWait.String())
	if code != 3 {
		t.Fatalf("status --wait: exit %d, want 3 (aborted)\n%s", code, out)
	}
	took := time.Since(start)
	s := ks.appStatus("web")
	t.Logf("aborted after %v: %s", took.Round(time.Millisecond), s.Rollout.Reason)
	if s.Rollout.Phase != "Aborted" || !strings.Contains(s.Rollout.Reason, "progress") || s.Stable == nil || s.Stable.Revision != v1 {
		t.Errorf("rollout %+v, stable %+v; want aborted for its progress deadline, v1 stable", s.Rollout, s.Stable)
	}
	if took < deadline {
		t.Errorf("aborted %v after the apply, before the progress deadline of %v", took, deadline)
	}
	v2 := s.Rollout.Revision
	slipwaytest.Eventually(t, kubeWait, "v2's ReplicaSet and pods gone", func() bool {
		_, ok := ks.replicaSets("web")[bad]
		return !ok && len(ks.pods("web")[v2]) == 0
	})
	if after := ks.replicaSets("web")["v1"]; after.UID != before.UID || after.Generation != before.Generation {
		t.Errorf("v1's ReplicaSet was changed (generation %d, then %d); a revision that is never ready must not scale it down", before.Generation, after.Generation)
	}
	if got := ready(ks.pods("web")[v1]); got != 2 {
		t.Errorf("v1 has %d ready pods, want 2", got)
	}
	if ks.selects("web") != v1 || ks.selects("web-stable") != v1 {
		t.Errorf("Services web and web-stable select %q and %q, want v1 (%s)", ks.selects("web"), ks.selects("web-stable"), v1)
	}
}

// TestKubernetes_DriftRepaired: a managed ReplicaSet scaled by hand, the main Service's
// selector edited by hand and the stable Service deleted by hand are each put back at once,
// and a drift.repaired event of the app says what was changed, by whom, and how it was put
// back; `slipway status` then shows no drift and the app's 2 ready instances. (The platform
// repairs as soon as its informers see the change, so the drift shows in status only for as
// long as it lasts: the extra pods of the scaled ReplicaSet while they terminate.)
func TestKubernetes_DriftRepaired(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	ks.newKubeApp("web", 2, "  strategy:\n    rolling: {}")
	v1 := ks.revisionOf("web", "v1")
	rs := ks.replicaSets("web")["v1"].Name
	ctx := t.Context()
	apps, services := ks.k.Client.AppsV1().ReplicaSets(ks.ns), ks.k.Client.CoreV1().Services(ks.ns)

	scale, err := apps.GetScale(ctx, rs, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 5
	if _, err := apps.UpdateScale(ctx, rs, scale, metav1.UpdateOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	seen := false
	slipwaytest.Eventually(t, kubeWait, "the ReplicaSet back at 2 ready pods, no drift", func() bool {
		s := ks.appStatus("web")
		seen = seen || len(s.Drift) > 0
		return *ks.replicaSets("web")["v1"].Spec.Replicas == 2 && len(ks.pods("web")[v1]) == 2 && len(s.Drift) == 0 &&
			len(s.Live) == 1 && s.Live[0].Ready == 2
	})
	t.Logf("status showed the scaled ReplicaSet's drift while it lasted: %v", seen)
	ks.waitEvent("web", fmt.Sprintf("repaired drift: ReplicaSet %s was scaled to 5 by kubectl-scale; scaled back to 2", rs))

	edit := []byte(`{"spec":{"selector":{"slipway.dev/revision":"someone-elses"}}}`)
	if _, err := services.Patch(ctx, "web", types.MergePatchType, edit, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	ks.waitEvent("web", "repaired drift: Service web's selector was changed to {slipway.dev/app=web,slipway.dev/revision=someone-elses} by kubectl-edit; put back to {slipway.dev/app=web,slipway.dev/revision="+v1+"}")
	if sel := ks.selects("web"); sel != v1 {
		t.Errorf("Service web selects %q after the repair, want %s", sel, v1)
	}

	if err := services.Delete(ctx, "web-stable", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ks.waitEvent("web", "repaired drift: Service web-stable was deleted by another writer; created again")
	if sel := ks.selects("web-stable"); sel != v1 {
		t.Errorf("Service web-stable selects %q after the repair, want %s", sel, v1)
	}
	contains(t, "status after the repairs", ks.slipway("status", "web"), "Drift:     none")
}

// TestKubernetes_PruneDeletesOnlyWhatSlipwayMade: an app deleted in the middle of a canary
// (apply --prune without it) leaves none of its ReplicaSets, Services or pods, and takes its
// canary backend out of the user's HTTPRoute; the route's other parts, the user's own
// objects (a Service and a ReplicaSet labelled with the app's name but not slipway's) and
// another app are left as they were.
func TestKubernetes_PruneDeletesOnlyWhatSlipwayMade(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	ctx := t.Context()
	user := ks.userRoute("shop")
	// The user's own objects, with the app's label but not managed by slipway.
	mine := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-admin", Labels: map[string]string{"slipway.dev/app": "web"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"slipway.dev/app": "web"}}}
	mine, err := ks.k.Client.CoreV1().Services(ks.ns).Create(ctx, mine, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	two := int32(2)
	labels := map[string]string{"slipway.dev/app": "web", "role": "worker"}
	worker := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-worker", Labels: labels}, Spec: appsv1.ReplicaSetSpec{
		Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "registry.example/worker:1"}}}}}}
	worker, err = ks.k.Client.AppsV1().ReplicaSets(ks.ns).Create(ctx, worker, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	const spec = `  traffic:
    route: {name: shop}
  strategy:
    canary:
      steps:
      - setWeight: 50
      - pause: {}`
	keep := ks.kubeApp("keep", "v1", 1, "  strategy:\n    rolling: {}")
	ks.slipway("apply", "-f", keep)
	ks.newKubeApp("web", 2, spec)
	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 2, spec))
	ks.waitPhase("web", "v2", "Paused")
	slipwaytest.Eventually(t, kubeWait, "the route at 50/50", func() bool {
		rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(ctx, "shop", metav1.GetOptions{})
		return err == nil && weightsOf(rt) == routeWeights{50, 50}
	})
	ks.slipway("status", "keep", "--wait", "--timeout", kubeWait.String())
	kept := ks.replicaSets("keep")["v1"]

	out := ks.slipway("apply", "--prune", "-f", keep)
	contains(t, "apply --prune", out, "App web")
	managed := managedBy("web")
	slipwaytest.Eventually(t, kubeWait, "web's objects gone", func() bool {
		rss, err1 := ks.k.Client.AppsV1().ReplicaSets(ks.ns).List(ctx, managed)
		svcs, err2 := ks.k.Client.CoreV1().Services(ks.ns).List(ctx, managed)
		pods, err3 := ks.k.Client.CoreV1().Pods(ks.ns).List(ctx, managed)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		return len(rss.Items)+len(svcs.Items)+len(pods.Items) == 0
	})
	rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := weightsOf(rt); w.canary != -1 {
		t.Errorf("after the prune the route still has web-canary: %+v", rt.Spec.Rules[0].BackendRefs)
	}
	keptUsersParts(t, user, rt)

	if got := ks.service("web-admin"); got == nil || got.UID != mine.UID || got.ResourceVersion != mine.ResourceVersion {
		t.Errorf("the user's Service web-admin after the prune: %+v, want it untouched", got)
	}
	got, err := ks.k.Client.AppsV1().ReplicaSets(ks.ns).Get(ctx, "web-worker", metav1.GetOptions{})
	if err != nil || got.UID != worker.UID || got.Generation != worker.Generation || *got.Spec.Replicas != 2 {
		t.Errorf("the user's ReplicaSet web-worker after the prune: %v %+v, want it untouched", err, got)
	}
	if after, ok := ks.replicaSets("keep")["v1"]; !ok || after.UID != kept.UID || after.Generation != kept.Generation {
		t.Errorf("app keep's ReplicaSet after the prune: %v, want it untouched", keys(ks.replicaSets("keep")))
	}
	if ks.service("keep") == nil || ks.service("keep-stable") == nil {
		t.Error("app keep's Services are gone")
	}
}

// TestKubernetes_AppResourceWithKubectl: an App applied with kubectl as a custom resource
// (the server watching the namespace with its environment set by --kube-environment) rolls
// out on the kubernetes platform: kubectl wait --for=condition=Ready succeeds, and kubectl
// get shows its printer columns, while a canary of v2 pauses at 50% and once it is
// promoted. Deleting the resource with kubectl deletes the app and every object slipway
// made for it.
func TestKubernetes_AppResourceWithKubectl(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{resources: true})
	kubectl := kubectlFor(t, ks.k)
	app := func(version string) string {
		p := filepath.Join(ks.dir, "resource-"+version+".yaml")
		doc := fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  version: %s
  container: {image: "registry.example/web:%s", port: 8080}
  health:
    readiness: {http: {path: /ready}, period: 1s}
  strategy:
    canary:
      steps:
      - setWeight: 50
      - pause: {}
`, ks.ns, version, version)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wait := func() {
		t.Helper()
		kubectl("-n", ks.ns, "wait", "--for=condition=Ready", "apps.slipway.dev/web", "--timeout="+kubeWait.String())
	}
	kubectl("apply", "-f", app("v1"))
	wait()
	if row := appRow(t, kubectl("-n", ks.ns, "get", "apps.slipway.dev")); row["NAME"] != "web" || row["PHASE"] != "Completed" || row["STABLE"] != "v1" {
		t.Errorf("kubectl get after v1: %v, want web Completed with v1 stable", row)
	}
	v1 := ks.revisionOf("web", "v1")
	if s := ks.appStatus("web"); s.Stable == nil || s.Stable.Revision != v1 {
		t.Errorf("slipway status of the resource's app: stable %+v, want v1 (%s)", s.Stable, v1)
	}

	kubectl("apply", "-f", app("v2"))
	slipwaytest.Eventually(t, kubeWait, "kubectl get showing the canary paused at 50%", func() bool {
		row := appRow(t, kubectl("-n", ks.ns, "get", "apps.slipway.dev"))
		return row["PHASE"] == "Paused" && row["STEP"] == "2/2" && row["WEIGHT"] == "50" && row["STABLE"] == "v1" && row["CANARY"] == "v2"
	})
	ks.slipway("promote", "web")
	wait()
	if row := appRow(t, kubectl("-n", ks.ns, "get", "apps.slipway.dev")); row["PHASE"] != "Completed" || row["STABLE"] != "v2" || row["CANARY"] != "" {
		t.Errorf("kubectl get after the promotion: %v, want Completed with v2 stable", row)
	}
	slipwaytest.Eventually(t, kubeWait, "v2 alone", func() bool {
		rss := ks.replicaSets("web")
		_, ok := rss["v2"]
		return len(rss) == 1 && ok && ks.selects("web") == ks.revisionOf("web", "v2")
	})

	kubectl("-n", ks.ns, "delete", "apps.slipway.dev/web")
	ctx := t.Context()
	slipwaytest.Eventually(t, kubeWait, "the app and its objects gone", func() bool {
		rss, err1 := ks.k.Client.AppsV1().ReplicaSets(ks.ns).List(ctx, managedBy("web"))
		svcs, err2 := ks.k.Client.CoreV1().Services(ks.ns).List(ctx, managedBy("web"))
		pods, err3 := ks.k.Client.CoreV1().Pods(ks.ns).List(ctx, managedBy("web"))
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		return len(rss.Items)+len(svcs.Items)+len(pods.Items) == 0
	})
	if out, code := ks.cli("-e", kubeEnv, "status", "web"); code == 0 {
		t.Errorf("slipway status of the deleted app succeeded:\n%s", out)
	}
}

// TestKubernetes_ServerKilledAtAPause: the server SIGKILLed while a canary is paused at 25%
// and started again on the same data carries the rollout on from where it was: still paused
// at 25% after the restart, promoted on to 75% and completed. The restart writes nothing to
// the cluster (the ReplicaSets keep their UIDs and generations, the Services and the
// HTTPRoute their resource versions, through several resyncs), and the route is written
// once per weight over the whole rollout.
func TestKubernetes_ServerKilledAtAPause(t *testing.T) {
	const resync = 200 * time.Millisecond
	ks := newKubeSlipway(t, kubeOptions{flags: []string{"--resync", resync.String()}})
	ctx := t.Context()
	user := ks.userRoute("shop")
	versions := ks.watchRoute(user)
	const spec = `  traffic:
    route: {name: shop}
  strategy:
    canary:
      steps:
      - setWeight: 25
      - pause: {}
      - setWeight: 75
      - pause: {duration: 1s}`
	ks.newKubeApp("web", 4, spec)
	ks.slipway("apply", "-f", ks.kubeApp("web", "v2", 4, spec))
	ks.waitPhase("web", "v2", "Paused")
	slipwaytest.Eventually(t, kubeWait, "the route at 75/25", func() bool {
		rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(ctx, "shop", metav1.GetOptions{})
		return err == nil && weightsOf(rt) == routeWeights{75, 25}
	})
	// What the cluster holds at the pause.
	before := ks.replicaSets("web")
	services := map[string]string{}
	svcs, err := ks.k.Client.CoreV1().Services(ks.ns).List(ctx, managedBy("web"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range svcs.Items {
		services[svc.Name] = svc.ResourceVersion
	}
	route, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	if err := ks.srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ks.done
	ks.srv = nil
	ks.start()
	s := ks.waitStatus("web", "the restarted server answering", func(status) bool { return true })
	if s.Rollout == nil || s.Rollout.Phase != "Paused" || s.Rollout.Weight != 25 || s.Rollout.Version != "v2" {
		t.Fatalf("after the restart: rollout %+v, want v2 paused at 25%%", s.Rollout)
	}
	// The window in which a restart's duplicate writes would show: several resyncs of every
	// app by the restarted engine.
	time.Sleep(10 * resync)
	for version, rs := range ks.replicaSets("web") {
		if b := before[version]; rs.UID != b.UID || rs.Generation != b.Generation {
			t.Errorf("after the restart: %s's ReplicaSet is UID %s generation %d, was %s %d", version, rs.UID, rs.Generation, b.UID, b.Generation)
		}
	}
	for name, rv := range services {
		if svc := ks.service(name); svc == nil || svc.ResourceVersion != rv {
			t.Errorf("after the restart: Service %s was written (resource version %s, then %v)", name, rv, svc)
		}
	}
	if rt, err := ks.gw.GatewayV1().HTTPRoutes(ks.ns).Get(ctx, "shop", metav1.GetOptions{}); err != nil || rt.ResourceVersion != route.ResourceVersion || rt.Generation != route.Generation {
		t.Errorf("after the restart: the HTTPRoute was written (%v; generation %d, then %d)", err, route.Generation, rt.Generation)
	}

	ks.slipway("promote", "web")
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	slipwaytest.Eventually(t, kubeWait, "v1's ReplicaSet gone", func() bool { return len(ks.replicaSets("web")) == 1 })
	if v2 := ks.replicaSets("web")["v2"]; v2.UID != before["v2"].UID {
		t.Errorf("v2's ReplicaSet was made anew: UID %s, was %s", v2.UID, before["v2"].UID)
	}
	var got []routeWeights
	for _, rt := range versions() {
		got = append(got, weightsOf(rt))
		keptUsersParts(t, user, rt)
	}
	want := []routeWeights{{90, -1}, {100, 0}, {75, 25}, {25, 75}, {100, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("the route's weights (web-stable, web-canary) went %v, want %v: one write per weight, none for the restart", got, want)
	}
}
