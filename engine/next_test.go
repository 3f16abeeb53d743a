package engine

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func intp(n int) *int { return &n }

func boolp(b bool) *bool { return &b }

func dur(d time.Duration) slipway.Duration { return slipway.Duration(d) }

// testTemplates holds one usable template, "ok".
func testTemplates() map[string]slipway.AnalysisTemplate {
	return map[string]slipway.AnalysisTemplate{"ok": {Name: "ok", Metrics: []slipway.Metric{
		{Name: "errors", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "check", Args: []string{"{{canary.revision}}"}}}},
	}}}
}

func okRef() *slipway.AnalysisRef { return &slipway.AnalysisRef{Templates: []string{"ok"}} }

// observed returns what a platform reports with ready[rev] ready instances of each revision
// (ready for an hour) and split confirmed in effect.
func observed(split slipway.Split, ready map[string]int) slipway.Observed {
	o := slipway.Observed{App: "web", Split: split}
	since := t0.Add(-time.Hour)
	for _, rev := range slices.Sorted(maps.Keys(ready)) {
		st := slipway.RevisionStatus{Revision: rev}
		for i := range ready[rev] {
			st.Instances = append(st.Instances, slipway.Instance{ID: fmt.Sprintf("%s-%d", rev, i), State: slipway.InstanceRunning, Ready: true, ReadySince: &since})
		}
		o.Revisions = append(o.Revisions, st)
	}
	return o
}

func testApp(s slipway.Strategy, replicas int) slipway.App {
	return slipway.App{Name: "web", Replicas: replicas, Strategy: s}
}

// newTestRollout starts a rollout of app from v1 to v2 at t0 ("" from for a first rollout).
func newTestRollout(app slipway.App, from string) slipway.Rollout {
	var f slipway.Revision
	if from != "" {
		f = slipway.Revision{App: app.Name, ID: from, Version: from}
	}
	return NewRollout(app, 1, f, slipway.Revision{App: app.Name, ID: "v2", Version: "v2"}, t0)
}

// next calls Next and checks it is pure: the same call gives the same answer.
func next(tb testing.TB, r slipway.Rollout, in Input, now time.Time) (slipway.Rollout, Effects) {
	tb.Helper()
	got, eff := Next(r, in, now)
	got2, eff2 := Next(r, in, now)
	if !reflect.DeepEqual(got, got2) || !reflect.DeepEqual(eff, eff2) {
		tb.Fatalf("Next is not deterministic:\n%+v\n%+v", got, got2)
	}
	return got, eff
}

// waits asserts that Next leaves r as it is, asks for nothing and wakes at wake.
func waits(tb testing.TB, r slipway.Rollout, in Input, now, wake time.Time) {
	tb.Helper()
	got, eff := next(tb, r, in, now)
	if !reflect.DeepEqual(got, r) {
		tb.Fatalf("Next changed a waiting rollout:\nbefore %+v\nafter  %+v", r, got)
	}
	if !eff.Empty() {
		tb.Fatalf("Next asked for effects while waiting: %+v", eff)
	}
	if !eff.WakeAt.Equal(wake) {
		tb.Fatalf("WakeAt = %v, want %v", eff.WakeAt, wake)
	}
}

func kinds(eff Effects) []string {
	var ks []string
	for _, e := range eff.Events {
		ks = append(ks, e.Kind)
	}
	return ks
}

func wantKinds(tb testing.TB, eff Effects, want ...string) {
	tb.Helper()
	if got := kinds(eff); !slices.Equal(got, want) {
		tb.Fatalf("events = %v, want %v", got, want)
	}
	for _, e := range eff.Events {
		if e.App != "web" || e.Rollout == "" || e.Actor == "" || e.Message == "" {
			tb.Fatalf("incomplete event %+v", e)
		}
	}
}

func wantAborted(tb testing.TB, r slipway.Rollout, eff Effects, reason string) {
	tb.Helper()
	if r.Phase != slipway.PhaseAborted || !strings.Contains(r.Reason, reason) {
		tb.Fatalf("phase %s reason %q, want Aborted with %q", r.Phase, r.Reason, reason)
	}
	if r.Weight != 0 || r.HeaderRoute != nil || r.Switched || r.CompletedAt == nil || eff.Stable != "" {
		tb.Fatalf("aborted rollout still routes to the new revision: %+v, %+v", r, eff)
	}
	if len(eff.Events) == 0 || eff.Events[len(eff.Events)-1].Kind != slipway.EventRolloutAborted {
		tb.Fatalf("events %v end without %s", kinds(eff), slipway.EventRolloutAborted)
	}
}

func wantCompleted(tb testing.TB, r slipway.Rollout, eff Effects, now time.Time) {
	tb.Helper()
	if r.Phase != slipway.PhaseCompleted || r.CompletedAt == nil || !r.CompletedAt.Equal(now) || r.Weight != 100 {
		tb.Fatalf("rollout not completed: %+v", r)
	}
	if eff.Stable != r.To {
		tb.Fatalf("Effects.Stable = %q, want %q", eff.Stable, r.To)
	}
	if !slices.Contains(kinds(eff), slipway.EventRolloutCompleted) {
		tb.Fatalf("events %v lack %s", kinds(eff), slipway.EventRolloutCompleted)
	}
}

func TestNext_InitialRollout(t *testing.T) {
	app := testApp(slipway.Strategy{Rolling: &slipway.RollingStrategy{}}, 3)
	r := newTestRollout(app, "")
	split := RolloutSplit(r)
	if !slices.Equal(split.Weights, []slipway.Weight{{Revision: "v2", Weight: 100}}) {
		t.Fatalf("first rollout split %+v", split)
	}
	in := func(ready int, split slipway.Split) Input {
		return Input{App: app, Observed: observed(split, map[string]int{"v2": ready})}
	}
	deadline := t0.Add(slipway.DefaultProgressDeadline.D())

	t.Run("waits for readiness", func(t *testing.T) {
		waits(t, r, in(0, split), t0.Add(time.Second), deadline)
		waits(t, r, in(2, split), t0.Add(time.Second), deadline)
	})
	t.Run("waits for the split to be confirmed", func(t *testing.T) {
		waits(t, r, in(3, slipway.Split{}), t0.Add(time.Second), deadline)
	})
	t.Run("completes and makes the revision stable", func(t *testing.T) {
		now := t0.Add(time.Minute)
		got, eff := next(t, r, in(3, split), now)
		wantCompleted(t, got, eff, now)
		wantKinds(t, eff, slipway.EventRolloutCompleted)
		if !got.UpdatedAt.Equal(now) || !got.LastProgressAt.Equal(now) {
			t.Fatalf("UpdatedAt %v LastProgressAt %v, want %v", got.UpdatedAt, got.LastProgressAt, now)
		}
	})
	t.Run("progress deadline aborts naming ready counts", func(t *testing.T) {
		got, eff := next(t, r, in(1, split), deadline)
		wantAborted(t, got, eff, "progress deadline 10m0s exceeded: revision v2 has 1 of 3 instances ready")
		if !strings.Contains(eff.Events[0].Message, "(none)") {
			t.Fatalf("abort of a first rollout says %q", eff.Events[0].Message)
		}
	})
	t.Run("custom progress deadline", func(t *testing.T) {
		app := testApp(slipway.Strategy{Rolling: &slipway.RollingStrategy{ProgressDeadline: dur(time.Minute)}}, 3)
		r := newTestRollout(app, "")
		waits(t, r, Input{App: app, Observed: observed(split, nil)}, t0.Add(59*time.Second), t0.Add(time.Minute))
		got, eff := next(t, r, Input{App: app, Observed: observed(split, nil)}, t0.Add(time.Minute))
		wantAborted(t, got, eff, "progress deadline 1m0s exceeded: revision v2 has 0 of 3 instances ready")
	})
}

// canarySteps exercises every step kind; the app has 4 replicas.
func canarySteps() []slipway.Step {
	beta := []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}
	return []slipway.Step{
		{SetWeight: intp(20)}, // 0
		{Pause: &slipway.PauseStep{Duration: dur(time.Minute)}}, // 1
		{Analysis: okRef()}, // 2
		{SetCanaryScale: &slipway.CanaryScale{Replicas: intp(2)}},         // 3
		{SetHeaderRoute: &slipway.HeaderRoute{Name: "beta", Match: beta}}, // 4
		{Pause: &slipway.PauseStep{}},                                     // 5
		{SetHeaderRoute: &slipway.HeaderRoute{Name: "beta"}},              // 6
		{SetCanaryScale: &slipway.CanaryScale{Weight: intp(75)}},          // 7
		{SetCanaryScale: &slipway.CanaryScale{MatchTrafficWeight: true}},  // 8
		{SetWeight: intp(50)},                                             // 9
	}
}

func canaryApp() slipway.App {
	return testApp(slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: canarySteps()}}, 4)
}

// canaryAt returns a canary rollout at step i with weight w, its step started at t0.
func canaryAt(i, w int) slipway.Rollout {
	r := newTestRollout(canaryApp(), "v1")
	r.Step, r.Weight = i, w
	return r
}

func canaryInput(r slipway.Rollout, canaryReady int, runs ...slipway.AnalysisRun) Input {
	in := Input{App: canaryApp(), Observed: observed(RolloutSplit(r), map[string]int{"v1": 4, "v2": canaryReady}), Templates: testTemplates(), Runs: map[string]slipway.AnalysisRun{}}
	for _, run := range runs {
		in.Runs[run.ID] = run
	}
	return in
}

func runOf(id string, v slipway.Verdict, msg string) slipway.AnalysisRun {
	return slipway.AnalysisRun{ID: id, App: "web", Rollout: "web-1", Phase: v, Message: msg}
}

func TestNext_CanarySetWeight(t *testing.T) {
	deadline := t0.Add(slipway.DefaultProgressDeadline.D())
	t.Run("sets the weight with an event", func(t *testing.T) {
		r := canaryAt(0, 0)
		got, eff := next(t, r, canaryInput(r, 0), t0.Add(time.Second))
		if got.Weight != 20 || got.Step != 0 {
			t.Fatalf("weight %d step %d, want 20 at step 0", got.Weight, got.Step)
		}
		wantKinds(t, eff, slipway.EventRolloutWeight)
		if CanaryReplicas(got, 4) != 1 {
			t.Fatalf("CanaryReplicas = %d, want 1", CanaryReplicas(got, 4))
		}
	})
	t.Run("waits for canary readiness", func(t *testing.T) {
		r := canaryAt(0, 20)
		waits(t, r, canaryInput(r, 0), t0.Add(time.Second), deadline)
	})
	t.Run("waits for the confirmed split", func(t *testing.T) {
		r := canaryAt(0, 20)
		in := canaryInput(r, 1)
		in.Observed.Split = RolloutSplit(canaryAt(0, 0))
		waits(t, r, in, t0.Add(time.Second), deadline)
	})
	t.Run("advances once ready and confirmed", func(t *testing.T) {
		r := canaryAt(0, 20)
		now := t0.Add(time.Minute)
		got, eff := next(t, r, canaryInput(r, 1), now)
		if got.Step != 1 || !got.StepStartedAt.Equal(now) || got.Weight != 20 {
			t.Fatalf("step %d started %v weight %d", got.Step, got.StepStartedAt, got.Weight)
		}
		wantKinds(t, eff, slipway.EventRolloutStep)
	})
	t.Run("progress deadline aborts naming ready counts", func(t *testing.T) {
		r := canaryAt(9, 50)
		got, eff := next(t, r, canaryInput(r, 1), deadline)
		wantAborted(t, got, eff, "revision v2 has 1 of 2 instances ready")
		if !strings.Contains(eff.Events[0].Message, "rolled back to v1") {
			t.Fatalf("abort event says %q", eff.Events[0].Message)
		}
	})
}

func TestNext_CanaryPause(t *testing.T) {
	t.Run("with a duration waits until it passed", func(t *testing.T) {
		r := canaryAt(1, 20)
		waits(t, r, canaryInput(r, 1), t0.Add(30*time.Second), t0.Add(time.Minute))
		got, eff := next(t, r, canaryInput(r, 1), t0.Add(time.Minute))
		if got.Step != 2 {
			t.Fatalf("step %d, want 2", got.Step)
		}
		wantKinds(t, eff, slipway.EventRolloutStep)
	})
	t.Run("without a duration pauses at the step", func(t *testing.T) {
		r := canaryAt(5, 20)
		got, eff := next(t, r, canaryInput(r, 2), t0.Add(time.Second))
		if got.Phase != slipway.PhasePaused || got.Cause != slipway.PauseAtStep || got.Step != 5 {
			t.Fatalf("phase %s cause %q step %d", got.Phase, got.Cause, got.Step)
		}
		if got.Reason != "waiting for approval at step 6/10" {
			t.Fatalf("reason %q", got.Reason)
		}
		wantKinds(t, eff, slipway.EventRolloutPaused)
		waits(t, got, canaryInput(got, 2), t0.Add(time.Hour), time.Time{})
	})
}

func TestNext_CanaryAnalysisStep(t *testing.T) {
	t.Run("starts a run from the templates", func(t *testing.T) {
		r := canaryAt(2, 20)
		r.RunSeq = 3
		now := t0.Add(time.Second)
		got, eff := next(t, r, canaryInput(r, 1), now)
		if len(eff.StartRuns) != 1 {
			t.Fatalf("StartRuns = %+v", eff.StartRuns)
		}
		run := eff.StartRuns[0]
		if run.ID != "web-1-run4" || got.StepRun != run.ID || got.RunSeq != 4 {
			t.Fatalf("run %q, StepRun %q, RunSeq %d", run.ID, got.StepRun, got.RunSeq)
		}
		if run.Kind != slipway.AnalysisStep || run.Step != 2 || run.Rollout != "web-1" || run.Phase != slipway.VerdictRunning ||
			!run.StartedAt.Equal(now) || !slices.Equal(run.Templates, []string{"ok"}) || len(run.Metrics) != 1 ||
			!slices.Equal(run.Metrics[0].Provider.Job.Args, []string{"v2"}) {
			t.Fatalf("run %+v", run)
		}
		wantKinds(t, eff, slipway.EventAnalysisStarted)
		waits(t, got, canaryInput(got, 1), now, time.Time{})
	})
	t.Run("gives the run the environment the app runs in", func(t *testing.T) {
		r := canaryAt(2, 20)
		in := canaryInput(r, 1)
		in.Environment = "staging"
		in.Templates = map[string]slipway.AnalysisTemplate{"ok": {Name: "ok", Metrics: []slipway.Metric{{Name: "errors",
			Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "check", Args: []string{"{{environment}}"}}}}}}}
		_, eff := next(t, r, in, t0.Add(time.Second))
		if len(eff.StartRuns) != 1 || !slices.Equal(eff.StartRuns[0].Metrics[0].Provider.Job.Args, []string{"staging"}) {
			t.Fatalf("StartRuns = %+v; want one run with {{environment}} = staging", eff.StartRuns)
		}
	})
	r := canaryAt(2, 20)
	r.StepRun, r.RunSeq = "web-1-run1", 1
	t.Run("waits while running, and never advances on a run marked Error", func(t *testing.T) {
		waits(t, r, canaryInput(r, 1, runOf(r.StepRun, slipway.VerdictRunning, "")), t0.Add(time.Second), time.Time{})
		waits(t, r, canaryInput(r, 1, runOf(r.StepRun, slipway.VerdictError, "")), t0.Add(time.Second), time.Time{})
	})
	for _, v := range []slipway.Verdict{slipway.VerdictSuccessful, slipway.VerdictTerminated} {
		t.Run(string(v)+" advances", func(t *testing.T) {
			got, eff := next(t, r, canaryInput(r, 1, runOf(r.StepRun, v, "")), t0.Add(time.Second))
			if got.Step != 3 || got.StepRun != "" || len(eff.StopRuns) != 0 {
				t.Fatalf("step %d StepRun %q StopRuns %v", got.Step, got.StepRun, eff.StopRuns)
			}
		})
	}
	t.Run("failed aborts with the reason", func(t *testing.T) {
		got, eff := next(t, r, canaryInput(r, 1, runOf(r.StepRun, slipway.VerdictFailed, "errors: 3 failed")), t0.Add(time.Second))
		wantAborted(t, got, eff, "analysis web-1-run1 failed: errors: 3 failed")
		if !slices.Equal(eff.StopRuns, []string{"web-1-run1"}) || eff.StopReason == "" || got.StepRun != "" {
			t.Fatalf("StopRuns %v (%q), StepRun %q", eff.StopRuns, eff.StopReason, got.StepRun)
		}
	})
	t.Run("inconclusive pauses", func(t *testing.T) {
		got, eff := next(t, r, canaryInput(r, 1, runOf(r.StepRun, slipway.VerdictInconclusive, "no data")), t0.Add(time.Second))
		if got.Phase != slipway.PhasePaused || got.Cause != slipway.PauseInconclusive || got.StepRun != r.StepRun || !strings.Contains(got.Reason, "no data") {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutPaused)
	})
	t.Run("missing template aborts", func(t *testing.T) {
		r := canaryAt(2, 20)
		in := canaryInput(r, 1)
		in.Templates = nil
		got, eff := next(t, r, in, t0.Add(time.Second))
		wantAborted(t, got, eff, `cannot start step analysis: analysis template "ok" not found`)
		if len(eff.StartRuns) != 0 {
			t.Fatalf("started %+v", eff.StartRuns)
		}
	})
}

func TestNext_CanaryScaleAndHeaderRoute(t *testing.T) {
	t.Run("setCanaryScale replicas scales apart from the weight", func(t *testing.T) {
		r := canaryAt(3, 20)
		got, eff := next(t, r, canaryInput(r, 1), t0.Add(time.Second))
		if got.CanaryScale == nil || *got.CanaryScale.Replicas != 2 || CanaryReplicas(got, 4) != 2 || got.Weight != 20 {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutStep)
		waits(t, got, canaryInput(got, 1), t0.Add(time.Second), got.LastProgressAt.Add(slipway.DefaultProgressDeadline.D()))
		if adv, _ := next(t, got, canaryInput(got, 2), t0.Add(2*time.Second)); adv.Step != 4 {
			t.Fatalf("step %d, want 4", adv.Step)
		}
	})
	t.Run("setCanaryScale weight is a share of replicas", func(t *testing.T) {
		r := canaryAt(7, 20)
		got, _ := next(t, r, canaryInput(r, 1), t0.Add(time.Second))
		if got.CanaryScale == nil || *got.CanaryScale.Weight != 75 || CanaryReplicas(got, 4) != 3 {
			t.Fatalf("%+v", got.CanaryScale)
		}
	})
	t.Run("setCanaryScale matchTrafficWeight clears the scale", func(t *testing.T) {
		r := canaryAt(8, 20)
		r.CanaryScale = &slipway.CanaryScale{Replicas: intp(2)}
		got, eff := next(t, r, canaryInput(r, 2), t0.Add(time.Second))
		if got.CanaryScale != nil || CanaryReplicas(got, 4) != 1 {
			t.Fatalf("%+v", got.CanaryScale)
		}
		wantKinds(t, eff, slipway.EventRolloutStep)
		if adv, _ := next(t, got, canaryInput(got, 1), t0.Add(time.Second)); adv.Step != 9 {
			t.Fatalf("step %d, want 9", adv.Step)
		}
	})
	t.Run("setHeaderRoute sets the route then waits for the split", func(t *testing.T) {
		r := canaryAt(4, 20)
		got, eff := next(t, r, canaryInput(r, 1), t0.Add(time.Second))
		if got.HeaderRoute == nil || got.HeaderRoute.Name != "beta" {
			t.Fatalf("%+v", got.HeaderRoute)
		}
		wantKinds(t, eff, slipway.EventRolloutStep)
		if eff.Events[0].Message != "header route beta set" {
			t.Fatalf("event %q", eff.Events[0].Message)
		}
		split := RolloutSplit(got)
		if len(split.Routes) != 1 || split.Routes[0].Revision != "v2" || split.Routes[0].Match[0].Header != "X-Beta" {
			t.Fatalf("split %+v", split)
		}
		stale := canaryInput(got, 1)
		stale.Observed.Split = RolloutSplit(r)
		waits(t, got, stale, t0.Add(time.Second), time.Time{})
		if adv, _ := next(t, got, canaryInput(got, 1), t0.Add(time.Second)); adv.Step != 5 {
			t.Fatalf("step %d, want 5", adv.Step)
		}
	})
	t.Run("setHeaderRoute without match removes the route", func(t *testing.T) {
		r := canaryAt(6, 20)
		r.HeaderRoute = canarySteps()[4].SetHeaderRoute
		got, eff := next(t, r, canaryInput(r, 1), t0.Add(time.Second))
		if got.HeaderRoute != nil || len(RolloutSplit(got).Routes) != 0 {
			t.Fatalf("%+v", got.HeaderRoute)
		}
		if eff.Events[0].Message != "header route beta removed" {
			t.Fatalf("event %q", eff.Events[0].Message)
		}
		if adv, _ := next(t, got, canaryInput(got, 1), t0.Add(time.Second)); adv.Step != 7 {
			t.Fatalf("step %d, want 7", adv.Step)
		}
	})
}

func TestNext_CanaryFinalPromotion(t *testing.T) {
	r := canaryAt(len(canarySteps()), 50)
	r.HeaderRoute = canarySteps()[4].SetHeaderRoute
	if CanaryReplicas(r, 4) != 4 {
		t.Fatalf("final promotion wants %d canary instances", CanaryReplicas(r, 4))
	}
	t.Run("waits for full scale", func(t *testing.T) {
		waits(t, r, canaryInput(r, 3), t0.Add(time.Second), t0.Add(slipway.DefaultProgressDeadline.D()))
	})
	now := t0.Add(time.Minute)
	full, eff := next(t, r, canaryInput(r, 4), now)
	t.Run("sends all traffic and drops the header route", func(t *testing.T) {
		if full.Weight != 100 || full.HeaderRoute != nil || full.Phase != slipway.PhaseProgressing {
			t.Fatalf("%+v", full)
		}
		wantKinds(t, eff, slipway.EventRolloutWeight)
	})
	t.Run("completes only once the split is confirmed", func(t *testing.T) {
		waits(t, full, canaryInput(r, 4), now, time.Time{})
		got, eff := next(t, full, canaryInput(full, 4), now)
		wantCompleted(t, got, eff, now)
	})
}

func TestNext_CanaryWalksEveryStep(t *testing.T) {
	// An ideal platform: everything asked for is ready and the split is confirmed at once;
	// every analysis succeeds; a pause without duration is resumed by an operator.
	r := canaryAt(0, 0)
	now := t0
	runs := map[string]slipway.AnalysisRun{}
	var weights []int
	for range 200 {
		now = now.Add(10 * time.Second)
		in := canaryInput(r, CanaryReplicas(r, 4))
		in.Runs = runs
		got, eff := next(t, r, in, now)
		for _, run := range eff.StartRuns {
			runs[run.ID] = runOf(run.ID, slipway.VerdictSuccessful, "")
		}
		if got.Weight != r.Weight {
			weights = append(weights, got.Weight)
		}
		if got.Phase == slipway.PhasePaused {
			var err error
			if got, _, err = Operate(got, slipway.Operation{Kind: slipway.OpResume, Actor: "ann"}, 4, runs, now); err != nil {
				t.Fatal(err)
			}
		}
		r = got
		if r.Phase.Terminal() {
			break
		}
	}
	if r.Phase != slipway.PhaseCompleted || r.Step != len(canarySteps()) {
		t.Fatalf("phase %s at step %d: %s", r.Phase, r.Step, r.Reason)
	}
	if !slices.Equal(weights, []int{20, 50, 100}) || len(runs) != 1 {
		t.Fatalf("weights %v, runs %d", weights, len(runs))
	}
}

func TestNext_BackgroundAnalysis(t *testing.T) {
	app := canaryApp()
	app.Analysis = &slipway.BackgroundAnalysis{AnalysisRef: *okRef(), StartingStep: 1}
	at := func(step int) slipway.Rollout {
		r := newTestRollout(app, "v1")
		r.Step, r.Weight = step, 20
		return r
	}
	t.Run("not started before its starting step", func(t *testing.T) {
		r := at(0)
		got, eff := next(t, r, canaryInput(r, 0), t0.Add(time.Second))
		if got.BackgroundRun != "" || len(eff.StartRuns) != 0 {
			t.Fatalf("started at step 0: %+v", eff.StartRuns)
		}
	})
	t.Run("started at its starting step", func(t *testing.T) {
		r := at(1)
		got, eff := next(t, r, canaryInput(r, 1), t0.Add(time.Second))
		if len(eff.StartRuns) != 1 || got.BackgroundRun != "web-1-run1" || eff.StartRuns[0].Kind != slipway.AnalysisBackground || eff.StartRuns[0].Step != 1 {
			t.Fatalf("BackgroundRun %q, StartRuns %+v", got.BackgroundRun, eff.StartRuns)
		}
		wantKinds(t, eff, slipway.EventAnalysisStarted)
	})
	t.Run("not started while paused", func(t *testing.T) {
		r := at(1)
		r.Phase, r.Cause = slipway.PhasePaused, slipway.PauseManual
		waits(t, r, canaryInput(r, 1), t0.Add(time.Second), time.Time{})
	})
	t.Run("not started when analysis is skipped", func(t *testing.T) {
		r := at(1)
		r.SkipAnalysis = true
		if _, eff := next(t, r, canaryInput(r, 1), t0.Add(time.Second)); len(eff.StartRuns) != 0 {
			t.Fatalf("started %+v", eff.StartRuns)
		}
	})
	t.Run("missing template aborts", func(t *testing.T) {
		r := at(1)
		in := canaryInput(r, 1)
		in.Templates = nil
		got, eff := next(t, r, in, t0.Add(time.Second))
		wantAborted(t, got, eff, "cannot start background analysis")
	})
	t.Run("running lets the steps go on", func(t *testing.T) {
		r := at(0)
		r.BackgroundRun = "web-1-run1"
		got, _ := next(t, r, canaryInput(r, 1, runOf(r.BackgroundRun, slipway.VerdictRunning, "")), t0.Add(time.Second))
		if got.Step != 1 {
			t.Fatalf("step %d, want 1", got.Step)
		}
	})
	for _, phase := range []struct {
		name  string
		phase slipway.Phase
		cause slipway.PauseCause
		step  int
	}{
		{"progressing", slipway.PhaseProgressing, slipway.PauseNone, 2},
		{"paused", slipway.PhasePaused, slipway.PauseManual, 5},
		{"final promotion", slipway.PhaseProgressing, slipway.PauseNone, len(canarySteps())},
	} {
		t.Run("failure aborts when "+phase.name, func(t *testing.T) {
			r := at(phase.step)
			r.Phase, r.Cause = phase.phase, phase.cause
			r.BackgroundRun, r.StepRun = "web-1-run1", "web-1-run2"
			got, eff := next(t, r, canaryInput(r, 1, runOf(r.BackgroundRun, slipway.VerdictFailed, "latency too high")), t0.Add(time.Second))
			wantAborted(t, got, eff, "background analysis web-1-run1 failed: latency too high")
			if !slices.Equal(eff.StopRuns, []string{"web-1-run2", "web-1-run1"}) {
				t.Fatalf("StopRuns %v", eff.StopRuns)
			}
		})
	}
	t.Run("inconclusive pauses", func(t *testing.T) {
		r := at(2)
		r.BackgroundRun = "web-1-run1"
		in := canaryInput(r, 1, runOf(r.BackgroundRun, slipway.VerdictInconclusive, "no data"))
		got, eff := next(t, r, in, t0.Add(time.Second))
		if got.Phase != slipway.PhasePaused || got.Cause != slipway.PauseInconclusive || got.StepRun != "" {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutPaused)
		waits(t, got, in, t0.Add(time.Minute), time.Time{})
	})
	t.Run("rolling starts it at once", func(t *testing.T) {
		app := testApp(slipway.Strategy{Rolling: &slipway.RollingStrategy{}}, 2)
		app.Analysis = &slipway.BackgroundAnalysis{AnalysisRef: *okRef(), StartingStep: 3}
		r := newTestRollout(app, "v1")
		_, eff := next(t, r, Input{App: app, Observed: observed(RolloutSplit(r), map[string]int{"v1": 2}), Templates: testTemplates()}, t0)
		if len(eff.StartRuns) != 1 || eff.StartRuns[0].Kind != slipway.AnalysisBackground {
			t.Fatalf("StartRuns %+v", eff.StartRuns)
		}
	})
}

func TestNext_TerminalPhasesChangeNothing(t *testing.T) {
	done := t0.Add(time.Minute)
	for _, phase := range []slipway.Phase{slipway.PhaseCompleted, slipway.PhaseAborted} {
		for _, strategy := range []slipway.Strategy{canaryApp().Strategy, {Rolling: &slipway.RollingStrategy{}}, {BlueGreen: &slipway.BlueGreenStrategy{}}} {
			t.Run(string(phase)+" "+string(strategy.Kind()), func(t *testing.T) {
				r := newTestRollout(testApp(strategy, 4), "v1")
				r.Phase, r.CompletedAt, r.StepRun = phase, &done, "web-1-run1"
				in := Input{App: testApp(strategy, 4), Observed: observed(slipway.Split{}, nil), Templates: testTemplates(),
					Runs: map[string]slipway.AnalysisRun{"web-1-run1": runOf("web-1-run1", slipway.VerdictFailed, "")}}
				waits(t, r, in, t0.Add(24*time.Hour), time.Time{})
			})
		}
	}
}

// TestNext_ReachesFixpoint is a property over generated states: called again on its own
// output with the same input, Next settles within a few transitions, and from then on it
// changes nothing and asks for nothing.
func TestNext_ReachesFixpoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	verdicts := []slipway.Verdict{slipway.VerdictRunning, slipway.VerdictSuccessful, slipway.VerdictFailed, slipway.VerdictInconclusive, slipway.VerdictTerminated}
	phases := []slipway.Phase{slipway.PhaseProgressing, slipway.PhaseProgressing, slipway.PhasePaused, slipway.PhaseCompleted, slipway.PhaseAborted}
	for i := range 3000 {
		replicas := 1 + rng.IntN(10)
		var s slipway.Strategy
		switch rng.IntN(3) {
		case 0:
			s = canaryApp().Strategy
		case 1:
			s.BlueGreen = &slipway.BlueGreenStrategy{PreviewReplicas: intp(rng.IntN(3)), AutoPromote: boolp(rng.IntN(2) == 0),
				AutoPromoteAfter: dur(time.Duration(rng.IntN(3)) * time.Minute), ScaleDownDelay: dur(time.Duration(rng.IntN(2)) * time.Minute)}
			if rng.IntN(2) == 0 {
				s.BlueGreen.PrePromotionAnalysis, s.BlueGreen.PostPromotionAnalysis = okRef(), okRef()
			}
		default:
			s.Rolling = &slipway.RollingStrategy{MaxSurge: slipway.Count(rng.IntN(3)), MaxUnavailable: slipway.Percent(rng.IntN(60)), MinReady: dur(time.Duration(rng.IntN(2)) * time.Minute)}
		}
		app := testApp(s, replicas)
		if rng.IntN(3) == 0 {
			app.Analysis = &slipway.BackgroundAnalysis{AnalysisRef: *okRef(), StartingStep: rng.IntN(4)}
		}
		from := "v1"
		if rng.IntN(6) == 0 {
			from = ""
		}
		r := newTestRollout(app, from)
		r.Phase = phases[rng.IntN(len(phases))]
		r.Step = rng.IntN(12)
		if s.BlueGreen != nil {
			r.Step = rng.IntN(4)
			r.Switched = r.Step == bgSwitched
		}
		r.Weight = []int{0, 20, 50, 100}[rng.IntN(4)]
		r.OldReplicas, r.NewReplicas = rng.IntN(replicas+2), rng.IntN(replicas+2)
		r.Approved, r.SkipAnalysis = rng.IntN(4) == 0, rng.IntN(8) == 0
		r.LastProgressAt = t0.Add(-time.Duration(rng.IntN(20)) * time.Minute)
		runs := map[string]slipway.AnalysisRun{}
		if rng.IntN(2) == 0 {
			r.StepRun = "web-1-run7"
			runs[r.StepRun] = runOf(r.StepRun, verdicts[rng.IntN(len(verdicts))], "")
		}
		if rng.IntN(2) == 0 {
			r.BackgroundRun = "web-1-run8"
			runs[r.BackgroundRun] = runOf(r.BackgroundRun, verdicts[rng.IntN(len(verdicts))], "")
		}
		if r.Phase == slipway.PhaseCompleted && rng.IntN(2) == 0 {
			at := t0.Add(time.Duration(rng.IntN(3)-1) * time.Minute)
			r.ScaleDownAt = &at
		}
		split := RolloutSplit(r)
		if rng.IntN(3) == 0 {
			split = slipway.Split{}
		}
		in := Input{App: app, Templates: testTemplates(), Runs: runs,
			Observed: observed(split, map[string]int{"v1": rng.IntN(replicas + 1), "v2": rng.IntN(replicas + 2)})}
		now := t0.Add(time.Duration(rng.IntN(15)) * time.Minute)

		cur := r
		settled := false
		for range 64 {
			nx, eff := Next(cur, in, now)
			if reflect.DeepEqual(nx, cur) && eff.Empty() {
				settled = true
				break
			}
			if r.Phase.Terminal() && nx.Phase != r.Phase {
				t.Fatalf("state %d: Next left terminal phase %s for %s", i, r.Phase, nx.Phase)
			}
			cur = nx
		}
		if !settled {
			t.Fatalf("state %d: Next never settles from %+v", i, r)
		}
		again, eff := Next(cur, in, now)
		if !reflect.DeepEqual(again, cur) || !eff.Empty() {
			t.Fatalf("state %d: Next moved again after settling: %+v", i, eff)
		}
		if cur.Phase == slipway.PhaseCompleted && !cur.Active() && !RolloutSplit(cur).Equal(slipway.Split{Weights: []slipway.Weight{{Revision: "v2", Weight: 100}}}) {
			t.Fatalf("state %d: completed rollout splits %+v", i, RolloutSplit(cur))
		}
	}
}

func blueGreenAt(bg slipway.BlueGreenStrategy, step int) (slipway.Rollout, func(ready int, runs ...slipway.AnalysisRun) Input) {
	app := testApp(slipway.Strategy{BlueGreen: &bg}, 3)
	r := newTestRollout(app, "v1")
	r.Step, r.Switched = step, step == bgSwitched
	if r.Switched {
		r.Weight = 100
	}
	return r, func(ready int, runs ...slipway.AnalysisRun) Input {
		in := Input{App: app, Observed: observed(RolloutSplit(r), map[string]int{"v1": 3, "v2": ready}), Templates: testTemplates(), Runs: map[string]slipway.AnalysisRun{}}
		for _, run := range runs {
			in.Runs[run.ID] = run
		}
		return in
	}
}

func TestNext_BlueGreen(t *testing.T) {
	deadline := t0.Add(slipway.DefaultProgressDeadline.D())
	now := t0.Add(time.Minute)
	t.Run("preview waits for previewReplicas then moves on", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{PreviewReplicas: intp(1)}, bgPreview)
		waits(t, r, in(0), now, deadline)
		got, eff := next(t, r, in(1), now)
		if got.Step != bgAnalysis || got.PreviewReadyAt == nil || !got.PreviewReadyAt.Equal(now) || got.Switched {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutStep)
	})
	t.Run("preview without previewReplicas waits for full scale", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{}, bgPreview)
		waits(t, r, in(2), now, deadline)
		got, eff := next(t, r, in(1), deadline)
		wantAborted(t, got, eff, "revision v2 has 1 of 3 instances ready")
	})
	t.Run("no pre-promotion analysis goes straight to waiting", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{}, bgAnalysis)
		if got, _ := next(t, r, in(3), now); got.Step != bgWaiting {
			t.Fatalf("step %d", got.Step)
		}
	})
	t.Run("pre-promotion analysis", func(t *testing.T) {
		bg := slipway.BlueGreenStrategy{PrePromotionAnalysis: okRef()}
		r, in := blueGreenAt(bg, bgAnalysis)
		got, eff := next(t, r, in(1), now)
		if len(eff.StartRuns) != 1 || eff.StartRuns[0].Kind != slipway.AnalysisPrePromotion || got.StepRun != "web-1-run1" || got.Step != bgAnalysis {
			t.Fatalf("%+v %+v", got, eff.StartRuns)
		}
		waits(t, got, in(1, runOf("web-1-run1", slipway.VerdictRunning, "")), now, time.Time{})
		if ok, _ := next(t, got, in(1, runOf("web-1-run1", slipway.VerdictSuccessful, "")), now); ok.Step != bgWaiting || ok.StepRun != "" {
			t.Fatalf("after success: %+v", ok)
		}
		bad, eff := next(t, got, in(1, runOf("web-1-run1", slipway.VerdictFailed, "5xx")), now)
		wantAborted(t, bad, eff, "analysis web-1-run1 failed: 5xx")
		if p, _ := next(t, got, in(1, runOf("web-1-run1", slipway.VerdictInconclusive, "")), now); p.Cause != slipway.PauseInconclusive {
			t.Fatalf("after inconclusive: %+v", p)
		}
	})
	t.Run("waiting needs full scale", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{PreviewReplicas: intp(1)}, bgWaiting)
		waits(t, r, in(1), now, deadline)
	})
	t.Run("autoPromote false pauses for approval", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{AutoPromote: boolp(false)}, bgWaiting)
		got, eff := next(t, r, in(3), now)
		if got.Phase != slipway.PhasePaused || got.Cause != slipway.PauseApproval || got.Switched {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutPaused)
		r.Approved = true
		sw, eff := next(t, r, in(3), now)
		if !sw.Switched || sw.Weight != 100 || sw.Step != bgSwitched || sw.Phase != slipway.PhaseProgressing {
			t.Fatalf("approved: %+v", sw)
		}
		wantKinds(t, eff, slipway.EventRolloutPromoted)
	})
	t.Run("autoPromoteAfter waits from preview readiness", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{AutoPromoteAfter: dur(5 * time.Minute)}, bgWaiting)
		ready := t0.Add(time.Minute)
		r.PreviewReadyAt = &ready
		waits(t, r, in(3), t0.Add(2*time.Minute), t0.Add(6*time.Minute))
		if got, _ := next(t, r, in(3), t0.Add(6*time.Minute)); !got.Switched {
			t.Fatalf("not switched: %+v", got)
		}
	})
	t.Run("switch waits for the confirmed split then completes", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{}, bgSwitched)
		stale := in(3)
		stale.Observed.Split = RolloutSplit(blueGreenAtStep(bgWaiting))
		waits(t, r, stale, now, time.Time{})
		got, eff := next(t, r, in(3), now)
		wantCompleted(t, got, eff, now)
		if got.ScaleDownAt != nil || got.Active() {
			t.Fatalf("without scaleDownDelay: %+v", got)
		}
	})
	t.Run("post-promotion analysis", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{PostPromotionAnalysis: okRef()}, bgSwitched)
		got, eff := next(t, r, in(3), now)
		if len(eff.StartRuns) != 1 || eff.StartRuns[0].Kind != slipway.AnalysisPostPromotion || got.Phase != slipway.PhaseProgressing {
			t.Fatalf("%+v", eff.StartRuns)
		}
		done, eff := next(t, got, in(3, runOf(got.StepRun, slipway.VerdictSuccessful, "")), now)
		wantCompleted(t, done, eff, now)
	})
	t.Run("abort after the switch returns traffic", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{PostPromotionAnalysis: okRef()}, bgSwitched)
		r.StepRun = "web-1-run1"
		got, eff := next(t, r, in(3, runOf("web-1-run1", slipway.VerdictFailed, "slow")), now)
		wantAborted(t, got, eff, "analysis web-1-run1 failed: slow")
		if !RolloutSplit(got).Equal(slipway.Split{Weights: []slipway.Weight{{Revision: "v1", Weight: 100}}}) {
			t.Fatalf("split %+v", RolloutSplit(got))
		}
	})
	t.Run("scaleDownDelay keeps the old revision then scales it down", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{ScaleDownDelay: dur(30 * time.Second)}, bgSwitched)
		done, eff := next(t, r, in(3), now)
		wantCompleted(t, done, eff, now)
		at := now.Add(30 * time.Second)
		if done.ScaleDownAt == nil || !done.ScaleDownAt.Equal(at) || !eff.WakeAt.Equal(at) || !done.Active() {
			t.Fatalf("ScaleDownAt %v WakeAt %v", done.ScaleDownAt, eff.WakeAt)
		}
		waits(t, done, in(3), now.Add(10*time.Second), at)
		down, eff := next(t, done, in(3), at)
		if !down.ScaledDown || down.Active() || down.Phase != slipway.PhaseCompleted {
			t.Fatalf("%+v", down)
		}
		wantKinds(t, eff, slipway.EventRolloutScaledDown)
		waits(t, down, in(3), at.Add(time.Hour), time.Time{})
	})
}

func blueGreenAtStep(step int) slipway.Rollout {
	r, _ := blueGreenAt(slipway.BlueGreenStrategy{}, step)
	return r
}
