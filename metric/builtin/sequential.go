package builtin

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis/stats"
)

// maxSequential is how long a sequential test can count for: as far back as the proxy keeps
// per-second counts. Past it the counts would no longer be cumulative, and the test's
// guarantee would not hold.
const maxSequential = 10 * time.Minute

// measureSequential counts the canary's and the baseline's requests and failures (5xx for
// error_rate, requests slower than SlowerThan for slow_rate) since the run began and weighs
// them with the sequential test. A decision (Fail or Pass) is the measured value, a map of
// the decision, both revisions' counts, the difference and the evidence; no decision yet is
// slipway.ErrInsufficientData (the metric waits), whose message is the test's reason.
//
// The counts are cumulative on purpose: the test's error bounds hold however often it looks
// at a growing sample, not at a sliding window, which forgets requests the test has seen.
func (p *Provider) measureSequential(ctx context.Context, m slipway.Metric, b *slipway.BuiltinMetric) (any, error) {
	s := b.Sequential
	switch {
	case b.Metric != slipway.BuiltinErrorRate && b.Metric != slipway.BuiltinSlowRate:
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: a sequential test judges error_rate or slow_rate, not %s", m.Name, b.Metric)
	case b.Metric == slipway.BuiltinSlowRate && b.SlowerThan <= 0:
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: slow_rate needs slowerThan", m.Name)
	case s.Baseline == "", s.Baseline == slipway.BuiltinStable, s.Baseline == slipway.BuiltinBaseline, s.Baseline == slipway.BuiltinCanary, strings.Contains(s.Baseline, "{{"):
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: baseline %q is not a revision ID; a run resolves stable from its rollout", m.Name, s.Baseline)
	case s.Since == nil:
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: the sequential test has no start; a run sets it", m.Name)
	}
	test := stats.RateTest{Tolerance: s.Tolerance, Alpha: s.Alpha, Beta: s.Beta, MinRequests: int64(s.MinRequests), Scale: s.Scale}
	if s.MinRequests == 0 {
		test.MinRequests = slipway.DefaultSequentialMinRequests
	}
	if err := test.Validate(); err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: %v", m.Name, err)
	}
	// The window reaches back to the second that holds the run's start: the proxy counts
	// whole seconds, so it may hold up to a second of requests from just before.
	now := p.now()
	span := now.Truncate(time.Second).Sub(s.Since.Truncate(time.Second)) + time.Second
	if span > maxSequential {
		return nil, fmt.Errorf("the sequential test has counted for more than the %s the proxy keeps, without a decision: %w",
			slipway.Duration(maxSequential), slipway.ErrNoData)
	}
	canary, err := p.counts(ctx, m, b, b.Revision, span)
	if err != nil {
		return nil, err
	}
	baseline, err := p.counts(ctx, m, b, s.Baseline, span)
	if err != nil {
		return nil, err
	}
	d, err := test.Decide(canary, baseline)
	if err != nil {
		return nil, fmt.Errorf("builtin metric %s: %w", m.Name, err)
	}
	if d.Decision == stats.DecisionContinue {
		return nil, fmt.Errorf("%s since %s: %w", d.Reason(), s.Since.Format(time.TimeOnly), slipway.ErrInsufficientData)
	}
	return sequentialValue(b, d), nil
}

// counts reads what revision served since the run began: its requests and its failures.
func (p *Provider) counts(ctx context.Context, m slipway.Metric, b *slipway.BuiltinMetric, revision string, span time.Duration) (stats.Counts, error) {
	w, err := p.windows.RequestWindow(ctx, b.App, revision, span)
	if err != nil {
		return stats.Counts{}, fmt.Errorf("builtin metric %s: %w", m.Name, err)
	}
	c := stats.Counts{Requests: w.Requests, Failures: w.Errors5xx}
	if b.Metric == slipway.BuiltinSlowRate {
		c.Failures = w.SlowerThan(b.SlowerThan.D())
	}
	return c, nil
}

// sequentialValue is what a decision records: the decision, each revision's counts and
// rate, the difference and tolerance, the evidence each way with the level it must reach,
// and the reason in words. Numbers are float64, as CEL and JSON see them.
func sequentialValue(b *slipway.BuiltinMetric, d stats.RateDecision) map[string]any {
	side := func(revision string, c stats.Counts) map[string]any {
		return map[string]any{
			"revision": revision,
			"requests": float64(c.Requests),
			"failures": float64(c.Failures),
			"rate":     c.Rate(),
		}
	}
	return map[string]any{
		"decision":     string(d.Decision),
		"canary":       side(b.Revision, d.Canary),
		"baseline":     side(b.Sequential.Baseline, d.Baseline),
		"difference":   d.Difference,
		"tolerance":    d.Test.Tolerance,
		"scale":        d.Test.Scale,
		"failEvidence": finite(d.FailEvidence),
		"failAt":       1 / d.Test.Alpha,
		"passEvidence": finite(d.PassEvidence),
		"passAt":       1 / d.Test.Beta,
		"reason":       d.Reason(),
	}
}

// finite caps evidence too large for a float64 (overwhelming evidence overflows to +Inf),
// which JSON cannot write.
func finite(v float64) float64 {
	if math.IsInf(v, 1) {
		return math.MaxFloat64
	}
	return v
}
