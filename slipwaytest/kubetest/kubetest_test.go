package kubetest_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// readyPods counts the pods of ns matching sel that are Running and Ready.
func readyPods(tb testing.TB, k *kubetest.Cluster, ns string, sel map[string]string) (running, ready int) {
	tb.Helper()
	pods, err := k.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.Set(sel).String()})
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		running++
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return running, ready
}

// replicaSet returns a ReplicaSet of n pods labelled app=name and, with extra, more labels on
// its pods.
func replicaSet(name string, n int32, extra map[string]string) *appsv1.ReplicaSet {
	sel := map[string]string{"app": name}
	podLabels := map[string]string{"app": name}
	for k, v := range extra {
		podLabels[k] = v
	}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
			},
		},
	}
}

func TestShared_ReplicaSetPodsBecomeReady(t *testing.T) {
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	ctx := context.Background()

	if _, err := k.Client.AppsV1().ReplicaSets(ns).Create(ctx, replicaSet("web", 3, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 60*time.Second, "3 ready pods of web", func() bool {
		_, ready := readyPods(t, k, ns, map[string]string{"app": "web"})
		return ready == 3
	})
	rs, err := k.Client.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 30*time.Second, "the ReplicaSet's status to count 3 ready replicas", func() bool {
		rs, err = k.Client.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 3
	})
}

func TestShared_UnreadyLabelKeepsPodsUnready(t *testing.T) {
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	ctx := context.Background()

	// A bare pod, created as soon as Namespace returns, and a ReplicaSet's pods.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-0", Labels: map[string]string{"app": "bad", kubetest.UnreadyLabel: "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
	}
	if _, err := k.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	unready := replicaSet("bad", 2, map[string]string{kubetest.UnreadyLabel: "true"})
	unready.Spec.Selector.MatchLabels["rs"] = "bad"
	unready.Spec.Template.Labels["rs"] = "bad"
	if _, err := k.Client.AppsV1().ReplicaSets(ns).Create(ctx, unready, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A ready ReplicaSet beside them shows kwok is handling the namespace's pods, so that
	// the others are unready because of their label.
	if _, err := k.Client.AppsV1().ReplicaSets(ns).Create(ctx, replicaSet("good", 1, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 60*time.Second, "3 running pods of bad and a ready one of good", func() bool {
		running, _ := readyPods(t, k, ns, map[string]string{"app": "bad"})
		_, ready := readyPods(t, k, ns, map[string]string{"app": "good"})
		return running == 3 && ready == 1
	})
	// They stay unready: watch them for a few seconds.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		running, ready := readyPods(t, k, ns, map[string]string{"app": "bad"})
		if running != 3 || ready != 0 {
			t.Fatalf("pods labelled %s: %d running, %d ready; want 3 running, 0 ready", kubetest.UnreadyLabel, running, ready)
		}
	}
	rs, err := k.Client.AppsV1().ReplicaSets(ns).Get(ctx, "bad", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Status.ReadyReplicas != 0 {
		t.Errorf("ReplicaSet bad has %d ready replicas, want 0", rs.Status.ReadyReplicas)
	}
}

func TestShared_GatewayAPICRDsInstalled(t *testing.T) {
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	ctx := context.Background()
	gw, err := gateway.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	port := gatewayv1.PortNumber(80)
	weight := func(w int32) *int32 { return &w }
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gateway"}}},
			Rules: []gatewayv1.HTTPRouteRule{{
				BackendRefs: []gatewayv1.HTTPBackendRef{
					{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web-stable", Port: &port}, Weight: weight(90)}},
					{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web-canary", Port: &port}, Weight: weight(10)}},
				},
			}},
		},
	}
	if _, err := gw.GatewayV1().HTTPRoutes(ns).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := gw.GatewayV1().HTTPRoutes(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refs := got.Spec.Rules[0].BackendRefs
	if len(refs) != 2 || *refs[0].Weight != 90 || *refs[1].Weight != 10 {
		t.Errorf("HTTPRoute backends read back as %+v, want web-stable 90 and web-canary 10", refs)
	}
	// The CRDs' validation runs: a weight above the maximum is refused.
	bad := route.DeepCopy()
	bad.Name = "bad"
	bad.Spec.Rules[0].BackendRefs[0].Weight = weight(2_000_000)
	if _, err := gw.GatewayV1().HTTPRoutes(ns).Create(ctx, bad, metav1.CreateOptions{}); err == nil {
		t.Error("an HTTPRoute with a backend weight of 2,000,000 was accepted; want it refused by the CRD's validation")
	}
}

func TestStart_ClusterOfItsOwnStopsWithTheTest(t *testing.T) {
	var k *kubetest.Cluster
	t.Run("test", func(t *testing.T) {
		k = kubetest.Start(t)
		node, err := k.Client.CoreV1().Nodes().Get(context.Background(), "kwok-node-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				t.Errorf("node %s is not Ready: %s", node.Name, c.Message)
			}
		}
	})
	if k == nil {
		t.Skip("no cluster started")
	}
	if v, err := k.Client.Discovery().ServerVersion(); err == nil {
		t.Errorf("the API server still answers (version %s) after the test that started it ended", v.GitVersion)
	}
}

// TestShared_UnreadyImages: in a namespace given to UnreadyImages, a ReplicaSet's pods whose
// image ends in the suffix run unready, the others become Ready.
func TestShared_UnreadyImages(t *testing.T) {
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	k.UnreadyImages(t, ns)
	ctx := context.Background()
	bad := replicaSet("bad", 2, nil)
	bad.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2" + kubetest.UnreadyImageSuffix
	for _, rs := range []*appsv1.ReplicaSet{replicaSet("good", 1, nil), bad} {
		if _, err := k.Client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	slipwaytest.Eventually(t, 60*time.Second, "good ready, bad running", func() bool {
		_, good := readyPods(t, k, ns, map[string]string{"app": "good"})
		running, ready := readyPods(t, k, ns, map[string]string{"app": "bad"})
		return good == 1 && running == 2 && ready == 0
	})
	time.Sleep(2 * time.Second) // longer than a pod takes to become Ready
	if running, ready := readyPods(t, k, ns, map[string]string{"app": "bad"}); running != 2 || ready != 0 {
		t.Errorf("bad: %d running, %d ready; want 2 and 0", running, ready)
	}
}
