package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"slipway.dev/slipway/slipwaytest/kubetest"
)

// TestMain stops the Kubernetes test cluster the tests that need one share.
func TestMain(m *testing.M) { kubetest.Main(m) }

// TestE2E_CanaryOnKubernetes: an Environment with target kubernetes runs an app on a real
// cluster through the binary: its first revision comes up as a ReplicaSet behind its
// Services; a canary to v2 sets the weights of the user's HTTPRoute, pauses at 25%, is
// promoted, and leaves the route on v2 with v1's ReplicaSet gone.
func TestE2E_CanaryOnKubernetes(t *testing.T) {
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	gw, err := gateway.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	port := gwv1.PortNumber(8080)
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}, Spec: gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{
		{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web-stable", Port: &port}}}}},
	}}}
	if _, err := gw.GatewayV1().HTTPRoutes(ns).Create(t.Context(), route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })
	envs := filepath.Join(e.dir, "cluster.yaml")
	env := fmt.Sprintf("apiVersion: slipway.dev/v1alpha1\nkind: Environment\nmetadata: {name: cluster}\nspec:\n  target: {kind: kubernetes, kubernetes: {kubeconfig: %q, namespace: %s}}\n", k.Kubeconfig, ns)
	if err := os.WriteFile(envs, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must(0, "apply", "-f", envs)
	app := func(version string) string {
		p := filepath.Join(e.dir, "web-"+version+".yaml")
		doc := strings.ReplaceAll(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web, environment: cluster}
spec:
  replicas: 2
  version: VERSION
  container:
    image: registry.example/web:VERSION
    port: 8080
    resources: {requests: {cpu: 10m, memory: 16Mi}}
  health:
    readiness: {http: {path: /ready}}
  traffic:
    route: {name: shop}
  strategy:
    canary:
      steps:
      - setWeight: 25
      - pause: {}
`, "VERSION", version)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e.must(0, "apply", "-f", app("v1"))
	e.must(0, "-e", "cluster", "status", "web", "--wait", "--timeout", "30s")
	if s := e.statusIn("cluster", "web"); s.Stable == nil || s.Stable.Version != "v1" {
		t.Fatalf("after v1: %+v", s)
	}

	weights := func() (stable, canary int) {
		rt, err := gw.GatewayV1().HTTPRoutes(ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stable, canary = -1, -1
		for _, b := range rt.Spec.Rules[0].BackendRefs {
			w := 1
			if b.Weight != nil {
				w = int(*b.Weight)
			}
			switch b.Name {
			case "web-stable":
				stable = w
			case "web-canary":
				canary = w
			}
		}
		return stable, canary
	}

	e.must(0, "apply", "-f", app("v2"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := e.statusIn("cluster", "web")
		if s.Rollout != nil && s.Rollout.Version == "v2" && s.Rollout.Phase == "Paused" {
			if s.Rollout.Weight != 25 {
				t.Fatalf("paused rollout: %+v", s.Rollout)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v2 never paused: %+v", s.Rollout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s, c := weights(); s != 75 || c != 25 {
		t.Errorf("paused at 25%%: route weights stable %d canary %d, want 75 and 25", s, c)
	}
	if out := e.must(0, "-e", "cluster", "status", "web"); !strings.Contains(out, "25%") {
		t.Errorf("status while paused:\n%s", out)
	}

	e.must(0, "-e", "cluster", "promote", "web")
	e.must(0, "-e", "cluster", "status", "web", "--wait", "--timeout", "30s")
	if s := e.statusIn("cluster", "web"); s.Stable == nil || s.Stable.Version != "v2" {
		t.Fatalf("after promote: %+v", s)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		rss, err := k.Client.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "slipway.dev/app=web"})
		if err != nil {
			t.Fatal(err)
		}
		s, c := weights()
		if s == 100 && c == 0 && len(rss.Items) == 1 && rss.Items[0].Annotations["slipway.dev/version"] == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after promote: route weights %d/%d, %d ReplicaSets; want 100/0 and v2's only", s, c, len(rss.Items))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerConfig_KubernetesRunsEnvironmentsOnly: the server's own environment cannot be
// on kubernetes (there is no cluster to name), and the --platform help does not offer it.
func TestServerConfig_KubernetesRunsEnvironmentsOnly(t *testing.T) {
	err := serverConfig{platform: "kubernetes"}.validate()
	if err == nil || !strings.Contains(err.Error(), "Environment with target kubernetes") {
		t.Errorf("--platform kubernetes: %v, want a refusal that points to Environments", err)
	}
	if strings.Contains(platformNames(), "kubernetes") {
		t.Errorf("platformNames() = %q offers kubernetes", platformNames())
	}
	if !strings.Contains(strings.Join(environmentTargets(), ","), "kubernetes") {
		t.Errorf("environmentTargets() = %v, want kubernetes among them", environmentTargets())
	}
}
