package prometheus

import (
	"fmt"
	"math"

	"github.com/prometheus/common/model"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis/stats"
)

// compare judges the canary's answer against the baseline's with c's Judge: every finite
// sample of every series of each range answer is one value of its side. The measured value
// holds the class (Pass, High, Low, NoData), the reason in words and the figures behind it.
func compare(c *slipway.PrometheusCompare, canary, baseline any) (any, error) {
	cs, err := samples(canary, "canary")
	if err != nil {
		return nil, err
	}
	bs, err := samples(baseline, "baseline")
	if err != nil {
		return nil, err
	}
	out, err := stats.NewJudge(c.Direction, c.Confidence, c.Tolerance, c.Margin, c.MinSamples).Measure(cs, bs)
	if err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "compare: %v", err)
	}
	return out, nil
}

// samples returns every finite value of a range answer (NaN and infinities left out; the
// judge counts what remains).
func samples(answer any, side string) ([]float64, error) {
	m, ok := answer.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("the %s query answered %T, not a range of samples", side, answer)
	}
	var out []float64
	for _, s := range m {
		if len(s.Histograms) > 0 {
			return nil, histogramError(s.Metric)
		}
		for _, p := range s.Values {
			if v := float64(p.Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}
