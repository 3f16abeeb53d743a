package kubernetes_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/platform/kubernetes"
)

// TestObserve_PendingAndOrphanedPods: a ReplicaSet's replicas that have no pod yet are reported as
// starting instances (failed, with the ReplicaSet's reason, when it cannot create them), so
// that a revision whose pods are on their way is not missing instances: the engine finds no
// drift to repair in it. A ReplicaSet being deleted, or with every pod, has none pending.
// The pods of a deleted ReplicaSet, which the cluster deletes after it, are draining.
func TestObserve_PendingAndOrphanedPods(t *testing.T) {
	labels := func(app, rev string) map[string]string {
		return map[string]string{kubernetes.LabelApp: app, kubernetes.LabelRevision: rev, kubernetes.LabelManagedBy: kubernetes.ManagedBy}
	}
	rs := func(app, rev string, replicas int32, mod ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
		r := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: app + "-" + rev, Namespace: fakeNamespace, Labels: labels(app, rev)},
			Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
		for _, m := range mod {
			m(r)
		}
		return r
	}
	pod := func(app, rev, name string, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fakeNamespace, Labels: labels(app, rev)},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		if deleting {
			now := metav1.NewTime(time.Now())
			p.DeletionTimestamp, p.Finalizers = &now, []string{"test/keep"}
		}
		return p
	}
	quota := func(r *appsv1.ReplicaSet) {
		r.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			Reason: "FailedCreate", Message: `pods "web-b-x" is forbidden: exceeded quota: pods`}}
	}
	deleting := func(r *appsv1.ReplicaSet) {
		now := metav1.NewTime(time.Now())
		r.DeletionTimestamp, r.Finalizers = &now, []string{"test/keep"}
	}
	// A ReplicaSet of UID uid, and a pod it controls; a pod whose ReplicaSet is gone.
	owns := func(uid string) func(*appsv1.ReplicaSet) {
		return func(r *appsv1.ReplicaSet) { r.UID = types.UID(uid) }
	}
	owned := func(p *corev1.Pod, uid string) *corev1.Pod {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x", UID: types.UID(uid), Controller: &[]bool{true}[0]}}
		return p
	}
	objs := []runtime.Object{
		rs("web", "a", 2), pod("web", "a", "web-a-1", false),
		rs("web", "b", 2, quota),
		rs("api", "a", 1), pod("api", "a", "api-a-1", true),
		rs("api", "b", 2, deleting),
		rs("db", "a", 1), pod("db", "a", "db-a-1", false),
		rs("old", "b", 1, owns("rs-b")), owned(pod("old", "b", "old-b-1", false), "rs-b"),
		owned(pod("old", "c", "old-c-1", false), "rs-c"), pod("old", "d", "old-d-1", false),
	}
	p := startFake(t, objs...)

	type inst struct {
		id    string
		state slipway.InstanceState
		msg   string // a part of the message
	}
	for _, tc := range []struct {
		app  string
		want map[string][]inst
	}{
		{"web", map[string][]inst{
			"a": {{"web-a-1", slipway.InstanceRunning, ""}, {"web-a-pending-1", slipway.InstanceStarting, "waiting for the ReplicaSet"}},
			"b": {{"web-b-pending-1", slipway.InstanceFailed, "exceeded quota"}, {"web-b-pending-2", slipway.InstanceFailed, "exceeded quota"}},
		}},
		{"api", map[string][]inst{
			"a": {{"api-a-1", slipway.InstanceDraining, ""}, {"api-a-pending-1", slipway.InstanceStarting, "waiting"}},
			"b": {},
		}},
		{"db", map[string][]inst{"a": {{"db-a-1", slipway.InstanceRunning, ""}}}},
		// c's ReplicaSet was deleted: the garbage collector deletes its pod; d's pod has no
		// owner and is reported as it is.
		{"old", map[string][]inst{
			"b": {{"old-b-1", slipway.InstanceRunning, ""}},
			"c": {{"old-c-1", slipway.InstanceDraining, "ReplicaSet was deleted"}},
			"d": {{"old-d-1", slipway.InstanceRunning, ""}},
		}},
	} {
		obs, err := p.Observe(t.Context(), tc.app)
		if err != nil {
			t.Fatal(err)
		}
		if len(obs.Revisions) != len(tc.want) {
			t.Errorf("%s: revisions %+v, want %d", tc.app, obs.Revisions, len(tc.want))
		}
		for rev, want := range tc.want {
			got := obs.Revision(rev).Instances
			if len(got) != len(want) {
				t.Errorf("%s revision %s: instances %+v, want %+v", tc.app, rev, got, want)
				continue
			}
			for i, w := range want {
				g := got[i]
				if g.ID != w.id || g.State != w.state || !strings.Contains(g.Message, w.msg) || g.Ready && w.state != slipway.InstanceRunning {
					t.Errorf("%s revision %s instance %d: %+v, want %+v", tc.app, rev, i, g, w)
				}
			}
		}
	}

	// What the engine makes of web: its revisions have as many instances as it asked for,
	// not all ready; nothing an Apply could repair.
	web, err := p.Observe(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	d := slipway.Desired{App: "web", Revisions: []slipway.Placement{
		{Revision: slipway.Revision{ID: "a"}, Replicas: 2}, {Revision: slipway.Revision{ID: "b"}, Replicas: 2}}}
	for _, dr := range engine.DriftOf(d, web) {
		if dr.Kind != slipway.DriftUnready {
			t.Errorf("drift %+v while the pods are on their way; want only unready instances", dr)
		}
	}
}
