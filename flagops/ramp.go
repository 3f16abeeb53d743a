package flagops

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
)

// A flag ramp raises one variant's share step by step (slipway.FlagRamp). Its state is a
// slipway.Ramp, moved on by NextRamp (pure, below) and carried out by a ramp worker
// (rampworker.go): it persists the ramp, then makes the flag serve the ramp's weight as a
// new version of the flag's set (rampflags.go), and measures the step's analysis.

// RampInput is what NextRamp decides from besides the ramp and the time.
type RampInput struct {
	// Templates resolve the ramp's analysis.
	Templates map[string]slipway.AnalysisTemplate
	// Op is an operation asked of the ramp, if any.
	Op *slipway.RampOperation
}

// RampEffects is what the worker must do after persisting NextRamp's ramp.
type RampEffects struct {
	// Events are committed with the flag's change, or alone when the weight stays.
	Events []slipway.Event
	// WakeAt is when the ramp wants to be looked at again (zero: only when poked or measured).
	WakeAt time.Time
}

// StartRamp returns a new ramp of flag key declared by set: Progressing at its first step,
// with the step's analysis run started.
func StartRamp(key, set string, spec slipway.FlagRamp, in RampInput, now time.Time) (slipway.Ramp, RampEffects) {
	r := slipway.Ramp{Flag: key, Set: set, Spec: spec, Phase: slipway.PhaseProgressing, StartedAt: now, UpdatedAt: now}
	var eff RampEffects
	eff.Events = append(eff.Events, rampEvent(r, slipway.EventRampStarted, slipway.ActorEngine, now,
		fmt.Sprintf("ramp of %s to variant %s started", key, spec.Variant), ""))
	enterStep(&r, 0, in, now, &eff)
	return r, eff
}

// NextRamp decides the ramp's next state from its analysis run, the time and an operation.
// It is pure: the worker persists the result, then acts on it.
//
//   - Failed analysis rolls back: weight 0, the run's message as the reason.
//   - Inconclusive analysis pauses; resume restarts the step with a new run.
//   - A step whose pause has passed and whose analysis succeeded (or that has none) moves
//     to the next step; after the last (100%) the ramp is Completed.
//   - pause, resume and abort come from people; resume of a rolled back ramp starts it again
//     from the first step.
func NextRamp(r slipway.Ramp, in RampInput, now time.Time) (slipway.Ramp, RampEffects) {
	var eff RampEffects
	if op := in.Op; op != nil {
		return operateRamp(r, *op, in, now)
	}
	if r.Phase != slipway.PhaseProgressing {
		return r, eff
	}
	if run := r.Run; run != nil {
		switch run.Phase {
		case slipway.VerdictFailed:
			rollBack(&r, slipway.ActorAnalysis, cmp.Or(run.Message, "analysis failed"), now, &eff)
			return r, eff
		case slipway.VerdictInconclusive:
			r.Phase, r.Pause, r.UpdatedAt = slipway.PhasePaused, slipway.PauseInconclusive, now
			r.Reason = "analysis was inconclusive: " + run.Message
			eff.Events = append(eff.Events, rampEvent(r, slipway.EventRampPaused, slipway.ActorAnalysis, now,
				fmt.Sprintf("ramp of %s paused at %d%%", r.Flag, r.Weight/100), r.Reason))
			return r, eff
		case slipway.VerdictRunning, slipway.VerdictError:
			// Waits for the run, whatever the time.
			return r, eff
		case slipway.VerdictSuccessful, slipway.VerdictTerminated:
		}
	}
	step := r.Spec.Steps[r.Step]
	if due := r.StepStarted.Add(step.Pause.D()); now.Before(due) {
		eff.WakeAt = due
		return r, eff
	}
	if r.Step == len(r.Spec.Steps)-1 {
		r.Phase, r.UpdatedAt, r.Reason = slipway.PhaseCompleted, now, "every step held"
		eff.Events = append(eff.Events, rampEvent(r, slipway.EventRampCompleted, slipway.ActorEngine, now,
			fmt.Sprintf("ramp of %s completed: variant %s serves %d%%", r.Flag, r.Spec.Variant, r.Weight/100), r.Reason))
		return r, eff
	}
	enterStep(&r, r.Step+1, in, now, &eff)
	return r, eff
}

// enterStep moves r to step i: its weight, its start time and a new analysis run. A run that
// cannot be built (a template gone) pauses the ramp with the reason.
func enterStep(r *slipway.Ramp, i int, in RampInput, now time.Time, eff *RampEffects) {
	step := r.Spec.Steps[i]
	r.Step, r.Weight, r.StepStarted, r.UpdatedAt, r.Run = i, step.Weight*slipway.RampTotal/100, now, now, nil
	r.Reason = fmt.Sprintf("step %d of %d", i+1, len(r.Spec.Steps))
	eff.Events = append(eff.Events, rampEvent(*r, slipway.EventRampStep, slipway.ActorEngine, now,
		fmt.Sprintf("ramp of %s: variant %s at %d%%", r.Flag, r.Spec.Variant, step.Weight), r.Reason))
	eff.WakeAt = now.Add(step.Pause.D())
	if r.Spec.Analysis == nil {
		return
	}
	id := fmt.Sprintf("ramp-%s-%d-%d", r.Flag, now.UnixMilli(), i)
	run, err := analysis.NewFlagRun(id, i, r.Flag, r.Spec.Variant, *r.Spec.Analysis, in.Templates, now)
	if err != nil {
		r.Phase, r.Pause = slipway.PhasePaused, slipway.PauseInconclusive
		r.Reason = "cannot start the step's analysis: " + err.Error()
		eff.Events = append(eff.Events, rampEvent(*r, slipway.EventRampPaused, slipway.ActorEngine, now,
			fmt.Sprintf("ramp of %s paused at %d%%", r.Flag, step.Weight), r.Reason))
		return
	}
	r.Run = &run
}

// rollBack sets r's share to 0 and ends it.
func rollBack(r *slipway.Ramp, actor, reason string, now time.Time, eff *RampEffects) {
	if r.Run != nil && !r.Run.Phase.Terminal() {
		run := *r.Run
		analysis.Terminate(&run, "the ramp was rolled back", now)
		r.Run = &run
	}
	from := r.Weight
	r.Phase, r.Pause, r.Weight, r.UpdatedAt, r.Reason = slipway.PhaseAborted, slipway.PauseNone, 0, now, reason
	eff.Events = append(eff.Events, rampEvent(*r, slipway.EventRampAborted, actor, now,
		fmt.Sprintf("ramp of %s rolled back: variant %s from %d%% to 0%%", r.Flag, r.Spec.Variant, from/100), reason))
	eff.WakeAt = time.Time{}
}

// operateRamp carries out a person's operation.
func operateRamp(r slipway.Ramp, op slipway.RampOperation, in RampInput, now time.Time) (slipway.Ramp, RampEffects) {
	var eff RampEffects
	actor := cmp.Or(op.Actor, "unknown")
	switch op.Op {
	case slipway.RampPause:
		if r.Phase != slipway.PhaseProgressing {
			return r, eff
		}
		r.Phase, r.Pause, r.UpdatedAt = slipway.PhasePaused, slipway.PauseManual, now
		r.Reason = cmp.Or(op.Reason, "paused by "+actor)
		eff.Events = append(eff.Events, rampEvent(r, slipway.EventRampPaused, actor, now,
			fmt.Sprintf("ramp of %s paused at %d%%", r.Flag, r.Weight/100), r.Reason))
	case slipway.RampResume:
		switch r.Phase {
		case slipway.PhasePaused:
			reason := cmp.Or(op.Reason, "resumed by "+actor)
			r.Phase, r.UpdatedAt = slipway.PhaseProgressing, now
			eff.Events = append(eff.Events, rampEvent(r, slipway.EventRampResumed, actor, now,
				fmt.Sprintf("ramp of %s resumed at %d%%", r.Flag, r.Weight/100), reason))
			if r.Pause == slipway.PauseInconclusive || (r.Run != nil && r.Run.Phase.Terminal() && r.Run.Phase != slipway.VerdictSuccessful) {
				enterStep(&r, r.Step, in, now, &eff) // judge the step again
			}
			r.Pause = slipway.PauseNone
			if r.Phase == slipway.PhaseProgressing {
				r.Reason = reason
			}
		case slipway.PhaseAborted:
			eff.Events = append(eff.Events, rampEvent(r, slipway.EventRampResumed, actor, now,
				fmt.Sprintf("ramp of %s started again", r.Flag), cmp.Or(op.Reason, "restarted by "+actor)))
			r.Phase, r.Pause, r.StartedAt = slipway.PhaseProgressing, slipway.PauseNone, now
			enterStep(&r, 0, in, now, &eff)
		case slipway.PhaseProgressing, slipway.PhaseCompleted:
		}
	case slipway.RampAbort:
		if r.Phase.Terminal() {
			return r, eff
		}
		rollBack(&r, actor, cmp.Or(op.Reason, "aborted by "+actor), now, &eff)
	}
	return r, eff
}

// rampEventData is the Data of a ramp event.
type rampEventData struct {
	Key     string `json:"key"`
	Set     string `json:"set"`
	Variant string `json:"variant"`
	Step    int    `json:"step"`
	// Weight is the ramped variant's share in basis points.
	Weight int    `json:"weight"`
	Run    string `json:"run,omitempty"`
}

func rampEvent(r slipway.Ramp, kind, actor string, now time.Time, msg, reason string) slipway.Event {
	d := rampEventData{Key: r.Flag, Set: r.Set, Variant: r.Spec.Variant, Step: r.Step, Weight: r.Weight}
	if r.Run != nil {
		d.Run = r.Run.ID
	}
	data, _ := json.Marshal(d)
	return slipway.Event{Time: now, Kind: kind, Actor: actor, Message: msg, Reason: reason, Data: data}
}
