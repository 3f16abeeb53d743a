package kubernetes_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/kubernetes"
	"slipway.dev/slipway/slipwaytest"
)

// TestPlatform_RepairsDriftAndTouchesOnlyItsOwn: objects changed or deleted behind slipway's
// back are put back, and each repair is reported, saying what was changed and by whom; a
// revision no longer desired loses its ReplicaSet; removing the app deletes what slipway
// created and nothing else. slipway's own changes are not reported as repairs.
func TestPlatform_RepairsDriftAndTouchesOnlyItsOwn(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var reported repairs
	p, _ := e.runConfig(t, kubernetes.Config{RESTConfig: e.cfg, Namespace: e.ns, Repaired: reported.add})
	kc := e.k.Client
	v1, v2 := revisions("web")
	d := slipway.Desired{App: "web", Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: weights(v1, 100)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 2, v2.ID: 1}, d.Split)

	// A Service of the user's that carries the app's label, which slipway must not touch.
	mine := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-admin", Namespace: e.ns, Labels: map[string]string{kubernetes.LabelApp: "web"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{kubernetes.LabelApp: "web"}}}
	if _, err := kc.CoreV1().Services(e.ns).Create(ctx, mine, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if got := reported.take(); len(got) > 0 {
		t.Errorf("repairs reported before anything changed behind slipway's back: %q", got)
	}
	rsName := "web-" + v1.ID
	if _, err := kc.AppsV1().ReplicaSets(e.ns).UpdateScale(ctx, rsName, scale(rsName, e.ns, 5), metav1.UpdateOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	if err := kc.CoreV1().Services(e.ns).Delete(ctx, "web-stable", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := e.service(t, "web")
	svc.Spec.Selector = map[string]string{"app": "else"}
	if _, err := kc.CoreV1().Services(e.ns).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, wait, "drift repaired", func() bool {
		rs, err := kc.AppsV1().ReplicaSets(e.ns).Get(ctx, rsName, metav1.GetOptions{})
		if err != nil || *rs.Spec.Replicas != 2 {
			return false
		}
		st, err := kc.CoreV1().Services(e.ns).Get(ctx, "web-stable", metav1.GetOptions{})
		if err != nil || st.Spec.Selector[kubernetes.LabelRevision] != v1.ID {
			return false
		}
		m, err := kc.CoreV1().Services(e.ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && m.Spec.Selector[kubernetes.LabelRevision] == v1.ID && m.Spec.Selector["app"] == ""
	})
	got := reported.take()
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("web: ReplicaSet %s was scaled to 5 by kubectl-scale; scaled back to 2", rsName),
		"web: Service web's selector was changed to {app=else} by kubectl-edit; put back to {slipway.dev/app=web,slipway.dev/revision=" + v1.ID + "}",
		"web: Service web-stable was deleted by another writer; created again",
	}
	if !slices.Equal(got, want) {
		t.Errorf("repairs reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	d.Revisions = []slipway.Placement{place(v1, 2)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	converged(t, p, "web", map[string]int{v1.ID: 2}, d.Split)
	if _, err := kc.AppsV1().ReplicaSets(e.ns).Get(ctx, "web-"+v2.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the retired revision's ReplicaSet: %v, want it deleted", err)
	}

	if err := p.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if got := reported.take(); len(got) > 0 {
			t.Errorf("slipway's own changes reported as repairs: %q", got)
		}
	}()
	slipwaytest.Eventually(t, wait, "the app's objects deleted", func() bool {
		rss, err1 := kc.AppsV1().ReplicaSets(e.ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelApp + "=web"})
		svcs, err2 := kc.CoreV1().Services(e.ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelApp + "=web"})
		pods, err3 := kc.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelApp + "=web"})
		if err := errors.Join(err1, err2, err3); err != nil {
			return false
		}
		return len(rss.Items) == 0 && len(pods.Items) == 0 && len(svcs.Items) == 1 && svcs.Items[0].Name == "web-admin"
	})
}

// repairs records the repairs a platform reports (Config.Repaired).
type repairs struct {
	mu   sync.Mutex
	list []string
}

func (r *repairs) add(app, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, app+": "+what)
}

func (r *repairs) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.list
	r.list = nil
	return out
}

func scale(name, ns string, n int32) *autoscalingv1.Scale {
	return &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}
}
