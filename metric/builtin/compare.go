package builtin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis/stats"
)

// maxCompareSample is the most values a side of a latency comparison keeps: a window with
// more requests is thinned evenly to this many, which keeps its shape (the judge's cost
// grows as n log n, and a larger sample only narrows an interval already far below any
// tolerance a user would set).
const maxCompareSample = 20000

// latencyMetrics are the metrics a comparison may judge: each stands for the whole
// latency distribution of the window.
var latencyMetrics = []string{slipway.BuiltinLatencyP50, slipway.BuiltinLatencyP95, slipway.BuiltinLatencyP99}

// measureCompare judges the latencies of the canary's requests over the window against the
// baseline revision's (b.Compare): both windows must hold the minimum sample, or the metric
// waits (slipway.ErrInsufficientData). The value is the judgement (stats.Judge.Measure) with
// both revisions named.
func (p *Provider) measureCompare(ctx context.Context, m slipway.Metric, b *slipway.BuiltinMetric) (any, error) {
	c := b.Compare
	switch {
	case !slices.Contains(latencyMetrics, b.Metric):
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: compare judges latency; use one of %s", m.Name, strings.Join(latencyMetrics, ", "))
	case c.Baseline == "", c.Baseline == slipway.BuiltinBaseline, c.Baseline == slipway.BuiltinStable, c.Baseline == slipway.BuiltinCanary, strings.Contains(c.Baseline, "{{"):
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: baseline %q is not a revision ID; a run resolves it from its rollout", m.Name, c.Baseline)
	}
	window := b.Window.D()
	if window <= 0 {
		window = slipway.DefaultBuiltinWindow.D()
	}
	need := int64(b.MinSample())
	var sides [2][]float64
	for i, rev := range []string{b.Revision, c.Baseline} {
		w, err := p.windows.RequestWindow(ctx, b.App, rev, window)
		if err != nil {
			return nil, fmt.Errorf("builtin metric %s: %w", m.Name, err)
		}
		if w.Requests < need {
			return nil, fmt.Errorf("revision %s of app %s answered %d of the %d requests needed (minRequests) in the last %s: %w",
				rev, b.App, w.Requests, need, slipway.Duration(window), slipway.ErrInsufficientData)
		}
		sides[i] = latencySample(w)
	}
	out, err := stats.NewJudge(c.Direction, c.Confidence, c.Tolerance, c.Margin, c.MinSamples).Measure(sides[0], sides[1])
	if err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "builtin metric %s: compare: %v", m.Name, err)
	}
	out["canary"], out["baseline"] = b.Revision, c.Baseline
	return out, nil
}

// latencySample turns a window's latency histogram into one value per request, in seconds:
// a bucket's requests at its upper bound (the unbounded last bucket's at its lower bound).
// Over maxCompareSample requests, each bucket keeps its share of that many.
func latencySample(w slipway.RequestWindow) []float64 {
	var total int64
	for _, b := range w.Latency {
		total += b.Count
	}
	scale := 1.0
	if total > maxCompareSample {
		scale = float64(maxCompareSample) / float64(total)
	}
	out := make([]float64, 0, min(total, maxCompareSample))
	carry := 0.0
	for _, b := range w.Latency {
		v := b.UpTo
		if v == 0 {
			v = b.Above
		}
		n := float64(b.Count)*scale + carry
		k := int(n)
		carry = n - float64(k)
		for range k {
			out = append(out, v.Seconds())
		}
	}
	return out
}
