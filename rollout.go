package slipway

import "time"

// Revision is an immutable snapshot of an App's run spec, named by its content hash.
type Revision struct {
	App string `json:"app"`
	// ID is the content hash of Spec (RevisionSpec.Hash).
	ID string `json:"id"`
	// Number counts an app's revisions from 1, in the order they were first applied.
	Number    int          `json:"number"`
	Version   string       `json:"version,omitempty"`
	Spec      RevisionSpec `json:"spec"`
	CreatedAt time.Time    `json:"createdAt"`
}

// AppState is an App as stored: the declared spec plus what the engine keeps about it.
type AppState struct {
	Spec App `json:"spec"`
	// Stable is the revision that serves all traffic when no rollout runs; "" before the first
	// rollout completes.
	Stable    string    `json:"stable"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Version is the optimistic concurrency version (see Store).
	Version int64 `json:"version"`
}

// Phase is where a rollout stands.
type Phase string

// Phases. Aborted means rolled back: all traffic is on the stable revision.
const (
	PhaseProgressing Phase = "Progressing"
	PhasePaused      Phase = "Paused"
	PhaseCompleted   Phase = "Completed"
	PhaseAborted     Phase = "Aborted"
)

// Terminal reports whether the rollout has ended.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseCompleted, PhaseAborted:
		return true
	case PhaseProgressing, PhasePaused:
		return false
	}
	return false
}

// PauseCause says why a rollout is paused; the human reason is kept apart in Rollout.Reason.
type PauseCause string

// Pause causes.
const (
	PauseNone         PauseCause = ""
	PauseAtStep       PauseCause = "step"         // a pause step waiting for approval
	PauseManual       PauseCause = "manual"       // an operator paused it
	PauseInconclusive PauseCause = "inconclusive" // analysis could not decide
	PauseApproval     PauseCause = "approval"     // blue-green waiting to be promoted
)

// Rollout is the move of an app from its stable revision to a new one. Everything the engine
// needs to resume it after a restart is in this record.
type Rollout struct {
	ID     string `json:"id"`
	App    string `json:"app"`
	Number int    `json:"number"`
	// From is the stable revision when the rollout started ("" for an app's first rollout).
	From        string       `json:"from"`
	FromVersion string       `json:"fromVersion,omitempty"`
	To          string       `json:"to"`
	ToVersion   string       `json:"toVersion,omitempty"`
	Strategy    StrategyKind `json:"strategy"`
	// Spec is a snapshot of the app's strategy and background analysis when the rollout was
	// created, so that a rollout finishes the way it started.
	Spec     Strategy            `json:"spec"`
	Analysis *BackgroundAnalysis `json:"analysis,omitempty"`
	// SkipAnalysis skips steps and analysis (a fast rollback to a known good revision).
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`
	// Rollback marks a rollout created by the rollback operation.
	Rollback bool `json:"rollback,omitempty"`
	// SupersededBy names the rollout that replaced this one before it ended (it is then
	// Aborted, though nothing went wrong with it).
	SupersededBy string `json:"supersededBy,omitempty"`

	Phase  Phase      `json:"phase"`
	Cause  PauseCause `json:"cause,omitempty"`
	Reason string     `json:"reason,omitempty"`
	// Attempt counts retries.
	Attempt int `json:"attempt"`
	// RunSeq counts the analysis runs created for this rollout; it keeps run IDs unique.
	RunSeq int `json:"runSeq"`
	// Approved records an operator's approval of a blue-green switch given before the
	// rollout reached the point of asking.
	Approved bool `json:"approved,omitempty"`

	// Step is the current canary step index; len(steps) means the final promotion. For
	// blue-green it is the stage: 0 preview starting, 1 pre-promotion analysis, 2 waiting to
	// switch, 3 switched (post-promotion analysis).
	Step          int       `json:"step"`
	StepStartedAt time.Time `json:"stepStartedAt"`
	// Weight is the canary's share of traffic in percent.
	Weight      int          `json:"weight"`
	CanaryScale *CanaryScale `json:"canaryScale,omitempty"`
	HeaderRoute *HeaderRoute `json:"headerRoute,omitempty"`
	// Experiment state of the current step: when the canary and the baseline were both
	// ready, and whether the experiment has ended (its baseline removed).
	ExperimentReadyAt *time.Time `json:"experimentReadyAt,omitempty"`
	ExperimentDone    bool       `json:"experimentDone,omitempty"`

	// Rolling update state: the instance counts the engine asked for.
	NewReplicas int `json:"newReplicas,omitempty"`
	OldReplicas int `json:"oldReplicas,omitempty"`
	// LastProgressAt is when the rollout last made progress (progress deadline).
	LastProgressAt time.Time `json:"lastProgressAt"`

	// Blue-green state.
	PreviewReadyAt *time.Time `json:"previewReadyAt,omitempty"`
	Switched       bool       `json:"switched,omitempty"`
	ScaleDownAt    *time.Time `json:"scaleDownAt,omitempty"`
	ScaledDown     bool       `json:"scaledDown,omitempty"`

	// Analysis runs in force, by ID ("" when none).
	StepRun       string `json:"stepRun,omitempty"`
	BackgroundRun string `json:"backgroundRun,omitempty"`

	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
	// Version is the optimistic concurrency version (see Store).
	Version int64 `json:"version"`
}

// Active reports whether the engine still has work on r: not ended, or ended with old
// capacity still to scale down.
func (r Rollout) Active() bool {
	return !r.Phase.Terminal() || (r.ScaleDownAt != nil && !r.ScaledDown)
}

// Experiment returns the experiment of r's current step while its baseline runs: a canary
// rollout in progress at an experiment step that has not ended. ok is false otherwise.
func (r Rollout) Experiment() (e Experiment, baseline string, ok bool) {
	if r.Phase.Terminal() || r.ExperimentDone || r.Step >= r.Steps() {
		return Experiment{}, "", false
	}
	st := r.Spec.Canary.Steps[r.Step]
	if st.Experiment == nil {
		return Experiment{}, "", false
	}
	return *st.Experiment, BaselineID(r.From, r.Number, r.Attempt), true
}

// Steps returns the number of canary steps: 0 for other strategies, for an app's first
// rollout (nothing to shift traffic from) and for a rollout that skips its steps.
func (r Rollout) Steps() int {
	if r.Spec.Canary == nil || r.SkipAnalysis || r.From == "" {
		return 0
	}
	return len(r.Spec.Canary.Steps)
}
