// Package stats holds the statistics of canary-versus-baseline analysis: a judge that
// classifies one metric from two samples (the Mann-Whitney U test and the Hodges-Lehmann
// shift), a scorer that weighs the metrics' classes into a 0-100 score, and a sequential
// test of failure rates that can be consulted after every batch of requests. The builtin
// analysis provider runs RateTest for metrics with a sequential test (metric/builtin); the
// judge and the scorer are not used by analysis runs yet. Pure functions over numbers: no
// I/O, no clock, no project imports.
//
// Start reading at Judge.Classify (judge.go), then Scorer.Score (score.go) and
// RateTest.Decide (sequential.go). MannWhitney (mannwhitney.go) and HodgesLehmann
// (shift.go) are the statistics beneath the judge.
//
// # The rank test
//
// MannWhitney computes U for the canary (x) against the baseline (y): the pairs with x
// above y, ties counting a half. Its p-value is exact (the null distribution of U by
// recursion on the largest value) when both samples hold at most ExactLimit (50) values and
// nothing is tied, R's rule; otherwise it is the normal approximation with the tie-corrected
// variance and a continuity correction of 0.5. The tests check it against the published
// critical-value table, published worked examples, enumeration of every assignment of the
// pooled values (which also gives the exact conditional distribution with ties) and a
// permutation test.
//
// The effect size is the Hodges-Lehmann shift, the median of all differences x[i]-y[j],
// with the interval that inverts the same test. It was chosen over the rank-biserial
// correlation because it is in the metric's own unit (milliseconds, not a probability), so
// it compares directly with the change a team is willing to allow, and because its interval
// agrees with the test by construction.
//
// # The judge
//
// Judge.Classify allows the canary a shift: Tolerance times the baseline's median, or Margin
// in the metric's unit, whichever is larger. It then tests the canary moved back by that
// shift against the baseline, one-sided on the bad side (Increase: is canary-allowed still
// above the baseline?), at 1-Confidence; Either tests both sides at half that each. A
// rejection is High or Low, anything else Pass. So the chance of calling a canary High when
// it is at most the allowed shift worse is at most 1-Confidence (exactly so for the exact
// test and a fixed Margin; the relative Tolerance uses the baseline's sample median), and
// on exact samples a High comes with an interval whose lower bound clears the allowance.
//
// NoData, never Pass, when a sample is empty, holds NaN or an infinity, has fewer than
// MinSamples values (10 by default), or when samples of these sizes could not reach the
// confidence even if one lay wholly above the other (3 and 4 values cannot show anything at
// 95% two-sided): a test that could not have failed the canary is no evidence for it.
//
// Where this follows Kayenta's Mann-Whitney classifier: the same rank test of the canary
// against the baseline, a Hodges-Lehmann interval, the classes Pass, High, Low and NoData,
// the directions increase, decrease and either, and NoData for an empty sample. Where it
// differs, and why: Kayenta allows a fraction of the shift estimate itself and compares the
// interval with that, so the allowance grows with the difference it judges; here the
// allowance is fixed by the baseline (or the unit) and is part of the hypothesis tested,
// which is what gives the bound above. Kayenta removes NaN values before the test and passes
// identical samples without a test; here a NaN is no data, since a measurement that is not a
// number says nothing about health. Kayenta judges samples of any size; here a sample too
// small to fail the canary is NoData.
//
// # The scorer
//
// Scorer.Score gives each group the weighted share of its metrics that passed, and the run
// the weighted mean of its groups' scores: under Marginal fails, at or over Pass passes,
// between is Marginal (a person decides). A critical metric High or Low fails the run
// whatever the score. Like Kayenta's weighted-sum scorer, it scores groups by the share of
// passing metrics and fails the run on a critical metric. Unlike it, a NoData metric counts
// as not passed (Kayenta leaves it out of its group's share, so a metric without data could
// raise the score), a critical metric with no data holds the run at Marginal (Kayenta fails
// it; slipway's rule is that missing data pauses, it neither promotes nor rolls back),
// group weights are relative and every group must have one when any is given (Kayenta
// shares the rest of 100 among unlisted groups, so a misspelt group silently gets weight),
// and metrics have weights within their group.
//
// # The sequential test
//
// RateTest.Decide weighs canary failures/requests against the baseline's after every batch
// and answers Continue, Fail (the canary fails more than Tolerance points more often) or
// Pass (it is shown to fail less than Tolerance more). It is a one-sided normal-mixture
// likelihood ratio, an always-valid test in the sense of Robbins' mixtures and of the
// confidence sequences of Howard, Ramdas et al.: the estimated difference minus Tolerance,
// divided by its variance, is a score whose likelihood ratio against "the difference is
// exactly Tolerance" is mixed over worse differences with a half-normal of spread Scale.
// The mixture is a nonnegative martingale under the null, so by Ville's inequality it ever
// reaches 1/Alpha with probability at most Alpha: the false-failure bound holds however
// often Decide is consulted and whenever the run stops. Pass is the mirror image at 1/Beta.
//
// A mixture test was chosen over Wald's SPRT because the SPRT tests one rate against one
// other, both given in advance, while a canary's baseline rate is unknown and the
// alternative is any rate worse than the tolerance; mixing over the alternative needs
// neither, and reports evidence (an e-value) rather than a bare crossing.
//
// The guarantee is asymptotic: the counts are treated as normal, with the variance taken
// where the null puts it (the baseline rate estimated under "the canary is exactly Tolerance
// worse", with one failure in two requests added so that zero failures never make the
// variance vanish), and a continuity correction of half a request on each side. Without the
// correction, an A/A simulation with the canary at 10% of the traffic, both at 1% errors,
// failed 5.5% of runs at Alpha 5%: the canary's few failures have a heavier upper tail
// than the normal's. The simulations in the tests (seeded, a decision after every batch,
// up to 20,000 canary requests, at least 2,000 runs each) measured, at Alpha 5%:
//
//   - A/A at 1% errors, no tolerance: 1.6% of runs failed (even split), 4.1% (canary at 10%
//     of traffic); 1 point tolerated: none failed, all passed, at a median of 1,600 canary
//     requests.
//   - a canary 0.5 points worse, 1 point tolerated: none failed; exactly 1 point worse (the
//     hardest case the bound covers): 1.3% failed.
//   - a canary failing 20% against 1%, in batches of 10 canary requests, 1 point tolerated:
//     every run failed, at a median of 60 canary requests and at most 150 (50 and 120 with
//     no tolerance), with MinRequests 50 the first point a decision can be made.
//
// Latency goes through the same test: count each request as slow or not against a fixed
// limit chosen beforehand (an objective, or the baseline's p99 from an earlier window; not
// from the counts being tested) and pass the slow counts as Failures. In the tests a canary
// 1.5 times slower, with a limit near the baseline's p99.9 (0.1% slow against 4.4%), was
// failed in every run at a median of 180 canary requests.
package stats
