package slipway

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Delivery insights are figures of how a team delivers (after DORA's four keys: deployment
// frequency, lead time for changes, change failure rate, time to restore), computed from
// slipway's own history of rollouts and releases by package insights. docs/insights.md
// defines each figure.

// An environment labelled LabelTier: TierProduction counts for the headline figures.
const (
	LabelTier      = "tier"
	TierProduction = "production"
)

// Production reports whether e is labelled tier: production.
func (e Environment) Production() bool { return e.Labels[LabelTier] == TierProduction }

// Defaults of delivery insights.
const (
	// DefaultInsightsWindow is the window when a query gives no Since.
	DefaultInsightsWindow = 30 * 24 * time.Hour
	// DefaultFailureHorizon is how soon after a deployment a rollback of it, or a fix
	// release after it, marks it failed.
	DefaultFailureHorizon = 24 * time.Hour
)

// InsightsQuery selects the history figures are computed over.
type InsightsQuery struct {
	// App and Environment narrow the figures to one app, one environment ("": all).
	App         string `json:"app,omitempty"`
	Environment string `json:"environment,omitempty"`
	// Since and Until bound the window: a moment t is in it when Since <= t < Until. A zero
	// Until is now; a zero Since is Until - DefaultInsightsWindow.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Insights are the delivery figures of a window.
type Insights struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// FailureHorizon is how soon a rollback or a fix release marks a deployment failed.
	FailureHorizon Duration `json:"failureHorizon"`
	// Production names the environments in scope labelled tier: production.
	Production []string `json:"production"`
	// Headline are the production environments' figures together; nil when no environment
	// in scope is labelled tier: production.
	Headline *DeliveryFigures `json:"headline,omitempty"`
	// Environments are each environment's figures (all its apps in scope), by name.
	Environments []EnvironmentInsights `json:"environments"`
	// Apps are each app's figures in each environment, by environment then app.
	Apps []AppInsights `json:"apps"`
	// Deployments are the deployments that ended in the window, oldest first, with their
	// risk signals.
	Deployments []DeploymentInsight `json:"deployments"`
	// Unavailable says what slipway cannot report, and why.
	Unavailable []string `json:"unavailable,omitempty"`
}

// DeliveryFigures are the figures of a set of deployments in a window. A figure that nothing
// measured (no deployment, no lead time, no restore) is nil: absent, never zero.
type DeliveryFigures struct {
	// Deployments counts the deployments that completed in the window; Attempts those that
	// ended in it (completed or aborted); Failures the attempts that failed.
	Deployments int `json:"deployments"`
	Attempts    int `json:"attempts"`
	Failures    int `json:"failures"`
	// PerDay and PerWeek are Deployments over the window's length.
	PerDay  *float64 `json:"perDay,omitempty"`
	PerWeek *float64 `json:"perWeek,omitempty"`
	// LeadTime spans from a release's change to its deployment's completion.
	LeadTime *Quantiles `json:"leadTime,omitempty"`
	// ChangeFailureRate is Failures / Attempts.
	ChangeFailureRate *float64 `json:"changeFailureRate,omitempty"`
	// TimeToRestore spans from a failure in the window to the next healthy deployment;
	// OpenFailures counts the failures in the window with none yet.
	TimeToRestore *Quantiles `json:"timeToRestore,omitempty"`
	OpenFailures  int        `json:"openFailures"`
}

// Quantiles summarise durations by nearest rank: the q quantile of n sorted values is the
// value of rank ceil(q*n), always one of them.
type Quantiles struct {
	Count  int      `json:"count"`
	Median Duration `json:"median"`
	P90    Duration `json:"p90"`
}

// EnvironmentInsights are one environment's figures.
type EnvironmentInsights struct {
	Environment string          `json:"environment"`
	Production  bool            `json:"production"`
	Figures     DeliveryFigures `json:"figures"`
}

// AppInsights are one app's figures in one environment.
type AppInsights struct {
	App         string          `json:"app"`
	Environment string          `json:"environment"`
	Production  bool            `json:"production"`
	Figures     DeliveryFigures `json:"figures"`
}

// FailureCause says why a deployment counts as failed.
type FailureCause string

// Failure causes.
const (
	FailureNone FailureCause = ""
	// FailureAborted: the rollout was aborted (all traffic back on the stable revision).
	FailureAborted FailureCause = "aborted"
	// FailureRolledBack: a rollback replaced it within the failure horizon.
	FailureRolledBack FailureCause = "rolledBack"
	// FailureFixed: a release marked Fix followed it within the failure horizon.
	FailureFixed FailureCause = "fixed"
)

// DeploymentInsight is one deployment (a rollout that ended in an environment) and its risk
// signals.
type DeploymentInsight struct {
	Environment string    `json:"environment"`
	App         string    `json:"app"`
	Rollout     string    `json:"rollout"`
	Version     string    `json:"version,omitempty"`
	Phase       Phase     `json:"phase"`
	StartedAt   time.Time `json:"startedAt"`
	EndedAt     time.Time `json:"endedAt"`
	// Release is the release that made the rollout ("" for an apply outside a pipeline);
	// Fix says it was marked a fix.
	Release string `json:"release,omitempty"`
	Fix     bool   `json:"fix,omitempty"`
	// LeadTime is from the release's change to the rollout's completion.
	LeadTime *Duration `json:"leadTime,omitempty"`
	// Failure is why it failed (FailureNone when it did not), FailedBy the rollout or the
	// release that showed it, RestoredAt the end of the next healthy deployment.
	Failure    FailureCause `json:"failure,omitempty"`
	FailedBy   string       `json:"failedBy,omitempty"`
	RestoredAt *time.Time   `json:"restoredAt,omitempty"`
	// SinceLastFailure is the time from the environment's last failure before the rollout
	// started to its start; nil when the environment had none.
	SinceLastFailure *Duration `json:"sinceLastFailure,omitempty"`
}

// InsightsReader computes delivery figures. Implementation: insights.Reader.
type InsightsReader interface {
	// Insights returns the figures of q's window. EINVALID when the window is empty;
	// ENOTFOUND when q names an environment the server does not serve.
	Insights(ctx context.Context, q InsightsQuery) (Insights, error)
}

// ParseInsightsTime reads a bound of an insights window: an RFC 3339 time, or an age before
// now ("30d", "2w", "12h", "90m"; any Go duration, plus d for days and w for weeks).
func ParseInsightsTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	bad := Errorf(EINVALID, "%q is neither an RFC 3339 time nor an age like 30d, 2w or 12h", s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.Atoi(s[:n-1])
		if err != nil || v < 0 || v > 3660 {
			return time.Time{}, bad
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		return now.Add(-time.Duration(v) * unit), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, bad
	}
	return now.Add(-d), nil
}
