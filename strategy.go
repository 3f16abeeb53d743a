package slipway

import (
	"fmt"
	"strings"
)

// StrategyKind names a strategy.
type StrategyKind string

// Strategies.
const (
	StrategyRolling   StrategyKind = "rolling"
	StrategyBlueGreen StrategyKind = "blueGreen"
	StrategyCanary    StrategyKind = "canary"
)

// Strategy holds exactly one of Rolling, BlueGreen or Canary.
type Strategy struct {
	Rolling   *RollingStrategy   `json:"rolling,omitempty"`
	BlueGreen *BlueGreenStrategy `json:"blueGreen,omitempty"`
	Canary    *CanaryStrategy    `json:"canary,omitempty"`
}

// Kind returns the strategy in use, or "" when none is set.
func (s Strategy) Kind() StrategyKind {
	switch {
	case s.Rolling != nil:
		return StrategyRolling
	case s.BlueGreen != nil:
		return StrategyBlueGreen
	case s.Canary != nil:
		return StrategyCanary
	}
	return ""
}

// Defaults of the strategies.
const (
	DefaultProgressDeadline = Duration(10 * 60 * 1e9)
	DefaultMaxSurgePercent  = 25
	DefaultMaxUnavailPct    = 25
)

// RollingStrategy replaces instances a few at a time.
type RollingStrategy struct {
	// MaxSurge is how many instances above Replicas may exist (count, or percent rounded up).
	// Default 25%.
	MaxSurge *IntOrPercent `json:"maxSurge,omitempty"`
	// MaxUnavailable is how many instances below Replicas may be unavailable (count, or
	// percent rounded down). Default 25%. When both resolve to 0, MaxUnavailable is 1.
	MaxUnavailable *IntOrPercent `json:"maxUnavailable,omitempty"`
	// MinReady is how long a new instance must stay ready before it counts as available.
	MinReady Duration `json:"minReady,omitempty"`
	// ProgressDeadline aborts the rollout when no instance became available for this long.
	ProgressDeadline Duration `json:"progressDeadline,omitempty"`
}

// BlueGreenStrategy brings the new revision up in full beside the old one, behind a preview
// listener, then switches all traffic at once.
type BlueGreenStrategy struct {
	// AutoPromote switches traffic as soon as the preview is ready and pre-promotion analysis
	// passed; when false the rollout waits for approval (promote). Default true.
	AutoPromote *bool `json:"autoPromote,omitempty"`
	// AutoPromoteAfter waits this long after the preview is ready before an automatic switch.
	AutoPromoteAfter      Duration     `json:"autoPromoteAfter,omitempty"`
	PrePromotionAnalysis  *AnalysisRef `json:"prePromotionAnalysis,omitempty"`
	PostPromotionAnalysis *AnalysisRef `json:"postPromotionAnalysis,omitempty"`
	// ScaleDownDelay keeps the old revision running after the switch; a rollback in that time
	// is instant.
	ScaleDownDelay Duration `json:"scaleDownDelay,omitempty"`
	// PreviewReplicas is how many preview instances run before the switch; default Replicas.
	PreviewReplicas  *int     `json:"previewReplicas,omitempty"`
	ProgressDeadline Duration `json:"progressDeadline,omitempty"`
}

// AutoPromotes reports whether the switch happens without approval.
func (b BlueGreenStrategy) AutoPromotes() bool { return b.AutoPromote == nil || *b.AutoPromote }

// ProgressDeadline returns the progress deadline of the strategy in force, or
// DefaultProgressDeadline when it sets none.
func (s Strategy) ProgressDeadline() Duration {
	var d Duration
	switch {
	case s.Rolling != nil:
		d = s.Rolling.ProgressDeadline
	case s.BlueGreen != nil:
		d = s.BlueGreen.ProgressDeadline
	case s.Canary != nil:
		d = s.Canary.ProgressDeadline
	}
	if d <= 0 {
		return DefaultProgressDeadline
	}
	return d
}

// CanaryStrategy moves traffic to the new revision step by step.
type CanaryStrategy struct {
	Steps            []Step   `json:"steps"`
	ProgressDeadline Duration `json:"progressDeadline,omitempty"`
}

// Step is one canary step; exactly one field is set.
type Step struct {
	SetWeight      *int         `json:"setWeight,omitempty"`
	Pause          *PauseStep   `json:"pause,omitempty"`
	Analysis       *AnalysisRef `json:"analysis,omitempty"`
	SetCanaryScale *CanaryScale `json:"setCanaryScale,omitempty"`
	SetHeaderRoute *HeaderRoute `json:"setHeaderRoute,omitempty"`
	Experiment     *Experiment  `json:"experiment,omitempty"`
}

// Kind names the kind of step s ("setWeight", "pause", ...), or "" when none is set.
func (s Step) Kind() string {
	switch {
	case s.SetWeight != nil:
		return "setWeight"
	case s.Pause != nil:
		return "pause"
	case s.Analysis != nil:
		return "analysis"
	case s.SetCanaryScale != nil:
		return "setCanaryScale"
	case s.SetHeaderRoute != nil:
		return "setHeaderRoute"
	case s.Experiment != nil:
		return "experiment"
	}
	return ""
}

// Experiment is a canary step that compares like with like: it starts a fresh baseline of
// the stable revision at the canary's size beside the canary, gives each of them Weight
// percent of the traffic (the stable revision keeps the rest), runs Analysis (where
// {{baseline.revision}} and a builtin sequential test's default baseline are the fresh
// baseline) and waits at least Duration once both are ready, then removes the baseline. The
// canary's own weight returns to what the steps before set. Both are new instances under the
// same share of the same traffic, so a difference between them is the canary's, not age or
// warm caches.
type Experiment struct {
	// Weight is the share of traffic, in percent (1-50), that each of the canary and the
	// baseline takes.
	Weight int `json:"weight"`
	// Replicas is how many instances each of them runs; default Weight percent of the app's
	// replicas, rounded up.
	Replicas *int `json:"replicas,omitempty"`
	// Duration is how long the experiment runs at least once both are ready.
	Duration Duration `json:"duration,omitempty"`
	// Analysis compares them; a failure aborts the rollout, as an analysis step does.
	Analysis *AnalysisRef `json:"analysis,omitempty"`
}

// BaselineSuffix marks the ID of an experiment's baseline: the stable revision's ID, the
// suffix, and the rollout's number and attempt (BaselineID).
const BaselineSuffix = "-baseline"

// BaselineID names the baseline of an experiment of attempt attempt of rollout number
// number: each rollout and each retry gets a baseline of its own, so that a superseding
// rollout never inherits the instances, or the proxy's counts, of an earlier one's.
func BaselineID(stable string, number, attempt int) string {
	return fmt.Sprintf("%s%s-%d.%d", stable, BaselineSuffix, number, attempt)
}

// BaselineStable returns the ID of the stable revision a baseline copies; ok is false for an
// ID that is not a baseline's.
func BaselineStable(id string) (stable string, ok bool) {
	i := strings.LastIndex(id, BaselineSuffix+"-")
	if i <= 0 {
		return "", false
	}
	return id[:i], true
}

// BaselineOf returns the revision an experiment runs as its baseline id: stable's spec and
// version under an ID of its own, so that the platform starts fresh instances for it and
// measures them apart from stable's.
func BaselineOf(stable Revision, id string) Revision {
	b := stable
	b.ID = id
	return b
}

// PauseStep waits for Duration, or until approved (promote or resume) when Duration is 0.
type PauseStep struct {
	Duration Duration `json:"duration,omitempty"`
}

// CanaryScale sets the canary's instance count apart from its weight: exactly one of Replicas,
// Weight (percent of the app's replicas) or MatchTrafficWeight.
type CanaryScale struct {
	Replicas           *int `json:"replicas,omitempty"`
	Weight             *int `json:"weight,omitempty"`
	MatchTrafficWeight bool `json:"matchTrafficWeight,omitempty"`
}

// HeaderRoute sends requests that match every entry of Match to the canary whatever the
// weight. A HeaderRoute with no Match removes the route named Name.
type HeaderRoute struct {
	Name  string        `json:"name"`
	Match []HeaderMatch `json:"match,omitempty"`
}

// HeaderMatch matches one header (or cookie) by exactly one of Exact, Prefix or Regex.
type HeaderMatch struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// AnalysisRef names templates to run together as one analysis run, with argument values.
type AnalysisRef struct {
	Templates []string `json:"templates"`
	Args      []Arg    `json:"args,omitempty"`
}

// Arg is a template argument value.
type Arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// BackgroundAnalysis runs in the background of a canary rollout from StartingStep (0-based
// step index) until the rollout ends; a failure aborts the rollout.
type BackgroundAnalysis struct {
	AnalysisRef
	StartingStep int `json:"startingStep,omitempty"`
}
