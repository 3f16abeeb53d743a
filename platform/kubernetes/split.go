package kubernetes

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"slipway.dev/slipway"
)

// role is what one of an app's Services is for.
type role string

// The Services of an app, each selecting pods by their labels.
const (
	// roleMain is the Service named after the app: in-cluster clients' entry. It selects
	// the one revision taking traffic, or, while two share it, the pods labelled serving.
	roleMain role = ""
	// roleStable selects the stable revision: the one an HTTPRoute's rules send to.
	roleStable role = "stable"
	// roleCanary selects the canary revision (the stable one when there is none): the
	// backend slipway adds beside the stable one in an HTTPRoute's rules.
	roleCanary role = "canary"
	// rolePreview selects the revision a blue-green rollout previews (the stable one when
	// there is none).
	rolePreview role = "preview"
)

// roles lists every role, the main Service first.
var roles = []role{roleMain, roleStable, roleCanary, rolePreview}

// serviceName is the name of app's Service for r: NAME, NAME-stable, NAME-canary,
// NAME-preview.
func serviceName(app string, r role) string {
	if r == roleMain {
		return app
	}
	return app + "-" + string(r)
}

// plan is how an app's traffic is shared: what each Service selects, the weights of an
// HTTPRoute's backends, and, while two revisions share the main Service, how many of each
// one's pods it sends to.
type plan struct {
	// stable, canary and preview are revision IDs ("" when the app has none).
	stable, canary, preview string
	// stableWeight and canaryWeight are the HTTPRoute backends' weights.
	stableWeight, canaryWeight int
	// shared says two revisions take traffic: the main Service selects pods labelled
	// serving, serving[rev] of each.
	shared  bool
	serving map[string]int
}

// decide makes the plan for d. current is the revision the stable Service selects now
// (kept stable while it takes traffic, so that the Services do not swap revisions from one
// step to the next); ready counts the ready pods of each revision.
//
// Traffic moves onto the canary only once it has ready pods: until then the HTTPRoute
// keeps every request on stable, and stable's pods stand in for the canary's in the main
// Service. A canary that takes no weight yet but has a header route is the canary all the
// same: the canary Service selects it, at weight 0.
func decide(d slipway.Desired, current string, ready map[string]int) plan {
	var ws []slipway.Weight
	for _, w := range d.Split.Weights {
		if w.Weight > 0 {
			ws = append(ws, w)
		}
	}
	var pl plan
	switch len(ws) {
	case 0:
		if d.Places(current) {
			pl.stable = current
		}
	case 1:
		pl.stable = ws[0].Revision
	default:
		s, c := ws[1], ws[0]
		switch {
		case ws[0].Revision == current:
			s, c = ws[0], ws[1]
		case ws[1].Revision == current:
		case ws[0].Weight > ws[1].Weight:
			s, c = ws[0], ws[1]
		}
		pl.stable, pl.canary = s.Revision, c.Revision
		pl.stableWeight, pl.canaryWeight = s.Weight, c.Weight
		if ready[c.Revision] == 0 {
			pl.stableWeight, pl.canaryWeight = 100, 0
		}
		pl.shared = true
	}
	if pl.canary == "" {
		pl.canary = pl.stable
		if pl.stable != "" {
			pl.stableWeight = 100
		}
		// A header route to another revision (a canary's first step, before it takes any
		// weight) sends to the canary Service, which selects that revision.
		for _, rt := range d.Split.Routes {
			if rt.Revision != pl.stable && d.Places(rt.Revision) {
				pl.canary = rt.Revision
				break
			}
		}
	}
	pl.preview = cmp.Or(d.Preview, pl.stable)
	if pl.shared {
		placed := map[string]int{}
		for _, x := range d.Revisions {
			placed[x.Revision.ID] = x.Replicas
		}
		w := func(rev string) int { return d.Split.WeightOf(rev) }
		s, c := closestRatio(w(pl.stable), w(pl.canary), placed[pl.stable], placed[pl.canary])
		kc := min(c, ready[pl.canary])
		ks := min(ready[pl.stable], s+(c-kc))
		pl.serving = map[string]int{pl.stable: ks, pl.canary: kc}
	}
	return pl
}

// closestRatio returns how many of a stable revision's and a canary's instances (at most
// stablePods and canaryPods) to send traffic to so that the canary's share comes closest to
// its weight: canaryWeight / (stableWeight + canaryWeight). A revision with a weight above
// 0 and pods gets at least one instance, so neither is ever starved while both have weight.
// Among equally close ratios it takes the one that uses the most instances.
func closestRatio(stableWeight, canaryWeight, stablePods, canaryPods int) (stable, canary int) {
	switch {
	case canaryWeight <= 0 || canaryPods <= 0:
		return max(stablePods, 0), 0
	case stableWeight <= 0 || stablePods <= 0:
		return 0, canaryPods
	}
	total := stableWeight + canaryWeight
	// The error of (s, c) is |c/(s+c) - canaryWeight/total|, compared as fractions of
	// integers: |c*total - canaryWeight*(s+c)| / ((s+c)*total), with total common to all.
	better := func(s, c, bs, bc int) bool {
		e := abs(c*total - canaryWeight*(s+c))
		be := abs(bc*total - canaryWeight*(bs+bc))
		l, r := e*(bs+bc), be*(s+c)
		if l != r {
			return l < r
		}
		if s+c != bs+bc {
			return s+c > bs+bc
		}
		return c > bc
	}
	bs, bc := 0, 0
	for c := 1; c <= canaryPods; c++ {
		// The ideal stable count for c canary instances, rounded both ways.
		lo := c * stableWeight / canaryWeight
		for _, s := range []int{lo, lo + 1} {
			s = min(max(s, 1), stablePods)
			if bc == 0 || better(s, c, bs, bc) {
				bs, bc = s, c
			}
		}
	}
	return bs, bc
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// servingPods decides which of a revision's pods the main Service sends to: n of its ready
// pods, those already serving first (so that nothing moves without need), then the oldest.
// It returns the pods to label and those to unlabel.
func servingPods(pods []*corev1.Pod, n int) (label, unlabel []*corev1.Pod) {
	var ready, other []*corev1.Pod
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && podReady(pod) {
			ready = append(ready, pod)
		} else {
			other = append(other, pod)
		}
	}
	slices.SortFunc(ready, func(a, b *corev1.Pod) int {
		sa, sb := serving(a), serving(b)
		switch {
		case sa && !sb:
			return -1
		case sb && !sa:
			return 1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	n = min(max(n, 0), len(ready))
	for _, pod := range ready[:n] {
		if !serving(pod) {
			label = append(label, pod)
		}
	}
	for _, pod := range append(ready[n:], other...) {
		if serving(pod) {
			unlabel = append(unlabel, pod)
		}
	}
	return label, unlabel
}

// serving reports whether pod carries the serving label.
func serving(pod *corev1.Pod) bool { return pod.Labels[LabelServing] == "true" }

// podReady reports whether pod passed its readiness checks.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
