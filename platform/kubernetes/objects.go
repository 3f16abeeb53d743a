package kubernetes

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"slipway.dev/slipway"
)

// containerName is the name of the app's container in its pods when it names none.
const containerName = "app"

// portName names the container port that serves traffic, which the Services target.
const portName = "http"

// replicaSetName is the name of the ReplicaSet of revision rev of app.
func replicaSetName(app, rev string) string { return app + "-" + rev }

// appLabels are the labels of every object slipway creates for app.
func appLabels(app string) map[string]string {
	return map[string]string{LabelApp: app, LabelManagedBy: ManagedBy}
}

// replicaSet is the ReplicaSet of placement pl of app: its pods run the revision's
// container, labelled with the app and revision that the Services select by.
func (p *Platform) replicaSet(app string, pl slipway.Placement) *appsv1ac.ReplicaSetApplyConfiguration {
	rev := pl.Revision
	lbl := appLabels(app)
	lbl[LabelRevision] = rev.ID
	tmpl := corev1ac.PodTemplateSpec().
		WithLabels(lbl).
		WithSpec(corev1ac.PodSpec().WithContainers(containers(rev.Spec)...))
	return appsv1ac.ReplicaSet(replicaSetName(app, rev.ID), p.ns).
		WithLabels(lbl).
		WithAnnotations(map[string]string{annotationVersion: rev.Version}).
		WithSpec(appsv1ac.ReplicaSetSpec().
			WithReplicas(int32(pl.Replicas)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{LabelApp: app, LabelRevision: rev.ID})).
			WithTemplate(tmpl))
}

// containers are the containers of a revision's pods: the app's, with its probes, then
// its sidecars.
func containers(spec slipway.RevisionSpec) []*corev1ac.ContainerApplyConfiguration {
	main := container(*spec.Container)
	if pr := spec.Health.Readiness; pr != nil {
		main.WithReadinessProbe(probe(pr, true))
	}
	if pr := spec.Health.Liveness; pr != nil {
		main.WithLivenessProbe(probe(pr, false))
	}
	out := []*corev1ac.ContainerApplyConfiguration{main}
	for _, sc := range spec.Sidecars {
		out = append(out, container(sc))
	}
	return out
}

// container is one container of a pod: its image, command, environment, ports and
// resources.
func container(c slipway.ContainerSpec) *corev1ac.ContainerApplyConfiguration {
	ac := corev1ac.Container().WithName(cmp.Or(c.Name, containerName)).WithImage(c.Image)
	if len(c.Command) > 0 {
		ac.WithCommand(c.Command...)
	}
	if len(c.Args) > 0 {
		ac.WithArgs(c.Args...)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		ac.WithEnv(corev1ac.EnvVar().WithName(k).WithValue(c.Env[k]))
	}
	// The protocol is part of a port's key: set it, so that what the server defaults
	// does not read as a change.
	if c.Port > 0 {
		ac.WithPorts(corev1ac.ContainerPort().WithName(portName).WithContainerPort(int32(c.Port)).WithProtocol(corev1.ProtocolTCP))
	}
	for _, pt := range c.Ports {
		ac.WithPorts(corev1ac.ContainerPort().WithName(pt.Name).WithContainerPort(int32(pt.Port)).WithProtocol(corev1.ProtocolTCP))
	}
	if r := c.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		rr := corev1ac.ResourceRequirements()
		if len(r.Requests) > 0 {
			rr.WithRequests(resourceList(r.Requests))
		}
		if len(r.Limits) > 0 {
			rr.WithLimits(resourceList(r.Limits))
		}
		ac.WithResources(rr)
	}
	return ac
}

// resourceList parses quantities validated by the spec; one that does not parse (a
// revision made before the check) is left out rather than failing the whole pod.
func resourceList(m map[string]slipway.Quantity) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range m {
		if q, err := resource.ParseQuantity(string(v)); err == nil {
			out[corev1.ResourceName(k)] = q
		}
	}
	return out
}

// probe is a Kubernetes probe of the container for one of slipway's. Times are whole
// seconds, rounded up; a liveness probe's success threshold is Kubernetes' fixed 1.
func probe(pr *slipway.Probe, readiness bool) *corev1ac.ProbeApplyConfiguration {
	ac := corev1ac.Probe()
	switch {
	case pr.HTTP != nil:
		ac.WithHTTPGet(corev1ac.HTTPGetAction().WithPath(cmp.Or(pr.HTTP.Path, "/")).WithPort(intstr.FromString(portName)))
	case pr.TCP != nil:
		ac.WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromString(portName)))
	case pr.Exec != nil:
		ac.WithExec(corev1ac.ExecAction().WithCommand(pr.Exec.Command...))
	}
	secs := func(d slipway.Duration) int32 { return int32((time.Duration(d) + time.Second - 1) / time.Second) }
	if pr.Period > 0 {
		ac.WithPeriodSeconds(secs(pr.Period))
	}
	if pr.Timeout > 0 {
		ac.WithTimeoutSeconds(secs(pr.Timeout))
	}
	if pr.InitialDelay > 0 {
		ac.WithInitialDelaySeconds(secs(pr.InitialDelay))
	}
	if pr.FailureThreshold > 0 {
		ac.WithFailureThreshold(int32(pr.FailureThreshold))
	}
	if readiness && pr.SuccessThreshold > 0 {
		ac.WithSuccessThreshold(int32(pr.SuccessThreshold))
	}
	return ac
}

// applyReplicaSet applies want unless the fields slipway owns of the live ReplicaSet
// already say the same. Putting back what another writer changed or deleted is reported as
// a repair (repair.go).
func (p *Platform) applyReplicaSet(ctx context.Context, w *wrote, want *appsv1ac.ReplicaSetApplyConfiguration) error {
	name, repair := *want.Name, ""
	live, err := p.rsets.ReplicaSets(p.ns).Get(name)
	switch {
	case err == nil:
		have, err := appsv1ac.ExtractReplicaSet(live, p.manager)
		if err == nil && equality.Semantic.DeepEqual(have, want) {
			p.remember(kindReplicaSet, name, want, live.ResourceVersion)
			return nil
		}
		if err == nil && p.changedBehind(kindReplicaSet, name, have, live.ResourceVersion) {
			repair = p.replicaSetRepair(live, want)
		}
	case apierrors.IsNotFound(err) && p.deletedBehind(ctx, kindReplicaSet, name):
		repair = fmt.Sprintf("ReplicaSet %s was deleted by another writer; created again", name)
	}
	created := live == nil
	res, err := p.kube.AppsV1().ReplicaSets(p.ns).Apply(ctx, want, metav1.ApplyOptions{FieldManager: p.manager, Force: true})
	if err == nil {
		w.add(kindReplicaSet, res, created)
		p.remember(kindReplicaSet, name, want, res.ResourceVersion)
		if repair != "" {
			p.repaired(want.Labels[LabelApp], repair)
		}
	}
	return apiError(err, "apply", "ReplicaSet", p.ns, name)
}

// service is app's Service for role r, selecting sel (nothing when sel is nil). The main
// Service carries the split it carries out and the HTTPRoute slipway edits for the app.
func (p *Platform) service(app string, r role, sel map[string]string, port int, annotations map[string]string) *corev1ac.ServiceApplyConfiguration {
	lbl := appLabels(app)
	spec := corev1ac.ServiceSpec()
	if len(sel) > 0 {
		spec.WithSelector(sel)
	}
	if port > 0 {
		spec.WithPorts(corev1ac.ServicePort().WithName(portName).WithPort(int32(port)).WithProtocol(corev1.ProtocolTCP).
			WithTargetPort(intstr.FromString(portName)))
	}
	ac := corev1ac.Service(serviceName(app, r), p.ns).WithLabels(lbl).WithSpec(spec)
	if len(annotations) > 0 {
		ac.WithAnnotations(annotations)
	}
	return ac
}

// applyService applies want unless the fields slipway owns of the live Service already
// say the same. Putting back what another writer changed or deleted is reported as a repair
// (repair.go).
func (p *Platform) applyService(ctx context.Context, w *wrote, want *corev1ac.ServiceApplyConfiguration) error {
	name, repair := *want.Name, ""
	live, err := p.services.Services(p.ns).Get(name)
	switch {
	case err == nil:
		have, err := corev1ac.ExtractService(live, p.manager)
		if err == nil && equality.Semantic.DeepEqual(have, want) {
			p.remember(kindService, name, want, live.ResourceVersion)
			return nil
		}
		if err == nil && p.changedBehind(kindService, name, have, live.ResourceVersion) {
			repair = p.serviceRepair(live, want)
		}
	case apierrors.IsNotFound(err) && p.deletedBehind(ctx, kindService, name):
		repair = fmt.Sprintf("Service %s was deleted by another writer; created again", name)
	}
	created := live == nil
	res, err := p.kube.CoreV1().Services(p.ns).Apply(ctx, want, metav1.ApplyOptions{FieldManager: p.manager, Force: true})
	if err == nil {
		w.add(kindService, res, created)
		p.remember(kindService, name, want, res.ResourceVersion)
		if repair != "" {
			p.repaired(want.Labels[LabelApp], repair)
		}
	}
	return apiError(err, "apply", "Service", p.ns, name)
}

// labelServing sets or clears a pod's serving label, owned by slipway's field manager. The
// pod's UID goes with each write, so that a pod deleted meanwhile is neither created anew
// (an apply to an object that does not exist creates it, and the API server then refuses a
// pod without containers as invalid) nor mistaken for a pod of the same name made since:
// either is reported as nothing to do.
func (p *Platform) labelServing(ctx context.Context, w *wrote, pod *corev1.Pod, on bool) error {
	ac := corev1ac.Pod(pod.Name, p.ns).WithUID(pod.UID)
	if on {
		ac.WithLabels(map[string]string{LabelServing: "true"})
	}
	res, err := p.kube.CoreV1().Pods(p.ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: p.manager, Force: true})
	if err == nil && !on && serving(res) {
		// The label was set by another manager (or before slipway owned it): remove it.
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pod.UID, "labels": map[string]any{LabelServing: nil}}})
		res, err = p.kube.CoreV1().Pods(p.ns).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: p.manager})
	}
	if err != nil && p.podGone(ctx, pod) {
		return nil // nothing serves from a pod that is gone
	}
	if err == nil {
		w.add(kindPod, res, false)
	}
	return apiError(err, "label", "Pod", p.ns, pod.Name)
}

// podGone reports whether pod no longer exists: none of its name, or one made since with
// another UID. It asks the API server, not the cache, which may not have seen the deletion.
func (p *Platform) podGone(ctx context.Context, pod *corev1.Pod) bool {
	live, err := p.kube.CoreV1().Pods(p.ns).Get(ctx, pod.Name, metav1.GetOptions{})
	return apierrors.IsNotFound(err) || err == nil && live.UID != pod.UID
}

// appReplicaSets lists the ReplicaSets slipway created for app.
func (p *Platform) appReplicaSets(app string) ([]*appsv1.ReplicaSet, error) {
	objs, err := p.rsByApp.ByIndex(indexByApp, app)
	if err != nil {
		return nil, fmt.Errorf("list replica sets of %s: %w", app, err)
	}
	sel := labels.SelectorFromSet(appLabels(app))
	rss := make([]*appsv1.ReplicaSet, 0, len(objs))
	for _, obj := range objs {
		if rs, ok := obj.(*appsv1.ReplicaSet); ok && sel.Matches(labels.Set(rs.Labels)) {
			rss = append(rss, rs)
		}
	}
	slices.SortFunc(rss, func(a, b *appsv1.ReplicaSet) int { return cmp.Compare(a.Name, b.Name) })
	return rss, nil
}

// appPods lists the pods of app's ReplicaSets by revision, from the cache's index by app.
func (p *Platform) appPods(app string) (map[string][]*corev1.Pod, error) {
	objs, err := p.podsByApp.ByIndex(indexByApp, app)
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", app, err)
	}
	sel := labels.SelectorFromSet(appLabels(app))
	out := map[string][]*corev1.Pod{}
	for _, obj := range objs {
		pod, ok := obj.(*corev1.Pod)
		if !ok || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		if rev := pod.Labels[LabelRevision]; rev != "" {
			out[rev] = append(out[rev], pod)
		}
	}
	return out, nil
}

// deleteReplicaSet deletes a ReplicaSet slipway created; the cluster then deletes its pods.
func (p *Platform) deleteReplicaSet(ctx context.Context, w *wrote, rs *appsv1.ReplicaSet) error {
	p.forget(kindReplicaSet, rs.Name)
	if rs.DeletionTimestamp != nil {
		return nil
	}
	bg := metav1.DeletePropagationBackground
	err := p.kube.AppsV1().ReplicaSets(p.ns).Delete(ctx, rs.Name, metav1.DeleteOptions{
		PropagationPolicy: &bg,
		Preconditions:     &metav1.Preconditions{UID: &rs.UID},
	})
	if err == nil || apierrors.IsNotFound(err) {
		w.gone(kindReplicaSet, rs)
		return nil
	}
	return apiError(err, "delete", "ReplicaSet", p.ns, rs.Name)
}

// deleteService deletes app's Service name if slipway created it.
func (p *Platform) deleteService(ctx context.Context, w *wrote, app, name string) error {
	p.forget(kindService, name)
	svc, err := p.services.Services(p.ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read service %s: %w", name, err)
	}
	if svc.Labels[LabelApp] != app || svc.DeletionTimestamp != nil {
		return nil
	}
	err = p.kube.CoreV1().Services(p.ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
	if err == nil || apierrors.IsNotFound(err) {
		w.gone(kindService, svc)
		return nil
	}
	return apiError(err, "delete", "Service", p.ns, name)
}
