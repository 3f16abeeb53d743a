package kubernetes

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// The platform repairs drift by itself: an informer sees a ReplicaSet or Service of an app
// changed or deleted behind slipway's back and the worker applies it again at once, long
// before the engine's resync could see the difference. So that such a repair is recorded,
// the platform remembers what it last wrote to each object (the fields it owns, and the
// object's resource version after the write) and tells Config.Repaired when it puts back
// an object that another writer changed after that. A change slipway made itself (a new
// desired state) is not drift; neither is a cache that has not caught up with slipway's
// own write (an older resource version).

// lastWrite is what slipway last applied to one object.
type lastWrite struct {
	// want is the apply configuration: the fields slipway owns, as it wants them.
	want any
	// rv is the object's resource version once they were written (or found written).
	rv string
}

func objectKey(kind, name string) string { return kind + "/" + name }

// remember records want as what slipway last wrote to the object kind/name, at resource
// version rv.
func (p *Platform) remember(kind, name string, want any, rv string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.written[objectKey(kind, name)] = lastWrite{want: want, rv: rv}
}

// forget drops what slipway wrote to the object kind/name, which it deletes.
func (p *Platform) forget(kind, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.written, objectKey(kind, name))
}

// lastWritten returns what slipway last wrote to the object kind/name, if it remembers.
func (p *Platform) lastWritten(kind, name string) (lastWrite, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.written[objectKey(kind, name)]
	return l, ok
}

// changedBehind reports whether another writer changed the fields slipway owns of the
// object kind/name (have, at resource version rv) since slipway last wrote them.
func (p *Platform) changedBehind(kind, name string, have any, rv string) bool {
	l, ok := p.lastWritten(kind, name)
	return ok && rv != l.rv && atLeast(rv, l.rv) && !equality.Semantic.DeepEqual(have, l.want)
}

// deletedBehind reports whether the object kind/name, which slipway wrote and the cache
// does not hold, was deleted by another writer: the API server does not have it either
// (the cache may only lag behind slipway's own write).
func (p *Platform) deletedBehind(ctx context.Context, kind, name string) bool {
	if _, ok := p.lastWritten(kind, name); !ok {
		return false
	}
	var err error
	switch kind {
	case kindReplicaSet:
		_, err = p.kube.AppsV1().ReplicaSets(p.ns).Get(ctx, name, metav1.GetOptions{})
	case kindService:
		_, err = p.kube.CoreV1().Services(p.ns).Get(ctx, name, metav1.GetOptions{})
	default:
		return false
	}
	return apierrors.IsNotFound(err)
}

// repaired reports a repair of app's objects, described by what.
func (p *Platform) repaired(app, what string) {
	p.log.Info("drift repaired", "app", app, "repair", what)
	if p.onRepair != nil {
		p.onRepair(app, what)
	}
}

// writer names who last changed obj other than slipway: the field manager of its newest
// managed-fields entry that is neither slipway's nor of the status (which controllers
// write, and slipway does not), or "another writer". An entry without a time counts as the
// newest: the API server writes none for an update of the scale subresource.
func (p *Platform) writer(obj metav1.Object) string {
	name, at := "", (*metav1.Time)(nil)
	for _, e := range obj.GetManagedFields() {
		if e.Manager == p.manager || e.Subresource == "status" {
			continue
		}
		if name == "" || e.Time == nil || at != nil && !e.Time.Before(at) {
			name, at = e.Manager, e.Time
		}
		if at == nil {
			break
		}
	}
	if name == "" {
		return "another writer"
	}
	return name
}

// replicaSetRepair describes putting back live, a ReplicaSet another writer changed, as want.
func (p *Platform) replicaSetRepair(live *appsv1.ReplicaSet, want *appsv1ac.ReplicaSetApplyConfiguration) string {
	if live.Spec.Replicas != nil && want.Spec != nil && want.Spec.Replicas != nil && *live.Spec.Replicas != *want.Spec.Replicas {
		return fmt.Sprintf("ReplicaSet %s was scaled to %d by %s; scaled back to %d", live.Name, *live.Spec.Replicas, p.writer(live), *want.Spec.Replicas)
	}
	return fmt.Sprintf("ReplicaSet %s was changed by %s; put back", live.Name, p.writer(live))
}

// serviceRepair describes putting back live, a Service another writer changed, as want.
func (p *Platform) serviceRepair(live *corev1.Service, want *corev1ac.ServiceApplyConfiguration) string {
	var sel map[string]string
	if want.Spec != nil {
		sel = want.Spec.Selector
	}
	if !equality.Semantic.DeepEqual(map[string]string(labels.Set(live.Spec.Selector)), sel) && len(live.Spec.Selector)+len(sel) > 0 {
		return fmt.Sprintf("Service %s's selector was changed to {%s} by %s; put back to {%s}", live.Name, labels.Set(live.Spec.Selector), p.writer(live), labels.Set(sel))
	}
	return fmt.Sprintf("Service %s was changed by %s; put back", live.Name, p.writer(live))
}
