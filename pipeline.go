package slipway

import (
	"context"
	"time"
)

// KindPipeline is the kind of a Pipeline document.
const KindPipeline = "Pipeline"

// Pipeline carries releases of its apps through environments by themselves: a release
// enters the first stage; once its rollouts there complete and the stage's policy holds, it
// moves to the next. Pipelines belong to the server, not to an environment.
type Pipeline struct {
	Name string `json:"name"`
	// Apps are the apps whose releases flow through the pipeline; an app is in at most one.
	Apps []string `json:"apps"`
	// Stages are entered in order.
	Stages []Stage `json:"stages"`
	// KeepWaiting, when true, lets an older release waiting at a gate stay when a newer one of
	// the same app is created; by default the newer one supersedes it.
	KeepWaiting bool `json:"keepWaiting,omitempty"`
}

// Stage is one step of a pipeline: one environment, or several at once (a wave).
type Stage struct {
	Name         string   `json:"name"`
	Environments []string `json:"environments"`
	// Gates to enter the stage: approval by a token of a role, deploy windows, freezes and
	// an error budget. Each must be open.
	Approval    *Approval    `json:"approval,omitempty"`
	Windows     []Window     `json:"windows,omitempty"`
	Freezes     []Freeze     `json:"freezes,omitempty"`
	ErrorBudget *ErrorBudget `json:"errorBudget,omitempty"`
	// Policy to leave the stage once its rollouts completed: verification jobs run against
	// it, then a soak with its apps still healthy.
	Verify []VerifyJob `json:"verify,omitempty"`
	Soak   Duration    `json:"soak,omitempty"`
}

// Approval asks a person with a token of Role (or a higher one) to let a release in.
type Approval struct {
	Role Role `json:"role,omitempty"`
}

// Window is a recurring time a stage may be entered: on Days (mon..sun; every day when
// empty), from Start to End ("09:00", "17:30"; End before Start spans midnight), in
// TimeZone (an IANA name; UTC when empty). A stage with windows is closed outside them.
type Window struct {
	Days     []string `json:"days,omitempty"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
	TimeZone string   `json:"timeZone,omitempty"`
}

// Freeze closes a stage from From until To, for Reason.
type Freeze struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

// ErrorBudget closes a stage to automatic promotion while the budget of an SLO is spent:
// Metric measures the error ratio (0-1) over the SLO's window, and Objective is the share
// of good events promised (99.5 means 0.5% errors allowed). Releases marked as fixes pass.
type ErrorBudget struct {
	Objective float64 `json:"objective"`
	Metric    Metric  `json:"metric"`
}

// VerifyJob is a test suite run as a command against a stage once its rollouts completed;
// exit 0 passes. Its environment has SLIPWAY_RELEASE, SLIPWAY_APP, SLIPWAY_VERSION,
// SLIPWAY_STAGE and SLIPWAY_ENVIRONMENTS.
type VerifyJob struct {
	Name string    `json:"name"`
	Job  JobMetric `json:"job"`
}

// ReleaseSource says where a release came from.
type ReleaseSource struct {
	// Commit and URL locate the change (a git commit, a CI run).
	Commit string `json:"commit,omitempty"`
	URL    string `json:"url,omitempty"`
	// Trigger is what created the release: "cli", "api", "webhook:github", "webhook:gitlab",
	// "webhook", "git".
	Trigger string `json:"trigger,omitempty"`
}

// NewRelease asks for a release of App at Version.
type NewRelease struct {
	App     string        `json:"app"`
	Version string        `json:"version"`
	Source  ReleaseSource `json:"source,omitzero"`
	// ChangedAt is when the change was made (the commit's time); the release's creation
	// when zero. Lead time counts from it.
	ChangedAt time.Time `json:"changedAt,omitzero"`
	// Fix marks a fix or a rollback: it passes a spent error budget.
	Fix    bool   `json:"fix,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Release is one change (an app's new version) and its journey through a pipeline.
type Release struct {
	ID        string        `json:"id"`
	App       string        `json:"app"`
	Pipeline  string        `json:"pipeline"`
	Number    int           `json:"number"`
	Version   string        `json:"version"`
	Source    ReleaseSource `json:"source,omitzero"`
	Fix       bool          `json:"fix,omitempty"`
	CreatedBy string        `json:"createdBy,omitempty"`
	ChangedAt time.Time     `json:"changedAt"`
	CreatedAt time.Time     `json:"createdAt"`
	// Phase: Progressing while it moves or waits at a gate, Completed once through the last
	// stage, Aborted when it failed in a stage or was superseded (SupersededBy).
	Phase        Phase  `json:"phase"`
	Reason       string `json:"reason,omitempty"`
	SupersededBy string `json:"supersededBy,omitempty"`
	// Stage is the index of the stage it is in; Stages has one entry per pipeline stage.
	Stage     int            `json:"stage"`
	Stages    []ReleaseStage `json:"stages"`
	UpdatedAt time.Time      `json:"updatedAt"`
	// Generation is the optimistic concurrency version (see ReleaseStore).
	Generation int64 `json:"generation"`
}

// Stage states of a release.
const (
	StagePending   = "Pending"   // not reached yet
	StageWaiting   = "Waiting"   // at the stage's gates
	StageDeploying = "Deploying" // its rollouts run
	StageVerifying = "Verifying" // its verification jobs run
	StageSoaking   = "Soaking"   // healthy, waiting for the soak to pass
	StagePassed    = "Passed"
	StageFailed    = "Failed"
	StageSkipped   = "Skipped" // superseded before it got there
)

// ReleaseStage is a release's journey through one stage.
type ReleaseStage struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Waiting says in words what the release waits for ("freeze until ...", "approval by
	// a deployer", "error budget 112% spent").
	Waiting string `json:"waiting,omitempty"`
	// Rollouts are the release's rollouts, one per environment of the stage.
	Rollouts []ReleaseRollout `json:"rollouts,omitempty"`
	// Approvals and Overrides are the people who let the release in.
	Approvals []Approved `json:"approvals,omitempty"`
	Overrides []Approved `json:"overrides,omitempty"`
	// Verified are the verification jobs that passed.
	Verified   []string   `json:"verified,omitempty"`
	EnteredAt  *time.Time `json:"enteredAt,omitempty"`
	DeployedAt *time.Time `json:"deployedAt,omitempty"`
	SoakUntil  *time.Time `json:"soakUntil,omitempty"`
	PassedAt   *time.Time `json:"passedAt,omitempty"`
	Message    string     `json:"message,omitempty"`
}

// ReleaseRollout is a release's rollout in one environment ("" when the app already ran
// the version there).
type ReleaseRollout struct {
	Environment string `json:"environment"`
	Rollout     string `json:"rollout,omitempty"`
	Phase       Phase  `json:"phase,omitempty"`
}

// Approved records who let a release in, when and why.
type Approved struct {
	Actor  string    `json:"actor"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
}

// Release event kinds.
const (
	EventPipelineApplied   = "pipeline.applied"
	EventReleaseCreated    = "release.created"
	EventReleaseStage      = "release.stage"
	EventReleaseWaiting    = "release.waiting"
	EventReleaseApproved   = "release.approved"
	EventReleaseOverridden = "release.overridden"
	EventReleaseVerified   = "release.verified"
	EventReleaseCompleted  = "release.completed"
	EventReleaseAborted    = "release.aborted"
	EventReleaseSuperseded = "release.superseded"
	EventWebhookRefused    = "webhook.refused"
	EventWebhookDuplicate  = "webhook.duplicate"
)

// ActorPipeline is the actor of what a pipeline does by itself.
const ActorPipeline = "pipeline"

// Limits of pipelines and releases.
const (
	MaxPipelineStages       = 32
	MaxStageEnvironments    = 16
	MaxReleaseVersionLength = 128
)

// ReleaseStore keeps pipelines and releases. Implementation: sqlite.Store.
type ReleaseStore interface {
	Pipelines(ctx context.Context) ([]Pipeline, error)
	// PutPipelines creates or replaces pipelines and stores events in one transaction.
	PutPipelines(ctx context.Context, ps []Pipeline, events []Event) error
	// CreateRelease stores r with the next number of its app (setting Number and ID) and
	// events, in one transaction.
	CreateRelease(ctx context.Context, r *Release, events ...Event) error
	// SaveRelease writes r and events in one transaction if r.Generation is the stored
	// one (ECONFLICT otherwise) and sets r.Generation to the new one.
	SaveRelease(ctx context.Context, r *Release, events ...Event) error
	Release(ctx context.Context, id string) (Release, error)
	// Releases lists releases newest first: of app when app is not "", at most limit (all
	// when limit <= 0).
	Releases(ctx context.Context, app string, limit int) ([]Release, error)
	// ActiveReleases lists the releases still Progressing.
	ActiveReleases(ctx context.Context) ([]Release, error)
	// SeenDelivery records a webhook delivery ID and reports whether it was seen before.
	SeenDelivery(ctx context.Context, id string, at time.Time) (bool, error)
	// ForgetDelivery removes a webhook delivery ID recorded by SeenDelivery (its delivery
	// started nothing, so that a redelivery is not taken for a replay).
	ForgetDelivery(ctx context.Context, id string) error
}

// PipelineStatus is where each stage of a pipeline stands.
type PipelineStatus struct {
	Pipeline Pipeline      `json:"pipeline"`
	Stages   []StageStatus `json:"stages"`
}

// StageStatus is one stage of a pipeline now: the newest release that passed it, the one in
// it and what that one waits for, and the releases queued before it.
type StageStatus struct {
	Name         string   `json:"name"`
	Environments []string `json:"environments"`
	// Passed is the newest release that passed the stage; Current the release in it.
	Passed  *ReleaseRef `json:"passed,omitempty"`
	Current *ReleaseRef `json:"current,omitempty"`
	// Waiting says in words what Current waits for.
	Waiting string `json:"waiting,omitempty"`
	// Queue lists the releases still to come to this stage, oldest first.
	Queue []ReleaseRef `json:"queue,omitempty"`
}

// ReleaseRef names a release and where it stands.
type ReleaseRef struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Version string `json:"version"`
	State   string `json:"state,omitempty"`
}

// ReleaseOperator creates, reads and lets releases in. Implementation: delivery.Manager.
type ReleaseOperator interface {
	// CreateRelease starts a release of an app through its pipeline. ENOTFOUND when no
	// pipeline carries the app; EINVALID for a bad request.
	CreateRelease(ctx context.Context, nr NewRelease) (Release, error)
	Releases(ctx context.Context, app string, limit int) ([]Release, error)
	Release(ctx context.Context, id string) (Release, error)
	// Approve records actor's approval (a token of role) for the stage the release waits
	// to enter. EFORBIDDEN when role is below the stage's; ECONFLICT when it waits for none.
	Approve(ctx context.Context, id, actor string, role Role, reason string) (Release, error)
	// Override lets the release through the freeze and windows of the stage it waits at,
	// recorded with actor and reason (an admin's).
	Override(ctx context.Context, id, actor, reason string) (Release, error)
	Pipelines(ctx context.Context) ([]Pipeline, error)
	PipelineStatus(ctx context.Context, name string) (PipelineStatus, error)
}

// MaxWebhookBody caps a release webhook delivery's body.
const MaxWebhookBody = 1 << 20

// WebhookDelivery is one delivery to POST /hooks/releases as it arrived: its headers
// (canonical names, as net/http keeps them), the ?app= parameter and the body.
type WebhookDelivery struct {
	Header map[string][]string
	App    string
	Body   []byte
}

// WebhookAnswer is what a webhook delivery gets back: the release it started, or that it
// was a duplicate (of a delivery, a body or an active release) or ignored, and why.
type WebhookAnswer struct {
	Release   string `json:"release,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Ignored   string `json:"ignored,omitempty"`
}

// WebhookReceiver takes release webhook deliveries. Implementation: delivery.Hooks. A
// delivery it refuses is an error with its code (EUNAUTHORIZED for a bad signature).
type WebhookReceiver interface {
	Receive(ctx context.Context, d WebhookDelivery) (WebhookAnswer, error)
}
