package stats

import (
	"fmt"
	"math"
	"slices"
)

// Class is a metric's classification by the Judge.
type Class string

const (
	// ClassPass: the canary is not shown to be worse than the baseline by more than the
	// allowed shift.
	ClassPass Class = "Pass"
	// ClassHigh: the canary is shown to be higher than the baseline by more than the
	// allowed shift, in a direction where an increase is bad.
	ClassHigh Class = "High"
	// ClassLow: the canary is shown to be lower by more than the allowed shift, in a
	// direction where a decrease is bad.
	ClassLow Class = "Low"
	// ClassNoData: a sample is empty, too small to show a difference, or holds NaN or an
	// infinity. Never a pass.
	ClassNoData Class = "NoData"
)

// Direction says which way a metric gets worse.
type Direction string

const (
	// Increase: higher is worse (latency, errors, memory).
	Increase Direction = "increase"
	// Decrease: lower is worse (throughput, success ratio).
	Decrease Direction = "decrease"
	// Either: any change beyond the allowed shift is bad.
	Either Direction = "either"
)

// Defaults of a Judge's zero fields.
const (
	DefaultConfidence = 0.95
	DefaultMinSamples = 10
)

// Judge classifies a metric by comparing the canary's values with the baseline's, in the
// manner of Kayenta's Mann-Whitney classifier (see the package doc for where it differs).
type Judge struct {
	// Confidence is 1 minus the chance of classifying High or Low a canary that is within
	// the allowed shift; in (0, 1), 0 means DefaultConfidence. Either spends half the chance
	// on each side.
	Confidence float64
	// Direction is the way the metric gets worse. Required.
	Direction Direction
	// Tolerance is the shift the canary is allowed, as a fraction of the baseline's median:
	// 0.1 lets the canary be 10% worse. Margin is the same allowance in the metric's unit;
	// the larger of the two applies. Both 0: any shown change in the bad direction fails.
	Tolerance, Margin float64
	// MinSamples is the fewest values either sample may have; 0 means DefaultMinSamples.
	MinSamples int
}

// Judgement is a Judge's classification of one metric, with the figures behind it.
type Judgement struct {
	Class Class
	// Reason says in words why; for display, never to branch on.
	Reason string
	// P is the p-value of the test that decided: the canary shifted by Allowed against the
	// baseline, on the bad side (for Either, the smaller of the two sides', doubled). The
	// class is High or Low when P <= 1 - Confidence. NaN for NoData.
	P float64
	// Allowed is the shift the canary is allowed, in the metric's unit.
	Allowed float64
	// Shift is the Hodges-Lehmann estimate of canary minus baseline, with its interval on
	// the bad side(s) at Confidence.
	Shift Shift
	// CanaryMedian and BaselineMedian are the samples' medians (NaN for NoData).
	CanaryMedian, BaselineMedian float64
	// N1 and N2 are the canary's and the baseline's sample sizes.
	N1, N2 int
}

// Classify judges canary against baseline. It returns an error only for a Judge that is not
// valid; every problem of the data is a ClassNoData judgement that says what it is.
func (j Judge) Classify(canary, baseline []float64) (Judgement, error) {
	if err := j.Validate(); err != nil {
		return Judgement{}, err
	}
	conf := j.confidence()
	alpha := 1 - conf
	out := Judgement{P: math.NaN(), CanaryMedian: math.NaN(), BaselineMedian: math.NaN(), N1: len(canary), N2: len(baseline)}
	noData := func(format string, args ...any) (Judgement, error) {
		out.Class, out.Reason = ClassNoData, fmt.Sprintf(format, args...)
		return out, nil
	}
	for _, s := range []struct {
		name   string
		values []float64
	}{{"canary", canary}, {"baseline", baseline}} {
		switch err := check(s.values); {
		case len(s.values) == 0:
			return noData("the %s sample is empty", s.name)
		case err != nil:
			return noData("the %s sample holds NaN or an infinity", s.name)
		case len(s.values) < j.minSamples():
			return noData("the %s sample has %d values, fewer than the minimum %d", s.name, len(s.values), j.minSamples())
		}
	}
	sides := 1.0
	if j.Direction == Either {
		sides = 2
	}
	if mp := sides * minP(len(canary), len(baseline)); mp > alpha {
		return noData("samples of %d and %d values cannot show a difference at %g%% confidence (the smallest p-value they can give is %.3g)",
			len(canary), len(baseline), 100*conf, mp)
	}
	out.CanaryMedian, out.BaselineMedian = median(canary), median(baseline)
	out.Allowed = math.Max(j.Tolerance*math.Abs(out.BaselineMedian), j.Margin)

	alt := map[Direction]Alternative{Increase: Greater, Decrease: Less, Either: TwoSided}[j.Direction]
	shift, err := HodgesLehmann(canary, baseline, conf, alt)
	if err != nil {
		return Judgement{}, err // unreachable: the samples were checked above
	}
	out.Shift = shift

	// The tests: is the canary above the baseline by more than Allowed (canary-Allowed
	// against the baseline, Greater), or below it by more (canary+Allowed, Less)?
	pHigh, pLow := 1.0, 1.0
	if j.Direction != Decrease {
		t, err := MannWhitney(add(canary, -out.Allowed), baseline, Greater)
		if err != nil {
			return Judgement{}, err
		}
		pHigh = t.P
	}
	if j.Direction != Increase {
		t, err := MannWhitney(add(canary, out.Allowed), baseline, Less)
		if err != nil {
			return Judgement{}, err
		}
		pLow = t.P
	}
	out.P = math.Min(1, sides*math.Min(pHigh, pLow))
	desc := fmt.Sprintf("canary median %.4g, baseline median %.4g, shift %.4g (allowed %.4g), p=%.3g",
		out.CanaryMedian, out.BaselineMedian, shift.Estimate, out.Allowed, out.P)
	switch {
	case out.P <= alpha && pHigh <= pLow:
		out.Class = ClassHigh
		out.Reason = fmt.Sprintf("the canary is higher than the baseline by more than allowed at %g%% confidence: %s", 100*conf, desc)
	case out.P <= alpha:
		out.Class = ClassLow
		out.Reason = fmt.Sprintf("the canary is lower than the baseline by more than allowed at %g%% confidence: %s", 100*conf, desc)
	default:
		out.Class = ClassPass
		out.Reason = fmt.Sprintf("the canary is not shown worse than allowed at %g%% confidence: %s", 100*conf, desc)
	}
	return out, nil
}

// Validate reports a Judge whose fields are out of range.
func (j Judge) Validate() error {
	switch j.Direction {
	case Increase, Decrease, Either:
	default:
		return fmt.Errorf("stats: direction %q is not one of increase, decrease, either", j.Direction)
	}
	if j.Confidence != 0 && !(j.Confidence > 0 && j.Confidence < 1) {
		return fmt.Errorf("stats: confidence %v is not between 0 and 1", j.Confidence)
	}
	if !(j.Tolerance >= 0) || math.IsInf(j.Tolerance, 0) {
		return fmt.Errorf("stats: tolerance %v is not a finite number at least 0", j.Tolerance)
	}
	if !(j.Margin >= 0) || math.IsInf(j.Margin, 0) {
		return fmt.Errorf("stats: margin %v is not a finite number at least 0", j.Margin)
	}
	if j.MinSamples < 0 {
		return fmt.Errorf("stats: minimum sample %d is negative", j.MinSamples)
	}
	return nil
}

func (j Judge) confidence() float64 {
	if j.Confidence == 0 {
		return DefaultConfidence
	}
	return j.Confidence
}

func (j Judge) minSamples() int {
	if j.MinSamples == 0 {
		return DefaultMinSamples
	}
	return j.MinSamples
}

// add returns a copy of s with d added to every value.
func add(s []float64, d float64) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = v + d
	}
	return out
}

// median returns the median of a sample that is not empty.
func median(s []float64) float64 {
	c := slices.Sorted(slices.Values(s))
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// Measure classifies canary against baseline and returns the judgement as a measured value:
// the class (Pass, High, Low, NoData), the reason in words, the sample sizes, and the
// figures behind it (p, allowed, shift, canaryMedian, baselineMedian) when they are finite.
// It returns an error only for a Judge that is not valid.
func (j Judge) Measure(canary, baseline []float64) (map[string]any, error) {
	got, err := j.Classify(canary, baseline)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"class": string(got.Class), "reason": got.Reason, "canarySamples": got.N1, "baselineSamples": got.N2}
	for k, v := range map[string]float64{"p": got.P, "allowed": got.Allowed, "shift": got.Shift.Estimate,
		"canaryMedian": got.CanaryMedian, "baselineMedian": got.BaselineMedian} {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out, nil
}

// NewJudge returns the Judge of a comparison as a file spells it (slipway.Comparison).
func NewJudge(direction string, confidence, tolerance, margin float64, minSamples int) Judge {
	return Judge{Direction: Direction(direction), Confidence: confidence, Tolerance: tolerance, Margin: margin, MinSamples: minSamples}
}
