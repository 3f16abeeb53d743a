package slipway

import (
	"context"
	"time"
)

// Deployer plans and applies declared documents. Implementation: engine.Engine.
type Deployer interface {
	// Plan returns what Apply would change, changing nothing. EINVALID for a bad set.
	Plan(ctx context.Context, s Set, opts ApplyOptions) (Plan, error)
	// Apply validates s, then commits every change in one transaction and starts the rollouts
	// it implies. EINVALID for a bad set (nothing is changed), ECONFLICT when state moved
	// underneath (nothing is changed; retry).
	Apply(ctx context.Context, s Set, opts ApplyOptions) (Plan, error)
}

// ApplyOptions tunes Plan and Apply.
type ApplyOptions struct {
	// Prune deletes apps and templates the set does not declare.
	Prune bool `json:"prune,omitempty"`
	// Actor is who asked, for the events.
	Actor string `json:"actor,omitempty"`
	// Reason is why, for the events ("apply" when empty).
	Reason string `json:"reason,omitempty"`
}

// Action is what a plan does to one document.
type Action string

// Plan actions.
const (
	ActionCreate      Action = "create"
	ActionNewRevision Action = "new-revision"
	ActionScale       Action = "scale"
	ActionUpdate      Action = "update"
	ActionUnchanged   Action = "unchanged"
	ActionDelete      Action = "delete"
)

// Plan is the list of changes Apply makes (or made).
type Plan struct {
	Changes []PlanChange `json:"changes"`
}

// HasChanges reports whether any change is not ActionUnchanged.
func (p Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != ActionUnchanged {
			return true
		}
	}
	return false
}

// PlanChange is one document's change.
type PlanChange struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Environment is the environment of an app or template applied across environments
	// ("" for the environment the request was for).
	Environment string `json:"environment,omitempty"`
	Action      Action `json:"action"`
	// Fields lists the changed field paths (for example "run.args", "replicas").
	Fields       []string `json:"fields,omitempty"`
	FromRevision string   `json:"fromRevision,omitempty"`
	ToRevision   string   `json:"toRevision,omitempty"`
	FromReplicas int      `json:"fromReplicas,omitempty"`
	ToReplicas   int      `json:"toReplicas,omitempty"`
	// Rollout is the ID of the rollout Apply started, if any.
	Rollout string `json:"rollout,omitempty"`
}

// OperationKind names a manual operation on an app's rollout.
type OperationKind string

// Manual operations.
const (
	OpPromote  OperationKind = "promote"
	OpAbort    OperationKind = "abort"
	OpPause    OperationKind = "pause"
	OpResume   OperationKind = "resume"
	OpRetry    OperationKind = "retry"
	OpRollback OperationKind = "rollback"
)

// Operation is a manual operation asked of an app.
type Operation struct {
	Kind   OperationKind `json:"kind"`
	App    string        `json:"app"`
	Actor  string        `json:"actor,omitempty"`
	Reason string        `json:"reason,omitempty"`
	// Full (promote) skips the remaining steps and analysis.
	Full bool `json:"full,omitempty"`
	// To (rollback) is the target revision ID or number; default the previous stable one.
	To string `json:"to,omitempty"`
	// WithSteps (rollback) runs the strategy's steps and analysis even when rolling back to a
	// known good revision.
	WithSteps bool `json:"withSteps,omitempty"`
}

// Operator carries out manual operations. Implementation: engine.Engine.
type Operator interface {
	// Operate applies op and returns the rollout it affected. ENOTFOUND when the app (or
	// revision) does not exist; ECONFLICT when the operation does not fit the rollout's phase
	// (for example resume on a rollout that is not paused).
	Operate(ctx context.Context, op Operation) (Rollout, error)
}

// StatusReader reports an app's status, including drift between the declared and live world.
type StatusReader interface {
	// Status returns ENOTFOUND for an unknown app.
	Status(ctx context.Context, app string) (AppStatus, error)
}

// AppStatus is what `slipway status` shows. The JSON names app, stable and rollout (with id,
// revision, version, strategy, phase, step, steps, weight and reason) are stable.
type AppStatus struct {
	App      string          `json:"app"`
	Replicas int             `json:"replicas"`
	Stable   *RevisionRef    `json:"stable"`
	Rollout  *RolloutStatus  `json:"rollout"`
	Live     []RevisionLive  `json:"live"`
	Split    Split           `json:"split"`
	Drift    []Drift         `json:"drift"`
	Analysis []AnalysisBrief `json:"analysis,omitempty"`
}

// RevisionRef names a revision.
type RevisionRef struct {
	Revision string `json:"revision"`
	Version  string `json:"version,omitempty"`
}

// RolloutStatus summarises a rollout.
type RolloutStatus struct {
	ID          string       `json:"id"`
	Revision    string       `json:"revision"`
	Version     string       `json:"version,omitempty"`
	From        string       `json:"from,omitempty"`
	Strategy    StrategyKind `json:"strategy"`
	Phase       Phase        `json:"phase"`
	Step        int          `json:"step"`
	Steps       int          `json:"steps"`
	Weight      int          `json:"weight"`
	Reason      string       `json:"reason,omitempty"`
	Cause       PauseCause   `json:"cause,omitempty"`
	StartedAt   time.Time    `json:"startedAt"`
	UpdatedAt   time.Time    `json:"updatedAt"`
	CompletedAt *time.Time   `json:"completedAt,omitempty"`
}

// RevisionLive is a revision's desired and live instance counts.
type RevisionLive struct {
	Revision  string     `json:"revision"`
	Version   string     `json:"version,omitempty"`
	Desired   int        `json:"desired"`
	Instances int        `json:"instances"`
	Ready     int        `json:"ready"`
	Weight    int        `json:"weight"`
	List      []Instance `json:"list,omitempty"`
}

// DriftKind names a difference between declared and live state.
type DriftKind string

// Drift kinds.
const (
	DriftMissing DriftKind = "missing" // fewer instances than desired
	DriftExtra   DriftKind = "extra"   // more instances than desired, or of an undesired revision
	DriftUnready DriftKind = "unready" // instances that should be ready are not
	DriftSplit   DriftKind = "split"   // the data plane's split differs from the desired one
)

// Drift is one difference between declared and live state.
type Drift struct {
	Kind     DriftKind `json:"kind"`
	Revision string    `json:"revision,omitempty"`
	Desired  int       `json:"desired"`
	Actual   int       `json:"actual"`
	Message  string    `json:"message"`
}

// AnalysisBrief summarises an analysis run of the current rollout.
type AnalysisBrief struct {
	ID      string       `json:"id"`
	Kind    AnalysisKind `json:"kind"`
	Phase   Verdict      `json:"phase"`
	Message string       `json:"message,omitempty"`
	// Verdict is where a run stands so far, in words: its score, or each metric's
	// measurements and latest verdict.
	Verdict string `json:"verdict,omitempty"`
}

// LogSource reads the logs of an app's instances as streams of lines; the API serves them
// (`slipway logs`), tailing and following. A platform that keeps instance logs implements
// it, wherever it keeps them.
type LogSource interface {
	// LogInstances returns the IDs of app's instances (of revision; every revision when "")
	// that have logs, sorted. ENOTFOUND when there are none; EINVALID for a name that
	// cannot be an app or revision.
	LogInstances(ctx context.Context, app, revision string) ([]string, error)
	// TailLog returns the last n complete lines of instance's log, each without its
	// newline, and the position after them.
	TailLog(ctx context.Context, app, instance string, n int) ([][]byte, LogPosition, error)
	// ReadLog returns the complete lines of instance's log after position from (0: from
	// the start), each without its newline, and the position after them. Lines written
	// while the log was rotated are not skipped when the platform still has them.
	ReadLog(ctx context.Context, app, instance string, from LogPosition) ([][]byte, LogPosition, error)
}

// LogPosition is a place in an instance's log, as a LogSource reports it (a byte offset on
// the local platform); 0 is the start. Clients carry it in a log stream's cursor.
type LogPosition int64
