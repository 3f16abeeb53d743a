package stats

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkJudge_Classify judges a window of 50 latencies against 50, the exact
// distribution's largest case (after its first use, which the memo keeps), and 200 against
// 200, past it.
func BenchmarkJudge_Classify(b *testing.B) {
	for _, n := range []int{50, 200} {
		b.Run(map[int]string{50: "50x50", 200: "200x200"}[n], func(b *testing.B) {
			rng := rand.New(rand.NewPCG(71, 72))
			canary, base := latencies(rng, n, 100, 1.05), latencies(rng, n, 100, 1)
			j := Judge{Direction: Either, Tolerance: 0.1}
			for b.Loop() {
				if _, err := j.Classify(canary, base); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExactDistribution computes the exact distribution of U for 50 and 50 values,
// what a judgement of a new pair of sizes costs once.
func BenchmarkExactDistribution(b *testing.B) {
	for b.Loop() {
		exactPMF(50, 50, 50*50/2)
	}
}

// BenchmarkRateTest_Decide is one sequential step: the decision after a batch.
func BenchmarkRateTest_Decide(b *testing.B) {
	test := RateTest{Alpha: 0.05, Tolerance: 0.01}
	canary, base := Counts{Requests: 1200, Failures: 14}, Counts{Requests: 10800, Failures: 110}
	for b.Loop() {
		if _, err := test.Decide(canary, base); err != nil {
			b.Fatal(err)
		}
	}
}
