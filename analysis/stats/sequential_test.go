package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// binomial draws the failures among n requests that each fail with probability p, by
// jumping over the geometric gaps between failures.
func binomial(rng *rand.Rand, n int64, p float64) int64 {
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	lq := math.Log1p(-p)
	var k, i int64
	for {
		i += int64(math.Log(1-rng.Float64())/lq) + 1
		if i > n {
			return k
		}
		k++
	}
}

// run is one simulated canary: batches of canary and baseline requests until the test
// fails it or horizon canary requests have passed. A Pass is recorded (the first) but the run
// goes on, so that a failure after it still counts: the guarantee is over the whole run.
type run struct {
	failedAt, passedAt int64 // canary requests when it first failed or passed; 0 if never
}

type scenario struct {
	test                 RateTest
	canaryP, baselineP   float64
	canaryBatch, baseBat int64
	horizon              int64
}

func (s scenario) simulate(t *testing.T, rng *rand.Rand) run {
	var c, b Counts
	var r run
	for c.Requests < s.horizon {
		c.Requests += s.canaryBatch
		c.Failures += binomial(rng, s.canaryBatch, s.canaryP)
		b.Requests += s.baseBat
		b.Failures += binomial(rng, s.baseBat, s.baselineP)
		d, err := s.test.Decide(c, b)
		if err != nil {
			t.Fatal(err)
		}
		switch d.Decision {
		case DecisionFail:
			r.failedAt = c.Requests
			return r
		case DecisionPass:
			if r.passedAt == 0 {
				r.passedAt = c.Requests
			}
		case DecisionContinue:
		}
	}
	return r
}

// outcome summarises many runs of a scenario.
type outcome struct {
	runs               int
	failed, passed     int
	failedAt, passedAt []int64
}

func (s scenario) many(t *testing.T, seed uint64, runs int) outcome {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	o := outcome{runs: runs}
	for range runs {
		r := s.simulate(t, rng)
		if r.failedAt > 0 {
			o.failed++
			o.failedAt = append(o.failedAt, r.failedAt)
		}
		if r.passedAt > 0 {
			o.passed++
			o.passedAt = append(o.passedAt, r.passedAt)
		}
	}
	slices.Sort(o.failedAt)
	slices.Sort(o.passedAt)
	return o
}

func (o outcome) failRate() float64 { return float64(o.failed) / float64(o.runs) }

func medianMax(s []int64) (int64, int64) {
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)/2], s[len(s)-1]
}

func runs(t *testing.T, full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// TestRateTest_FalseFailuresWithinAlpha: canaries exactly as good as the baseline, or worse
// by no more than the tolerance (up to exactly the tolerance, the hardest case), are failed
// in at most alpha of the runs, however long the run and with a decision after every batch.
func TestRateTest_FalseFailuresWithinAlpha(t *testing.T) {
	n := runs(t, 2000, 1000)
	for _, c := range []struct {
		name string
		s    scenario
	}{
		{"A/A at 1%, no tolerance, even split", scenario{
			test: RateTest{Alpha: 0.05}, canaryP: 0.01, baselineP: 0.01, canaryBatch: 100, baseBat: 100, horizon: 20000}},
		{"A/A at 1%, no tolerance, canary at 10% of traffic", scenario{
			test: RateTest{Alpha: 0.05}, canaryP: 0.01, baselineP: 0.01, canaryBatch: 20, baseBat: 180, horizon: 10000}},
		{"A/A at 1%, 1 point tolerated", scenario{
			test: RateTest{Alpha: 0.05, Tolerance: 0.01}, canaryP: 0.01, baselineP: 0.01, canaryBatch: 100, baseBat: 100, horizon: 20000}},
		{"A/A at 5%, no tolerance, alpha 1%", scenario{
			test: RateTest{Alpha: 0.01}, canaryP: 0.05, baselineP: 0.05, canaryBatch: 50, baseBat: 50, horizon: 10000}},
		{"0.5 points worse, 1 point tolerated", scenario{
			test: RateTest{Alpha: 0.05, Tolerance: 0.01}, canaryP: 0.015, baselineP: 0.01, canaryBatch: 100, baseBat: 100, horizon: 20000}},
		{"exactly 1 point worse, 1 point tolerated", scenario{
			test: RateTest{Alpha: 0.05, Tolerance: 0.01}, canaryP: 0.02, baselineP: 0.01, canaryBatch: 100, baseBat: 100, horizon: 20000}},
	} {
		o := c.s.many(t, 31, n)
		pm, _ := medianMax(o.passedAt)
		t.Logf("%s: failed %d of %d runs (%.4f, alpha %g); passed %d, median at %d canary requests",
			c.name, o.failed, o.runs, o.failRate(), c.s.test.alpha(), o.passed, pm)
		// The bound itself, not alpha plus sampling slack: the mixture boundary leaves room.
		if o.failRate() > c.s.test.alpha() {
			t.Errorf("%s: false-failure rate %.4f above alpha %g", c.name, o.failRate(), c.s.test.alpha())
		}
	}
}

// TestRateTest_CatchesABadCanaryFast: a canary failing 20% of requests against a baseline
// failing 1% is failed in every run, within a bounded number of canary requests.
func TestRateTest_CatchesABadCanaryFast(t *testing.T) {
	n := runs(t, 2000, 1000)
	for _, c := range []struct {
		name  string
		s     scenario
		bound int64
	}{
		{"20% vs 1%, 1 point tolerated, batches of 10", scenario{
			test: RateTest{Alpha: 0.05, Tolerance: 0.01}, canaryP: 0.2, baselineP: 0.01, canaryBatch: 10, baseBat: 90, horizon: 5000}, 200},
		{"20% vs 1%, no tolerance, batches of 10", scenario{
			test: RateTest{Alpha: 0.05}, canaryP: 0.2, baselineP: 0.01, canaryBatch: 10, baseBat: 90, horizon: 5000}, 200},
		{"5% vs 1%, 1 point tolerated, batches of 50", scenario{
			test: RateTest{Alpha: 0.05, Tolerance: 0.01}, canaryP: 0.05, baselineP: 0.01, canaryBatch: 50, baseBat: 50, horizon: 20000}, 3000},
	} {
		o := c.s.many(t, 41, n)
		med, most := medianMax(o.failedAt)
		t.Logf("%s: failed %d of %d runs; canary requests to fail: median %d, max %d", c.name, o.failed, o.runs, med, most)
		if o.failed != o.runs || most > c.bound {
			t.Errorf("%s: failed %d of %d runs, the slowest after %d canary requests (bound %d)", c.name, o.failed, o.runs, most, c.bound)
		}
		if o.passed > 0 {
			t.Errorf("%s: passed %d runs", c.name, o.passed)
		}
	}
}

// TestRateTest_PassesAGoodCanary: a canary as good as the baseline, 1 point tolerated,
// is passed, and a canary worse than the tolerance is (almost) never passed.
func TestRateTest_PassesAGoodCanary(t *testing.T) {
	n := runs(t, 1000, 500)
	good := scenario{test: RateTest{Alpha: 0.05, Tolerance: 0.01}, canaryP: 0.01, baselineP: 0.01, canaryBatch: 100, baseBat: 100, horizon: 20000}
	o := good.many(t, 51, n)
	med, most := medianMax(o.passedAt)
	t.Logf("A/A at 1%%, 1 point tolerated: passed %d of %d runs; canary requests to pass: median %d, max %d", o.passed, o.runs, med, most)
	if o.passed < n*95/100 {
		t.Errorf("passed only %d of %d good canaries within %d requests", o.passed, n, good.horizon)
	}
	bad := scenario{test: RateTest{Alpha: 0.05, Beta: 0.05, Tolerance: 0.01}, canaryP: 0.025, baselineP: 0.01, canaryBatch: 100, baseBat: 100, horizon: 20000}
	o = bad.many(t, 52, n)
	t.Logf("1.5 points worse, 1 point tolerated: passed %d of %d runs (beta 0.05), failed %d", o.passed, o.runs, o.failed)
	if float64(o.passed)/float64(n) > 0.05 {
		t.Errorf("passed %d of %d canaries 1.5 points worse than tolerated", o.passed, n)
	}
}

// TestRateTest_Latency: latency through the rate test, each request slow or not against a
// fixed limit (here 300ms, about the baseline's p99.9).
func TestRateTest_Latency(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const limit = 300.0
	slowShare := func(factor float64) float64 {
		// log-normal around 120ms: the share over the limit, by simulation as a proxy would
		// count it
		var slow int
		for range 200000 {
			if 120*math.Exp(0.3*rng.NormFloat64())*factor > limit {
				slow++
			}
		}
		return float64(slow) / 200000
	}
	base, same, slower := slowShare(1), slowShare(1), slowShare(1.5)
	t.Logf("share of requests over %vms: baseline %.4f, canary 1.5x slower %.4f", limit, base, slower)
	test := RateTest{Alpha: 0.05, Tolerance: 0.005}
	o := scenario{test: test, canaryP: slower, baselineP: base, canaryBatch: 20, baseBat: 180, horizon: 5000}.many(t, 63, runs(t, 500, 200))
	med, most := medianMax(o.failedAt)
	t.Logf("canary 1.5x slower: failed %d of %d runs; canary requests to fail: median %d, max %d", o.failed, o.runs, med, most)
	if o.failed != o.runs {
		t.Errorf("a canary 1.5x slower was failed in %d of %d runs", o.failed, o.runs)
	}
	o = scenario{test: test, canaryP: same, baselineP: base, canaryBatch: 20, baseBat: 180, horizon: 5000}.many(t, 64, runs(t, 1000, 500))
	t.Logf("canary as fast: failed %d of %d runs", o.failed, o.runs)
	if o.failRate() > test.alpha() {
		t.Errorf("a canary as fast as the baseline was failed in %.4f of runs", o.failRate())
	}
}

// TestLogMixture_MatchesNumericIntegration checks the closed form against the mixture
// integral itself, by Simpson's rule over the half-normal.
func TestLogMixture_MatchesNumericIntegration(t *testing.T) {
	for _, c := range []struct{ dev, v, rho float64 }{
		{0.01, 1e-5, 1e4}, {-0.02, 4e-4, 1e4}, {0.18, 2e-3, 100}, {0, 1e-4, 2500}, {0.05, 1e-6, 1e6},
	} {
		S, I := c.dev/c.v, 1/c.v
		tau := 1 / math.Sqrt(c.rho)
		f := func(l float64) float64 {
			return 2 * math.Exp(-l*l/(2*tau*tau)) / (tau * math.Sqrt(2*math.Pi)) * math.Exp(l*S-l*l*I/2)
		}
		// Past the larger of the mixture's spread and the integrand's peak, it is negligible.
		const steps = 200000
		hi := max(12*tau, S/(I+c.rho)+12/math.Sqrt(I+c.rho))
		h := hi / steps
		sum := f(0) + f(hi)
		for i := 1; i < steps; i++ {
			w := 2.0
			if i%2 == 1 {
				w = 4
			}
			sum += w * f(float64(i)*h)
		}
		want := sum * h / 3
		got := math.Exp(logMixture(c.dev, c.v, c.rho))
		if math.Abs(got-want) > 1e-6*want {
			t.Errorf("%+v: closed form %v, integral %v", c, got, want)
		}
	}
}

func TestRateTest_Decide(t *testing.T) {
	test := RateTest{Alpha: 0.05, Tolerance: 0.01, MinRequests: 100}
	d, err := test.Decide(Counts{Requests: 99, Failures: 60}, Counts{Requests: 1000, Failures: 10})
	if err != nil || d.Decision != DecisionContinue || !strings.Contains(d.Reason(), "waiting for 100 requests") {
		t.Errorf("under the minimum: %+v %v", d, err)
	}
	d, err = test.Decide(Counts{Requests: 100, Failures: 60}, Counts{Requests: 1000, Failures: 10})
	if err != nil || d.Decision != DecisionFail || d.FailEvidence < 20 || math.Abs(d.Difference-0.59) > 1e-12 {
		t.Errorf("60%% against 1%%: %+v %v", d, err)
	}
	if !strings.Contains(d.Reason(), "fails more than tolerated") || !strings.Contains(d.Reason(), "canary 60/100, baseline 10/1000") {
		t.Errorf("reason %q", d.Reason())
	}
	d, err = test.Decide(Counts{Requests: 100000, Failures: 1000}, Counts{Requests: 100000, Failures: 1000})
	if err != nil || d.Decision != DecisionPass || d.PassEvidence < 20 || !strings.Contains(d.Reason(), "within tolerance") {
		t.Errorf("1%% against 1%% over 100,000 each: %+v %v", d, err)
	}
	// Zero failures on both sides keeps a finite variance: no decision from nothing.
	d, err = RateTest{}.Decide(Counts{Requests: 100}, Counts{Requests: 100})
	if err != nil || d.Decision != DecisionContinue || math.IsNaN(d.FailEvidence) || math.IsInf(d.PassEvidence, 0) ||
		!strings.Contains(d.Reason(), "not yet decided") || d.Test.Alpha != DefaultAlpha || d.Test.MinRequests != DefaultMinRequests {
		t.Errorf("no failures at all: %+v %q %v", d, d.Reason(), err)
	}
	for _, bad := range []struct {
		test     RateTest
		canary   Counts
		baseline Counts
	}{
		{RateTest{Tolerance: 1}, Counts{1, 0}, Counts{1, 0}},
		{RateTest{Tolerance: -0.1}, Counts{1, 0}, Counts{1, 0}},
		{RateTest{Alpha: 1}, Counts{1, 0}, Counts{1, 0}},
		{RateTest{Beta: -1}, Counts{1, 0}, Counts{1, 0}},
		{RateTest{MinRequests: -1}, Counts{1, 0}, Counts{1, 0}},
		{RateTest{Scale: math.NaN()}, Counts{1, 0}, Counts{1, 0}},
		{RateTest{}, Counts{1, 2}, Counts{1, 0}},
		{RateTest{}, Counts{1, 0}, Counts{-1, 0}},
	} {
		if _, err := bad.test.Decide(bad.canary, bad.baseline); err == nil {
			t.Errorf("%+v with %v and %v accepted", bad.test, bad.canary, bad.baseline)
		}
	}
}
