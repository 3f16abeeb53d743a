package kubernetes

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
)

// TestCached: Apply waits until the cache holds what it wrote: an object it created is
// awaited until the cache has it (before, a creation not yet in the cache counted as gone,
// so Apply returned before Observe could see its new ReplicaSets); an object it changed is
// awaited until the cache has that version, unless it is gone meanwhile; a deleted one
// until it is gone.
func TestCached(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	p := &Platform{rsets: appslisters.NewReplicaSetLister(idx)}
	rs := func(rv, uid string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-a", ResourceVersion: rv, UID: types.UID(uid)}}
	}
	put := func(o *appsv1.ReplicaSet) {
		if err := idx.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	write := func(o *appsv1.ReplicaSet, created bool) written {
		var w wrote
		w.add(kindReplicaSet, o, created)
		return w[0]
	}
	remove := func(o *appsv1.ReplicaSet) written {
		var w wrote
		w.gone(kindReplicaSet, o)
		return w[0]
	}

	if p.cached(write(rs("10", "u1"), true)) {
		t.Error("a created ReplicaSet not yet in the cache counts as cached")
	}
	if !p.cached(write(rs("10", "u1"), false)) {
		t.Error("a changed ReplicaSet gone from the cache is waited for")
	}
	put(rs("9", "u1"))
	if p.cached(write(rs("10", "u1"), true)) || p.cached(write(rs("10", "u1"), false)) {
		t.Error("the cache's older version counts as the one written")
	}
	put(rs("10", "u1"))
	if !p.cached(write(rs("10", "u1"), true)) || !p.cached(write(rs("10", "u1"), false)) {
		t.Error("the version written, in the cache, is waited for")
	}
	if p.cached(remove(rs("10", "u1"))) {
		t.Error("a deleted ReplicaSet still in the cache counts as gone")
	}
	put(rs("12", "u2"))
	if !p.cached(remove(rs("10", "u1"))) {
		t.Error("a deleted ReplicaSet replaced by another of its name is waited for")
	}
}
