package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
)

// DriftOf lists where the live world differs from d. Instances that are draining do not
// count: they are on their way out.
func DriftOf(d slipway.Desired, obs slipway.Observed) []slipway.Drift {
	var out []slipway.Drift
	want := map[string]int{}
	for _, p := range d.Revisions {
		want[p.Revision.ID] = p.Replicas
	}
	seen := map[string]bool{}
	for _, rs := range obs.Revisions {
		seen[rs.Revision] = true
		n, ready := liveCounts(rs)
		w, ok := want[rs.Revision]
		switch {
		case !ok && n > 0:
			out = append(out, slipway.Drift{Kind: slipway.DriftExtra, Revision: rs.Revision, Desired: 0, Actual: n,
				Message: fmt.Sprintf("revision %s is not desired but has %d instances", rs.Revision, n)})
		case n > w:
			out = append(out, slipway.Drift{Kind: slipway.DriftExtra, Revision: rs.Revision, Desired: w, Actual: n,
				Message: fmt.Sprintf("revision %s has %d instances; %d desired", rs.Revision, n, w)})
		case n < w:
			out = append(out, slipway.Drift{Kind: slipway.DriftMissing, Revision: rs.Revision, Desired: w, Actual: n,
				Message: fmt.Sprintf("revision %s has %d instances; %d desired", rs.Revision, n, w)})
		}
		if ok && ready < min(n, w) {
			out = append(out, slipway.Drift{Kind: slipway.DriftUnready, Revision: rs.Revision, Desired: min(n, w), Actual: ready,
				Message: fmt.Sprintf("revision %s has %d of %d instances ready", rs.Revision, ready, min(n, w))})
		}
	}
	for _, p := range d.Revisions {
		if !seen[p.Revision.ID] && p.Replicas > 0 {
			out = append(out, slipway.Drift{Kind: slipway.DriftMissing, Revision: p.Revision.ID, Desired: p.Replicas,
				Message: fmt.Sprintf("revision %s has no instances; %d desired", p.Revision.ID, p.Replicas)})
		}
	}
	if !obs.Split.Equal(d.Split) {
		out = append(out, slipway.Drift{Kind: slipway.DriftSplit,
			Message: fmt.Sprintf("traffic split is %s; %s desired", splitString(obs.Split), splitString(d.Split))})
	}
	return out
}

func liveCounts(rs slipway.RevisionStatus) (n, ready int) {
	for _, in := range rs.Instances {
		if in.State == slipway.InstanceDraining {
			continue
		}
		n++
		if in.Ready {
			ready++
		}
	}
	return n, ready
}

// repairable reports whether drift holds something the engine repairs by applying again
// (unready instances are the platform's to restart, not the engine's).
func repairable(ds []slipway.Drift) bool {
	for _, d := range ds {
		if d.Kind != slipway.DriftUnready {
			return true
		}
	}
	return false
}

func driftSummary(ds []slipway.Drift) string {
	var parts []string
	for _, d := range ds {
		if d.Kind != slipway.DriftUnready {
			parts = append(parts, d.Message)
		}
	}
	return strings.Join(parts, "; ")
}

func splitString(s slipway.Split) string {
	if len(s.Weights) == 0 && len(s.Routes) == 0 {
		return "empty"
	}
	var parts []string
	for _, w := range s.Weights {
		parts = append(parts, fmt.Sprintf("%s=%d%%", w.Revision, w.Weight))
	}
	for _, r := range s.Routes {
		parts = append(parts, fmt.Sprintf("route %s->%s", r.Name, r.Revision))
	}
	return strings.Join(parts, ",")
}

// Status reports an app's stable revision, its latest rollout, its live instances and any
// drift between declared and live state.
func (e *Engine) Status(ctx context.Context, app string) (slipway.AppStatus, error) {
	st, latest, err := appAndRollout(ctx, e.cfg.Store, app)
	if err != nil {
		return slipway.AppStatus{}, err
	}
	revs, err := revisionMap(ctx, e.cfg.Store, app)
	if err != nil {
		return slipway.AppStatus{}, err
	}
	obs, err := e.cfg.Platform.Observe(ctx, app)
	if err != nil {
		return slipway.AppStatus{}, fmt.Errorf("observe %s: %w", app, err)
	}
	// Drift is judged against what the engine applies: the desired state, guarded.
	d, _ := Guard(Desired(st, latest, revs), obs, revs)
	s := slipway.AppStatus{App: app, Replicas: st.Spec.Replicas, Split: obs.Split, Drift: DriftOf(d, obs)}
	if s.Drift == nil {
		s.Drift = []slipway.Drift{}
	}
	if st.Stable != "" {
		s.Stable = &slipway.RevisionRef{Revision: st.Stable, Version: revs[st.Stable].Version}
	}
	if r := latest; r != nil {
		s.Rollout = &slipway.RolloutStatus{ID: r.ID, Revision: r.To, Version: r.ToVersion, From: r.From, Strategy: r.Strategy,
			Phase: r.Phase, Step: r.Step, Steps: r.Steps(), Weight: r.Weight, Reason: r.Reason, Cause: r.Cause,
			StartedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt}
		runs, err := e.cfg.Store.AnalysisRuns(ctx, r.ID)
		if err != nil {
			return slipway.AppStatus{}, err
		}
		for _, run := range runs {
			s.Analysis = append(s.Analysis, slipway.AnalysisBrief{ID: run.ID, Kind: run.Kind, Phase: run.Phase, Message: run.Message, Verdict: analysis.Brief(run)})
		}
	}
	live := map[string]*slipway.RevisionLive{}
	get := func(id string) *slipway.RevisionLive {
		if l, ok := live[id]; ok {
			return l
		}
		version := revs[id].Version
		if stable, ok := slipway.BaselineStable(id); ok && version == "" {
			version = revs[stable].Version // an experiment's baseline runs its stable revision
		}
		l := &slipway.RevisionLive{Revision: id, Version: version, Weight: obs.Split.WeightOf(id)}
		live[id] = l
		return l
	}
	for _, p := range d.Revisions {
		get(p.Revision.ID).Desired = p.Replicas
	}
	for _, rs := range obs.Revisions {
		l := get(rs.Revision)
		l.Instances, l.Ready = liveCounts(rs)
		l.List = rs.Instances
	}
	for _, l := range live {
		s.Live = append(s.Live, *l)
	}
	sort.Slice(s.Live, func(i, j int) bool { return s.Live[i].Revision < s.Live[j].Revision })
	return s, nil
}

// appAndRollout reads an app and its latest rollout as one commit left them. The two are
// separate reads, and a transition commits both (a promotion's or rollback's end moves the
// stable revision and completes the rollout together), so the app is read again after the
// rollout: when its version moved in between, both are read again.
func appAndRollout(ctx context.Context, s slipway.StateReader, app string) (slipway.AppState, *slipway.Rollout, error) {
	st, err := s.App(ctx, app)
	for range 10 { // a transition commits every few ms at most: ten reads are plenty
		if err != nil {
			return slipway.AppState{}, nil, err
		}
		latest, err := latestRollout(ctx, s, app)
		if err != nil {
			return slipway.AppState{}, nil, err
		}
		again, err := s.App(ctx, app)
		if err == nil && again.Version == st.Version {
			return st, latest, nil
		}
		st = again
	}
	return slipway.AppState{}, nil, slipway.Errorf(slipway.ECONFLICT, "app %s changed while its status was read; try again", app)
}
