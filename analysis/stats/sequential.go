package stats

import (
	"fmt"
	"math"
)

// Decision is what a RateTest says after a batch.
type Decision string

const (
	// DecisionContinue: not enough evidence either way yet; keep the canary and look again.
	DecisionContinue Decision = "Continue"
	// DecisionFail: the canary's rate is shown to exceed the baseline's by more than the
	// tolerance.
	DecisionFail Decision = "Fail"
	// DecisionPass: the canary's rate is shown to exceed the baseline's by less than the
	// tolerance (or not at all).
	DecisionPass Decision = "Pass"
)

// Counts are a revision's requests and failed requests (errors, or slow requests) so far.
type Counts struct {
	Requests, Failures int64
}

// Rate returns Failures/Requests, or NaN with no requests.
func (c Counts) Rate() float64 {
	if c.Requests == 0 {
		return math.NaN()
	}
	return float64(c.Failures) / float64(c.Requests)
}

// Defaults of a RateTest's zero fields.
const (
	DefaultAlpha       = 0.05
	DefaultMinRequests = 50
)

// RateTest is a sequential test of a canary's failure rate against the baseline's, for
// decisions after every batch: the error probability holds however often it is consulted
// and whenever it is stopped (see the package doc).
type RateTest struct {
	// Tolerance is how much worse the canary's rate may be, in rate units: 0.01 lets a
	// canary fail 1 point more of its requests than the baseline. In [0, 1).
	Tolerance float64
	// Alpha bounds the chance that a canary within Tolerance is ever failed; 0 means
	// DefaultAlpha. Beta bounds the chance that a canary worse than Tolerance is ever
	// passed; 0 means Alpha. Both in (0, 1).
	Alpha, Beta float64
	// MinRequests is the fewest requests each side must have before any decision; 0 means
	// DefaultMinRequests.
	MinRequests int64
	// Scale is the difference from Tolerance the test is tuned to decide on soonest: the
	// spread of the mixture over alternatives. 0 means Tolerance, or 0.01 when that is 0.
	Scale float64
}

// RateDecision is a RateTest's answer for the counts so far.
type RateDecision struct {
	Decision Decision
	// Difference is the canary's rate minus the baseline's (NaN without requests).
	Difference float64
	// FailEvidence and PassEvidence are the mixture likelihood ratios (e-values) against
	// "the difference is exactly Tolerance", on the worse and the better side: the test fails
	// at FailEvidence >= 1/Alpha and passes at PassEvidence >= 1/Beta. Both 0 while waiting
	// for the minimum sample.
	FailEvidence, PassEvidence float64
	// Canary and Baseline are the counts decided on, and Test the test that decided, with
	// its defaults filled in.
	Canary, Baseline Counts
	Test             RateTest
}

// Reason says in words why the test decided as it did; for display, never to branch on. It
// is a method, not a field, so that the decision after every batch formats nothing.
func (d RateDecision) Reason() string {
	r, c, b := d.Test, d.Canary, d.Baseline
	counts := fmt.Sprintf("canary %d/%d, baseline %d/%d", c.Failures, c.Requests, b.Failures, b.Requests)
	if c.Requests < r.MinRequests || b.Requests < r.MinRequests {
		return fmt.Sprintf("waiting for %d requests on each side (%s)", r.MinRequests, counts)
	}
	desc := fmt.Sprintf("canary rate %.4f, baseline %.4f, difference %+.4f, tolerance %.4f (%s)",
		c.Rate(), b.Rate(), d.Difference, r.Tolerance, counts)
	switch d.Decision {
	case DecisionFail:
		return fmt.Sprintf("the canary fails more than tolerated: %s; evidence %.3g reached 1/alpha = %.3g", desc, d.FailEvidence, 1/r.Alpha)
	case DecisionPass:
		return fmt.Sprintf("the canary is within tolerance: %s; evidence %.3g reached 1/beta = %.3g", desc, d.PassEvidence, 1/r.Beta)
	case DecisionContinue:
	}
	return fmt.Sprintf("not yet decided: %s; evidence to fail %.3g of %.3g, to pass %.3g of %.3g",
		desc, d.FailEvidence, 1/r.Alpha, d.PassEvidence, 1/r.Beta)
}

// Decide weighs the counts so far. It returns an error for a RateTest out of range or
// counts that cannot be (negative, or more failures than requests).
func (r RateTest) Decide(canary, baseline Counts) (RateDecision, error) {
	if err := r.Validate(); err != nil {
		return RateDecision{}, err
	}
	for _, c := range []Counts{canary, baseline} {
		if c.Requests < 0 || c.Failures < 0 || c.Failures > c.Requests {
			return RateDecision{}, fmt.Errorf("stats: counts of %d failures in %d requests cannot be", c.Failures, c.Requests)
		}
	}
	r.Alpha, r.Beta, r.MinRequests, r.Scale = r.alpha(), r.beta(), r.minRequests(), r.scale()
	d := RateDecision{Decision: DecisionContinue, Difference: canary.Rate() - baseline.Rate(), Canary: canary, Baseline: baseline, Test: r}
	if canary.Requests < r.MinRequests || baseline.Requests < r.MinRequests {
		return d, nil
	}
	v := r.nullVariance(canary, baseline)
	rho := 1 / (r.Scale * r.Scale)
	// The continuity correction: counts are whole numbers, and at low rates on a canary of
	// few requests the normal approximation underestimates the upper tail of its count.
	dev := d.Difference - r.Tolerance
	cc := 0.5/float64(canary.Requests) + 0.5/float64(baseline.Requests)
	d.FailEvidence = math.Exp(logMixture(dev-cc, v, rho))
	d.PassEvidence = math.Exp(logMixture(-dev-cc, v, rho))
	switch {
	case d.FailEvidence >= 1/r.Alpha:
		d.Decision = DecisionFail
	case d.PassEvidence >= 1/r.Beta:
		d.Decision = DecisionPass
	}
	return d, nil
}

// logMixture returns the log of the one-sided normal-mixture likelihood ratio for an
// estimate that lies dev above the null value, with variance v: the likelihood ratio
// exp(l*S - l^2*I/2) of a drift l against none, for the score S = dev/v in information time
// I = 1/v, mixed over l >= 0 by a half-normal of precision rho. In closed form,
//
//	2 sqrt(rho v / (1 + rho v)) exp(x^2/2) Phi(x),  x = dev / sqrt(v (1 + rho v)).
func logMixture(dev, v, rho float64) float64 {
	a := v * (1 + rho*v)
	x := dev / math.Sqrt(a)
	logPhi := math.Log(0.5 * math.Erfc(-x/math.Sqrt2))
	return math.Ln2 + 0.5*math.Log(rho*v/(1+rho*v)) + x*x/2 + logPhi
}

// nullVariance returns the variance of the difference of the two rates where the null
// hypothesis puts it (the canary's rate exactly Tolerance above the baseline's), from a
// moment estimate of the baseline's rate under that constraint with one failure in two
// requests added, so that no count of zero failures makes the variance vanish.
func (r RateTest) nullVariance(canary, baseline Counts) float64 {
	nc, nb := float64(canary.Requests), float64(baseline.Requests)
	eps := 1 / (nc + nb + 2)
	qb := (float64(canary.Failures+baseline.Failures) + 1 - r.Tolerance*nc) / (nc + nb + 2)
	qb = math.Max(eps, math.Min(qb, 1-r.Tolerance-eps))
	qc := math.Min(qb+r.Tolerance, 1-eps)
	return qc*(1-qc)/nc + qb*(1-qb)/nb
}

// Validate reports a RateTest whose fields are out of range.
func (r RateTest) Validate() error {
	if !(r.Tolerance >= 0 && r.Tolerance < 1) {
		return fmt.Errorf("stats: tolerance %v is not in [0, 1)", r.Tolerance)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"alpha", r.Alpha}, {"beta", r.Beta}} {
		if p.v != 0 && !(p.v > 0 && p.v < 1) {
			return fmt.Errorf("stats: %s %v is not between 0 and 1", p.name, p.v)
		}
	}
	if r.MinRequests < 0 {
		return fmt.Errorf("stats: minimum requests %d is negative", r.MinRequests)
	}
	if !(r.Scale >= 0 && r.Scale <= 1) {
		return fmt.Errorf("stats: scale %v is not in [0, 1]", r.Scale)
	}
	return nil
}

func (r RateTest) alpha() float64 {
	if r.Alpha == 0 {
		return DefaultAlpha
	}
	return r.Alpha
}

func (r RateTest) beta() float64 {
	if r.Beta == 0 {
		return r.alpha()
	}
	return r.Beta
}

func (r RateTest) minRequests() int64 {
	if r.MinRequests == 0 {
		return DefaultMinRequests
	}
	return r.MinRequests
}

func (r RateTest) scale() float64 {
	switch {
	case r.Scale > 0:
		return r.Scale
	case r.Tolerance > 0:
		return r.Tolerance
	}
	return 0.01
}
