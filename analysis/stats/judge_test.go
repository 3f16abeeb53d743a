package stats

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// latencies draws n log-normal latencies around median ms, times factor.
func latencies(rng *rand.Rand, n int, median, factor float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = median * math.Exp(0.3*rng.NormFloat64()) * factor
	}
	return s
}

func TestJudge_Classify(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	base := latencies(rng, 40, 100, 1)
	slower := latencies(rng, 40, 100, 1.5)
	faster := latencies(rng, 40, 100, 0.6)
	same := latencies(rng, 40, 100, 1)
	for _, c := range []struct {
		name   string
		judge  Judge
		canary []float64
		want   Class
	}{
		{"slower, increase is bad", Judge{Direction: Increase, Tolerance: 0.1}, slower, ClassHigh},
		{"slower, decrease is bad", Judge{Direction: Decrease, Tolerance: 0.1}, slower, ClassPass},
		{"slower, either", Judge{Direction: Either, Tolerance: 0.1}, slower, ClassHigh},
		{"faster, increase is bad", Judge{Direction: Increase, Tolerance: 0.1}, faster, ClassPass},
		{"faster, decrease is bad", Judge{Direction: Decrease, Tolerance: 0.1}, faster, ClassLow},
		{"faster, either", Judge{Direction: Either, Tolerance: 0.1}, faster, ClassLow},
		{"slower within a 60% tolerance", Judge{Direction: Increase, Tolerance: 0.6}, slower, ClassPass},
		{"slower within a margin of 70", Judge{Direction: Increase, Margin: 70}, slower, ClassPass},
		{"the same distribution", Judge{Direction: Either}, same, ClassPass},
		{"the baseline itself", Judge{Direction: Either}, base, ClassPass},
		{"empty canary", Judge{Direction: Increase}, nil, ClassNoData},
		{"a NaN", Judge{Direction: Increase}, append(append([]float64{}, slower...), math.NaN()), ClassNoData},
		{"an infinity", Judge{Direction: Decrease}, append(append([]float64{}, faster...), math.Inf(-1)), ClassNoData},
		{"under the minimum", Judge{Direction: Increase, MinSamples: 41}, slower, ClassNoData},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.judge.Classify(c.canary, base)
			if err != nil {
				t.Fatal(err)
			}
			if got.Class != c.want {
				t.Errorf("class %s (%s), want %s", got.Class, got.Reason, c.want)
			}
			if got.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestJudge_NoDataSaysWhy(t *testing.T) {
	j := Judge{Direction: Increase, MinSamples: 1}
	for _, c := range []struct {
		canary, baseline []float64
		reason           string
	}{
		{[]float64{1}, nil, "baseline sample is empty"},
		{[]float64{math.NaN()}, []float64{1}, "canary sample holds NaN"},
		{[]float64{1, 2}, []float64{1, 2}, "smallest p-value they can give is 0.167"},
		{[]float64{1, 2}, []float64{1, 2, 3, 4}, "samples of 2 and 4 values cannot show a difference at 95% confidence"},
	} {
		got, err := j.Classify(c.canary, c.baseline)
		if err != nil {
			t.Fatal(err)
		}
		if got.Class != ClassNoData || !strings.Contains(got.Reason, c.reason) || !math.IsNaN(got.P) {
			t.Errorf("%v vs %v: %s %q p=%v, want NoData saying %q", c.canary, c.baseline, got.Class, got.Reason, got.P, c.reason)
		}
	}
	// Either spends half of 5% on each side: 4 and 4 values (smallest one-sided p 1/70 <
	// 2.5%) can show a change either way, 3 and 4 (1/35 > 2.5%) only one way.
	got, err := Judge{Direction: Either, MinSamples: 1}.Classify([]float64{5, 6, 7, 8}, []float64{1, 2, 3, 4})
	if err != nil || got.Class != ClassHigh {
		t.Errorf("4 against 4 wholly above, either: %s %q %v", got.Class, got.Reason, err)
	}
	got, err = Judge{Direction: Either, MinSamples: 1}.Classify([]float64{5, 6, 7}, []float64{1, 2, 3, 4})
	if err != nil || got.Class != ClassNoData {
		t.Errorf("3 against 4, either (smallest p 2/35 > 5%%): %s %q %v", got.Class, got.Reason, err)
	}
	got, err = Judge{Direction: Increase, MinSamples: 1}.Classify([]float64{5, 6, 7}, []float64{1, 2, 3, 4})
	if err != nil || got.Class != ClassHigh {
		t.Errorf("3 against 4 wholly above, increase (smallest p 1/35): %s %q %v", got.Class, got.Reason, err)
	}
}

// TestJudge_HighExactlyWhenTheIntervalClearsTheAllowance: on exact samples the class and
// the reported interval agree, so the report never contradicts the verdict.
func TestJudge_HighExactlyWhenTheIntervalClearsTheAllowance(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for range 300 {
		j := Judge{Direction: Increase, Tolerance: 0.1, Confidence: 0.9}
		canary, base := latencies(rng, 15, 100, 1+0.3*rng.Float64()), latencies(rng, 12, 100, 1)
		got, err := j.Classify(canary, base)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shift.Exact {
			t.Fatal("continuous samples of 15 and 12 gave an approximate interval")
		}
		if high := got.Class == ClassHigh; high != (got.Shift.Lower > got.Allowed) {
			t.Errorf("class %s but interval lower bound %v against allowed %v (p=%v)", got.Class, got.Shift.Lower, got.Allowed, got.P)
		}
		if want := 0.1 * median(base); got.Allowed != want {
			t.Errorf("allowed %v, want 10%% of the baseline median %v", got.Allowed, want)
		}
	}
}

// TestJudge_FalseHighRateWithinAlpha: a canary from the baseline's distribution, or shifted
// by exactly the allowed margin, is classified High or Low at most 1-Confidence of the time.
func TestJudge_FalseHighRateWithinAlpha(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	runs := 4000
	if testing.Short() {
		runs = 1000
	}
	for _, c := range []struct {
		name  string
		judge Judge
		shift float64
		n     int
	}{
		{"same distribution, increase", Judge{Direction: Increase}, 0, 20},
		{"same distribution, either", Judge{Direction: Either}, 0, 30},
		{"shifted by the margin", Judge{Direction: Increase, Margin: 10}, 10, 25},
		{"shifted by the margin, past the exact limit", Judge{Direction: Increase, Margin: 10}, 10, 80},
		{"rounded (tied), shifted by the margin", Judge{Direction: Increase, Margin: 10}, 10, -30},
	} {
		bad := 0
		for range runs {
			n := c.n
			canary, base := latencies(rng, abs(n), 100, 1), latencies(rng, abs(n), 100, 1)
			for i := range canary {
				canary[i] += c.shift
				if n < 0 {
					canary[i], base[i] = math.Round(canary[i]/5)*5, math.Round(base[i]/5)*5
				}
			}
			got, err := c.judge.Classify(canary, base)
			if err != nil {
				t.Fatal(err)
			}
			if got.Class == ClassHigh || got.Class == ClassLow {
				bad++
			}
		}
		rate := float64(bad) / float64(runs)
		t.Logf("%s: classified High or Low in %.4f of %d runs (alpha 0.05)", c.name, rate, runs)
		if se := math.Sqrt(0.05 * 0.95 / float64(runs)); rate > 0.05+3*se {
			t.Errorf("%s: false High/Low rate %.4f above alpha 0.05", c.name, rate)
		}
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func TestJudge_CatchesAClearRegression(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	caught := 0
	for range 500 {
		got, err := Judge{Direction: Increase, Tolerance: 0.1}.Classify(latencies(rng, 30, 100, 1.4), latencies(rng, 30, 100, 1))
		if err != nil {
			t.Fatal(err)
		}
		if got.Class == ClassHigh {
			caught++
		}
	}
	t.Logf("a canary 40%% slower, 10%% tolerated, 30 values each: High in %d of 500 runs", caught)
	if caught < 450 {
		t.Errorf("a canary 40%% slower was caught in only %d of 500 runs", caught)
	}
}

func TestJudge_Validate(t *testing.T) {
	for _, j := range []Judge{
		{},
		{Direction: "up"},
		{Direction: Increase, Confidence: 1},
		{Direction: Increase, Confidence: -0.1},
		{Direction: Increase, Tolerance: -1},
		{Direction: Increase, Tolerance: math.NaN()},
		{Direction: Increase, Margin: math.Inf(1)},
		{Direction: Increase, MinSamples: -1},
	} {
		if _, err := j.Classify([]float64{1}, []float64{2}); err == nil {
			t.Errorf("%+v accepted", j)
		}
	}
}
