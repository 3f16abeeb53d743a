package kubernetes

import (
	"context"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kinds of the objects slipway writes, for await.
const (
	kindReplicaSet = "ReplicaSet"
	kindService    = "Service"
	kindPod        = "Pod"
	kindRoute      = "HTTPRoute"
)

// maxAwait bounds how long Apply waits for the caches to hold its writes: a watch that
// lags longer only delays what Observe reports, never what is written.
const maxAwait = 5 * time.Second

// written is one write: the object as the API returned it, or, for a deletion, the object
// that was deleted. created says the write made the object (the cache had none before).
type written struct {
	kind            string
	namespace, name string
	resourceVersion string
	uid             types.UID
	created         bool
	deleted         bool
}

// wrote collects the writes of one convergence, so that Apply can return once the caches
// hold them: Observe then reports what Apply did, and a second Apply compares against it.
type wrote []written

// add records a write of obj, which made it when created.
func (w *wrote) add(kind string, obj metav1.Object, created bool) {
	*w = append(*w, written{kind: kind, namespace: obj.GetNamespace(), name: obj.GetName(), resourceVersion: obj.GetResourceVersion(), uid: obj.GetUID(), created: created})
}

func (w *wrote) gone(kind string, obj metav1.Object) {
	*w = append(*w, written{kind: kind, namespace: obj.GetNamespace(), name: obj.GetName(), uid: obj.GetUID(), deleted: true})
}

// await waits until the caches hold every write of w (an object at that resource version
// or a later one, a deleted object gone), for at most maxAwait or until ctx ends.
func (p *Platform) await(ctx context.Context, w wrote) {
	if len(w) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, maxAwait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for _, x := range w {
			if !p.cached(x) {
				done = false
				break
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// cached reports whether the cache holds write x.
func (p *Platform) cached(x written) bool {
	var obj metav1.Object
	var err error
	switch x.kind {
	case kindReplicaSet:
		obj, err = p.rsets.ReplicaSets(x.namespace).Get(x.name)
	case kindService:
		obj, err = p.services.Services(x.namespace).Get(x.name)
	case kindPod:
		obj, err = p.pods.Pods(x.namespace).Get(x.name)
	case kindRoute:
		p.mu.Lock()
		rc := p.routes[x.namespace]
		p.mu.Unlock()
		if rc == nil {
			return true
		}
		obj, err = rc.lister.HTTPRoutes(x.namespace).Get(x.name)
	default:
		return true
	}
	if x.deleted {
		return apierrors.IsNotFound(err) || err == nil && obj.GetUID() != x.uid
	}
	if err != nil {
		// Not in the cache: an object the write created is not there yet (its watch event
		// is on its way); one that was there before is gone meanwhile (a pod its
		// ReplicaSet deleted), and there is nothing to wait for.
		return apierrors.IsNotFound(err) && !x.created
	}
	return atLeast(obj.GetResourceVersion(), x.resourceVersion)
}

// atLeast reports whether resource version have is want or later. Resource versions are
// opaque to clients, but the API server's are increasing integers; versions that are not
// count as caught up only when equal.
func atLeast(have, want string) bool {
	if have == want {
		return true
	}
	h, err1 := strconv.ParseUint(have, 10, 64)
	w, err2 := strconv.ParseUint(want, 10, 64)
	return err1 == nil && err2 == nil && h >= w
}
