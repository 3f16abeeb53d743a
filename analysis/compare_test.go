package analysis

import (
	"testing"

	"slipway.dev/slipway"
)

// TestComparison_JudgesByClass: a comparison's class decides the measurement; no data, and
// a value without a class, are errors, never a pass.
func TestComparison_JudgesByClass(t *testing.T) {
	m := slipway.Metric{Name: "p95", Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{
		Range: &slipway.PrometheusRange{}, Compare: &slipway.PrometheusCompare{Comparison: slipway.Comparison{Direction: "increase"}}}}}
	if !compared(m) {
		t.Fatal("a prometheus metric with compare is not judged by comparison")
	}
	for _, tc := range []struct {
		value any
		want  slipway.Verdict
	}{
		{map[string]any{"class": "Pass", "reason": "within"}, slipway.VerdictSuccessful},
		{map[string]any{"class": "High", "reason": "slower"}, slipway.VerdictFailed},
		{map[string]any{"class": "Low", "reason": "fewer"}, slipway.VerdictFailed},
		{map[string]any{"class": "NoData", "reason": "the canary sample is empty"}, slipway.VerdictError},
		{map[string]any{"reason": "no class"}, slipway.VerdictError},
		{0.5, slipway.VerdictError},
	} {
		ms := judgeMeasurement(m, tc.value, nil, comparisonUnused{})
		if ms.Phase != tc.want {
			t.Errorf("%v: %s (%s); want %s", tc.value, ms.Phase, ms.Message, tc.want)
		}
	}
}

// comparisonUnused is the judge a comparison must not fall back to.
type comparisonUnused struct{}

func (comparisonUnused) judge(slipway.Metric, any) (slipway.Verdict, string) {
	return slipway.VerdictSuccessful, "conditions were used"
}
