package flagops

import (
	"testing"
	"time"

	"slipway.dev/slipway"
)

func TestNextRamp(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	tpl := slipway.AnalysisTemplate{Name: "errs", Metrics: []slipway.Metric{{
		Name: "rate", SuccessCondition: "result < 0.1",
		Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinOutcomeRate, Flag: "{{flag}}", Variant: "{{variant}}"}},
	}}}
	in := RampInput{Templates: map[string]slipway.AnalysisTemplate{"errs": tpl}}
	spec := slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{
		{Weight: 1, Pause: slipway.Duration(time.Minute)}, {Weight: 50, Pause: slipway.Duration(time.Minute)}, {Weight: 100},
	}, Analysis: &slipway.AnalysisRef{Templates: []string{"errs"}}}
	start, eff := StartRamp("checkout", "web", spec, in, t0)
	if start.Phase != slipway.PhaseProgressing || start.Step != 0 || start.Weight != 100 || start.Run == nil ||
		start.Run.Metrics[0].Provider.Builtin.Variant != "on" || !eff.WakeAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("StartRamp = %+v, %+v", start, eff)
	}
	if rampKinds(eff.Events) != "flag.ramp.started flag.ramp.step" {
		t.Fatalf("events %s", rampKinds(eff.Events))
	}
	withRun := func(r slipway.Ramp, phase slipway.Verdict, msg string) slipway.Ramp {
		run := *r.Run
		run.Phase, run.Message = phase, msg
		r.Run = &run
		return r
	}
	op := func(o slipway.RampOp) RampInput {
		i := in
		i.Op = &slipway.RampOperation{Op: o, Flag: "checkout", Actor: "ann"}
		return i
	}
	later := t0.Add(2 * time.Minute)

	for _, tc := range []struct {
		name   string
		r      slipway.Ramp
		in     RampInput
		now    time.Time
		phase  slipway.Phase
		step   int
		weight int
		events string
		check  func(t *testing.T, r slipway.Ramp, eff RampEffects)
	}{
		{name: "waits for its pause", r: withRun(start, slipway.VerdictSuccessful, ""), in: in, now: t0.Add(time.Second),
			phase: slipway.PhaseProgressing, step: 0, weight: 100, check: func(t *testing.T, _ slipway.Ramp, eff RampEffects) {
				if !eff.WakeAt.Equal(t0.Add(time.Minute)) {
					t.Fatalf("WakeAt = %v", eff.WakeAt)
				}
			}},
		{name: "waits for its analysis past the pause", r: start, in: in, now: later,
			phase: slipway.PhaseProgressing, step: 0, weight: 100},
		{name: "never moves on a run marked Error", r: withRun(start, slipway.VerdictError, ""), in: in, now: later,
			phase: slipway.PhaseProgressing, step: 0, weight: 100},
		{name: "advances after pause and success", r: withRun(start, slipway.VerdictSuccessful, ""), in: in, now: later,
			phase: slipway.PhaseProgressing, step: 1, weight: 5000, events: "flag.ramp.step",
			check: func(t *testing.T, r slipway.Ramp, _ RampEffects) {
				if r.Run == nil || r.Run.Phase != slipway.VerdictRunning || r.Run.Step != 1 || !r.StepStarted.Equal(later) {
					t.Fatalf("new step run %+v, started %v", r.Run, r.StepStarted)
				}
			}},
		{name: "rolls back on failure with the run's message", r: withRun(start, slipway.VerdictFailed, "metric rate failed"), in: in, now: t0.Add(time.Second),
			phase: slipway.PhaseAborted, step: 0, weight: 0, events: "flag.ramp.aborted",
			check: func(t *testing.T, _ slipway.Ramp, eff RampEffects) {
				if eff.Events[0].Reason != "metric rate failed" || eff.Events[0].Actor != slipway.ActorAnalysis {
					t.Fatalf("event %+v", eff.Events[0])
				}
			}},
		{name: "pauses when inconclusive", r: withRun(start, slipway.VerdictInconclusive, "no data"), in: in, now: t0.Add(time.Second),
			phase: slipway.PhasePaused, step: 0, weight: 100, events: "flag.ramp.paused"},
		{name: "completes after the last step", r: func() slipway.Ramp {
			r := withRun(start, slipway.VerdictSuccessful, "")
			r.Step, r.Weight = 2, 10000
			return r
		}(), in: in, now: later, phase: slipway.PhaseCompleted, step: 2, weight: 10000, events: "flag.ramp.completed"},
		{name: "without analysis advances on time", r: func() slipway.Ramp {
			r := start
			r.Run, r.Spec.Analysis = nil, nil
			return r
		}(), in: in, now: later, phase: slipway.PhaseProgressing, step: 1, weight: 5000, events: "flag.ramp.step",
			check: func(t *testing.T, r slipway.Ramp, _ RampEffects) {
				if r.Run != nil {
					t.Fatalf("run %+v; want none", r.Run)
				}
			}},
		{name: "a terminal ramp stays", r: func() slipway.Ramp { r := start; r.Phase = slipway.PhaseCompleted; return r }(), in: in, now: later,
			phase: slipway.PhaseCompleted, step: 0, weight: 100},
		{name: "a paused ramp stays", r: func() slipway.Ramp { r := start; r.Phase = slipway.PhasePaused; return r }(), in: in, now: later,
			phase: slipway.PhasePaused, step: 0, weight: 100},
		{name: "a missing template pauses the next step", r: withRun(start, slipway.VerdictSuccessful, ""), in: RampInput{}, now: later,
			phase: slipway.PhasePaused, step: 1, weight: 5000, events: "flag.ramp.step flag.ramp.paused"},
		{name: "pause", r: start, in: op(slipway.RampPause), now: later, phase: slipway.PhasePaused, step: 0, weight: 100, events: "flag.ramp.paused"},
		{name: "pause of a paused ramp does nothing", r: func() slipway.Ramp { r := start; r.Phase = slipway.PhasePaused; return r }(),
			in: op(slipway.RampPause), now: later, phase: slipway.PhasePaused, step: 0, weight: 100},
		{name: "resume after a manual pause keeps the run", r: func() slipway.Ramp {
			r := start
			r.Phase, r.Pause = slipway.PhasePaused, slipway.PauseManual
			return r
		}(), in: op(slipway.RampResume), now: later, phase: slipway.PhaseProgressing, step: 0, weight: 100, events: "flag.ramp.resumed",
			check: func(t *testing.T, r slipway.Ramp, _ RampEffects) {
				if r.Run.ID != start.Run.ID || r.Pause != slipway.PauseNone {
					t.Fatalf("run %s pause %q; want the same run, no pause", r.Run.ID, r.Pause)
				}
			}},
		{name: "resume after inconclusive judges the step again", r: func() slipway.Ramp {
			r := withRun(start, slipway.VerdictInconclusive, "no data")
			r.Phase, r.Pause = slipway.PhasePaused, slipway.PauseInconclusive
			return r
		}(), in: op(slipway.RampResume), now: later, phase: slipway.PhaseProgressing, step: 0, weight: 100, events: "flag.ramp.resumed flag.ramp.step",
			check: func(t *testing.T, r slipway.Ramp, _ RampEffects) {
				if r.Run.Phase != slipway.VerdictRunning || r.Run.ID == start.Run.ID || !r.StepStarted.Equal(later) {
					t.Fatalf("run %+v; want a new one", r.Run)
				}
			}},
		{name: "resume of a rolled back ramp starts again", r: func() slipway.Ramp {
			r := withRun(start, slipway.VerdictFailed, "x")
			r.Phase, r.Weight, r.Step = slipway.PhaseAborted, 0, 1
			return r
		}(), in: op(slipway.RampResume), now: later, phase: slipway.PhaseProgressing, step: 0, weight: 100, events: "flag.ramp.resumed flag.ramp.step"},
		{name: "resume of a completed ramp does nothing", r: func() slipway.Ramp { r := start; r.Phase = slipway.PhaseCompleted; return r }(),
			in: op(slipway.RampResume), now: later, phase: slipway.PhaseCompleted, step: 0, weight: 100},
		{name: "abort rolls back and ends the run", r: start, in: op(slipway.RampAbort), now: later,
			phase: slipway.PhaseAborted, step: 0, weight: 0, events: "flag.ramp.aborted",
			check: func(t *testing.T, r slipway.Ramp, eff RampEffects) {
				if r.Run.Phase != slipway.VerdictTerminated || eff.Events[0].Actor != "ann" || eff.Events[0].Reason != "aborted by ann" {
					t.Fatalf("run %s, event %+v", r.Run.Phase, eff.Events[0])
				}
			}},
		{name: "abort of an ended ramp does nothing", r: func() slipway.Ramp { r := start; r.Phase = slipway.PhaseCompleted; return r }(),
			in: op(slipway.RampAbort), now: later, phase: slipway.PhaseCompleted, step: 0, weight: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, eff := NextRamp(tc.r, tc.in, tc.now)
			if got.Phase != tc.phase || got.Step != tc.step || got.Weight != tc.weight {
				t.Fatalf("phase %s step %d weight %d; want %s %d %d (reason %q)", got.Phase, got.Step, got.Weight, tc.phase, tc.step, tc.weight, got.Reason)
			}
			if k := rampKinds(eff.Events); k != tc.events {
				t.Fatalf("events %q; want %q", k, tc.events)
			}
			if tc.check != nil {
				tc.check(t, got, eff)
			}
		})
	}
}

func rampKinds(evs []slipway.Event) string {
	s := ""
	for i, e := range evs {
		if i > 0 {
			s += " "
		}
		s += e.Kind
	}
	return s
}
