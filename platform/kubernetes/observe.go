package kubernetes

import (
	"cmp"
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"slipway.dev/slipway"
)

// Observe reports app's live state from the caches: each revision's pods as instances (Ready
// by their readiness condition) and the pods its ReplicaSet has yet to create (pending), the
// split its Services and HTTPRoute carry out, and the revision its preview Service selects
// when that is not the stable one. Without an HTTPRoute, a split of two revisions is the one
// the main Service carries out by the ratio of pods it selects, marked approximate, and only
// on revisions with a pod serving.
func (p *Platform) Observe(ctx context.Context, app string) (slipway.Observed, error) {
	obs := slipway.Observed{App: app}
	if err := p.wait(ctx); err != nil {
		return obs, err
	}
	pods, err := p.appPods(app)
	if err != nil {
		return obs, err
	}
	rss, err := p.appReplicaSets(app)
	if err != nil {
		return obs, err
	}
	revs := map[string]bool{}
	rsOf := map[string]*appsv1.ReplicaSet{}
	for _, rs := range rss {
		revs[rs.Labels[LabelRevision]] = true
		rsOf[rs.Labels[LabelRevision]] = rs
	}
	for rev := range pods {
		revs[rev] = true
	}
	for _, rev := range slices.Sorted(func(yield func(string) bool) {
		for r := range revs {
			if !yield(r) {
				return
			}
		}
	}) {
		ps := slices.Clone(pods[rev])
		slices.SortFunc(ps, func(a, b *corev1.Pod) int { return cmp.Compare(a.Name, b.Name) })
		st := slipway.RevisionStatus{Revision: rev, Instances: []slipway.Instance{}}
		for _, pod := range ps {
			in := instance(pod)
			if orphaned(pod, rsOf[rev]) && in.State != slipway.InstanceDraining {
				in.State, in.Ready, in.ReadySince = slipway.InstanceDraining, false, nil
				in.Message = "its ReplicaSet was deleted; the cluster deletes the pod"
			}
			st.Instances = append(st.Instances, in)
		}
		if rs := rsOf[rev]; rs != nil {
			st.Instances = append(st.Instances, pending(rs, ps)...)
		}
		obs.Revisions = append(obs.Revisions, st)
	}

	main, err := p.mainService(app)
	if err != nil || main == nil {
		return obs, err
	}
	selected := func(r role) string {
		svc, err := p.services.Services(p.ns).Get(serviceName(app, r))
		if err != nil {
			return ""
		}
		return svc.Spec.Selector[LabelRevision]
	}
	stable, canary, preview := selected(roleStable), selected(roleCanary), selected(rolePreview)
	if preview != stable {
		obs.Preview = preview
	}
	if ref, ok := parseRouteKey(main.Annotations[annotationRoute]); ok {
		obs.Split, err = p.observeRoute(ctx, app, ref, stable, canary, preview)
		return obs, err
	}
	if rev := main.Spec.Selector[LabelRevision]; rev != "" {
		obs.Split.Weights = []slipway.Weight{{Revision: rev, Weight: 100}}
		return obs, nil
	}
	if main.Spec.Selector[LabelServing] == "" {
		return obs, nil
	}
	var ws []slipway.Weight
	for _, w := range parseSplitAnnotation(main.Annotations[annotationSplit]) {
		if slices.ContainsFunc(pods[w.Revision], func(pod *corev1.Pod) bool {
			return serving(pod) && podReady(pod) && pod.DeletionTimestamp == nil
		}) {
			ws = append(ws, w)
		}
	}
	if len(ws) == 1 {
		ws[0].Weight = 100
	}
	obs.Split = slipway.Split{Weights: ws, Approximate: len(ws) > 1}
	return obs, nil
}

// pending returns the instances ReplicaSet rs is to have that it has no pod for yet, one
// per replica its spec asks for beyond its pods that are not being deleted. The cluster's
// ReplicaSet controller creates those pods after slipway scaled the ReplicaSet, seconds
// later when it has many to create. They are reported as starting, so that a revision whose
// pods are on their way reads as converging, not as missing instances (drift, which the
// engine would record and apply again on every pass until the pods exist); as failed, with
// the reason, when the ReplicaSet says it cannot create them (a quota, an admission
// webhook). Their IDs are the ReplicaSet's name and "-pending-N".
func pending(rs *appsv1.ReplicaSet, pods []*corev1.Pod) []slipway.Instance {
	if rs.DeletionTimestamp != nil {
		return nil
	}
	want := 1 // the API server's default
	if rs.Spec.Replicas != nil {
		want = int(*rs.Spec.Replicas)
	}
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil {
			want--
		}
	}
	if want <= 0 {
		return nil
	}
	in := slipway.Instance{State: slipway.InstanceStarting, Message: "waiting for the ReplicaSet to create the pod"}
	for _, c := range rs.Status.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
			in.State, in.Message = slipway.InstanceFailed, "the ReplicaSet cannot create the pod: "+cmp.Or(c.Message, c.Reason)
		}
	}
	out := make([]slipway.Instance, want)
	for i := range out {
		out[i] = in
		out[i].ID = rs.Name + "-pending-" + strconv.Itoa(i+1)
	}
	return out
}

// orphaned reports whether pod belongs to a ReplicaSet that is gone (rs, its revision's
// ReplicaSet in the cache, is nil or another one): slipway deletes a ReplicaSet with
// background propagation, so the cluster's garbage collector deletes its pods after it,
// seconds later when it has many to delete. They are draining, not instances of a revision
// that is not wanted (drift). A pod orphaned on purpose (a deletion that orphans its
// dependents) has no owner left, and is reported as it is.
func orphaned(pod *corev1.Pod, rs *appsv1.ReplicaSet) bool {
	owner := metav1.GetControllerOf(pod)
	return owner != nil && owner.Kind == "ReplicaSet" && (rs == nil || rs.UID != owner.UID)
}

// instance is a pod as slipway reports an instance.
func instance(pod *corev1.Pod) slipway.Instance {
	in := slipway.Instance{ID: pod.Name}
	for _, c := range pod.Status.ContainerStatuses {
		in.Restarts += int(c.RestartCount)
		if w := c.State.Waiting; w != nil && in.Message == "" && w.Reason != "ContainerCreating" {
			in.Message = w.Reason
			if w.Message != "" {
				in.Message += ": " + w.Message
			}
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			in.Ready = true
			at := c.LastTransitionTime.Time
			if at.IsZero() {
				at = time.Now()
			}
			in.ReadySince = &at
		}
	}
	if pod.Status.PodIP != "" {
		for _, c := range pod.Spec.Containers {
			for _, pt := range c.Ports {
				if pt.Name == portName {
					in.Address = net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(pt.ContainerPort)))
				}
			}
		}
	}
	switch {
	case pod.DeletionTimestamp != nil:
		in.State, in.Ready, in.ReadySince = slipway.InstanceDraining, false, nil
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded || failing(in.Message):
		in.State = slipway.InstanceFailed
		if in.Message == "" {
			in.Message = cmp.Or(pod.Status.Reason, string(pod.Status.Phase))
		}
	case pod.Status.Phase == corev1.PodRunning && (in.Ready || in.Restarts > 0):
		in.State = slipway.InstanceRunning
	default:
		in.State = slipway.InstanceStarting
	}
	return in
}

// failing reports whether a container's waiting reason means it will not start without a
// change (a bad image, a crash loop, a bad configuration).
func failing(reason string) bool {
	for _, r := range []string{"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"} {
		if len(reason) >= len(r) && reason[:len(r)] == r {
			return true
		}
	}
	return false
}
