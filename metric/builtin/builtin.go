// Package builtin is the analysis provider that reads slipway's own proxy metrics: the
// requests, 5xx answers and latency one revision of an app served over a recent window, as
// the platform's traffic layer counted them (slipway.RequestMetrics: the local platform's
// proxy); and the outcomes apps report per flag
// variant (flags.Outcomes.Window), for guarded flag ramps. It needs no monitoring system, and
// it sees a bad canary within a second of its first failing answer.
//
// Start reading at Provider.Measure.
package builtin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// OutcomeWindows is what the provider reads for outcome metrics: the outcomes apps reported
// for a flag's variant over the last d. *flags.Outcomes is one.
type OutcomeWindows interface {
	Window(flag, variant string, d time.Duration) flags.OutcomeWindow
}

var _ OutcomeWindows = (*flags.Outcomes)(nil)

// Provider measures builtin metrics.
type Provider struct {
	windows  slipway.RequestMetrics
	outcomes OutcomeWindows
	now      func() time.Time
}

var _ slipway.Provider = (*Provider)(nil)

// New returns a Provider reading windows (the server's shared *proxy.Metrics).
func New(windows slipway.RequestMetrics) *Provider {
	return &Provider{windows: windows, now: time.Now}
}

// NewWithOutcomes returns a Provider reading windows and, for the outcome metrics
// (outcome_rate, outcome_count), the outcomes apps report per flag variant (the server's
// shared *flags.Outcomes).
func NewWithOutcomes(windows slipway.RequestMetrics, outcomes OutcomeWindows) *Provider {
	return &Provider{windows: windows, outcomes: outcomes, now: time.Now}
}

// WithClock makes p read the time from now: a sequential test counts from its run's start
// up to now. It returns p.
func (p *Provider) WithClock(now func() time.Time) *Provider {
	p.now = now
	return p
}

// Measure returns the metric's value over its window as a float64:
//
//	error_rate    share (0-1) of the requests answered 5xx
//	request_rate  requests per second
//	latency_p50   latency quantiles, in seconds
//	latency_p95
//	latency_p99
//	requests      how many requests were answered
//	slow_rate     share (0-1) of the requests slower than SlowerThan
//
// A metric with a Sequential test is measured by it instead (measureSequential): the value
// is the test's decision with the canary's and the baseline's counts since the run began.
//
// The metric's App and Revision must name the app and a revision ID; analysis.NewRun fills
// them from the rollout ("canary" and "stable" become the rollout's revisions). A window in
// which the revision answered fewer requests than the metric's minimum sample
// (BuiltinMetric.MinSample) returns slipway.ErrInsufficientData, whatever the metric: a
// revision whose traffic has not arrived yet is measured once it has, and an idle one is
// never measured as healthy. A metric that names no app, no revision or an unknown metric
// returns EINVALID.
func (p *Provider) Measure(ctx context.Context, m slipway.Metric) (any, error) {
	b := m.Provider.Builtin
	if b == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "metric %s has no builtin provider", m.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if slices.Contains(slipway.BuiltinOutcomeMetrics(), b.Metric) {
		return p.measureOutcome(m, b)
	}
	switch {
	case b.App == "":
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s names no app", m.Name)
	case b.Revision == "", b.Revision == slipway.BuiltinCanary, b.Revision == slipway.BuiltinStable, b.Revision == slipway.BuiltinBaseline, strings.Contains(b.Revision, "{{"):
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: revision %q is not a revision ID; a run resolves canary and stable from its rollout", m.Name, b.Revision)
	}
	if _, ok := value(b.Metric, slipway.RequestWindow{}, 0); !ok {
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: %q is not a metric; use one of %s",
			m.Name, b.Metric, strings.Join(slipway.BuiltinMetrics(), ", "))
	}
	if p.windows == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: this server measures no request metrics", m.Name)
	}
	if b.Sequential != nil {
		return p.measureSequential(ctx, m, b)
	}
	if b.Compare != nil {
		return p.measureCompare(ctx, m, b)
	}
	if b.Metric == slipway.BuiltinSlowRate && b.SlowerThan <= 0 {
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: slow_rate needs slowerThan", m.Name)
	}
	window := b.Window.D()
	if window <= 0 {
		window = slipway.DefaultBuiltinWindow.D()
	}
	w, err := p.windows.RequestWindow(ctx, b.App, b.Revision, window)
	if err != nil {
		return nil, fmt.Errorf("builtin metric %s: %w", m.Name, err)
	}
	if need := b.MinSample(); w.Requests < int64(need) {
		return nil, fmt.Errorf("revision %s of app %s answered %d of the %d requests needed (minRequests) in the last %s: %w",
			b.Revision, b.App, w.Requests, need, slipway.Duration(window), slipway.ErrInsufficientData)
	}
	v, _ := value(b.Metric, w, b.SlowerThan.D())
	return v, nil
}

// measureOutcome measures an outcome metric over the outcomes reported for b's flag variant:
//
//	outcome_rate   share (0-1) of b.Outcome (error when empty) among every outcome reported
//	outcome_count  how many b.Outcome were reported
//
// A window holding fewer reported outcomes than the metric's minimum sample
// (BuiltinMetric.MinSample) returns slipway.ErrInsufficientData.
func (p *Provider) measureOutcome(m slipway.Metric, b *slipway.BuiltinMetric) (any, error) {
	switch {
	case p.outcomes == nil:
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: this server counts no flag outcomes", m.Name)
	case b.Flag == "" || strings.Contains(b.Flag, "{{"):
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: %s needs a flag key (flag)", m.Name, b.Metric)
	case b.Variant == "" || strings.Contains(b.Variant, "{{"):
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: %s needs a variant (variant: \"{{variant}}\")", m.Name, b.Metric)
	}
	outcome := b.Outcome
	if outcome == "" {
		outcome = slipway.OutcomeError
	}
	window := b.Window.D()
	if window <= 0 {
		window = slipway.DefaultBuiltinWindow.D()
	}
	w := p.outcomes.Window(b.Flag, b.Variant, window)
	if need := b.MinSample(); w.Total < int64(need) {
		return nil, fmt.Errorf("variant %s of flag %s has %d of the %d reported outcomes needed (minRequests) in the last %s: %w",
			b.Variant, b.Flag, w.Total, need, slipway.Duration(window), slipway.ErrInsufficientData)
	}
	if b.Metric == slipway.BuiltinOutcomeCount {
		return float64(w.Counts[outcome]), nil
	}
	return w.Rate(outcome), nil
}

// value reads metric from w (slow_rate with the latency limit slow); ok is false for an
// unknown metric.
func value(metric string, w slipway.RequestWindow, slow time.Duration) (v float64, ok bool) {
	switch metric {
	case slipway.BuiltinSlowRate:
		if w.Requests == 0 {
			return 0, true
		}
		return float64(w.SlowerThan(slow)) / float64(w.Requests), true
	case slipway.BuiltinErrorRate:
		return w.ErrorRate, true
	case slipway.BuiltinRequestRate:
		return w.RequestRate, true
	case slipway.BuiltinLatencyP50:
		return w.P50.Seconds(), true
	case slipway.BuiltinLatencyP95:
		return w.P95.Seconds(), true
	case slipway.BuiltinLatencyP99:
		return w.P99.Seconds(), true
	case slipway.BuiltinRequests:
		return float64(w.Requests), true
	}
	return 0, false
}
