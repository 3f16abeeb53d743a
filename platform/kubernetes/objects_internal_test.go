package kubernetes

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

// TestLabelServing_PodGoneMeanwhile: labelling a pod that was deleted after the cache listed
// it (its ReplicaSet scaled down, say) is nothing to do, whether the label goes on or off,
// and creates no pod; nor is a pod of the same name made since labelled in its stead. (An
// apply to a pod that is gone would create one, which the API server refuses as invalid: a
// pod without containers.)
func TestLabelServing_PodGoneMeanwhile(t *testing.T) {
	k := kubetest.Shared(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	p, err := New(Config{RESTConfig: k.Config, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}

	pods := k.Client.CoreV1().Pods(ns)
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: appLabels("web")},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/web:1"}}}}
	create := func() *corev1.Pod {
		t.Helper()
		pod, err := pods.Create(ctx, bare, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pod
	}
	remove := func(pod *corev1.Pod) {
		t.Helper()
		zero := int64(0)
		if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		slipwaytest.Eventually(t, 30*time.Second, "pod "+pod.Name+" gone", func() bool {
			_, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	}

	old := create()
	remove(old)
	for _, on := range []bool{true, false} {
		var w wrote
		if err := p.labelServing(ctx, &w, old, on); err != nil {
			t.Errorf("label a deleted pod serving=%v: %v, want nothing to do", on, err)
		}
		if len(w) != 0 {
			t.Errorf("label a deleted pod serving=%v: wrote %v", on, w)
		}
	}
	if _, err := pods.Get(ctx, old.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the deleted pod after labelling it: %v, want NotFound", err)
	}

	// A new pod of the same name is not the one the cache listed.
	replaced := create()
	if err := p.labelServing(ctx, &wrote{}, old, true); err != nil {
		t.Errorf("label a pod replaced by another of its name: %v, want nothing to do", err)
	}
	live, err := pods.Get(ctx, replaced.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if serving(live) {
		t.Errorf("the pod that replaced the deleted one was labelled serving: %v", live.Labels)
	}

	// The pod itself is labelled, and unlabelled.
	for _, on := range []bool{true, false} {
		if err := p.labelServing(ctx, &wrote{}, live, on); err != nil {
			t.Fatalf("label a live pod serving=%v: %v", on, err)
		}
		got, err := pods.Get(ctx, live.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if serving(got) != on {
			t.Errorf("after labelling serving=%v: labels %v", on, got.Labels)
		}
	}
}
