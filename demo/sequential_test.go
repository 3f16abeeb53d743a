package demo

import (
	"math/rand/v2"
	"slices"
	"testing"

	"slipway.dev/slipway/analysis/stats"
	"slipway.dev/slipway/spec"
)

// demoTests reads the sequential tests of the demo's own file, as the demo applies them.
func demoTests(t *testing.T) map[string]stats.RateTest {
	set, err := spec.Parse("demo.yaml", File("/bin/slipway", "127.0.0.1:18123", "v2", BadErrorRate, Options{Analysis: AnalysisSequential}))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]stats.RateTest{}
	for _, tpl := range set.Templates {
		for _, m := range tpl.Metrics {
			s := m.Provider.Builtin.Sequential
			if s == nil {
				t.Fatalf("template %s metric %s has no sequential test", tpl.Name, m.Name)
			}
			out[m.Name] = stats.RateTest{Tolerance: s.Tolerance, Alpha: s.Alpha, Beta: s.Beta, MinRequests: int64(s.MinRequests), Scale: s.Scale}
		}
	}
	if len(out) != 2 {
		t.Fatalf("the demo has %d sequential tests, want 2 (a step's and the watch's)", len(out))
	}
	return out
}

// demoRun simulates one canary of the demo: DefaultRate requests a second split at weight%,
// the test consulted every 100ms (the watch's interval; the step's is 200ms, so it sees no
// more than this), for horizon canary requests. It returns the canary requests when the test
// first failed and first passed (0 for never).
func demoRun(rng *rand.Rand, test stats.RateTest, canaryP, baseP float64, weight int, horizon int64) (failedAt, passedAt int64) {
	var c, b stats.Counts
	perTick := float64(DefaultRate) / 10
	var carry float64
	for c.Requests < horizon {
		// Each request goes to the canary with probability weight%.
		carry += perTick
		n := int(carry)
		carry -= float64(n)
		for range n {
			if rng.IntN(100) < weight {
				c.Requests++
				if rng.Float64() < canaryP {
					c.Failures++
				}
			} else {
				b.Requests++
				if rng.Float64() < baseP {
					b.Failures++
				}
			}
		}
		d, err := test.Decide(c, b)
		if err != nil {
			panic(err)
		}
		switch d.Decision {
		case stats.DecisionFail:
			return c.Requests, passedAt
		case stats.DecisionPass:
			if passedAt == 0 {
				passedAt = c.Requests
			}
		case stats.DecisionContinue:
		}
	}
	return 0, passedAt
}

// The demo's sequential settings (minRequests 10, scale 0.1) hold their promises where the
// demo runs them: 250 requests a second, the canary at its first weight of 20%, then 50%.
// A canary as good as stable is failed in at most alpha of the runs, by the step's test
// (5 points tolerated) and by the background watch (1 point); the demo's bad canary
// (20% errors against none) is failed by both in every run within a bounded number of its
// requests; and the step's test passes a healthy canary, so the demo moves on.
func TestDemoSequentialSettings_Simulated(t *testing.T) {
	runs := 1000
	if testing.Short() {
		runs = 300
	}
	rng := rand.New(rand.NewPCG(2026, 12))
	for name, test := range demoTests(t) {
		alpha := test.Alpha
		if alpha == 0 {
			alpha = 0.05
		}
		for _, weight := range []int{DefaultWeight, 50} {
			// A/A: stable and canary both fail 1% of their requests (the demo's stable fails
			// none; 1% makes the test work harder), over 3,000 canary requests.
			falseFail := 0
			for range runs {
				if f, _ := demoRun(rng, test, 0.01, 0.01, weight, 3000); f > 0 {
					falseFail++
				}
			}
			rate := float64(falseFail) / float64(runs)
			t.Logf("%s at %d%%: good canaries failed in %d of %d runs (%.3f, alpha %g)", name, weight, falseFail, runs, rate, alpha)
			if rate > alpha {
				t.Errorf("%s at %d%%: false-failure rate %.3f above alpha %g", name, weight, rate, alpha)
			}

			// The demo's bad canary.
			var caught []int64
			for range runs {
				if f, _ := demoRun(rng, test, 0.2, 0, weight, 2000); f > 0 {
					caught = append(caught, f)
				}
			}
			slices.Sort(caught)
			if len(caught) != runs {
				t.Fatalf("%s at %d%%: the bad canary was failed in %d of %d runs", name, weight, len(caught), runs)
			}
			med, most := caught[len(caught)/2], caught[len(caught)-1]
			t.Logf("%s at %d%%: the bad canary failed after a median of %d canary requests, at most %d", name, weight, med, most)
			if most > 300 {
				t.Errorf("%s at %d%%: the bad canary took up to %d canary requests to fail, want at most 300", name, weight, most)
			}
		}
	}
	// The step's test must pass a healthy canary (as healthy as the demo's stable, no
	// errors) for the demo to move on, within a bounded number of canary requests.
	step := demoTests(t)["canary-error-rate"]
	var passed []int64
	for range runs {
		if f, p := demoRun(rng, step, 0, 0, DefaultWeight, 3000); f == 0 && p > 0 {
			passed = append(passed, p)
		}
	}
	slices.Sort(passed)
	if len(passed) != runs {
		t.Fatalf("the step's test passed %d of %d healthy canaries", len(passed), runs)
	}
	t.Logf("the step's test passed a healthy canary after a median of %d canary requests, at most %d", passed[len(passed)/2], passed[len(passed)-1])
}
