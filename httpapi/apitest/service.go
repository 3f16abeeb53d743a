package apitest

import (
	"context"
	"slices"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// epoch is when the seeded history begins; every seeded time is an offset from it, so that
// golden files of API and CLI output hold fixed times.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Service is an in-memory slipway engine and store: it answers every method of
// slipway.Deployer, slipway.Operator, slipway.StatusReader and slipway.StateReader from
// records it holds, records the calls that would change things, and returns errors a test
// injects. It is safe for concurrent use.
//
// NewService seeds it with one story: app "web" (3 replicas, a canary strategy of setWeight
// 20 then pause) has revisions 1 (v1, stable) and 2 (v2); rollout "web-2" from v1 to v2 is
// Paused at step 1 of 2, at weight 20, waiting for approval; analysis run "web-2-step-0" of
// template "success-rate" succeeded; events 1-3 tell the app's creation, the rollout's
// start and its pause. Plan, Apply and Operate change none of it; AddEvent, SetPhase and
// SetStatus do, as the engine would.
//
// It stands in for the engine and the store only where a test is about the API's or the
// CLI's plumbing; features are tested against the real ones.
type Service struct {
	mu        sync.Mutex
	apps      []slipway.AppState
	templates []slipway.AnalysisTemplate
	revisions []slipway.Revision
	rollouts  []slipway.Rollout
	runs      []slipway.AnalysisRun
	events    []slipway.Event
	statuses  map[string]slipway.AppStatus

	plan       *slipway.Plan    // what Plan and Apply answer, when set
	errs       map[string]error // by method name
	plans      []PlanCall
	operations []slipway.Operation
}

var (
	_ slipway.Deployer     = (*Service)(nil)
	_ slipway.Operator     = (*Service)(nil)
	_ slipway.StatusReader = (*Service)(nil)
	_ slipway.StateReader  = (*Service)(nil)
)

// PlanCall is what one call of Plan or Apply was asked.
type PlanCall struct {
	Set     slipway.Set
	Options slipway.ApplyOptions
}

// NewService returns a Service seeded as its doc describes.
func NewService() *Service {
	weight := 20
	web := slipway.App{
		Name: "web", Replicas: 3, Version: "v2",
		Run:      slipway.RunSpec{Command: "./web", Args: []string{"--port", "${PORT}"}},
		Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{{SetWeight: &weight}, {Pause: &slipway.PauseStep{}}}}},
	}
	v1 := web
	v1.Version = "v1"
	rev1 := slipway.Revision{App: "web", ID: v1.RevisionSpec().Hash(), Number: 1, Version: "v1", Spec: v1.RevisionSpec(), CreatedAt: epoch}
	rev2 := slipway.Revision{App: "web", ID: web.RevisionSpec().Hash(), Number: 2, Version: "v2", Spec: web.RevisionSpec(), CreatedAt: epoch.Add(time.Hour)}
	ro := slipway.Rollout{
		ID: "web-2", App: "web", Number: 2, From: rev1.ID, FromVersion: "v1", To: rev2.ID, ToVersion: "v2",
		Strategy: slipway.StrategyCanary, Spec: web.Strategy, Phase: slipway.PhasePaused, Cause: slipway.PauseAtStep,
		Reason: "waiting for approval", Step: 1, Weight: 20, StepStartedAt: epoch.Add(time.Hour),
		LastProgressAt: epoch.Add(time.Hour), CreatedAt: epoch.Add(time.Hour), UpdatedAt: epoch.Add(time.Hour), Version: 3,
	}
	fin := epoch.Add(time.Hour + 2*time.Minute)
	run := slipway.AnalysisRun{
		ID: "web-2-step-0", App: "web", Rollout: "web-2", Kind: slipway.AnalysisStep, Templates: []string{"success-rate"},
		Phase: slipway.VerdictSuccessful, StartedAt: epoch.Add(time.Hour), FinishedAt: &fin,
		Results: []slipway.MetricResult{{Name: "success-rate", Phase: slipway.VerdictSuccessful, Count: 1, Successful: 1}},
	}
	rampRun := slipway.AnalysisRun{
		ID: "ramp-new-checkout-1-0", Flag: "new-checkout", Kind: slipway.AnalysisRamp, Templates: []string{"success-rate"},
		Phase: slipway.VerdictRunning, StartedAt: epoch.Add(time.Hour),
		Results: []slipway.MetricResult{{Name: "success-rate", Phase: slipway.VerdictRunning}},
	}
	s := &Service{
		apps:      []slipway.AppState{{Spec: web, Stable: rev1.ID, CreatedAt: epoch, UpdatedAt: epoch.Add(time.Hour), Version: 2}},
		templates: []slipway.AnalysisTemplate{{Name: "success-rate", Metrics: []slipway.Metric{{Name: "success-rate", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "true"}}}}}},
		revisions: []slipway.Revision{rev2, rev1},
		rollouts:  []slipway.Rollout{ro},
		runs:      []slipway.AnalysisRun{run, rampRun},
		statuses: map[string]slipway.AppStatus{"web": {
			App: "web", Replicas: 3, Stable: &slipway.RevisionRef{Revision: rev1.ID, Version: "v1"},
			Rollout: &slipway.RolloutStatus{ID: "web-2", Revision: rev2.ID, Version: "v2", From: rev1.ID, Strategy: slipway.StrategyCanary,
				Phase: slipway.PhasePaused, Step: 1, Steps: 2, Weight: 20, Reason: "waiting for approval", Cause: slipway.PauseAtStep,
				StartedAt: epoch.Add(time.Hour), UpdatedAt: epoch.Add(time.Hour)},
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
		s.events = append(s.events, slipway.Event{Seq: int64(i + 1), Time: epoch.Add(time.Duration(i) * time.Second), App: "web", Kind: k, Actor: "engine", Message: k})
	}
	return s
}

// SetError makes method (a method name of the service interfaces, such as "Plan" or
// "Events") return err from now on; a nil err clears it.
func (s *Service) SetError(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.errs, method)
		return
	}
	s.errs[method] = err
}

// SetPlan makes Plan and Apply answer p whatever set they are given. Without it they answer
// a create for each app of the set.
func (s *Service) SetPlan(p slipway.Plan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plan = &p
}

// AddAnalysisRun adds run to the runs the service answers about.
func (s *Service) AddAnalysisRun(run slipway.AnalysisRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, run)
}

// SetStatus replaces what Status answers for st.App.
func (s *Service) SetStatus(st slipway.AppStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[st.App] = st
}

// AddEvent appends an event of kind about app with the next Seq, as the store would, and
// returns it.
func (s *Service) AddEvent(app, kind string) slipway.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := slipway.Event{Seq: int64(len(s.events) + 1), Time: epoch.Add(time.Minute), App: app, Kind: kind, Actor: "engine", Message: kind}
	s.events = append(s.events, e)
	return e
}

// SetPhase moves rollout web-2 to phase for reason, as the engine would: it changes the
// rollout record and web's status (a terminal phase also completes the rollout at weight
// 100, or 0 when aborted) and appends an event of kind.
func (s *Service) SetPhase(phase slipway.Phase, reason, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.rollouts[0]
	r.Phase, r.Reason, r.Cause = phase, reason, slipway.PauseNone
	if phase.Terminal() {
		done := epoch.Add(2 * time.Hour)
		r.CompletedAt = &done
		r.Weight = 100
		if phase == slipway.PhaseAborted {
			r.Weight = 0
		}
	}
	st := s.statuses["web"]
	rs := *st.Rollout
	rs.Phase, rs.Reason, rs.Cause, rs.Weight, rs.CompletedAt = phase, reason, slipway.PauseNone, r.Weight, r.CompletedAt
	st.Rollout = &rs
	s.statuses["web"] = st
	s.events = append(s.events, slipway.Event{Seq: int64(len(s.events) + 1), Time: epoch.Add(2 * time.Hour), App: "web", Rollout: "web-2", Kind: kind, Actor: "engine", Message: kind, Reason: reason})
}

// Plans returns what Plan and Apply were asked, oldest first (an Apply counts once).
func (s *Service) Plans() []PlanCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.plans)
}

// Operations returns what Operate was asked, oldest first.
func (s *Service) Operations() []slipway.Operation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.operations)
}

// failure returns the error injected for method; the caller holds s.mu.
func (s *Service) failure(method string) error {
	return s.errs[method]
}

// Plan records the call and answers the plan set by SetPlan, or a create for each app of set.
func (s *Service) Plan(ctx context.Context, set slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Plan"); err != nil {
		return slipway.Plan{}, err
	}
	return s.planLocked(set, opts), nil
}

func (s *Service) planLocked(set slipway.Set, opts slipway.ApplyOptions) slipway.Plan {
	s.plans = append(s.plans, PlanCall{Set: set, Options: opts})
	if s.plan != nil {
		return slipway.Plan{Changes: slices.Clone(s.plan.Changes)}
	}
	var p slipway.Plan
	for _, a := range set.Apps {
		p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindApp, Name: a.Name, Action: slipway.ActionCreate, ToRevision: a.RevisionSpec().Hash(), ToReplicas: a.Replicas})
	}
	return p
}

// Apply records the call and answers what Plan would, with every app it creates or gives a
// new revision naming rollout web-2 as the one it started, so that a client that follows the
// rollouts of an apply has the seeded one to follow.
func (s *Service) Apply(ctx context.Context, set slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Apply"); err != nil {
		return slipway.Plan{}, err
	}
	if err := s.failure("Plan"); err != nil {
		return slipway.Plan{}, err
	}
	p := s.planLocked(set, opts)
	for i, c := range p.Changes {
		if c.Kind == slipway.KindApp && (c.Action == slipway.ActionCreate || c.Action == slipway.ActionNewRevision) {
			p.Changes[i].Rollout = "web-2"
		}
	}
	return p, nil
}

// Operate records op and answers the app's rollout as Progressing with the reason
// "operated: <kind>", without changing the stored one; ENOTFOUND for an app without one.
func (s *Service) Operate(ctx context.Context, op slipway.Operation) (slipway.Rollout, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Operate"); err != nil {
		return slipway.Rollout{}, err
	}
	s.operations = append(s.operations, op)
	for _, r := range s.rollouts {
		if r.App == op.App {
			r.Phase = slipway.PhaseProgressing
			r.Reason = "operated: " + string(op.Kind)
			return r, nil
		}
	}
	return slipway.Rollout{}, slipway.Errorf(slipway.ENOTFOUND, "app %q not found", op.App)
}

// Status returns app's status; ENOTFOUND for an unknown app.
func (s *Service) Status(ctx context.Context, app string) (slipway.AppStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Status"); err != nil {
		return slipway.AppStatus{}, err
	}
	st, ok := s.statuses[app]
	if !ok {
		return slipway.AppStatus{}, slipway.Errorf(slipway.ENOTFOUND, "app %q not found", app)
	}
	return st, nil
}

// App returns the app named name; ENOTFOUND for an unknown app.
func (s *Service) App(ctx context.Context, name string) (slipway.AppState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("App"); err != nil {
		return slipway.AppState{}, err
	}
	return s.appLocked(name)
}

func (s *Service) appLocked(name string) (slipway.AppState, error) {
	for _, a := range s.apps {
		if a.Spec.Name == name {
			return a, nil
		}
	}
	return slipway.AppState{}, slipway.Errorf(slipway.ENOTFOUND, "app %q not found", name)
}

// Apps returns every app.
func (s *Service) Apps(ctx context.Context) ([]slipway.AppState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Apps"); err != nil {
		return nil, err
	}
	return slices.Clone(s.apps), nil
}

// Template returns the template named name; ENOTFOUND for an unknown one.
func (s *Service) Template(ctx context.Context, name string) (slipway.AnalysisTemplate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Template"); err != nil {
		return slipway.AnalysisTemplate{}, err
	}
	for _, t := range s.templates {
		if t.Name == name {
			return t, nil
		}
	}
	return slipway.AnalysisTemplate{}, slipway.Errorf(slipway.ENOTFOUND, "template %q not found", name)
}

// Templates returns every template.
func (s *Service) Templates(ctx context.Context) ([]slipway.AnalysisTemplate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Templates"); err != nil {
		return nil, err
	}
	return slices.Clone(s.templates), nil
}

// Revisions returns app's revisions, newest first; ENOTFOUND for an unknown app.
func (s *Service) Revisions(ctx context.Context, app string) ([]slipway.Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Revisions"); err != nil {
		return nil, err
	}
	if _, err := s.appLocked(app); err != nil {
		return nil, err
	}
	var out []slipway.Revision
	for _, r := range s.revisions {
		if r.App == app {
			out = append(out, r)
		}
	}
	return out, nil
}

// Revision returns app's revision id; ENOTFOUND for an unknown one.
func (s *Service) Revision(ctx context.Context, app, id string) (slipway.Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Revision"); err != nil {
		return slipway.Revision{}, err
	}
	for _, r := range s.revisions {
		if r.App == app && r.ID == id {
			return r, nil
		}
	}
	return slipway.Revision{}, slipway.Errorf(slipway.ENOTFOUND, "revision %q not found", id)
}

// Rollout returns rollout id; ENOTFOUND for an unknown one.
func (s *Service) Rollout(ctx context.Context, id string) (slipway.Rollout, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Rollout"); err != nil {
		return slipway.Rollout{}, err
	}
	for _, r := range s.rollouts {
		if r.ID == id {
			return r, nil
		}
	}
	return slipway.Rollout{}, slipway.Errorf(slipway.ENOTFOUND, "rollout %q not found", id)
}

// Rollouts returns app's rollouts, at most limit (all when limit <= 0); ENOTFOUND for an
// unknown app.
func (s *Service) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Rollouts"); err != nil {
		return nil, err
	}
	if _, err := s.appLocked(app); err != nil {
		return nil, err
	}
	var out []slipway.Rollout
	for _, r := range s.rollouts {
		if r.App == app && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

// ActiveRollouts returns the rollouts that have not ended.
func (s *Service) ActiveRollouts(ctx context.Context) ([]slipway.Rollout, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("ActiveRollouts"); err != nil {
		return nil, err
	}
	var out []slipway.Rollout
	for _, r := range s.rollouts {
		if r.Active() {
			out = append(out, r)
		}
	}
	return out, nil
}

// AnalysisRun returns analysis run id; ENOTFOUND for an unknown one.
func (s *Service) AnalysisRun(ctx context.Context, id string) (slipway.AnalysisRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("AnalysisRun"); err != nil {
		return slipway.AnalysisRun{}, err
	}
	for _, r := range s.runs {
		if r.ID == id {
			return r, nil
		}
	}
	return slipway.AnalysisRun{}, slipway.Errorf(slipway.ENOTFOUND, "analysis run %q not found", id)
}

// FlagAnalysisRuns returns the analysis runs of flag's ramps, oldest first.
func (s *Service) FlagAnalysisRuns(ctx context.Context, flag string) ([]slipway.AnalysisRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("FlagAnalysisRuns"); err != nil {
		return nil, err
	}
	var out []slipway.AnalysisRun
	for _, r := range s.runs {
		if r.Flag == flag {
			out = append(out, r)
		}
	}
	return out, nil
}

// AnalysisRuns returns the analysis runs of rollout, oldest first.
func (s *Service) AnalysisRuns(ctx context.Context, rollout string) ([]slipway.AnalysisRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("AnalysisRuns"); err != nil {
		return nil, err
	}
	var out []slipway.AnalysisRun
	for _, r := range s.runs {
		if r.Rollout == rollout {
			out = append(out, r)
		}
	}
	return out, nil
}

// Events follows the store's contract for EventFilter: the events after f.After of f.App
// and f.Rollout (any when empty), oldest first; with f.Limit, the newest Limit when After
// is 0 and the oldest Limit after it otherwise.
func (s *Service) Events(ctx context.Context, f slipway.EventFilter) ([]slipway.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("Events"); err != nil {
		return nil, err
	}
	var out []slipway.Event
	for _, e := range s.events {
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
