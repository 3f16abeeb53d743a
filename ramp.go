package slipway

import (
	"context"
	"time"
)

// RampTotal is the constant total of a ramp's fractional split: weights are in basis points
// (1% = 100). The total never changes while a flag ramps, so raising the ramped variant's
// weight only ever moves users onto it (see Bucket in package flags).
const RampTotal = 10000

// FlagRamp is a slipway extension of a flagd flag: the share of one variant raised step by
// step, with analysis between steps. The engine owns the flag's targeting while it ramps:
// {"fractional": [[Variant, w], [other, RampTotal-w]]}, the ramped variant first.
type FlagRamp struct {
	// Variant is the variant whose share is raised.
	Variant string `json:"variant"`
	// Other is the variant everyone else is served; the flag's default variant when empty
	// (or, for a flag of two variants without one, the variant that is not Variant).
	Other string `json:"other,omitempty"`
	// Steps raise the share, in percent (0-100, increasing); each is held for its Pause.
	Steps []RampStep `json:"steps"`
	// Analysis, when set, runs for every step; a failure rolls the ramp back.
	Analysis *AnalysisRef `json:"analysis,omitempty"`
}

// RampStep is one share of a ramp and how long it is held before the next.
type RampStep struct {
	// Weight is the ramped variant's share in percent, 0-100.
	Weight int `json:"weight"`
	// Pause is how long the share is held (and analysed) before the next step.
	Pause Duration `json:"pause,omitempty"`
}

// Ramp is the state of one flag's ramp: everything the engine needs to resume it after a
// restart. Its Version is the optimistic concurrency version (see RampStore).
type Ramp struct {
	// Flag is the ramped flag's key; Set is the flag set that declares it.
	Flag string `json:"flag"`
	Set  string `json:"set"`
	// Spec is the ramp as declared when this ramp began; a changed declaration starts a new one.
	Spec FlagRamp `json:"spec"`
	// Phase is where the ramp stands, in the rollouts' words: Aborted means the ramped
	// variant's share is 0.
	Phase Phase `json:"phase"`
	// Pause says why a Paused ramp is paused: "manual" or "inconclusive".
	Pause PauseCause `json:"pause,omitempty"`
	// Step is the index of the step in force; StepStarted is when its weight took effect.
	Step        int       `json:"step"`
	StepStarted time.Time `json:"stepStarted,omitzero"`
	// Weight is the ramped variant's share in basis points that the flag must serve.
	Weight int `json:"weight"`
	// Run is the analysis of the current step, measured by the ramp's worker. It is stored
	// with the other analysis runs (AnalysisRun.Flag names the ramp's flag) in the same
	// transaction as the ramp, which keeps its ID (RunID).
	Run   *AnalysisRun `json:"run,omitempty"`
	RunID string       `json:"runId,omitempty"`
	// Reason says, for people, why the ramp is where it is.
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int64     `json:"version"`
}

// RampStore keeps ramps. Implementation: sqlite.Store.
type RampStore interface {
	// Ramps returns every stored ramp, by flag key.
	Ramps(ctx context.Context) ([]Ramp, error)
	// Ramp returns the ramp of flag key; ENOTFOUND when there is none.
	Ramp(ctx context.Context, key string) (Ramp, error)
	// SaveRamp writes r and events in one transaction: Version 0 inserts (ECONFLICT when one
	// exists), any other Version must equal the stored one (ECONFLICT otherwise). It sets
	// r.Version to the stored one.
	SaveRamp(ctx context.Context, r *Ramp, events ...Event) error
	// DeleteRamp removes the ramp of flag key; nothing when there is none.
	DeleteRamp(ctx context.Context, key string) error
}

// RampOp is an operation asked of a ramp.
type RampOp string

// Ramp operations.
const (
	RampPause  RampOp = "pause"
	RampResume RampOp = "resume"
	RampAbort  RampOp = "abort"
)

// RampOperation asks a ramp to pause, resume or abort.
type RampOperation struct {
	Op     RampOp `json:"op"`
	Flag   string `json:"flag"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// RampOperator reads and operates ramps. Implementation: engine.Engine.
type RampOperator interface {
	// Ramps returns every ramp, by flag key.
	Ramps(ctx context.Context) ([]Ramp, error)
	// Ramp returns the ramp of flag key; ENOTFOUND when the flag has none.
	Ramp(ctx context.Context, key string) (Ramp, error)
	// OperateRamp pauses, resumes or aborts a ramp. ENOTFOUND when the flag has none;
	// ECONFLICT when the ramp has ended; EINVALID for an unknown operation.
	OperateRamp(ctx context.Context, op RampOperation) (Ramp, error)
}

// Outcome names. Apps may report any other name too (a conversion, say).
const (
	OutcomeError   = "error"
	OutcomeSuccess = "success"
)

// OutcomeReport is what an app reports about the outcome of evaluations of a flag variant:
// Count occurrences of Outcome (error, success, or a name of its own) for Variant.
type OutcomeReport struct {
	Variant string `json:"variant"`
	Outcome string `json:"outcome"`
	// Count defaults to 1.
	Count int64 `json:"count,omitempty"`
}

// Ramp event kinds.
const (
	EventRampStarted   = "flag.ramp.started"
	EventRampStep      = "flag.ramp.step"
	EventRampPaused    = "flag.ramp.paused"
	EventRampResumed   = "flag.ramp.resumed"
	EventRampCompleted = "flag.ramp.completed"
	EventRampAborted   = "flag.ramp.aborted"
)

// AnalysisRamp is the kind of an analysis run that judges one step of a flag ramp.
const AnalysisRamp AnalysisKind = "ramp"

// FlagTemplateVars are the variables a template may use besides TemplateVars when it
// analyses a flag ramp: the flag's key and the ramped variant.
func FlagTemplateVars() []string { return []string{"flag", "variant"} }

// BuiltinOutcomeRate is the builtin metric of outcomes that apps report per flag variant:
// the share (0-1) of BuiltinMetric.Outcome among every outcome reported for the variant.
const BuiltinOutcomeRate = "outcome_rate"

// BuiltinOutcomeCount is the builtin metric counting BuiltinMetric.Outcome reported for a
// flag variant over the window.
const BuiltinOutcomeCount = "outcome_count"

// BuiltinOutcomeMetrics lists the builtin metrics of reported flag outcomes.
func BuiltinOutcomeMetrics() []string { return []string{BuiltinOutcomeRate, BuiltinOutcomeCount} }
