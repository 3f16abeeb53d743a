// Package insights computes delivery figures (after DORA's four keys: deployment frequency,
// lead time for changes, change failure rate, time to restore) and per-deployment risk
// signals from slipway's own history: each environment's rollouts and the server's releases.
//
// Compute is pure: it takes a History and a clock reading and returns slipway.Insights.
// Reader (reader.go) gathers a History from the stores and implements
// slipway.InsightsReader; Collector (metrics.go) serves the figures as Prometheus gauges.
// docs/insights.md defines every figure; the comments here say how.
//
// Start reading at Compute, then classify (what counts as a deployment and as a failure).
package insights

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"

	"slipway.dev/slipway"
)

// History is what figures are computed from.
type History struct {
	// Environments are the environments in scope, each with the rollouts of all its apps.
	Environments []EnvironmentHistory
	// Releases are the server's releases; their stages name the rollouts they made.
	Releases []slipway.Release
	// Unavailable says what is missing from the history, and why.
	Unavailable []string
}

// EnvironmentHistory is an environment and every rollout of its apps.
type EnvironmentHistory struct {
	Environment slipway.Environment
	Rollouts    []slipway.Rollout
}

// Options tune the definitions.
type Options struct {
	// FailureHorizon is how soon after a deployment a rollback of it, or a fix release
	// after it, marks it failed (slipway.DefaultFailureHorizon when zero).
	FailureHorizon time.Duration
}

// What slipway does not report, said with every answer.
const (
	noChangeSize = "change size: a release records where its change came from (commit, URL), not how big it was"
	noMargins    = "analysis margins: analysis keeps each measurement's verdict against its condition (a CEL expression), not how far the value was from failing it"
)

// deployment is a rollout that ended, as the figures see it.
type deployment struct {
	env        string
	production bool
	r          slipway.Rollout
	ended      time.Time
	// attempt: not a rollback and not superseded; completed: an attempt that completed.
	attempt, completed bool
	release            *slipway.Release
	leadTime           *time.Duration
	failure            slipway.FailureCause
	failedBy           string
	restoredAt         *time.Time
	sinceLastFailure   *time.Duration
}

// Compute returns the figures of q over h, as known at now. It returns EINVALID for an
// empty window and ENOTFOUND when q names an environment h does not hold.
func Compute(h History, q slipway.InsightsQuery, now time.Time, opts Options) (slipway.Insights, error) {
	horizon := opts.FailureHorizon
	if horizon <= 0 {
		horizon = slipway.DefaultFailureHorizon
	}
	if q.Until.IsZero() {
		q.Until = now
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-slipway.DefaultInsightsWindow)
	}
	if !q.Since.Before(q.Until) {
		return slipway.Insights{}, slipway.Errorf(slipway.EINVALID, "the window from %s to %s is empty; since must be before until",
			q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	envs := slices.Clone(h.Environments)
	slices.SortFunc(envs, func(a, b EnvironmentHistory) int { return cmp.Compare(a.Environment.Name, b.Environment.Name) })
	if q.Environment != "" {
		i := slices.IndexFunc(envs, func(e EnvironmentHistory) bool { return e.Environment.Name == q.Environment })
		if i < 0 {
			return slipway.Insights{}, slipway.Errorf(slipway.ENOTFOUND, "environment %s is not served here (slipway get environments lists those that are)", q.Environment)
		}
		envs = envs[i : i+1]
	}
	out := slipway.Insights{Since: q.Since, Until: q.Until, FailureHorizon: slipway.Duration(horizon), Production: []string{},
		Environments: []slipway.EnvironmentInsights{}, Apps: []slipway.AppInsights{}, Deployments: []slipway.DeploymentInsight{},
		Unavailable: append(slices.Clone(h.Unavailable), noChangeSize, noMargins)}
	byRollout := releasesByRollout(h.Releases)
	var production []*deployment
	for _, eh := range envs {
		env := eh.Environment
		ds := classify(eh, byRollout[env.Name], horizon)
		var inScope []*deployment
		apps := map[string]bool{}
		for _, r := range eh.Rollouts {
			if q.App == "" || r.App == q.App {
				apps[r.App] = true
			}
		}
		for _, d := range ds {
			if q.App == "" || d.r.App == q.App {
				inScope = append(inScope, d)
			}
		}
		if env.Production() {
			out.Production = append(out.Production, env.Name)
			production = append(production, inScope...)
		}
		out.Environments = append(out.Environments, slipway.EnvironmentInsights{Environment: env.Name, Production: env.Production(),
			Figures: figures(inScope, q.Since, q.Until)})
		for _, app := range slices.Sorted(maps.Keys(apps)) {
			var mine []*deployment
			for _, d := range inScope {
				if d.r.App == app {
					mine = append(mine, d)
				}
			}
			out.Apps = append(out.Apps, slipway.AppInsights{App: app, Environment: env.Name, Production: env.Production(),
				Figures: figures(mine, q.Since, q.Until)})
		}
		for _, d := range inScope {
			if d.attempt && inWindow(d.ended, q.Since, q.Until) {
				out.Deployments = append(out.Deployments, d.insight())
			}
		}
	}
	if len(out.Production) > 0 {
		f := figures(production, q.Since, q.Until)
		out.Headline = &f
	}
	slices.SortStableFunc(out.Deployments, func(a, b slipway.DeploymentInsight) int { return a.EndedAt.Compare(b.EndedAt) })
	return out, nil
}

// releasesByRollout maps environment, then rollout ID, to the release that made the rollout.
func releasesByRollout(rs []slipway.Release) map[string]map[string]*slipway.Release {
	out := map[string]map[string]*slipway.Release{}
	for i := range rs {
		for _, st := range rs[i].Stages {
			for _, ro := range st.Rollouts {
				if ro.Rollout == "" {
					continue
				}
				if out[ro.Environment] == nil {
					out[ro.Environment] = map[string]*slipway.Release{}
				}
				out[ro.Environment][ro.Rollout] = &rs[i]
			}
		}
	}
	return out
}

// classify turns an environment's rollouts into deployments: those that ended, oldest end
// first, each with its failure, restore, lead time and time since the last failure.
//
// A deployment attempt is a rollout that ended, is not a rollback and was not superseded. It
// failed when it was aborted, or when within horizon of its completion a rollback of its
// app started while it was the app's latest completed rollout, or a rollout of a release
// marked Fix started while it was. A failure is restored by the next rollout of its app
// that completed and did not fail (a rollback counts).
func classify(eh EnvironmentHistory, releases map[string]*slipway.Release, horizon time.Duration) []*deployment {
	env := eh.Environment
	var ds []*deployment
	for _, r := range eh.Rollouts {
		if !r.Phase.Terminal() || r.CompletedAt == nil {
			continue
		}
		d := &deployment{env: env.Name, production: env.Production(), r: r, ended: *r.CompletedAt, release: releases[r.ID]}
		d.attempt = !r.Rollback && r.SupersededBy == ""
		d.completed = d.attempt && r.Phase == slipway.PhaseCompleted
		if d.attempt && r.Phase == slipway.PhaseAborted {
			d.failure = slipway.FailureAborted
		}
		if d.completed && d.release != nil && !d.release.ChangedAt.IsZero() {
			if lt := d.ended.Sub(d.release.ChangedAt); lt >= 0 {
				d.leadTime = &lt
			}
		}
		ds = append(ds, d)
	}
	slices.SortStableFunc(ds, func(a, b *deployment) int { return a.ended.Compare(b.ended) })

	// latest returns the app's latest completed rollout that ended at or before t.
	latest := func(app string, t time.Time, not string) *deployment {
		var found *deployment
		for _, d := range ds {
			if d.r.App == app && d.r.Phase == slipway.PhaseCompleted && !d.ended.After(t) && d.r.ID != not {
				found = d
			}
		}
		return found
	}
	mark := func(app string, at time.Time, not string, cause slipway.FailureCause, by string) {
		d := latest(app, at, not)
		if d == nil || !d.completed || d.failure != slipway.FailureNone || at.Sub(d.ended) > horizon {
			return
		}
		d.failure, d.failedBy = cause, by
	}
	for _, r := range eh.Rollouts {
		switch {
		case r.Rollback:
			mark(r.App, r.CreatedAt, r.ID, slipway.FailureRolledBack, r.ID)
		case releases[r.ID] != nil && releases[r.ID].Fix:
			mark(r.App, r.CreatedAt, r.ID, slipway.FailureFixed, releases[r.ID].ID)
		}
	}

	for i, d := range ds {
		if d.failure == slipway.FailureNone {
			continue
		}
		for _, next := range ds[i+1:] {
			if next.r.App == d.r.App && next.r.Phase == slipway.PhaseCompleted && next.failure == slipway.FailureNone && next.ended.After(d.ended) {
				t := next.ended
				d.restoredAt = &t
				break
			}
		}
	}
	var failed []time.Time // the failures' ends, in order
	for _, d := range ds {
		if d.failure != slipway.FailureNone {
			failed = append(failed, d.ended)
		}
	}
	for _, d := range ds {
		// The failures that ended before d started are failed[:i].
		i, _ := slices.BinarySearchFunc(failed, d.r.CreatedAt, func(a, b time.Time) int { return a.Compare(b) })
		if i > 0 {
			s := d.r.CreatedAt.Sub(failed[i-1])
			d.sinceLastFailure = &s
		}
	}
	return ds
}

// inWindow reports whether since <= t < until.
func inWindow(t, since, until time.Time) bool { return !t.Before(since) && t.Before(until) }

// figures computes the figures of ds over the window.
func figures(ds []*deployment, since, until time.Time) slipway.DeliveryFigures {
	var f slipway.DeliveryFigures
	var leads, restores []time.Duration
	for _, d := range ds {
		if !d.attempt || !inWindow(d.ended, since, until) {
			continue
		}
		f.Attempts++
		if d.completed {
			f.Deployments++
			if d.leadTime != nil {
				leads = append(leads, *d.leadTime)
			}
		}
		if d.failure != slipway.FailureNone {
			f.Failures++
			if d.restoredAt != nil {
				restores = append(restores, d.restoredAt.Sub(d.ended))
			} else {
				f.OpenFailures++
			}
		}
	}
	if f.Deployments > 0 {
		days := until.Sub(since).Hours() / 24
		perDay, perWeek := float64(f.Deployments)/days, float64(f.Deployments)/(days/7)
		f.PerDay, f.PerWeek = &perDay, &perWeek
	}
	if f.Attempts > 0 {
		rate := float64(f.Failures) / float64(f.Attempts)
		f.ChangeFailureRate = &rate
	}
	f.LeadTime = quantiles(leads)
	f.TimeToRestore = quantiles(restores)
	return f
}

// quantiles returns the median and the 90th percentile of vs by nearest rank; nil for none.
func quantiles(vs []time.Duration) *slipway.Quantiles {
	if len(vs) == 0 {
		return nil
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return &slipway.Quantiles{Count: len(vs), Median: slipway.Duration(nearestRank(vs, 0.5)), P90: slipway.Duration(nearestRank(vs, 0.9))}
}

// nearestRank returns the value of rank ceil(q*n) of sorted vs.
func nearestRank(vs []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(vs))))
	return vs[max(rank, 1)-1]
}

// insight returns d as the API reports it.
func (d *deployment) insight() slipway.DeploymentInsight {
	out := slipway.DeploymentInsight{Environment: d.env, App: d.r.App, Rollout: d.r.ID, Version: d.r.ToVersion, Phase: d.r.Phase,
		StartedAt: d.r.CreatedAt, EndedAt: d.ended, Failure: d.failure, FailedBy: d.failedBy, RestoredAt: d.restoredAt,
		LeadTime: durationPtr(d.leadTime), SinceLastFailure: durationPtr(d.sinceLastFailure)}
	if d.release != nil {
		out.Release, out.Fix = d.release.ID, d.release.Fix
	}
	return out
}

func durationPtr(d *time.Duration) *slipway.Duration {
	if d == nil {
		return nil
	}
	v := slipway.Duration(*d)
	return &v
}
