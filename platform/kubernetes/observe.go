package kubernetes

import (
	"cmp"
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"slipway.dev/slipway"
)

// Observe reports app's live state from the caches: each revision's pods as instances (Ready
// by their readiness condition), the split its Services and HTTPRoute carry out, and the
// revision its preview Service selects when that is not the stable one. Without an
// HTTPRoute, a split of two revisions is the one the main Service carries out by the ratio
// of pods it selects, marked approximate, and only on revisions with a pod serving.
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
	for _, rs := range rss {
		revs[rs.Labels[LabelRevision]] = true
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
			st.Instances = append(st.Instances, instance(pod))
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
