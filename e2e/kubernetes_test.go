package e2e

import (
	"slices"
	"testing"
)

// The kubernetes tests: the slipway binary's server beside a real control plane (package
// kubetest), its apps in an Environment with target kubernetes, acting as the ServiceAccount
// of deploy/kubernetes/rbac.yaml (kubernetes_harness_test.go). No traffic flows through the
// cluster: they check what slipway writes and how it follows pod readiness.

// TestKubernetes_RollingUpdate: a rolling update of 4 replicas with maxSurge 1 and
// maxUnavailable 0 scales v2's ReplicaSet up and v1's down one pod at a time: in the whole
// history of the cluster's ReplicaSets and pods, never more than 5 pods are asked for, and
// v1's is scaled down only as far as v2's ready pods make up for. It completes with v2's
// ReplicaSet alone and the main Service on v2.
func TestKubernetes_RollingUpdate(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	const strategy = "  strategy:\n    rolling: {maxSurge: 1, maxUnavailable: 0}"
	ks.newKubeApp("web", 4, strategy)
	v1 := ks.revisionOf("web", "v1")

	tl := ks.watchApp("web")
	ks.must("apply", "-f", ks.kubeApp("web", "v2", 4, strategy))
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	v2 := ks.waitStatus("web", "v2 stable", func(s status) bool { return s.Stable != nil && s.Stable.Version == "v2" }).Stable.Revision
	if rss := ks.replicaSets("web"); len(rss) != 1 || *rss["v2"].Spec.Replicas != 4 {
		t.Errorf("after the update: ReplicaSets %v, want v2's alone with 4 replicas", keys(rss))
	}
	if sel := ks.selects("web"); sel != v2 {
		t.Errorf("Service web selects %q, want v2 (%s)", sel, v2)
	}

	var olds, news []int // v1's and v2's replica counts as they changed
	replay(tl.stop(), func(c change, w world) {
		o, n := w.replicas(v1), w.replicas(v2)
		if len(olds) == 0 || olds[len(olds)-1] != o {
			olds = append(olds, o)
		}
		if len(news) == 0 || news[len(news)-1] != n {
			news = append(news, n)
		}
		if o+n > 5 {
			t.Errorf("at resource version %d: v1 %d + v2 %d replicas, more than 4 + maxSurge 1", c.rv, o, n)
		}
		if ready := w.readyPods(v2); o+ready < 4 {
			t.Errorf("at resource version %d: v1 scaled to %d with %d ready pods of v2: below 4 - maxUnavailable 0", c.rv, o, ready)
		}
	})
	if want := []int{4, 3, 2, 1, 0}; !slices.Equal(olds, want) {
		t.Errorf("v1's replicas went %v, want %v", olds, want)
	}
	if want := []int{1, 2, 3, 4}; !slices.Equal(news, want) {
		t.Errorf("v2's replicas went %v, want %v", news, want)
	}
}
