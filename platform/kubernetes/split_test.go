package kubernetes

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"slipway.dev/slipway"
)

func TestClosestRatio(t *testing.T) {
	tests := []struct {
		name                   string
		stableW, canaryW       int
		stablePods, canaryPods int
		wantStable, wantCanary int
	}{
		{"exact fifth", 80, 20, 5, 1, 4, 1},
		{"10% of 5 rounds to the nearest ratio 1 in 6", 90, 10, 5, 1, 5, 1},
		{"half of 5 stable and 3 canary", 50, 50, 5, 3, 3, 3},
		{"90% with 5 canary keeps one stable", 10, 90, 5, 5, 1, 5},
		{"99% never leaves stable without a pod", 1, 99, 5, 5, 1, 5},
		{"1% never leaves the canary without a pod", 99, 1, 10, 1, 10, 1},
		{"one pod each is the closest to any weight", 95, 5, 1, 1, 1, 1},
		{"a third rounds to 2:1", 67, 33, 3, 1, 2, 1},
		{"two thirds rounds to 1:2", 33, 67, 3, 2, 1, 2},
		{"a quarter", 75, 25, 4, 1, 3, 1},
		{"exact at several scales takes the most pods", 90, 10, 100, 10, 90, 10},
		{"exact at several scales, canary bounded", 90, 10, 100, 2, 18, 2},
		{"rounding down beats rounding up", 70, 30, 10, 1, 2, 1},
		{"rounding up beats rounding down", 60, 40, 10, 2, 3, 2},
		{"no canary weight", 100, 0, 4, 2, 4, 0},
		{"no canary pods", 80, 20, 4, 0, 4, 0},
		{"no stable weight", 0, 100, 4, 2, 0, 2},
		{"no stable pods", 80, 20, 0, 2, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := closestRatio(tc.stableW, tc.canaryW, tc.stablePods, tc.canaryPods)
			if s != tc.wantStable || c != tc.wantCanary {
				t.Errorf("closestRatio(%d, %d, %d, %d) = %d:%d, want %d:%d", tc.stableW, tc.canaryW, tc.stablePods, tc.canaryPods, s, c, tc.wantStable, tc.wantCanary)
			}
		})
	}
}

// TestClosestRatio_NeverStarves: for every weight 1-99 and pod counts up to 12, both
// revisions keep at least one pod and no other choice comes closer to the weight.
func TestClosestRatio_NeverStarves(t *testing.T) {
	for w := 1; w <= 99; w++ {
		for sp := 1; sp <= 12; sp++ {
			for cp := 1; cp <= 12; cp++ {
				s, c := closestRatio(100-w, w, sp, cp)
				if s < 1 || c < 1 || s > sp || c > cp {
					t.Fatalf("closestRatio(%d, %d, %d, %d) = %d:%d; want 1..%d stable and 1..%d canary", 100-w, w, sp, cp, s, c, sp, cp)
				}
				got := abs(100*c-w*(s+c)) * 1000 / (s + c)
				for a := 1; a <= sp; a++ {
					for b := 1; b <= cp; b++ {
						if e := abs(100*b-w*(a+b)) * 1000 / (a + b); e < got {
							t.Fatalf("weight %d, pods %d:%d: chose %d:%d, but %d:%d is closer", w, sp, cp, s, c, a, b)
						}
					}
				}
			}
		}
	}
}

func TestDecide(t *testing.T) {
	v1, v2 := slipway.Revision{ID: "aaa"}, slipway.Revision{ID: "bbb"}
	both := []slipway.Placement{{Revision: v1, Replicas: 5}, {Revision: v2, Replicas: 1}}
	split := func(ws ...slipway.Weight) slipway.Split { return slipway.Split{Weights: ws} }
	w := func(rev slipway.Revision, n int) slipway.Weight { return slipway.Weight{Revision: rev.ID, Weight: n} }
	tests := []struct {
		name    string
		d       slipway.Desired
		current string
		ready   map[string]int
		want    plan
	}{
		{"one revision takes everything", slipway.Desired{Revisions: both[:1], Split: split(w(v1, 100))}, "", nil,
			plan{stable: "aaa", canary: "aaa", preview: "aaa", stableWeight: 100}},
		{"the canary is the new revision, listed first", slipway.Desired{Revisions: both, Split: split(w(v2, 20), w(v1, 80))}, "",
			map[string]int{"aaa": 5, "bbb": 1},
			plan{stable: "aaa", canary: "bbb", preview: "aaa", stableWeight: 80, canaryWeight: 20, shared: true, serving: map[string]int{"aaa": 4, "bbb": 1}}},
		{"the stable Service keeps its revision whatever the order", slipway.Desired{Revisions: both, Split: split(w(v1, 10), w(v2, 90))}, "aaa",
			map[string]int{"aaa": 5, "bbb": 1},
			plan{stable: "aaa", canary: "bbb", preview: "aaa", stableWeight: 10, canaryWeight: 90, shared: true, serving: map[string]int{"aaa": 1, "bbb": 1}}},
		{"an unready canary takes no weight and stable stands in for it", slipway.Desired{Revisions: both, Split: split(w(v2, 20), w(v1, 80))}, "aaa",
			map[string]int{"aaa": 5},
			plan{stable: "aaa", canary: "bbb", preview: "aaa", stableWeight: 100, canaryWeight: 0, shared: true, serving: map[string]int{"aaa": 5, "bbb": 0}}},
		{"blue-green previews the new revision", slipway.Desired{Revisions: both, Split: split(w(v1, 100)), Preview: "bbb"}, "aaa", nil,
			plan{stable: "aaa", canary: "aaa", preview: "bbb", stableWeight: 100}},
		{"blue-green switch moves the stable Service", slipway.Desired{Revisions: both, Split: split(w(v2, 100))}, "aaa", nil,
			plan{stable: "bbb", canary: "bbb", preview: "bbb", stableWeight: 100}},
		{"a header route before any weight makes its revision the canary", slipway.Desired{Revisions: both, Split: slipway.Split{
			Weights: []slipway.Weight{w(v1, 100)}, Routes: []slipway.Route{{Name: "beta", Revision: "bbb"}}}}, "aaa", nil,
			plan{stable: "aaa", canary: "bbb", preview: "aaa", stableWeight: 100}},
		{"no traffic keeps the current stable revision placed", slipway.Desired{Revisions: both}, "aaa", nil,
			plan{stable: "aaa", canary: "aaa", preview: "aaa", stableWeight: 100}},
		{"no traffic and no revision", slipway.Desired{}, "aaa", nil, plan{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.d, tc.current, tc.ready)
			if got.stable != tc.want.stable || got.canary != tc.want.canary || got.preview != tc.want.preview ||
				got.stableWeight != tc.want.stableWeight || got.canaryWeight != tc.want.canaryWeight || got.shared != tc.want.shared ||
				len(got.serving) != len(tc.want.serving) {
				t.Fatalf("decide = %+v, want %+v", got, tc.want)
			}
			for rev, n := range tc.want.serving {
				if got.serving[rev] != n {
					t.Errorf("serving[%s] = %d, want %d", rev, got.serving[rev], n)
				}
			}
		})
	}
}

func TestServingPods(t *testing.T) {
	pod := func(name string, age int, ready, serving bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, CreationTimestamp: metav1.Unix(int64(1000-age), 0)}}
		if serving {
			p.Labels[LabelServing] = "true"
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		return p
	}
	names := func(ps []*corev1.Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	pods := []*corev1.Pod{pod("young", 1, true, false), pod("old", 9, true, false), pod("serving", 5, true, true), pod("unready", 7, false, true)}
	label, unlabel := servingPods(pods, 2)
	if got := names(label); len(got) != 1 || got[0] != "old" {
		t.Errorf("label %v, want [old] (serving kept, then the oldest)", got)
	}
	if got := names(unlabel); len(got) != 1 || got[0] != "unready" {
		t.Errorf("unlabel %v, want [unready]", got)
	}
	label, unlabel = servingPods(pods, 0)
	if len(label) != 0 || len(unlabel) != 2 {
		t.Errorf("serving none: label %v unlabel %v, want every labelled pod unlabelled", names(label), names(unlabel))
	}
}
