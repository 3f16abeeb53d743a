package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"slipway.dev/slipway"
)

// state is a Reader over fixed records; failRuns makes AnalysisRuns fail.
type state struct {
	apps     []slipway.AppState
	rollouts map[string][]slipway.Rollout
	runs     map[string][]slipway.AnalysisRun
	failRuns bool
}

func (s *state) Apps(context.Context) ([]slipway.AppState, error) { return s.apps, nil }
func (s *state) Rollouts(_ context.Context, app string, limit int) ([]slipway.Rollout, error) {
	r := s.rollouts[app]
	if limit > 0 && len(r) > limit {
		r = r[:limit]
	}
	return r, nil
}
func (s *state) AnalysisRuns(_ context.Context, id string) ([]slipway.AnalysisRun, error) {
	if s.failRuns {
		return nil, errors.New("database is locked")
	}
	return s.runs[id], nil
}

func fixture() *state {
	weight := 10
	seq := slipway.Metric{Name: "errors", Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
		Metric: slipway.BuiltinErrorRate, Sequential: &slipway.SequentialTest{Tolerance: 0.01}}}}
	thr := slipway.Metric{Name: "p99", SuccessCondition: "result < 0.25", Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinLatencyP99}}}
	return &state{
		apps: []slipway.AppState{{Spec: slipway.App{Name: "web"}}, {Spec: slipway.App{Name: "idle"}}},
		rollouts: map[string][]slipway.Rollout{"web": {{ID: "web-3", App: "web", From: "aaa111", To: "bbb222", Phase: slipway.PhaseAborted, Step: 1, Weight: 0,
			Spec: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{{SetWeight: &weight}, {Analysis: &slipway.AnalysisRef{Templates: []string{"t"}}}}}}}}},
		runs: map[string][]slipway.AnalysisRun{"web-3": {
			{ID: "web-3-run1", Kind: slipway.AnalysisStep, Phase: slipway.VerdictSuccessful, Metrics: []slipway.Metric{thr},
				Results: []slipway.MetricResult{{Name: "p99", Count: 2, Successful: 2, Measurements: []slipway.Measurement{{Value: "0.12"}, {Value: "0.2"}}}}},
			{ID: "web-3-run2", Kind: slipway.AnalysisBackground, Phase: slipway.VerdictFailed, Metrics: []slipway.Metric{seq},
				Results: []slipway.MetricResult{{Name: "errors", Count: 1, Failed: 1, Errors: 2, Measurements: []slipway.Measurement{
					{Value: `{"decision":"Fail","difference":0.125,"failEvidence":126.5,"failAt":20,"passEvidence":0.04,"passAt":20}`}}}}},
		}},
	}
}

func TestCollector_ExportsRolloutsAndAnalysis(t *testing.T) {
	c := New(fixture(), "prod", nil)
	want := `
# HELP slipway_rollout_canary_weight Percent of the app's traffic its latest rollout sends to the new revision.
# TYPE slipway_rollout_canary_weight gauge
slipway_rollout_canary_weight{app="web",environment="prod"} 0
# HELP slipway_rollout_phase 1 for the phase of the app's latest rollout, 0 for the other phases.
# TYPE slipway_rollout_phase gauge
slipway_rollout_phase{app="web",environment="prod",phase="Aborted",rollout="web-3"} 1
slipway_rollout_phase{app="web",environment="prod",phase="Completed",rollout="web-3"} 0
slipway_rollout_phase{app="web",environment="prod",phase="Paused",rollout="web-3"} 0
slipway_rollout_phase{app="web",environment="prod",phase="Progressing",rollout="web-3"} 0
# HELP slipway_rollout_step Canary steps the app's latest rollout has completed (of slipway_rollout_steps).
# TYPE slipway_rollout_step gauge
slipway_rollout_step{app="web",environment="prod"} 1
# HELP slipway_rollout_steps Canary steps of the app's latest rollout.
# TYPE slipway_rollout_steps gauge
slipway_rollout_steps{app="web",environment="prod"} 2
# HELP slipway_analysis_last_value The last measured value of each metric of the app's latest rollout; for a sequential test, the canary's failure rate minus the baseline's.
# TYPE slipway_analysis_last_value gauge
slipway_analysis_last_value{app="web",environment="prod",metric="errors"} 0.125
slipway_analysis_last_value{app="web",environment="prod",metric="p99"} 0.2
# HELP slipway_analysis_sequential_evidence A sequential test's last evidence (e-value) to fail or to pass the canary, and the level (1/alpha, 1/beta) it must reach.
# TYPE slipway_analysis_sequential_evidence gauge
slipway_analysis_sequential_evidence{app="web",environment="prod",metric="errors",side="fail"} 126.5
slipway_analysis_sequential_evidence{app="web",environment="prod",metric="errors",side="fail_at"} 20
slipway_analysis_sequential_evidence{app="web",environment="prod",metric="errors",side="pass"} 0.04
slipway_analysis_sequential_evidence{app="web",environment="prod",metric="errors",side="pass_at"} 20
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), RolloutPhase, RolloutStep, RolloutSteps, RolloutCanaryWeight, AnalysisLastValue, AnalysisEvidence); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case AnalysisRuns:
				got["runs "+labels["kind"]+" "+labels["verdict"]] = m.GetGauge().GetValue()
			case AnalysisMeasured:
				got["measured "+labels["metric"]+" "+labels["verdict"]] = m.GetGauge().GetValue()
			}
		}
	}
	for k, v := range map[string]float64{"runs step Successful": 1, "runs background Failed": 1, "runs step Failed": 0,
		"measured errors Failed": 1, "measured errors Error": 2, "measured p99 Successful": 2} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestCollector_CountsReadErrors(t *testing.T) {
	s := fixture()
	s.failRuns = true
	c := New(s, "prod", nil)
	if n := testutil.CollectAndCount(c, AnalysisRuns); n != 0 {
		t.Errorf("%d analysis series from a store that failed", n)
	}
	if n := testutil.CollectAndCount(c, RolloutStep); n != 1 {
		t.Errorf("%d step series; the rollout read did not fail", n)
	}
	if got := testutil.ToFloat64(c.errors); got != 2 {
		t.Errorf("read errors = %v after two scrapes that failed once each, want 2", got)
	}
}
