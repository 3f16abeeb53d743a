package analysis

import (
	"math"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// scoredMetric is a web metric judged by result < 1, measured count times, in group g with
// weight w.
func scoredMetric(name, g string, w float64, count int, critical bool) slipway.Metric {
	m := webMetric(name)
	m.SuccessCondition = "result < 1"
	m.Group, m.Weight, m.Critical = g, w, critical
	m.Count, m.Interval = count, slipway.Duration(time.Second)
	return m
}

func scoredRun(sc slipway.Scoring, metrics ...slipway.Metric) slipway.AnalysisRun {
	run := testRun(metrics...)
	run.Scoring = &sc
	return run
}

// measure records one measurement of metric i: good values pass, bad ones fail.
func measure(run *slipway.AnalysisRun, i int, good bool, at time.Duration) {
	v := 0.5
	if !good {
		v = 5.0
	}
	Record(run, i, v, nil, t0.Add(at), t0.Add(at))
}

func TestScored_AFailedMetricLowersTheScoreInsteadOfFailingTheRun(t *testing.T) {
	// errors weighs 2, latency 1. Latency holds p95 (weight 2) and p50 (weight 1): when p95
	// fails, latency scores 100*1/3 and the run 2/3*100 + 1/3*33.33 = 77.78, above the
	// marginal 75 (the run goes on) and under the pass 95 (the end is marginal).
	sc := slipway.Scoring{Marginal: 75, Pass: 95, Groups: map[string]float64{"errors": 2, "latency": 1}}
	run := scoredRun(sc,
		scoredMetric("errors", "errors", 0, 2, true),
		scoredMetric("p95", "latency", 2, 1, false),
		scoredMetric("p50", "latency", 0, 2, false))
	measure(&run, 1, false, 0) // p95 fails: unscored, this would fail the run
	if run.Phase != slipway.VerdictRunning || run.Score != nil {
		t.Fatalf("after the first measurement: phase %s, score %+v; want Running and no score before every metric has a class", run.Phase, run.Score)
	}
	measure(&run, 0, true, 0)
	measure(&run, 2, true, 0)
	if run.Phase != slipway.VerdictRunning {
		t.Fatalf("phase %s (%s), want Running: 77.8 is above the marginal threshold", run.Phase, run.Message)
	}
	if run.Score == nil || math.Abs(run.Score.Score-700.0/9) > 1e-9 || run.Score.Final {
		t.Fatalf("interim score %+v, want 77.78, not final", run.Score)
	}
	measure(&run, 0, true, time.Second)
	measure(&run, 2, true, time.Second)
	if run.Phase != slipway.VerdictInconclusive || !run.Score.Final || run.Score.Outcome != "Marginal" {
		t.Fatalf("final: phase %s, score %+v; want Inconclusive, a final Marginal score", run.Phase, run.Score)
	}
	if !strings.Contains(run.Message, "77.8") || !strings.Contains(run.Message, "pass threshold 95") {
		t.Errorf("message %q does not say the score and the threshold it missed", run.Message)
	}
	if got := run.Score.Metrics["p95"]; got != "High" {
		t.Errorf("p95 class %q, want High", got)
	}
	if len(run.Score.Groups) != 2 || run.Score.Groups[1].Name != "latency" || math.Abs(run.Score.Groups[1].Score-100.0/3) > 1e-9 {
		t.Errorf("groups %+v, want latency at 33.33", run.Score.Groups)
	}
}

func TestScored_PassesWhenEveryMetricPasses(t *testing.T) {
	run := scoredRun(slipway.Scoring{Marginal: 50, Pass: 90},
		scoredMetric("a", "", 0, 2, false), scoredMetric("b", "", 0, 1, false))
	measure(&run, 0, true, 0)
	measure(&run, 1, true, 0)
	if run.Phase != slipway.VerdictRunning {
		t.Fatalf("phase %s before a's second measurement, want Running", run.Phase)
	}
	measure(&run, 0, true, time.Second)
	if run.Phase != slipway.VerdictSuccessful || run.Score.Score != 100 || !run.Score.Final {
		t.Fatalf("phase %s, score %+v; want Successful at 100", run.Phase, run.Score)
	}
}

func TestScored_CriticalFailureFailsAtOnce(t *testing.T) {
	// Nine passing metrics would score 90: above both thresholds, but the critical one fails.
	metrics := []slipway.Metric{scoredMetric("crit", "", 0, 3, true)}
	for _, n := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"} {
		metrics = append(metrics, scoredMetric(n, "", 0, 3, false))
	}
	run := scoredRun(slipway.Scoring{Marginal: 50, Pass: 80}, metrics...)
	for i := 1; i < len(metrics); i++ {
		measure(&run, i, true, 0)
	}
	measure(&run, 0, false, 0)
	if run.Phase != slipway.VerdictFailed || !strings.Contains(run.Message, "critical metric crit (High) failed") {
		t.Fatalf("phase %s (%s), want Failed by the critical metric", run.Phase, run.Message)
	}
	if run.FinishedAt == nil || run.Results[1].Phase != slipway.VerdictTerminated {
		t.Errorf("the run did not end with its running metrics Terminated: %+v", run.Results[1])
	}
}

func TestScored_InterimScoreAtMarginalFailsAtOnce(t *testing.T) {
	// Two of four equal metrics failing score exactly 50: at the marginal threshold.
	var metrics []slipway.Metric
	for _, n := range []string{"a", "b", "c", "d"} {
		metrics = append(metrics, scoredMetric(n, "", 0, 5, false))
	}
	run := scoredRun(slipway.Scoring{Marginal: 50, Pass: 90}, metrics...)
	measure(&run, 0, true, 0)
	measure(&run, 1, true, 0)
	measure(&run, 2, false, 0)
	if run.Phase != slipway.VerdictRunning {
		t.Fatalf("phase %s with d unmeasured, want Running", run.Phase)
	}
	measure(&run, 3, false, 0)
	if run.Phase != slipway.VerdictFailed || !strings.Contains(run.Message, "at or below the marginal threshold 50") {
		t.Fatalf("phase %s (%s), want Failed at the marginal threshold", run.Phase, run.Message)
	}
	if run.Score == nil || run.Score.Score != 50 || run.Score.Final {
		t.Errorf("score %+v, want an interim 50", run.Score)
	}
}

func TestScored_ARecoveredMetricCountsByItsLatestMeasurement(t *testing.T) {
	// a fails once (failureLimit 1 tolerates it) then passes: the interim score uses its
	// latest class, so it is back to 100.
	a := scoredMetric("a", "", 0, 3, false)
	a.FailureLimit = 1
	run := scoredRun(slipway.Scoring{Marginal: 40, Pass: 90}, a, scoredMetric("b", "", 0, 3, false))
	measure(&run, 0, false, 0)
	measure(&run, 1, true, 0)
	if run.Score == nil || run.Score.Score != 50 {
		t.Fatalf("score %+v, want 50 while a's latest measurement failed", run.Score)
	}
	measure(&run, 0, true, time.Second)
	if run.Score.Score != 100 || run.Phase != slipway.VerdictRunning {
		t.Fatalf("score %+v phase %s, want 100 and Running", run.Score, run.Phase)
	}
}

func TestScored_CriticalNoDataIsNeverAPass(t *testing.T) {
	crit := scoredMetric("crit", "", 0, 1, true)
	run := scoredRun(slipway.Scoring{Marginal: 10, Pass: 20},
		crit, scoredMetric("b", "", 0, 1, false), scoredMetric("c", "", 0, 1, false), scoredMetric("d", "", 0, 1, false))
	Record(&run, 0, nil, slipway.ErrNoData, t0, t0) // crit: no data, counted inconclusive
	for i := 1; i < 4; i++ {
		measure(&run, i, true, 0)
	}
	if run.Phase != slipway.VerdictInconclusive || !strings.Contains(run.Message, "critical metric crit has no data") {
		t.Fatalf("phase %s (%s), want Inconclusive: a critical metric without data", run.Phase, run.Message)
	}
}

func TestScored_ComparisonLowIsKept(t *testing.T) {
	m := slipway.Metric{Name: "latency", Count: 1, Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{
		Address: "http://127.0.0.1:1", Query: "q", Compare: &slipway.PrometheusCompare{Baseline: "b", Comparison: slipway.Comparison{Direction: "decrease"}}}}}
	run := scoredRun(slipway.Scoring{Marginal: 60, Pass: 100}, m, scoredMetric("b", "", 0, 1, false))
	Record(&run, 0, map[string]any{"class": "Low", "reason": "canary lower"}, nil, t0, t0)
	measure(&run, 1, true, 0)
	if run.Phase != slipway.VerdictFailed || run.Score.Metrics["latency"] != "Low" {
		t.Fatalf("phase %s, score %+v; want Failed with latency Low", run.Phase, run.Score)
	}
}

func TestScored_DryRunsAreNotScored(t *testing.T) {
	dry := scoredMetric("dry", "", 0, 1, false)
	dry.DryRun = true
	run := scoredRun(slipway.Scoring{Marginal: 50, Pass: 90}, dry, scoredMetric("b", "", 0, 1, false))
	measure(&run, 0, false, 0)
	measure(&run, 1, true, 0)
	if run.Phase != slipway.VerdictSuccessful || run.Score.Score != 100 {
		t.Fatalf("phase %s, score %+v; want Successful at 100, the dry run not weighed", run.Phase, run.Score)
	}
	only := scoredRun(slipway.Scoring{Marginal: 50, Pass: 90}, dry)
	measure(&only, 0, true, 0)
	if only.Phase != slipway.VerdictInconclusive {
		t.Fatalf("a run of dry runs only: phase %s, want Inconclusive (no score is no evidence)", only.Phase)
	}
}

func TestScored_ABadScorerIsInconclusive(t *testing.T) {
	// A group with no weight (a template that skipped validation): never a pass.
	run := scoredRun(slipway.Scoring{Marginal: 50, Pass: 90, Groups: map[string]float64{"x": 1}}, scoredMetric("a", "y", 0, 1, false))
	measure(&run, 0, true, 0)
	if run.Phase != slipway.VerdictInconclusive || !strings.Contains(run.Message, "cannot score") {
		t.Fatalf("phase %s (%s), want Inconclusive", run.Phase, run.Message)
	}
}

func TestNewRun_Scoring(t *testing.T) {
	sc := &slipway.Scoring{Marginal: 50, Pass: 90}
	m := func(n string) []slipway.Metric { return []slipway.Metric{scoredMetric(n, "", 0, 1, false)} }
	templates := map[string]slipway.AnalysisTemplate{
		"s1":    {Name: "s1", Metrics: m("a"), Scoring: sc},
		"s2":    {Name: "s2", Metrics: m("b"), Scoring: &slipway.Scoring{Marginal: 50, Pass: 90}},
		"other": {Name: "other", Metrics: m("c"), Scoring: &slipway.Scoring{Marginal: 60, Pass: 90}},
		"plain": {Name: "plain", Metrics: m("d")},
	}
	r := slipway.Rollout{ID: "api-1", App: "api", To: "r2", From: "r1"}
	run, err := NewRun("x", slipway.AnalysisStep, 0, r, "", slipway.AnalysisRef{Templates: []string{"s1", "s2"}}, templates, t0)
	if err != nil || run.Scoring == nil || run.Scoring.Pass != 90 {
		t.Fatalf("NewRun(s1, s2) = %+v, %v; want a run scored by their shared scoring", run.Scoring, err)
	}
	sc.Pass = 10
	if run.Scoring.Pass != 90 {
		t.Error("the run shares its scoring with the template")
	}
	for _, refs := range [][]string{{"s2", "other"}, {"s2", "plain"}} {
		if _, err := NewRun("x", slipway.AnalysisStep, 0, r, "", slipway.AnalysisRef{Templates: refs}, templates, t0); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("NewRun(%v) err %v, want EINVALID", refs, err)
		}
	}
}

func TestBrief_SaysWhereARunStands(t *testing.T) {
	run := scoredRun(slipway.Scoring{Marginal: 10, Pass: 90},
		scoredMetric("a", "", 0, 3, false), scoredMetric("b", "", 0, 2, false))
	measure(&run, 0, false, 0)
	measure(&run, 1, true, 0)
	got := Brief(run)
	want := "interim score 50.0 (Marginal); a 1/3 Failed; b 1/2 Running, last Successful"
	if run.Phase != slipway.VerdictRunning || got != want {
		t.Fatalf("Brief = %q (phase %s), want %q", got, run.Phase, want)
	}
}

// TestScored_OverflowingWeightsNeverPass: a scored run whose weights overflow (a template
// applied with weight 1e308 on each metric) is Inconclusive, never Successful with a failed
// metric in it.
func TestScored_OverflowingWeightsNeverPass(t *testing.T) {
	run := scoredRun(slipway.Scoring{Marginal: 50, Pass: 90},
		scoredMetric("a", "", 1e308, 1, false), scoredMetric("b", "", 1e308, 1, false), scoredMetric("c", "", 1e308, 1, false))
	measure(&run, 0, true, 0)
	measure(&run, 1, true, 0)
	measure(&run, 2, false, 0)
	if run.Phase != slipway.VerdictInconclusive {
		t.Fatalf("phase %s (%s), score %+v; want Inconclusive: the score cannot be computed", run.Phase, run.Message, run.Score)
	}
}
