package kubernetes_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/kubernetes"
)

// fakeNamespace is the namespace of the objects fakeApps makes.
const fakeNamespace = "shop"

// fakeApps returns the objects of n apps as slipway labels them, without a cluster: per app
// the ReplicaSets of revisions "a" and "b" with pods ready pods each, and its main Service
// selecting revision "a".
func fakeApps(n, pods int) []runtime.Object {
	var out []runtime.Object
	for i := range n {
		app := fmt.Sprintf("app-%04d", i)
		labels := func(rev string) map[string]string {
			return map[string]string{kubernetes.LabelApp: app, kubernetes.LabelRevision: rev, kubernetes.LabelManagedBy: kubernetes.ManagedBy}
		}
		for _, rev := range []string{"a", "b"} {
			out = append(out, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: app + "-" + rev, Namespace: fakeNamespace, Labels: labels(rev)}})
			for j := range pods {
				out = append(out, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s-%d", app, rev, j), Namespace: fakeNamespace, Labels: labels(rev)},
					Status: corev1.PodStatus{Phase: corev1.PodRunning,
						Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
				})
			}
		}
		out = append(out, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: fakeNamespace,
				Labels: map[string]string{kubernetes.LabelApp: app, kubernetes.LabelManagedBy: kubernetes.ManagedBy}},
			Spec: corev1.ServiceSpec{Selector: map[string]string{kubernetes.LabelApp: app, kubernetes.LabelRevision: "a"}},
		})
	}
	return out
}

// startFake runs a platform on fake clients holding objs until the test ends.
func startFake(tb testing.TB, objs ...runtime.Object) *kubernetes.Platform {
	tb.Helper()
	p, err := kubernetes.New(kubernetes.Config{Kube: kubefake.NewClientset(objs...), Gateway: gwfake.NewClientset(), Namespace: fakeNamespace})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	select {
	case <-p.Settled():
	case <-time.After(time.Minute):
		tb.Fatal("the caches of the fake clients were not filled within a minute")
	}
	return p
}

// TestObserve_OneAppAmongMany: Observe reports an app's own ReplicaSets and pods, found by
// the caches' index by app, and nothing of the other apps of the namespace, also of an app
// whose name another's begins with.
func TestObserve_OneAppAmongMany(t *testing.T) {
	objs := fakeApps(20, 2)
	// app-0003's pods and ReplicaSet of a third revision, and another app's pod whose
	// name, like its app's, starts with app-0003.
	more := fakeApps(1, 1)
	for _, o := range more {
		m := o.(metav1.Object)
		m.SetName(m.GetName() + "x")
		m.GetLabels()[kubernetes.LabelApp] = "app-0000x"
	}
	p := startFake(t, append(objs, more...)...)
	obs, err := p.Observe(t.Context(), "app-0003")
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Revisions) != 2 {
		t.Fatalf("app-0003 observed with revisions %+v, want a and b", obs.Revisions)
	}
	for _, r := range obs.Revisions {
		if r.Ready() != 2 || len(r.Instances) != 2 {
			t.Errorf("revision %s: %+v, want 2 instances, both ready", r.Revision, r.Instances)
		}
		for _, in := range r.Instances {
			if want := "app-0003-" + r.Revision + "-"; len(in.ID) != len(want)+1 || in.ID[:len(want)] != want {
				t.Errorf("revision %s of app-0003 reports instance %s", r.Revision, in.ID)
			}
		}
	}
	if !obs.Split.Equal(slipway.Split{Weights: []slipway.Weight{{Revision: "a", Weight: 100}}}) {
		t.Errorf("split %+v, want a=100", obs.Split)
	}
	obs, err = p.Observe(t.Context(), "app-0000x")
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Revisions) != 2 || len(obs.Revisions[0].Instances) != 1 {
		t.Errorf("app-0000x observed as %+v, want its own revisions a and b of one pod each", obs.Revisions)
	}
}

// BenchmarkObserve measures one Observe of one of 1,000 apps (2 revisions of 2 pods each,
// 4,000 pods in the namespace) from the caches. The engine observes every app with a
// rollout in flight every second, and the platform's background worker lists an app's
// pods and ReplicaSets on every change of one of them: the cost must not grow with the
// number of apps in the namespace.
func BenchmarkObserve(b *testing.B) {
	const n = 1000
	p := startFake(b, fakeApps(n, 2)...)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := p.Observe(ctx, fmt.Sprintf("app-%04d", i%n)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
