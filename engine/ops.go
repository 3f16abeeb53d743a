package engine

import (
	"fmt"
	"time"

	"slipway.dev/slipway"
)

// Operate applies a manual operation (promote, abort, pause, resume, retry) to rollout r. It
// is pure, like Next. replicas is the app's current replica count (retry restarts a rolling
// update from it); runs holds the rollout's runs in force. It returns ECONFLICT when the
// operation does not fit the rollout's phase.
func Operate(r slipway.Rollout, op slipway.Operation, replicas int, runs map[string]slipway.AnalysisRun, now time.Time) (slipway.Rollout, Effects, error) {
	var eff Effects
	who := op.Actor
	if who == "" {
		who = "unknown"
	}
	ev := func(kind, msg string) {
		eff.Events = append(eff.Events, newEvent(r, kind, who, msg, op.Reason, now))
	}
	conflict := func(format string, args ...any) (slipway.Rollout, Effects, error) {
		return r, Effects{}, slipway.Errorf(slipway.ECONFLICT, "rollout %s is %s: %s", r.ID, r.Phase, fmt.Sprintf(format, args...))
	}
	switch op.Kind {
	case slipway.OpPromote:
		if r.Phase.Terminal() {
			return conflict("nothing to promote")
		}
		wasPaused := r.Phase == slipway.PhasePaused
		if wasPaused && r.Cause == slipway.PauseInconclusive {
			replaceInconclusive(&r, runs)
		}
		r.Phase, r.Cause, r.Reason = slipway.PhaseProgressing, slipway.PauseNone, ""
		if op.Full {
			r.SkipAnalysis, r.Approved = true, true
			stopRuns(&r, &eff, "promoted in full by "+who)
			r.BackgroundRun = ""
			if r.Strategy == slipway.StrategyBlueGreen && r.Step < bgWaiting {
				r.Step = bgWaiting
			}
			ev(slipway.EventRolloutPromoted, "promoted in full: remaining steps and analysis skipped")
			break
		}
		switch r.Strategy {
		case slipway.StrategyCanary:
			if r.Step >= r.Steps() {
				if !wasPaused {
					return conflict("already at the final promotion")
				}
				break
			}
			stopStepRun(&r, &eff, "step skipped by "+who)
			r.Step++
			r.StepStartedAt = now
			r.ExperimentReadyAt, r.ExperimentDone = nil, false
			if r.Step < r.Steps() {
				ev(slipway.EventRolloutPromoted, fmt.Sprintf("promoted to step %d/%d", r.Step+1, r.Steps()))
			} else {
				ev(slipway.EventRolloutPromoted, "promoted to the final promotion")
			}
		case slipway.StrategyBlueGreen:
			r.Approved = true
			if r.Step == bgAnalysis {
				stopStepRun(&r, &eff, "pre-promotion analysis skipped by "+who)
				r.Step = bgWaiting
			}
			ev(slipway.EventRolloutPromoted, "switch approved")
		case slipway.StrategyRolling:
			if !wasPaused {
				return conflict("a rolling update has no steps to promote")
			}
			ev(slipway.EventRolloutResumed, "resumed")
		}
	case slipway.OpAbort:
		if r.Phase.Terminal() {
			return conflict("it has already ended; use rollback")
		}
		reason := "aborted by " + who
		if op.Reason != "" {
			reason += ": " + op.Reason
		}
		abort(&r, &eff, reason, who, now)
	case slipway.OpPause:
		if r.Phase != slipway.PhaseProgressing {
			return conflict("only a progressing rollout can be paused")
		}
		r.Phase, r.Cause, r.Reason = slipway.PhasePaused, slipway.PauseManual, "paused by "+who
		ev(slipway.EventRolloutPaused, "paused")
	case slipway.OpResume:
		if r.Phase != slipway.PhasePaused {
			return conflict("only a paused rollout can be resumed")
		}
		switch r.Cause {
		case slipway.PauseAtStep:
			r.Step++
			r.StepStartedAt = now
			r.ExperimentReadyAt, r.ExperimentDone = nil, false
		case slipway.PauseApproval:
			r.Approved = true
		case slipway.PauseInconclusive:
			replaceInconclusive(&r, runs)
		case slipway.PauseManual, slipway.PauseNone:
		}
		r.Phase, r.Cause, r.Reason = slipway.PhaseProgressing, slipway.PauseNone, ""
		ev(slipway.EventRolloutResumed, "resumed")
	case slipway.OpRetry:
		if r.Phase != slipway.PhaseAborted {
			return conflict("only an aborted rollout can be retried")
		}
		r = restart(r, replicas, now)
		ev(slipway.EventRolloutRetried, fmt.Sprintf("retry %d", r.Attempt))
	case slipway.OpRollback:
		return r, Effects{}, slipway.Errorf(slipway.EINTERNAL, "rollback creates a rollout; it is not an operation on one")
	default:
		return r, Effects{}, slipway.Errorf(slipway.EINVALID, "unknown operation %q; use promote, abort, pause, resume, retry or rollback", op.Kind)
	}
	r.UpdatedAt, r.LastProgressAt = now, now
	return r, eff, nil
}

// replaceInconclusive forgets r's inconclusive runs, so that Next measures again with fresh
// ones.
func replaceInconclusive(r *slipway.Rollout, runs map[string]slipway.AnalysisRun) {
	for _, id := range []*string{&r.StepRun, &r.BackgroundRun} {
		if run, ok := runs[*id]; ok && run.Phase == slipway.VerdictInconclusive {
			*id = ""
		}
	}
}

// stopStepRun stops r's step run only: skipping a step leaves background analysis running.
func stopStepRun(r *slipway.Rollout, eff *Effects, reason string) {
	if r.StepRun != "" {
		eff.StopRuns = append(eff.StopRuns, r.StepRun)
		eff.StopReason = reason
		r.StepRun = ""
	}
}

// restart resets r to its first step (a retry), keeping its identity and history counters.
func restart(r slipway.Rollout, replicas int, now time.Time) slipway.Rollout {
	r.Phase, r.Cause, r.Reason, r.CompletedAt = slipway.PhaseProgressing, slipway.PauseNone, "", nil
	r.Attempt++
	r.Step, r.StepStartedAt, r.LastProgressAt = 0, now, now
	r.Weight, r.CanaryScale, r.HeaderRoute = 0, nil, nil
	r.ExperimentReadyAt, r.ExperimentDone = nil, false
	r.NewReplicas, r.OldReplicas = 0, replicas
	r.PreviewReadyAt, r.Switched, r.Approved = nil, false, false
	r.StepRun, r.BackgroundRun = "", ""
	if r.From == "" {
		r.Weight = 100
	}
	return r
}

// NewRollout returns the first state of a rollout of app from revision from to revision to.
func NewRollout(app slipway.App, number int, from, to slipway.Revision, now time.Time) slipway.Rollout {
	r := slipway.Rollout{
		ID:        fmt.Sprintf("%s-%d", app.Name, number),
		App:       app.Name,
		Number:    number,
		From:      from.ID,
		To:        to.ID,
		Strategy:  app.Strategy.Kind(),
		Spec:      app.Strategy,
		Analysis:  app.Analysis,
		CreatedAt: now,
		UpdatedAt: now,
	}
	r.FromVersion, r.ToVersion = from.Version, to.Version
	r.Phase = slipway.PhaseProgressing
	r.Attempt = -1
	return restart(r, app.Replicas, now)
}
