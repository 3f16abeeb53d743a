package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// fakeBackend is a test double for the engine and the store: fixed records in memory, a
// record of the calls that change things, and errors to inject per method.
type fakeBackend struct {
	mu        sync.Mutex
	apps      []slipway.AppState
	templates []slipway.AnalysisTemplate
	revisions []slipway.Revision
	rollouts  []slipway.Rollout
	runs      []slipway.AnalysisRun
	events    []slipway.Event
	statuses  map[string]slipway.AppStatus

	// plan, when set, is what Plan and Apply return.
	plan *slipway.Plan

	// errs maps a method name ("Plan", "Apps", ...) to the error it returns.
	errs map[string]error

	// calls records what Plan, Apply and Operate were asked.
	plans      []slipway.ApplyOptions
	sets       []slipway.Set
	operations []slipway.Operation
	eventReads int
}

var (
	_ slipway.Deployer     = (*fakeBackend)(nil)
	_ slipway.Operator     = (*fakeBackend)(nil)
	_ slipway.StatusReader = (*fakeBackend)(nil)
	_ slipway.StateReader  = (*fakeBackend)(nil)
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func intp(n int) *int { return &n }

func newFakeBackend() *fakeBackend {
	web := slipway.App{
		Name: "web", Replicas: 3, Version: "v2",
		Run:      slipway.RunSpec{Command: "./web", Args: []string{"--port", "${PORT}"}},
		Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{{SetWeight: intp(20)}, {Pause: &slipway.PauseStep{}}}}},
	}
	v1 := web
	v1.Version = "v1"
	rev1 := slipway.Revision{App: "web", ID: v1.RevisionSpec().Hash(), Number: 1, Version: "v1", Spec: v1.RevisionSpec(), CreatedAt: t0}
	rev2 := slipway.Revision{App: "web", ID: web.RevisionSpec().Hash(), Number: 2, Version: "v2", Spec: web.RevisionSpec(), CreatedAt: t0.Add(time.Hour)}
	ro := slipway.Rollout{
		ID: "web-2", App: "web", Number: 2, From: rev1.ID, FromVersion: "v1", To: rev2.ID, ToVersion: "v2",
		Strategy: slipway.StrategyCanary, Spec: web.Strategy, Phase: slipway.PhasePaused, Cause: slipway.PauseAtStep,
		Reason: "waiting for approval", Step: 1, Weight: 20, StepStartedAt: t0.Add(time.Hour),
		LastProgressAt: t0.Add(time.Hour), CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour), Version: 3,
	}
	fin := t0.Add(time.Hour + 2*time.Minute)
	run := slipway.AnalysisRun{
		ID: "web-2-step-0", App: "web", Rollout: "web-2", Kind: slipway.AnalysisStep, Templates: []string{"success-rate"},
		Phase: slipway.VerdictSuccessful, StartedAt: t0.Add(time.Hour), FinishedAt: &fin,
		Results: []slipway.MetricResult{{Name: "success-rate", Phase: slipway.VerdictSuccessful, Count: 1, Successful: 1}},
	}
	b := &fakeBackend{
		apps:      []slipway.AppState{{Spec: web, Stable: rev1.ID, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), Version: 2}},
		templates: []slipway.AnalysisTemplate{{Name: "success-rate", Metrics: []slipway.Metric{{Name: "success-rate", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "true"}}}}}},
		revisions: []slipway.Revision{rev2, rev1},
		rollouts:  []slipway.Rollout{ro},
		runs:      []slipway.AnalysisRun{run},
		statuses: map[string]slipway.AppStatus{"web": {
			App: "web", Replicas: 3, Stable: &slipway.RevisionRef{Revision: rev1.ID, Version: "v1"},
			Rollout: &slipway.RolloutStatus{ID: "web-2", Revision: rev2.ID, Version: "v2", From: rev1.ID, Strategy: slipway.StrategyCanary,
				Phase: slipway.PhasePaused, Step: 1, Steps: 2, Weight: 20, Reason: "waiting for approval", Cause: slipway.PauseAtStep,
				StartedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)},
			Live: []slipway.RevisionLive{
				{Revision: rev1.ID, Version: "v1", Desired: 3, Instances: 3, Ready: 3, Weight: 80},
				{Revision: rev2.ID, Version: "v2", Desired: 1, Instances: 1, Ready: 1, Weight: 20},
			},
			Split: slipway.Split{Weights: []slipway.Weight{{Revision: rev1.ID, Weight: 80}, {Revision: rev2.ID, Weight: 20}}},
			Drift: []slipway.Drift{},
		}},
		errs: map[string]error{},
	}
	for i, k := range []string{slipway.EventAppCreated, slipway.EventRolloutStarted, slipway.EventRolloutPaused} {
		b.events = append(b.events, slipway.Event{Seq: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), App: "web", Kind: k, Actor: "engine", Message: k})
	}
	return b
}

func (b *fakeBackend) fail(method string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errs[method]
}

func (b *fakeBackend) setErr(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs[method] = err
}

// addEvent appends an event with the next Seq, as the store would.
func (b *fakeBackend) addEvent(app, kind string) slipway.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := slipway.Event{Seq: int64(len(b.events) + 1), Time: t0.Add(time.Minute), App: app, Kind: kind, Actor: "engine", Message: kind}
	b.events = append(b.events, e)
	return e
}

func (b *fakeBackend) Plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	if err := b.fail("Plan"); err != nil {
		return slipway.Plan{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plans = append(b.plans, opts)
	b.sets = append(b.sets, s)
	if b.plan != nil {
		return *b.plan, nil
	}
	var p slipway.Plan
	for _, a := range s.Apps {
		p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindApp, Name: a.Name, Action: slipway.ActionCreate, ToRevision: a.RevisionSpec().Hash(), ToReplicas: a.Replicas})
	}
	return p, nil
}

func (b *fakeBackend) Apply(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	if err := b.fail("Apply"); err != nil {
		return slipway.Plan{}, err
	}
	p, err := b.Plan(ctx, s, opts)
	p.Changes = slices.Clone(p.Changes)
	for i, c := range p.Changes {
		if c.Kind == slipway.KindApp && (c.Action == slipway.ActionCreate || c.Action == slipway.ActionNewRevision) {
			p.Changes[i].Rollout = "web-2"
		}
	}
	return p, err
}

func (b *fakeBackend) Operate(ctx context.Context, op slipway.Operation) (slipway.Rollout, error) {
	if err := b.fail("Operate"); err != nil {
		return slipway.Rollout{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.operations = append(b.operations, op)
	for _, r := range b.rollouts {
		if r.App == op.App {
			r.Phase = slipway.PhaseProgressing
			r.Reason = "operated: " + string(op.Kind)
			return r, nil
		}
	}
	return slipway.Rollout{}, slipway.Errorf(slipway.ENOTFOUND, "app %q not found", op.App)
}

func (b *fakeBackend) Status(ctx context.Context, app string) (slipway.AppStatus, error) {
	if err := b.fail("Status"); err != nil {
		return slipway.AppStatus{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.statuses[app]
	if !ok {
		return st, slipway.Errorf(slipway.ENOTFOUND, "app %q not found", app)
	}
	return st, nil
}

func (b *fakeBackend) App(ctx context.Context, name string) (slipway.AppState, error) {
	if err := b.fail("App"); err != nil {
		return slipway.AppState{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.apps {
		if a.Spec.Name == name {
			return a, nil
		}
	}
	return slipway.AppState{}, slipway.Errorf(slipway.ENOTFOUND, "app %q not found", name)
}

func (b *fakeBackend) Apps(ctx context.Context) ([]slipway.AppState, error) {
	return b.apps, b.fail("Apps")
}

func (b *fakeBackend) Template(ctx context.Context, name string) (slipway.AnalysisTemplate, error) {
	for _, t := range b.templates {
		if t.Name == name {
			return t, nil
		}
	}
	return slipway.AnalysisTemplate{}, slipway.Errorf(slipway.ENOTFOUND, "template %q not found", name)
}

func (b *fakeBackend) Templates(ctx context.Context) ([]slipway.AnalysisTemplate, error) {
	return b.templates, b.fail("Templates")
}

func (b *fakeBackend) Revisions(ctx context.Context, app string) ([]slipway.Revision, error) {
	if _, err := b.App(ctx, app); err != nil {
		return nil, err
	}
	var out []slipway.Revision
	for _, r := range b.revisions {
		if r.App == app {
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *fakeBackend) Revision(ctx context.Context, app, id string) (slipway.Revision, error) {
	for _, r := range b.revisions {
		if r.App == app && r.ID == id {
			return r, nil
		}
	}
	return slipway.Revision{}, slipway.Errorf(slipway.ENOTFOUND, "revision %q not found", id)
}

func (b *fakeBackend) Rollout(ctx context.Context, id string) (slipway.Rollout, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.rollouts {
		if r.ID == id {
			return r, nil
		}
	}
	return slipway.Rollout{}, slipway.Errorf(slipway.ENOTFOUND, "rollout %q not found", id)
}

func (b *fakeBackend) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	if _, err := b.App(ctx, app); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []slipway.Rollout
	for _, r := range b.rollouts {
		if r.App == app && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *fakeBackend) ActiveRollouts(ctx context.Context) ([]slipway.Rollout, error) {
	var out []slipway.Rollout
	for _, r := range b.rollouts {
		if r.Active() {
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *fakeBackend) AnalysisRun(ctx context.Context, id string) (slipway.AnalysisRun, error) {
	for _, r := range b.runs {
		if r.ID == id {
			return r, nil
		}
	}
	return slipway.AnalysisRun{}, slipway.Errorf(slipway.ENOTFOUND, "analysis run %q not found", id)
}

func (b *fakeBackend) AnalysisRuns(ctx context.Context, rollout string) ([]slipway.AnalysisRun, error) {
	var out []slipway.AnalysisRun
	for _, r := range b.runs {
		if r.Rollout == rollout {
			out = append(out, r)
		}
	}
	return out, nil
}

// Events follows the store's contract for EventFilter.
func (b *fakeBackend) Events(ctx context.Context, f slipway.EventFilter) ([]slipway.Event, error) {
	if err := b.fail("Events"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.eventReads++
	var out []slipway.Event
	for _, e := range b.events {
		if e.Seq <= f.After || (f.App != "" && e.App != f.App) || (f.Rollout != "" && e.Rollout != f.Rollout) {
			continue
		}
		out = append(out, e)
	}
	if f.Limit > 0 && len(out) > f.Limit {
		if f.After == 0 {
			out = out[len(out)-f.Limit:]
		} else {
			out = out[:f.Limit]
		}
	}
	return slices.Clone(out), nil
}

// recorded returns copies of what Plan, Apply and Operate were asked.
func (b *fakeBackend) recorded() ([]slipway.ApplyOptions, []slipway.Set, []slipway.Operation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.plans), slices.Clone(b.sets), slices.Clone(b.operations)
}

// setPhase moves rollout web-2 to phase, as the engine would: the record, the status and an
// event.
func (b *fakeBackend) setPhase(phase slipway.Phase, reason, kind string) {
	b.mu.Lock()
	r := &b.rollouts[0]
	r.Phase, r.Reason, r.Cause = phase, reason, slipway.PauseNone
	if phase.Terminal() {
		done := t0.Add(2 * time.Hour)
		r.CompletedAt = &done
		r.Weight = 100
		if phase == slipway.PhaseAborted {
			r.Weight = 0
		}
	}
	st := b.statuses["web"]
	rs := *st.Rollout
	rs.Phase, rs.Reason, rs.Cause, rs.Weight, rs.CompletedAt = phase, reason, slipway.PauseNone, r.Weight, r.CompletedAt
	st.Rollout = &rs
	b.statuses["web"] = st
	b.events = append(b.events, slipway.Event{Seq: int64(len(b.events) + 1), Time: t0.Add(2 * time.Hour), App: "web", Rollout: "web-2", Kind: kind, Actor: "engine", Message: kind, Reason: reason})
	b.mu.Unlock()
}
