package engine

import (
	"maps"
	"slices"

	"slipway.dev/slipway"
)

// Blue-green stages, kept in Rollout.Step.
const (
	bgPreview  = 0 // preview instances starting
	bgAnalysis = 1 // pre-promotion analysis
	bgWaiting  = 2 // scaled to full, waiting to switch (automatic or approval)
	bgSwitched = 3 // traffic switched; post-promotion analysis
)

// Desired returns the state the platform should converge app to, given the app's latest
// rollout (nil when it has none) and its revisions by ID. It is pure: the same stored state
// always gives the same Desired.
func Desired(app slipway.AppState, latest *slipway.Rollout, revs map[string]slipway.Revision) slipway.Desired {
	d := slipway.Desired{App: app.Spec.Name, Traffic: app.Spec.Traffic}
	replicas := app.Spec.Replicas
	place := func(id string, n int) {
		if id == "" {
			return
		}
		rev, ok := revs[id]
		if !ok {
			return
		}
		for i := range d.Revisions {
			if d.Revisions[i].Revision.ID == id {
				d.Revisions[i].Replicas = max(d.Revisions[i].Replicas, n)
				return
			}
		}
		if d.Revisions == nil {
			d.Revisions = make([]slipway.Placement, 0, 2) // at most the two of a rollout
		}
		d.Revisions = append(d.Revisions, slipway.Placement{Revision: rev, Replicas: n})
	}
	split := func(ws ...slipway.Weight) {
		for _, w := range ws {
			if _, ok := revs[w.Revision]; ok && w.Weight > 0 {
				d.Split.Weights = append(d.Split.Weights, w)
			}
		}
		// A split that lost a revision (pruned) must still sum to 100.
		if len(d.Split.Weights) == 1 {
			d.Split.Weights[0].Weight = 100
		}
	}

	r := latest
	if r == nil || !r.Active() {
		// Idle: the stable revision serves everything.
		if app.Stable != "" {
			place(app.Stable, replicas)
			split(slipway.Weight{Revision: app.Stable, Weight: 100})
		}
		return normalize(d)
	}
	if r.Phase.Terminal() {
		// Completed with old capacity kept for an instant rollback (blue-green scaleDownDelay).
		place(r.To, replicas)
		place(r.From, replicas)
		split(slipway.Weight{Revision: r.To, Weight: 100})
		return normalize(d)
	}
	if r.From == "" {
		// An app's first rollout: bring the revision up and send it everything.
		place(r.To, replicas)
		split(slipway.Weight{Revision: r.To, Weight: 100})
		return normalize(d)
	}
	switch r.Strategy {
	case slipway.StrategyRolling:
		place(r.From, r.OldReplicas)
		place(r.To, r.NewReplicas)
		split(slipway.Weight{Revision: r.To, Weight: r.Weight}, slipway.Weight{Revision: r.From, Weight: 100 - r.Weight})
	case slipway.StrategyBlueGreen:
		place(r.From, replicas)
		place(r.To, blueGreenReplicas(*r, replicas))
		if r.Switched {
			split(slipway.Weight{Revision: r.To, Weight: 100})
		} else {
			split(slipway.Weight{Revision: r.From, Weight: 100})
			d.Preview = r.To
		}
	case slipway.StrategyCanary:
		place(r.From, replicas)
		if e, base, ok := r.Experiment(); ok {
			// A fresh baseline of stable beside the canary, each at the experiment's size
			// and weight.
			if stable, ok := revs[r.From]; ok {
				revs = maps.Clone(revs)
				revs[base] = slipway.BaselineOf(stable, base)
			}
			n := ExperimentReplicas(e, replicas)
			place(base, n)
			place(r.To, max(n, CanaryReplicas(*r, replicas)))
			split(slipway.Weight{Revision: r.To, Weight: e.Weight}, slipway.Weight{Revision: base, Weight: e.Weight},
				slipway.Weight{Revision: r.From, Weight: 100 - 2*e.Weight})
		} else {
			place(r.To, CanaryReplicas(*r, replicas))
			split(slipway.Weight{Revision: r.To, Weight: r.Weight}, slipway.Weight{Revision: r.From, Weight: 100 - r.Weight})
		}
		if r.HeaderRoute != nil && len(r.HeaderRoute.Match) > 0 {
			d.Split.Routes = []slipway.Route{{Name: r.HeaderRoute.Name, Match: r.HeaderRoute.Match, Revision: r.To}}
		}
	}
	return normalize(d)
}

// normalize sorts placements so that equal desires compare equal. Weights keep their order:
// the new revision comes first, so that a sticky proxy moves users only onto it as its weight
// grows (see slipway.Split).
func normalize(d slipway.Desired) slipway.Desired {
	slices.SortFunc(d.Revisions, func(a, b slipway.Placement) int { return compareStr(a.Revision.ID, b.Revision.ID) })
	return d
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CanaryReplicas returns how many canary instances a canary rollout wants: the app's full
// count at the final promotion, else what setCanaryScale asked, else the traffic weight's
// share of replicas rounded up (at least one while the weight is above 0).
func CanaryReplicas(r slipway.Rollout, replicas int) int {
	if r.Step >= r.Steps() {
		return replicas
	}
	if s := r.CanaryScale; s != nil {
		switch {
		case s.Replicas != nil:
			return *s.Replicas
		case s.Weight != nil:
			return shareUp(*s.Weight, replicas)
		}
	}
	return shareUp(r.Weight, replicas)
}

// ExperimentReplicas returns how many instances each of an experiment's canary and baseline
// runs: its replicas, else its weight's share of the app's replicas rounded up.
func ExperimentReplicas(e slipway.Experiment, replicas int) int {
	if e.Replicas != nil {
		return *e.Replicas
	}
	return shareUp(e.Weight, replicas)
}

// shareUp returns pct percent of n rounded up: at least 1 when pct > 0 and n > 0.
func shareUp(pct, n int) int {
	if pct <= 0 || n <= 0 {
		return 0
	}
	return min(n, (pct*n+99)/100)
}

// blueGreenReplicas returns how many instances of the new revision a blue-green rollout
// wants: previewReplicas until it waits to switch, then all. A rollout that skips its steps
// and analysis (a rollback to a revision that was stable) wants all from the start: the
// revision it returns to may still run in full (scaleDownDelay), and none of it is stopped.
func blueGreenReplicas(r slipway.Rollout, replicas int) int {
	if r.Step >= bgWaiting || r.SkipAnalysis || r.Spec.BlueGreen == nil || r.Spec.BlueGreen.PreviewReplicas == nil {
		return replicas
	}
	return min(replicas, *r.Spec.BlueGreen.PreviewReplicas)
}

// rollingLimits resolves maxSurge (rounded up) and maxUnavailable (rounded down) against
// replicas; when both come to 0, one instance may be unavailable so the rollout can move
// (as RollingStrategy documents, and as a Kubernetes Deployment does).
func rollingLimits(s *slipway.RollingStrategy, replicas int) (surge, unavailable int) {
	ms, mu := slipway.Percent(slipway.DefaultMaxSurgePercent), slipway.Percent(slipway.DefaultMaxUnavailPct)
	if s != nil && s.MaxSurge != nil {
		ms = s.MaxSurge
	}
	if s != nil && s.MaxUnavailable != nil {
		mu = s.MaxUnavailable
	}
	surge, unavailable = ms.Resolve(replicas, true), mu.Resolve(replicas, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// rollingStep computes the next instance counts of a rolling update, as a Kubernetes
// Deployment does: scale the new revision up within maxSurge, then scale the old one down as
// far as maxUnavailable allows, counting only ready old and available new instances as
// capacity (an old instance that is not ready can always go).
func rollingStep(s *slipway.RollingStrategy, replicas, oldN, newN, newAvail, oldReady int) (int, int) {
	surge, unavailable := rollingLimits(s, replicas)
	if total := oldN + newN; total < replicas+surge && newN < replicas {
		newN = min(replicas, newN+(replicas+surge-total))
	}
	oldReady = min(oldReady, oldN)
	removable := (oldN - oldReady) + max(0, oldReady+newAvail-(replicas-unavailable))
	oldN -= min(oldN, removable)
	return oldN, newN
}
