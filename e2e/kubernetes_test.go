package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"slipway.dev/slipway/slipwaytest"
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

// TestKubernetes_BlueGreen: a blue-green update brings v2 up in full behind the preview
// Service while the main and stable Services stay on v1; promote switches their selectors to
// v2 and keeps v1's ReplicaSet for scaleDownDelay; a rollback within it switches them back to
// v1's pods as they are (its ReplicaSet never scaled, no pod of it made anew), and v2's goes
// once the delay has passed.
func TestKubernetes_BlueGreen(t *testing.T) {
	ks := newKubeSlipway(t, kubeOptions{})
	const delay = 6 * time.Second
	strategy := fmt.Sprintf("  strategy:\n    blueGreen: {autoPromote: false, scaleDownDelay: %s}", delay)
	ks.newKubeApp("web", 2, strategy)
	v1 := ks.revisionOf("web", "v1")

	ks.must("apply", "-f", ks.kubeApp("web", "v2", 2, strategy))
	ks.waitPhase("web", "v2", "Paused")
	v2 := ks.revisionOf("web", "v2")
	slipwaytest.Eventually(t, kubeWait, "v2's pods ready", func() bool { return ready(ks.pods("web")[v2]) == 2 })
	for svc, want := range map[string]string{"web": v1, "web-stable": v1, "web-preview": v2} {
		if got := ks.selects(svc); got != want {
			t.Errorf("before promotion: Service %s selects %q, want %q", svc, got, want)
		}
	}
	before := ks.replicaSets("web")["v1"]
	var pods []string
	for _, p := range ks.pods("web")[v1] {
		pods = append(pods, p.Name)
	}

	tl := ks.watchApp("web")
	ks.slipway("promote", "web")
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	slipwaytest.Eventually(t, kubeWait, "the Services on v2", func() bool {
		return ks.selects("web") == v2 && ks.selects("web-stable") == v2
	})
	if rs, ok := ks.replicaSets("web")["v1"]; !ok || *rs.Spec.Replicas != 2 {
		t.Fatalf("after promotion, within scaleDownDelay: v1's ReplicaSet %v, want it kept with 2 replicas", keys(ks.replicaSets("web")))
	}

	start := time.Now()
	ks.slipway("rollback", "web")
	slipwaytest.Eventually(t, kubeWait, "the Services back on v1", func() bool {
		return ks.selects("web") == v1 && ks.selects("web-stable") == v1
	})
	t.Logf("the Services were back on v1 %v after the rollback", time.Since(start).Round(time.Millisecond))
	ks.slipway("status", "web", "--wait", "--timeout", kubeWait.String())
	done := time.Now()
	if s := ks.appStatus("web"); s.Stable == nil || s.Stable.Version != "v1" {
		t.Fatalf("after the rollback: %+v", s.Stable)
	}
	after := ks.replicaSets("web")["v1"]
	if after.UID != before.UID || after.Generation != before.Generation {
		t.Errorf("v1's ReplicaSet: UID %s generation %d before promotion, %s %d after the rollback; want it untouched",
			before.UID, before.Generation, after.UID, after.Generation)
	}
	replay(tl.stop(), func(c change, w world) {
		if n := w.replicas(v1); n != 2 {
			t.Errorf("at resource version %d: v1's ReplicaSet has %d replicas, want 2 throughout", c.rv, n)
		}
		if c.pod != nil && c.pod.Labels["slipway.dev/revision"] == v1 && !slices.Contains(pods, c.pod.Name) {
			t.Errorf("at resource version %d: a new pod %s of v1", c.rv, c.pod.Name)
		}
	})

	// v2's ReplicaSet, the old capacity now, stays for scaleDownDelay too.
	if _, ok := ks.replicaSets("web")["v2"]; !ok {
		t.Fatal("v2's ReplicaSet is gone as soon as the rollback completed; want it kept for scaleDownDelay")
	}
	slipwaytest.Eventually(t, kubeWait, "v2's ReplicaSet gone", func() bool {
		_, ok := ks.replicaSets("web")["v2"]
		return !ok
	})
	if gone := time.Since(done); gone < delay-time.Second {
		t.Errorf("v2's ReplicaSet went %v after the rollback completed; want scaleDownDelay %v", gone, delay)
	}
}
