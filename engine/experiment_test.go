package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// experimentApp is a canary of 10 replicas whose second step is an experiment at 10% each.
func experimentApp(e slipway.Experiment) slipway.App {
	return testApp(slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{
		{SetWeight: intp(5)},
		{Experiment: &e},
		{SetWeight: intp(50)},
	}}}, 10)
}

// experimentRollout is a rollout of app at the experiment step, the canary at weight 5.
func experimentRollout(app slipway.App) slipway.Rollout {
	r := newTestRollout(app, "v1")
	r.Step, r.Weight = 1, 5
	return r
}

func experimentInput(app slipway.App, r slipway.Rollout, ready map[string]int, runs ...slipway.AnalysisRun) Input {
	in := Input{App: app, Observed: observed(RolloutSplit(r), ready), Templates: testTemplates(), Runs: map[string]slipway.AnalysisRun{}}
	for _, run := range runs {
		in.Runs[run.ID] = run
	}
	return in
}

func experimentRevs() map[string]slipway.Revision {
	return map[string]slipway.Revision{
		"v1": {App: "web", ID: "v1", Version: "v1", Spec: slipway.RevisionSpec{Run: slipway.RunSpec{Command: "old"}}},
		"v2": {App: "web", ID: "v2", Version: "v2", Spec: slipway.RevisionSpec{Run: slipway.RunSpec{Command: "new"}}},
	}
}

func placed(d slipway.Desired) map[string]int {
	out := map[string]int{}
	for _, p := range d.Revisions {
		out[p.Revision.ID] = p.Replicas
	}
	return out
}

func TestExperiment_RunsAFreshBaselineBesideTheCanary(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 10, Duration: dur(time.Minute), Analysis: okRef()})
	r := experimentRollout(app)
	state := slipway.AppState{Spec: app, Stable: "v1"}
	base := slipway.BaselineID("v1", 1, 0)

	// The step starts: the baseline of v1 and the canary, each at 10% of replicas and
	// traffic; the stable revision keeps 80% and its full size.
	d := Desired(state, &r, experimentRevs())
	if got := placed(d); got["v1"] != 10 || got["v2"] != 1 || got[base] != 1 {
		t.Fatalf("placements %v, want v1 10, v2 1, %s 1", got, base)
	}
	for _, p := range d.Revisions {
		if p.Revision.ID == base && (p.Revision.Spec.Run.Command != "old" || p.Revision.Version != "v1") {
			t.Fatalf("baseline %+v is not the stable revision's spec and version", p.Revision)
		}
	}
	want := []slipway.Weight{{Revision: "v2", Weight: 10}, {Revision: base, Weight: 10}, {Revision: "v1", Weight: 80}}
	if !slices.Equal(d.Split.Weights, want) || !d.Split.Equal(RolloutSplit(r)) {
		t.Fatalf("split %v (rollout split %v), want %v", d.Split.Weights, RolloutSplit(r).Weights, want)
	}
	if problems := d.Problems(); len(problems) > 0 {
		t.Fatalf("the desired state is invalid: %v", problems)
	}

	// Nothing is measured before both are ready.
	now := t0.Add(time.Second)
	got, eff := next(t, r, experimentInput(app, r, map[string]int{"v1": 10, "v2": 1}), now)
	if got.ExperimentReadyAt != nil || len(eff.StartRuns) != 0 || !eff.Poll {
		t.Fatalf("the experiment began before its baseline was ready: %+v %+v", got, eff)
	}
	ready := map[string]int{"v1": 10, "v2": 1, base: 1}
	got, eff = next(t, r, experimentInput(app, r, ready), now)
	if got.ExperimentReadyAt == nil || !got.ExperimentReadyAt.Equal(now) {
		t.Fatalf("ExperimentReadyAt %v, want %v", got.ExperimentReadyAt, now)
	}
	wantKinds(t, eff, slipway.EventRolloutStep)
	r = got

	// The analysis starts, with {{baseline.revision}} the fresh baseline.
	in := experimentInput(app, r, ready)
	in.Templates = map[string]slipway.AnalysisTemplate{"ok": {Name: "ok", Metrics: []slipway.Metric{{Name: "cmp",
		Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "cmp", Args: []string{"{{canary.revision}}", "{{baseline.revision}}", "{{stable.revision}}"}}}}}}}
	got, eff = next(t, r, in, now)
	if len(eff.StartRuns) != 1 || !slices.Equal(eff.StartRuns[0].Metrics[0].Provider.Job.Args, []string{"v2", base, "v1"}) {
		t.Fatalf("StartRuns %+v; want one run comparing v2 with %s", eff.StartRuns, base)
	}
	r = got
	run := runOf(r.StepRun, slipway.VerdictSuccessful, "")

	// A passed analysis still waits for the duration.
	waits(t, r, experimentInput(app, r, ready, run), now.Add(30*time.Second), now.Add(time.Minute))

	// Then the baseline is removed and the canary's weight is 5% again.
	end := now.Add(time.Minute)
	got, eff = next(t, r, experimentInput(app, r, ready, run), end)
	if !got.ExperimentDone || got.Step != 1 {
		t.Fatalf("ExperimentDone %v step %d, want the experiment over at step 1", got.ExperimentDone, got.Step)
	}
	wantKinds(t, eff, slipway.EventRolloutStep)
	r = got
	d = Desired(state, &r, experimentRevs())
	if got := placed(d); got[base] != 0 || got["v2"] != 1 || got["v1"] != 10 {
		t.Fatalf("placements after the experiment %v, want no baseline", got)
	}
	if want := []slipway.Weight{{Revision: "v2", Weight: 5}, {Revision: "v1", Weight: 95}}; !slices.Equal(d.Split.Weights, want) {
		t.Fatalf("split after the experiment %v, want %v", d.Split.Weights, want)
	}

	// The step ends once the split without the baseline is in effect.
	stale := experimentInput(app, r, ready, run)
	stale.Observed.Split = slipway.Split{Weights: []slipway.Weight{{Revision: "v2", Weight: 10}, {Revision: base, Weight: 10}, {Revision: "v1", Weight: 80}}}
	if got, _ := next(t, r, stale, end); got.Step != 1 {
		t.Fatalf("advanced to step %d before the baseline's traffic had gone", got.Step)
	}
	got, _ = next(t, r, experimentInput(app, r, map[string]int{"v1": 10, "v2": 1}, run), end)
	if got.Step != 2 || got.ExperimentDone || got.ExperimentReadyAt != nil {
		t.Fatalf("step %d, experiment state %v %v; want step 2 with the state reset", got.Step, got.ExperimentDone, got.ExperimentReadyAt)
	}
}

func TestExperiment_AFailedComparisonAbortsAndRemovesTheBaseline(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 20, Analysis: okRef()})
	r := experimentRollout(app)
	ready := map[string]int{"v1": 10, "v2": 2, slipway.BaselineID("v1", 1, 0): 2}
	now := t0.Add(time.Second)
	r, _ = next(t, r, experimentInput(app, r, ready), now)
	r, _ = next(t, r, experimentInput(app, r, ready), now)
	if r.StepRun == "" {
		t.Fatal("no analysis started")
	}
	got, eff := next(t, r, experimentInput(app, r, ready, runOf(r.StepRun, slipway.VerdictFailed, "canary worse than baseline")), now)
	wantAborted(t, got, eff, "canary worse than baseline")
	d := Desired(slipway.AppState{Spec: app, Stable: "v1"}, &got, experimentRevs())
	if p := placed(d); p[slipway.BaselineID("v1", 1, 0)] != 0 {
		t.Fatalf("an aborted rollout keeps its baseline: %v", p)
	}
	if want := []slipway.Weight{{Revision: "v1", Weight: 100}}; !slices.Equal(d.Split.Weights, want) {
		t.Fatalf("split %v, want all on v1", d.Split.Weights)
	}
}

func TestExperiment_BaselineNeverReadyHitsTheDeadline(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 10, Duration: dur(time.Minute)})
	r := experimentRollout(app)
	late := t0.Add(slipway.DefaultProgressDeadline.D() + time.Second)
	got, eff := next(t, r, experimentInput(app, r, map[string]int{"v1": 10, "v2": 1}), late)
	wantAborted(t, got, eff, "revision v1-baseline-1.0 has 0 of 1 instances ready")
}

func TestExperiment_PromoteSkipsItAndRemovesTheBaseline(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 10, Duration: dur(time.Hour)})
	r := experimentRollout(app)
	now := t0.Add(time.Second)
	r, _ = next(t, r, experimentInput(app, r, map[string]int{"v1": 10, "v2": 1, slipway.BaselineID("v1", 1, 0): 1}), now)
	if r.ExperimentReadyAt == nil {
		t.Fatal("the experiment did not begin")
	}
	got, _, err := Operate(r, slipway.Operation{Kind: slipway.OpPromote, Actor: "alice"}, 10, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 2 || got.ExperimentReadyAt != nil || got.ExperimentDone {
		t.Fatalf("after promote: step %d, experiment state %v %v", got.Step, got.ExperimentReadyAt, got.ExperimentDone)
	}
	if _, _, ok := got.Experiment(); ok {
		t.Fatal("the baseline still runs after the step was promoted")
	}
}

func TestExperiment_ReplicasAndWeight(t *testing.T) {
	for _, c := range []struct {
		e        slipway.Experiment
		replicas int
		want     int
	}{
		{slipway.Experiment{Weight: 10}, 10, 1},
		{slipway.Experiment{Weight: 10}, 3, 1},
		{slipway.Experiment{Weight: 25}, 10, 3},
		{slipway.Experiment{Weight: 50}, 4, 2},
		{slipway.Experiment{Weight: 10, Replicas: intp(3)}, 10, 3},
	} {
		if got := ExperimentReplicas(c.e, c.replicas); got != c.want {
			t.Errorf("ExperimentReplicas(%+v, %d) = %d, want %d", c.e, c.replicas, got, c.want)
		}
	}
	// At 50% each, the stable revision serves nothing for the experiment but keeps its
	// instances.
	app := experimentApp(slipway.Experiment{Weight: 50, Duration: dur(time.Minute)})
	r := experimentRollout(app)
	d := Desired(slipway.AppState{Spec: app, Stable: "v1"}, &r, experimentRevs())
	if p := placed(d); p["v1"] != 10 || p["v2"] != 5 || p[slipway.BaselineID("v1", 1, 0)] != 5 {
		t.Fatalf("placements %v", p)
	}
	if len(d.Split.Weights) != 2 || !strings.Contains(d.Split.Weights[1].Revision, "v1-") {
		t.Fatalf("split %v, want v2 and the baseline at 50 each", d.Split.Weights)
	}
}

// TestExperiment_UnreadyBaselineTrafficStaysOnStable: while the baseline starts (or after
// its instances stop being ready), its share is the stable revision's, which it copies: the
// guard never hands it to the canary, which would serve far more than any step gave it (all
// of the traffic at weight 50).
func TestExperiment_UnreadyBaselineTrafficStaysOnStable(t *testing.T) {
	base := slipway.BaselineID("v1", 1, 0)
	for _, c := range []struct {
		weight int
		want   slipway.Split
	}{
		{10, weights("v2", 10, "v1", 90)},
		{40, weights("v2", 40, "v1", 60)},
		{50, weights("v2", 50, "v1", 50)},
	} {
		app := experimentApp(slipway.Experiment{Weight: c.weight, Duration: dur(time.Minute)})
		r := experimentRollout(app)
		revs := experimentRevs()
		d := Desired(slipway.AppState{Spec: app, Stable: "v1"}, &r, revs)
		for name, obs := range map[string]slipway.Observed{
			"starting": observedLive(weights("v2", 5, "v1", 95), live("v1", 10, 10, 0), live("v2", 1, 1, 0), starting(base, 5)),
			"unready":  observedLive(RolloutSplit(r), live("v1", 10, 10, 0), live("v2", 5, 5, 0), live(base, 0, 5, 0)),
		} {
			g, h := Guard(d, obs, revs)
			if !slices.Equal(g.Split.Weights, c.want.Weights) {
				t.Errorf("weight %d, baseline %s: guarded split %v, want %v", c.weight, name, g.Split.Weights, c.want.Weights)
			}
			if !slices.Equal(h.Unready, []string{base}) {
				t.Errorf("weight %d, baseline %s: hold %+v, want the baseline held", c.weight, name, h)
			}
		}
	}
}

// TestExperiment_BackgroundAnalysisComparesWithStable: a background run outlives the
// experiment step, so its baseline is the stable revision even when it starts during the
// experiment: compared with the fresh baseline, it would judge the canary against a
// revision that stops serving when the step ends.
func TestExperiment_BackgroundAnalysisComparesWithStable(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 10, Duration: dur(time.Minute)})
	app.Analysis = &slipway.BackgroundAnalysis{AnalysisRef: slipway.AnalysisRef{Templates: []string{"bg"}}, StartingStep: 1}
	r := experimentRollout(app)
	r.Analysis = app.Analysis
	in := experimentInput(app, r, map[string]int{"v1": 10, "v2": 1})
	in.Templates = map[string]slipway.AnalysisTemplate{"bg": {Name: "bg", Metrics: []slipway.Metric{
		{Name: "cmp", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "cmp", Args: []string{"{{baseline.revision}}"}}}},
		{Name: "latency", Count: 1, Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinLatencyP95,
			Compare: &slipway.BuiltinCompare{Comparison: slipway.Comparison{Direction: "increase"}}}}},
		{Name: "errors", Count: 1, Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate,
			Sequential: &slipway.SequentialTest{Tolerance: 0.01}}}},
		{Name: "base-errors", Count: 1, SuccessCondition: "result < 0.1", Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
			Metric: slipway.BuiltinErrorRate, Revision: slipway.BuiltinBaseline}}},
	}}}
	_, eff := next(t, r, in, t0.Add(time.Second))
	if len(eff.StartRuns) != 1 || eff.StartRuns[0].Kind != slipway.AnalysisBackground {
		t.Fatalf("StartRuns %+v, want the background run", eff.StartRuns)
	}
	ms := eff.StartRuns[0].Metrics
	if got := ms[0].Provider.Job.Args; !slices.Equal(got, []string{"v1"}) {
		t.Errorf("{{baseline.revision}} of the background run = %v, want the stable revision v1", got)
	}
	if got := ms[1].Provider.Builtin.Compare.Baseline; got != "v1" {
		t.Errorf("the background comparison's baseline = %q, want the stable revision v1", got)
	}
	if got := ms[2].Provider.Builtin.Sequential.Baseline; got != "v1" {
		t.Errorf("the background sequential test's baseline = %q, want the stable revision v1", got)
	}
	if got := ms[3].Provider.Builtin.Revision; got != "v1" {
		t.Errorf("revision: baseline in the background run = %q, want the stable revision v1", got)
	}
}

// TestExperiment_InconclusivePausesWithTheBaselineAndResumeMeasuresAgain: an inconclusive
// comparison pauses the rollout with canary and baseline still running at the experiment's
// split; resume starts a fresh run of the same comparison, abort removes the baseline.
func TestExperiment_InconclusivePausesWithTheBaselineAndResumeMeasuresAgain(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 10, Analysis: okRef()})
	r := experimentRollout(app)
	base := slipway.BaselineID("v1", 1, 0)
	ready := map[string]int{"v1": 10, "v2": 1, base: 1}
	now := t0.Add(time.Second)
	r, _ = next(t, r, experimentInput(app, r, ready), now)
	r, _ = next(t, r, experimentInput(app, r, ready), now)
	first := r.StepRun
	r, _ = next(t, r, experimentInput(app, r, ready, runOf(first, slipway.VerdictInconclusive, "no data")), now)
	if r.Phase != slipway.PhasePaused || r.Cause != slipway.PauseInconclusive {
		t.Fatalf("phase %s cause %s, want paused as inconclusive", r.Phase, r.Cause)
	}
	d := Desired(slipway.AppState{Spec: app, Stable: "v1"}, &r, experimentRevs())
	if p := placed(d); p[base] != 1 || !d.Split.Equal(RolloutSplit(r)) || len(d.Split.Weights) != 3 {
		t.Fatalf("paused experiment: placements %v split %v, want the baseline kept at its share", p, d.Split.Weights)
	}
	runs := map[string]slipway.AnalysisRun{first: runOf(first, slipway.VerdictInconclusive, "no data")}
	resumed, _, err := Operate(r, slipway.Operation{Kind: slipway.OpResume, Actor: "alice"}, 10, runs, now)
	if err != nil {
		t.Fatal(err)
	}
	got, eff := next(t, resumed, experimentInput(app, resumed, ready), now)
	if len(eff.StartRuns) != 1 || got.StepRun == first || got.StepRun == "" || got.Step != 1 || got.ExperimentReadyAt == nil {
		t.Fatalf("after resume: step %d run %q (was %q), %d runs started; want a fresh run of the experiment", got.Step, got.StepRun, first, len(eff.StartRuns))
	}
	aborted, _, err := Operate(r, slipway.Operation{Kind: slipway.OpAbort, Actor: "alice"}, 10, runs, now)
	if err != nil {
		t.Fatal(err)
	}
	if p := placed(Desired(slipway.AppState{Spec: app, Stable: "v1"}, &aborted, experimentRevs())); p[base] != 0 {
		t.Fatalf("an aborted experiment keeps its baseline: %v", p)
	}
}

func TestExperiment_EachRolloutAndAttemptHasABaselineOfItsOwn(t *testing.T) {
	app := experimentApp(slipway.Experiment{Weight: 10, Duration: dur(time.Minute)})
	first := experimentRollout(app)
	second := first
	second.Number, second.ID = 2, "web-2"
	retried := restart(first, 10, t0)
	ids := map[string]bool{}
	retried.Step = 1 // a retry starts over; at its experiment step again
	for _, r := range []slipway.Rollout{first, second, retried} {
		_, base, ok := r.Experiment()
		if !ok {
			t.Fatalf("rollout %s attempt %d: no experiment", r.ID, r.Attempt)
		}
		if stable, ok := slipway.BaselineStable(base); !ok || stable != "v1" {
			t.Fatalf("BaselineStable(%q) = %q, %v; want v1", base, stable, ok)
		}
		ids[base] = true
	}
	if len(ids) != 3 {
		t.Fatalf("baseline IDs %v: a superseding rollout or a retry would inherit an earlier baseline", ids)
	}
	for _, id := range []string{"v1", "v1-baseline", "-baseline-1.0", "v1-baselines-1.0"} {
		if s, ok := slipway.BaselineStable(id); ok {
			t.Errorf("BaselineStable(%q) = %q, true; want false", id, s)
		}
	}
}
