package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
)

// Input is what Next observes besides the rollout itself.
type Input struct {
	// App is the app's current declared spec (its replica count may change mid-rollout).
	App slipway.App
	// Environment is the environment the app runs in: {{environment}} in its analysis
	// templates (slipway.DefaultEnvironment when "").
	Environment string
	// Observed is the live state the platform reports.
	Observed slipway.Observed
	// Runs holds the rollout's analysis runs in force, by ID.
	Runs map[string]slipway.AnalysisRun
	// Templates are the analysis templates known to the store, by name.
	Templates map[string]slipway.AnalysisTemplate
}

// Effects is what a transition asks for besides the new rollout record. The runner commits
// them together with the rollout, in one transaction, before it tells the platform anything.
type Effects struct {
	// StartRuns are analysis runs to create.
	StartRuns []slipway.AnalysisRun
	// StopRuns are IDs of runs to terminate, with StopReason.
	StopRuns   []string
	StopReason string
	// Stable, when set, becomes the app's stable revision.
	Stable string
	// Events record every transition.
	Events []slipway.Event
	// WakeAt is the earliest time Next wants to run again without any other change (zero
	// for none).
	WakeAt time.Time
	// Poll says the rollout waits on something only observing the platform tells (instances
	// becoming ready, a split taking effect): the runner observes again soon. Without it
	// the rollout waits on time (WakeAt) or on a nudge (an operation, a measurement).
	Poll bool
}

// Empty reports whether e asks for nothing to be written.
func (e Effects) Empty() bool {
	return len(e.StartRuns) == 0 && len(e.StopRuns) == 0 && e.Stable == "" && len(e.Events) == 0
}

// Next decides the rollout's next state from what is observed. It is pure: it reads no clock,
// store or platform, so it is table-tested on every edge of the state diagram. It takes at
// most one transition; the runner calls it again until it changes nothing.
func Next(r slipway.Rollout, in Input, now time.Time) (slipway.Rollout, Effects) {
	m := machine{r: r, in: in, now: now}
	m.decide()
	// Pointers, and to a copy: DeepEqual would copy each rollout to the heap to box it, and
	// a pointer into m would move all of m (the input too) to the heap.
	after := m.r
	if !reflect.DeepEqual(&after, &r) {
		m.r.UpdatedAt = now
		m.r.LastProgressAt = now
	}
	return m.r, m.eff
}

type machine struct {
	r   slipway.Rollout
	in  Input
	now time.Time
	eff Effects
}

func (m *machine) decide() {
	r := &m.r
	if r.Phase.Terminal() {
		if r.ScaleDownAt != nil && !r.ScaledDown {
			if m.now.Before(*r.ScaleDownAt) {
				m.wake(*r.ScaleDownAt)
				return
			}
			r.ScaledDown = true
			m.event(slipway.EventRolloutScaledDown, fmt.Sprintf("scaled down revision %s", r.From), "scaleDownDelay passed")
		}
		return
	}
	if m.background() {
		return
	}
	if r.Phase == slipway.PhasePaused {
		return
	}
	if r.From == "" {
		m.initial()
		return
	}
	switch r.Strategy {
	case slipway.StrategyRolling:
		m.rolling()
	case slipway.StrategyBlueGreen:
		m.blueGreen()
	case slipway.StrategyCanary:
		m.canary()
	}
}

// initial brings an app's first revision up; there is nothing to shift traffic from.
func (m *machine) initial() {
	r := &m.r
	if !m.ready(r.To, m.in.App.Replicas) || !m.splitConfirmed() {
		m.deadline(r.To, m.in.App.Replicas)
		return
	}
	m.complete()
}

func (m *machine) canary() {
	r := &m.r
	replicas := m.in.App.Replicas
	steps := r.Steps()
	if r.Step < steps {
		st := r.Spec.Canary.Steps[r.Step]
		switch {
		case st.SetWeight != nil:
			if r.Weight != *st.SetWeight {
				r.Weight = *st.SetWeight
				m.event(slipway.EventRolloutWeight, fmt.Sprintf("canary weight %d%%", r.Weight), m.stepName())
				return
			}
			if m.ready(r.To, CanaryReplicas(*r, replicas)) && m.splitConfirmed() {
				m.advance()
				return
			}
			m.deadline(r.To, CanaryReplicas(*r, replicas))
		case st.Pause != nil:
			if st.Pause.Duration == 0 {
				m.pause(slipway.PauseAtStep, fmt.Sprintf("waiting for approval at step %d/%d", r.Step+1, steps))
				return
			}
			end := r.StepStartedAt.Add(st.Pause.Duration.D())
			if m.now.Before(end) {
				m.wake(end)
				return
			}
			m.advance()
		case st.Analysis != nil:
			if m.analysisStage(slipway.AnalysisStep, *st.Analysis) {
				m.advance()
			}
		case st.SetCanaryScale != nil:
			want := canaryScale(*st.SetCanaryScale)
			if !reflect.DeepEqual(r.CanaryScale, want) {
				r.CanaryScale = want
				m.event(slipway.EventRolloutStep, fmt.Sprintf("canary scaled to %d instances", CanaryReplicas(*r, replicas)), m.stepName())
				return
			}
			if m.ready(r.To, CanaryReplicas(*r, replicas)) {
				m.advance()
				return
			}
			m.deadline(r.To, CanaryReplicas(*r, replicas))
		case st.Experiment != nil:
			if m.experiment(*st.Experiment) {
				m.advance()
			}
		case st.SetHeaderRoute != nil:
			var want *slipway.HeaderRoute
			if len(st.SetHeaderRoute.Match) > 0 {
				hr := *st.SetHeaderRoute
				want = &hr
			}
			if !reflect.DeepEqual(r.HeaderRoute, want) {
				r.HeaderRoute = want
				verb := " set"
				if want == nil {
					verb = " removed"
				}
				m.event(slipway.EventRolloutStep, "header route "+st.SetHeaderRoute.Name+verb, m.stepName())
				return
			}
			if m.splitConfirmed() {
				m.advance()
			}
		}
		return
	}
	// Final promotion: full canary capacity, then all traffic, then the old revision goes.
	if !m.ready(r.To, replicas) {
		m.deadline(r.To, replicas)
		return
	}
	if r.Weight != 100 || r.HeaderRoute != nil {
		r.Weight, r.HeaderRoute = 100, nil
		m.event(slipway.EventRolloutWeight, "canary weight 100%", "promoting")
		return
	}
	if m.splitConfirmed() {
		m.complete()
	}
}

// experiment runs an experiment step (slipway.Experiment) and reports true once it is over:
// the baseline and the canary are started at the experiment's size and weight; once both
// are ready and the split is in effect its analysis runs and its duration counts; when both
// are done the baseline is removed and the canary's weight returns to the steps' weight.
func (m *machine) experiment(e slipway.Experiment) bool {
	r := &m.r
	if r.ExperimentDone {
		// The baseline is being removed: the step ends once its traffic has gone.
		return m.splitConfirmed()
	}
	_, base, _ := r.Experiment()
	n := ExperimentReplicas(e, m.in.App.Replicas)
	if r.ExperimentReadyAt == nil {
		if want := max(n, CanaryReplicas(*r, m.in.App.Replicas)); !m.ready(r.To, want) {
			m.deadline(r.To, want)
			return false
		}
		if !m.ready(base, n) {
			m.deadline(base, n)
			return false
		}
		if !m.splitConfirmed() {
			return false
		}
		t := m.now
		r.ExperimentReadyAt = &t
		m.event(slipway.EventRolloutStep, fmt.Sprintf("experiment: canary %s and baseline %s ready, %d%% of traffic each", r.To, base, e.Weight), m.stepName())
		return false
	}
	if e.Analysis != nil && !m.stagePassed(slipway.AnalysisStep, *e.Analysis) {
		return false
	}
	if end := r.ExperimentReadyAt.Add(e.Duration.D()); m.now.Before(end) {
		m.wake(end)
		return false
	}
	r.ExperimentDone = true
	m.event(slipway.EventRolloutStep, fmt.Sprintf("experiment ended: baseline %s removed, canary weight %d%%", base, r.Weight), m.stepName())
	return false
}

func canaryScale(s slipway.CanaryScale) *slipway.CanaryScale {
	if s.MatchTrafficWeight {
		return nil
	}
	c := s
	return &c
}

func (m *machine) rolling() {
	r := &m.r
	replicas := m.in.App.Replicas
	var minReady time.Duration
	if r.Spec.Rolling != nil {
		minReady = r.Spec.Rolling.MinReady.D()
	}
	newSt, oldSt := m.in.Observed.Revision(r.To), m.in.Observed.Revision(r.From)
	newAvail, newReady, oldReady := newSt.Available(minReady, m.now), newSt.Ready(), oldSt.Ready()
	o, n := rollingStep(r.Spec.Rolling, replicas, r.OldReplicas, r.NewReplicas, newAvail, oldReady)
	// The weight follows the ready instances that stay, and changes in the same transition
	// as the counts: old instances leave the proxy in the same table that moves their
	// traffic onto the new ones, never before it (which would leave fewer instances serving
	// than maxUnavailable allows, for a moment).
	w := r.Weight
	servingOld := min(oldReady, o)
	switch {
	case o == 0 && newReady > 0:
		w = 100
	case newReady+servingOld > 0:
		w = (100*newReady + (newReady+servingOld)/2) / (newReady + servingOld)
	}
	if o != r.OldReplicas || n != r.NewReplicas || w != r.Weight {
		if o != r.OldReplicas || n != r.NewReplicas {
			m.event(slipway.EventRolloutStep, fmt.Sprintf("%s: %d instances, %s: %d instances", r.To, n, r.From, o), "rolling update")
		}
		if w != r.Weight {
			m.event(slipway.EventRolloutWeight, fmt.Sprintf("new revision weight %d%%", w), "rolling update")
		}
		r.OldReplicas, r.NewReplicas, r.Weight = o, n, w
		return
	}
	if o == 0 && n >= replicas && newAvail >= replicas && r.Weight == 100 && m.splitConfirmed() {
		m.complete()
		return
	}
	if at := availableAt(newSt, minReady, m.now); minReady > 0 && !at.IsZero() {
		m.wake(at)
	}
	m.deadline(r.To, n)
}

// availableAt returns when the first of st's ready instances that is not yet available will
// have been ready for minReady (now plus minReady for one that does not say since when).
func availableAt(st slipway.RevisionStatus, minReady time.Duration, now time.Time) time.Time {
	var at time.Time
	for _, in := range st.Instances {
		if !in.Ready {
			continue
		}
		t := now.Add(minReady)
		if in.ReadySince != nil {
			t = in.ReadySince.Add(minReady)
		}
		if t.After(now) && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	return at
}

func (m *machine) blueGreen() {
	r := &m.r
	bg := r.Spec.BlueGreen
	if bg == nil {
		bg = &slipway.BlueGreenStrategy{}
	}
	replicas := m.in.App.Replicas
	switch r.Step {
	case bgPreview:
		want := blueGreenReplicas(*r, replicas)
		if !m.ready(r.To, want) {
			m.deadline(r.To, want)
			return
		}
		t := m.now
		r.PreviewReadyAt = &t
		r.Step = bgAnalysis
		m.event(slipway.EventRolloutStep, fmt.Sprintf("preview %s ready", r.To), "blue-green")
	case bgAnalysis:
		if bg.PrePromotionAnalysis != nil && !r.SkipAnalysis && !m.analysisStage(slipway.AnalysisPrePromotion, *bg.PrePromotionAnalysis) {
			return
		}
		r.Step = bgWaiting
		m.event(slipway.EventRolloutStep, "ready to switch", "blue-green")
	case bgWaiting:
		if !m.ready(r.To, replicas) {
			m.deadline(r.To, replicas)
			return
		}
		if !r.Approved && !r.SkipAnalysis {
			if !bg.AutoPromotes() {
				m.pause(slipway.PauseApproval, fmt.Sprintf("waiting for approval to switch traffic to %s", r.To))
				return
			}
			readyAt := m.now
			if r.PreviewReadyAt != nil {
				readyAt = *r.PreviewReadyAt
			}
			if at := readyAt.Add(bg.AutoPromoteAfter.D()); m.now.Before(at) {
				m.wake(at)
				return
			}
		}
		r.Switched, r.Weight, r.Step = true, 100, bgSwitched
		m.event(slipway.EventRolloutPromoted, fmt.Sprintf("traffic switched to %s", r.To), "blue-green")
	case bgSwitched:
		if !m.splitConfirmed() {
			return
		}
		if bg.PostPromotionAnalysis != nil && !r.SkipAnalysis && !m.analysisStage(slipway.AnalysisPostPromotion, *bg.PostPromotionAnalysis) {
			return
		}
		m.complete()
		if bg.ScaleDownDelay > 0 {
			t := m.now.Add(bg.ScaleDownDelay.D())
			r.ScaleDownAt = &t
			m.wake(t)
		}
	}
}

// background starts and judges the app's background analysis. It reports true when the
// verdict ended or paused the rollout.
func (m *machine) background() bool {
	r := &m.r
	if r.Analysis == nil || r.SkipAnalysis || r.From == "" {
		return false
	}
	if r.BackgroundRun == "" {
		if r.Phase == slipway.PhasePaused || (r.Strategy == slipway.StrategyCanary && r.Step < r.Analysis.StartingStep) {
			return false
		}
		run, ok := m.newRun(slipway.AnalysisBackground, r.Analysis.AnalysisRef)
		if !ok {
			return true
		}
		r.BackgroundRun = run.ID
		return false
	}
	run, ok := m.in.Runs[r.BackgroundRun]
	if !ok {
		return false
	}
	switch run.Phase {
	case slipway.VerdictFailed:
		m.abort(fmt.Sprintf("background analysis %s failed: %s", run.ID, run.Message))
		return true
	case slipway.VerdictInconclusive:
		if r.Phase != slipway.PhasePaused {
			m.pause(slipway.PauseInconclusive, fmt.Sprintf("background analysis %s inconclusive: %s", run.ID, run.Message))
		}
		return true
	case slipway.VerdictRunning, slipway.VerdictSuccessful, slipway.VerdictTerminated, slipway.VerdictError:
	}
	return false
}

// analysisStage runs one analysis as a stage of the rollout (StepRun) and reports true once
// it passed. A failure aborts the rollout; an inconclusive run pauses it.
func (m *machine) analysisStage(kind slipway.AnalysisKind, ref slipway.AnalysisRef) bool {
	if m.stagePassed(kind, ref) {
		m.r.StepRun = ""
		return true
	}
	return false
}

// stagePassed is analysisStage that keeps a passed run as the step's run (StepRun), so that
// a step that waits on something else after it (an experiment's duration) does not start
// another.
func (m *machine) stagePassed(kind slipway.AnalysisKind, ref slipway.AnalysisRef) bool {
	r := &m.r
	if r.StepRun == "" {
		if run, ok := m.newRun(kind, ref); ok {
			r.StepRun = run.ID
		}
		return false
	}
	run, ok := m.in.Runs[r.StepRun]
	if !ok {
		return false
	}
	switch run.Phase {
	case slipway.VerdictSuccessful, slipway.VerdictTerminated:
		return true
	case slipway.VerdictFailed:
		m.abort(fmt.Sprintf("analysis %s failed: %s", run.ID, run.Message))
	case slipway.VerdictInconclusive:
		m.pause(slipway.PauseInconclusive, fmt.Sprintf("analysis %s inconclusive: %s", run.ID, run.Message))
	case slipway.VerdictRunning, slipway.VerdictError:
	}
	return false
}

// newRun builds an analysis run for the rollout; a run that cannot be built (a template or
// argument missing) aborts the rollout, since nothing may be promoted unmeasured.
func (m *machine) newRun(kind slipway.AnalysisKind, ref slipway.AnalysisRef) (slipway.AnalysisRun, bool) {
	r := &m.r
	r.RunSeq++
	id := fmt.Sprintf("%s-run%d", r.ID, r.RunSeq)
	run, err := analysis.NewRun(id, kind, r.Step, *r, m.in.Environment, ref, m.in.Templates, m.now)
	if err != nil {
		m.abort(fmt.Sprintf("cannot start %s analysis: %s", kind, slipway.ErrorMessage(err)))
		return slipway.AnalysisRun{}, false
	}
	m.eff.StartRuns = append(m.eff.StartRuns, run)
	m.event(slipway.EventAnalysisStarted, fmt.Sprintf("%s analysis %s started (%v)", kind, id, ref.Templates), m.stepName())
	return run, true
}

func (m *machine) advance() {
	r := &m.r
	name := m.stepName()
	r.Step++
	r.StepStartedAt = m.now
	r.StepRun = ""
	r.ExperimentReadyAt, r.ExperimentDone = nil, false
	m.event(slipway.EventRolloutStep, fmt.Sprintf("step %d/%d done (%s)", r.Step, r.Steps(), name), "")
}

func (m *machine) stepName() string {
	r := m.r
	if r.Step < r.Steps() {
		return fmt.Sprintf("step %d/%d %s", r.Step+1, r.Steps(), r.Spec.Canary.Steps[r.Step].Kind())
	}
	return "final promotion"
}

func (m *machine) pause(cause slipway.PauseCause, reason string) {
	r := &m.r
	r.Phase, r.Cause, r.Reason = slipway.PhasePaused, cause, reason
	m.event(slipway.EventRolloutPaused, "rollout paused", reason)
}

func (m *machine) abort(reason string) {
	abort(&m.r, &m.eff, reason, slipway.ActorEngine, m.now)
}

func (m *machine) complete() {
	r := &m.r
	t := m.now
	r.Phase, r.Cause, r.Reason, r.CompletedAt = slipway.PhaseCompleted, slipway.PauseNone, "", &t
	r.Weight = 100
	m.stopRuns("rollout completed")
	m.eff.Stable = r.To
	m.event(slipway.EventRolloutCompleted, fmt.Sprintf("revision %s is stable", r.To), "")
}

func (m *machine) stopRuns(reason string) { stopRuns(&m.r, &m.eff, reason) }

// deadline aborts the rollout when it has waited longer than its progress deadline for rev
// to have want ready instances.
func (m *machine) deadline(rev string, want int) {
	m.eff.Poll = true
	r := &m.r
	d := progressDeadline(*r)
	at := r.LastProgressAt.Add(d)
	if m.now.Before(at) {
		m.wake(at)
		return
	}
	got := m.in.Observed.Revision(rev).Ready()
	m.abort(fmt.Sprintf("progress deadline %s exceeded: revision %s has %d of %d instances ready", slipway.Duration(d), rev, got, want))
}

func progressDeadline(r slipway.Rollout) time.Duration {
	return r.Spec.ProgressDeadline().D()
}

// ready reports whether rev has want ready instances; while it has not, the rollout polls.
func (m *machine) ready(rev string, want int) bool {
	ok := m.in.Observed.Revision(rev).Ready() >= want
	m.eff.Poll = m.eff.Poll || !ok
	return ok
}

// splitConfirmed reports whether the data plane has the rollout's split in effect; while it
// has not, the rollout polls.
func (m *machine) splitConfirmed() bool {
	ok := m.in.Observed.Split.Equal(RolloutSplit(m.r))
	m.eff.Poll = m.eff.Poll || !ok
	return ok
}

func (m *machine) wake(t time.Time) {
	if m.eff.WakeAt.IsZero() || t.Before(m.eff.WakeAt) {
		m.eff.WakeAt = t
	}
}

func (m *machine) event(kind, msg, reason string) {
	m.eff.Events = append(m.eff.Events, newEvent(m.r, kind, slipway.ActorEngine, msg, reason, m.now))
}

// RolloutSplit is the split an active rollout wants on the main listener.
func RolloutSplit(r slipway.Rollout) slipway.Split {
	var s slipway.Split
	add := func(rev string, w int) {
		if rev != "" && w > 0 {
			s.Weights = append(s.Weights, slipway.Weight{Revision: rev, Weight: w})
		}
	}
	switch {
	case r.From == "" || r.Phase == slipway.PhaseCompleted:
		add(r.To, 100)
	case r.Phase == slipway.PhaseAborted:
		add(r.From, 100)
	case r.Strategy == slipway.StrategyBlueGreen:
		if r.Switched {
			add(r.To, 100)
		} else {
			add(r.From, 100)
		}
	default:
		if e, base, ok := r.Experiment(); ok {
			add(r.To, e.Weight)
			add(base, e.Weight)
			add(r.From, 100-2*e.Weight)
		} else {
			add(r.To, r.Weight)
			add(r.From, 100-r.Weight)
		}
		if r.HeaderRoute != nil && len(r.HeaderRoute.Match) > 0 {
			s.Routes = []slipway.Route{{Name: r.HeaderRoute.Name, Match: r.HeaderRoute.Match, Revision: r.To}}
		}
	}
	return s
}

// abort ends r as Aborted: all traffic back on the stable revision.
func abort(r *slipway.Rollout, eff *Effects, reason, actor string, now time.Time) {
	t := now
	r.Phase, r.Cause, r.Reason, r.CompletedAt = slipway.PhaseAborted, slipway.PauseNone, reason, &t
	r.Weight, r.HeaderRoute, r.Switched = 0, nil, false
	stopRuns(r, eff, "rollout aborted")
	eff.Events = append(eff.Events, newEvent(*r, slipway.EventRolloutAborted, actor, fmt.Sprintf("rolled back to %s", orNone(r.From)), reason, now))
}

func stopRuns(r *slipway.Rollout, eff *Effects, reason string) {
	for _, id := range []string{r.StepRun, r.BackgroundRun} {
		if id != "" {
			eff.StopRuns = append(eff.StopRuns, id)
		}
	}
	eff.StopReason = reason
	r.StepRun = ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// eventData is the Data of a rollout's events: where the rollout stands after the event. Its
// fields are in name order, as the map it replaced encoded them.
type eventData struct {
	Phase    slipway.Phase `json:"phase"`
	Revision string        `json:"revision"`
	Step     int           `json:"step"`
	Weight   int           `json:"weight"`
}

func newEvent(r slipway.Rollout, kind, actor, msg, reason string, now time.Time) slipway.Event {
	data, _ := json.Marshal(eventData{Phase: r.Phase, Revision: r.To, Step: r.Step, Weight: r.Weight})
	return slipway.Event{Time: now, App: r.App, Rollout: r.ID, Kind: kind, Actor: actor, Message: msg, Reason: reason, Data: data}
}
