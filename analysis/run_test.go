package analysis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func webMetric(name string) slipway.Metric {
	return slipway.Metric{Name: name, Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://example.invalid"}}}
}

func jobMetric(name string) slipway.Metric {
	return slipway.Metric{Name: name, Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "true"}}}
}

func jobResult(code int) map[string]any {
	return map[string]any{"exitCode": float64(code), "output": fmt.Sprintf("exited %d\n", code)}
}

// testRun returns a Running run of metrics started at t0.
func testRun(metrics ...slipway.Metric) slipway.AnalysisRun {
	run := slipway.AnalysisRun{ID: "run-1", App: "api", Rollout: "api-1", Kind: slipway.AnalysisStep,
		Metrics: metrics, Phase: slipway.VerdictRunning, StartedAt: t0}
	for _, m := range metrics {
		run.Results = append(run.Results, slipway.MetricResult{Name: m.Name, Phase: slipway.VerdictRunning, DryRun: m.DryRun})
	}
	return run
}

func ptr[T any](v T) *T { return &v }

func TestRecord_JudgesOneMeasurement(t *testing.T) {
	noData := fmt.Errorf("query gave nothing: %w", slipway.ErrNoData)
	tests := []struct {
		name        string
		success     string
		failure     string
		job         bool
		noData      slipway.NoDataPolicy
		value       any
		err         error
		want        slipway.Verdict
		wantMessage string
		wantValue   string
	}{
		{name: "failure condition true fails", failure: "result > 0.1", success: "result < 0.05", value: 0.31, want: slipway.VerdictFailed, wantValue: "0.31"},
		{name: "success condition true succeeds", success: "result < 0.05", value: 0.01, want: slipway.VerdictSuccessful},
		{name: "success false without failure condition fails", success: "result < 0.05", value: 0.07, want: slipway.VerdictFailed},
		{name: "success false and failure false is inconclusive", success: "result < 0.05", failure: "result > 0.1", value: 0.07, want: slipway.VerdictInconclusive},
		{name: "only failure condition, false, succeeds", failure: "result > 0.1", value: 0.07, want: slipway.VerdictSuccessful},
		{name: "int literal compares with float result", success: "result <= 1", value: 1.0, want: slipway.VerdictSuccessful},
		{name: "bool result", success: "result", value: true, want: slipway.VerdictSuccessful},
		{name: "string result", success: "result == 'ok'", value: "degraded", want: slipway.VerdictFailed},
		{name: "list result", success: "size(result) == 2 && result[0] < 0.5", value: []any{0.2, 0.9}, want: slipway.VerdictSuccessful},
		{name: "map result", failure: "result.status != 'up'", value: map[string]any{"status": "down"}, want: slipway.VerdictFailed},
		{name: "job condition on exit code", job: true, success: "result.exitCode == 0 && result.output.contains('exited')", value: jobResult(0), want: slipway.VerdictSuccessful},
		{name: "job without conditions passes on exit 0", job: true, value: jobResult(0), want: slipway.VerdictSuccessful, wantValue: "exited 0\n"},
		{name: "job without conditions fails on exit 3", job: true, value: jobResult(3), want: slipway.VerdictFailed, wantMessage: "exit code 3"},
		{name: "job result without exit code is an error", job: true, value: "odd", want: slipway.VerdictError},
		{name: "web without conditions passes by answering", value: 42.0, want: slipway.VerdictSuccessful, wantValue: "42"},
		{name: "type mismatch is an error", success: "result < 0.05", value: "n/a", want: slipway.VerdictError, wantMessage: "successCondition"},
		{name: "failure condition type mismatch is an error", failure: "result.rate > 1", value: 3.0, want: slipway.VerdictError, wantMessage: "failureCondition"},
		{name: "non-bool condition value is an error", success: "result", value: 3.0, want: slipway.VerdictError, wantMessage: "not a bool"},
		{name: "provider error is an error with its message", success: "result < 1", err: errors.New("dial tcp: connection refused"), want: slipway.VerdictError, wantMessage: "connection refused"},
		{name: "no data is inconclusive by default", success: "result < 1", err: noData, want: slipway.VerdictInconclusive, wantMessage: "query gave nothing"},
		{name: "no data is inconclusive by policy", success: "result < 1", noData: slipway.NoDataInconclusive, err: noData, want: slipway.VerdictInconclusive},
		{name: "no data fails by policy", success: "result < 1", noData: slipway.NoDataFailure, err: noData, want: slipway.VerdictFailed},
		{name: "no data without conditions is never a success", err: slipway.ErrNoData, want: slipway.VerdictInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := webMetric("m")
			if tt.job {
				m = jobMetric("m")
			}
			m.SuccessCondition, m.FailureCondition, m.NoData = tt.success, tt.failure, tt.noData
			m.Count, m.FailureLimit, m.InconclusiveLimit = 10, 10, 10
			run := testRun(m)
			Record(&run, 0, tt.value, tt.err, t0, t0.Add(time.Second))
			res := run.Results[0]
			if len(res.Measurements) != 1 {
				t.Fatalf("measurements = %d, want 1", len(res.Measurements))
			}
			ms := res.Measurements[0]
			if ms.Phase != tt.want {
				t.Fatalf("phase = %s (%s), want %s", ms.Phase, ms.Message, tt.want)
			}
			if !strings.Contains(ms.Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", ms.Message, tt.wantMessage)
			}
			if tt.wantValue != "" && ms.Value != tt.wantValue {
				t.Errorf("value = %q, want %q", ms.Value, tt.wantValue)
			}
			if !ms.StartedAt.Equal(t0) || !ms.FinishedAt.Equal(t0.Add(time.Second)) {
				t.Errorf("times = %v..%v", ms.StartedAt, ms.FinishedAt)
			}
			if res.Count+res.Errors != 1 || res.Successful+res.Failed+res.Inconclusive+res.Errors != 1 {
				t.Errorf("counters = %+v, want one measurement (or one error) counted once", res)
			}
			if isErr := ms.Phase == slipway.VerdictError; isErr != (res.Count == 0) {
				t.Errorf("count = %d after a %s measurement; an error never counts", res.Count, ms.Phase)
			}
			if res.Phase != slipway.VerdictRunning || run.Phase != slipway.VerdictRunning {
				t.Errorf("metric %s, run %s after 1 of 10 within limits, want Running", res.Phase, run.Phase)
			}
		})
	}
}

// obs is one provider answer in a sequence.
type obs struct {
	metric int
	value  any
	err    error
}

func ok(v float64) obs         { return obs{value: v} }
func bad(msg string) obs       { return obs{err: errors.New(msg)} }
func noData() obs              { return obs{err: slipway.ErrNoData} }
func on(metric int, o obs) obs { o.metric = metric; return o }
func rate(m slipway.Metric) slipway.Metric {
	m.SuccessCondition = "result < 0.05"
	m.FailureCondition = "result > 0.2"
	return m
}

func TestRecord_Verdicts(t *testing.T) {
	errLimit := func(n int, m slipway.Metric) slipway.Metric { m.ConsecutiveErrorLimit = ptr(n); return m }
	with := func(m slipway.Metric, f func(*slipway.Metric)) slipway.Metric { f(&m); return m }
	tests := []struct {
		name        string
		metrics     []slipway.Metric
		seq         []obs
		wantMetrics []slipway.Verdict
		wantRun     slipway.Verdict
		wantMessage string
		wantEnded   bool
	}{
		{
			name:        "all count measurements successful",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 3 })},
			seq:         []obs{ok(0.01), ok(0.02), ok(0.03)},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful},
			wantRun:     slipway.VerdictSuccessful, wantEnded: true, wantMessage: "1 metric successful",
		},
		{
			name:        "running until count is reached",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 3 })},
			seq:         []obs{ok(0.01), ok(0.02)},
			wantMetrics: []slipway.Verdict{slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
		{
			name:        "failures up to failureLimit are tolerated",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 3; m.FailureLimit = 1 })},
			seq:         []obs{ok(0.01), ok(0.31), ok(0.02)},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful},
			wantRun:     slipway.VerdictSuccessful, wantEnded: true,
		},
		{
			name:        "failures past failureLimit fail",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 5; m.FailureLimit = 1 })},
			seq:         []obs{ok(0.25), ok(0.01), ok(0.31)},
			wantMetrics: []slipway.Verdict{slipway.VerdictFailed},
			wantRun:     slipway.VerdictFailed, wantEnded: true,
			wantMessage: "metric errors: 2 failed measurements exceed failureLimit 1; last value 0.31",
		},
		{
			name:        "a long measured number reads with four significant digits",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 5 })},
			seq:         []obs{ok(0.22448979591836735)},
			wantMetrics: []slipway.Verdict{slipway.VerdictFailed},
			wantRun:     slipway.VerdictFailed, wantEnded: true,
			wantMessage: "metric errors: 1 failed measurement exceeds failureLimit 0; last value 0.2245",
		},
		{
			name: "fail fast: one failed metric ends the run and terminates the others",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 5 }),
				with(rate(webMetric("latency")), func(m *slipway.Metric) { m.Count = 5 }),
			},
			seq:         []obs{on(1, ok(0.01)), on(0, ok(0.5))},
			wantMetrics: []slipway.Verdict{slipway.VerdictFailed, slipway.VerdictTerminated},
			wantRun:     slipway.VerdictFailed, wantEnded: true,
			wantMessage: "metric errors: 1 failed measurement exceeds failureLimit 0; last value 0.5",
		},
		{
			name:        "inconclusive past inconclusiveLimit",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 5; m.InconclusiveLimit = 1 })},
			seq:         []obs{ok(0.1), ok(0.01), ok(0.1)},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive, wantEnded: true,
			wantMessage: "metric errors: 2 inconclusive measurements exceed inconclusiveLimit 1",
		},
		{
			name:        "no data is inconclusive, never a success",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 1 })},
			seq:         []obs{noData()},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive, wantEnded: true,
			wantMessage: "last: no data",
		},
		{
			name:        "no data fails with the failure policy",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 3; m.NoData = slipway.NoDataFailure })},
			seq:         []obs{noData()},
			wantMetrics: []slipway.Verdict{slipway.VerdictFailed},
			wantRun:     slipway.VerdictFailed, wantEnded: true,
		},
		{
			name:        "consecutive errors past the limit are inconclusive",
			metrics:     []slipway.Metric{errLimit(2, with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 10 }))},
			seq:         []obs{bad("e1"), bad("e2"), bad("refused")},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive, wantEnded: true,
			wantMessage: "metric errors: 3 consecutive errors exceed consecutiveErrorLimit 2; last error: refused",
		},
		{
			name:        "a success resets consecutive errors",
			metrics:     []slipway.Metric{errLimit(2, with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 10 }))},
			seq:         []obs{bad("e1"), bad("e2"), ok(0.01), bad("e3"), bad("e4")},
			wantMetrics: []slipway.Verdict{slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
		{
			name:        "default consecutive error limit is 4",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 10 })},
			seq:         []obs{bad("e"), bad("e"), bad("e"), bad("e"), bad("e")},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive, wantEnded: true,
			wantMessage: "5 consecutive errors",
		},
		{
			name:        "errors within the limit are retried, not counted",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 3 })},
			seq:         []obs{bad("e"), ok(0.01), ok(0.01)},
			wantMetrics: []slipway.Verdict{slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
		{
			name:        "errors within the limit, then count measurements, end successful",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 3 })},
			seq:         []obs{bad("e"), ok(0.01), ok(0.01), ok(0.01)},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful},
			wantRun:     slipway.VerdictSuccessful, wantEnded: true,
			wantMessage: "1 metric successful",
		},
		{
			name:        "count 0 and interval 0 take one measurement",
			metrics:     []slipway.Metric{rate(webMetric("errors"))},
			seq:         []obs{ok(0.01)},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful},
			wantRun:     slipway.VerdictSuccessful, wantEnded: true,
		},
		{
			name: "dry-run failure does not affect the run",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 2 }),
				with(rate(webMetric("shadow")), func(m *slipway.Metric) { m.Count = 2; m.DryRun = true }),
			},
			seq:         []obs{on(1, ok(0.9)), on(0, ok(0.01)), on(0, ok(0.01))},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful, slipway.VerdictFailed},
			wantRun:     slipway.VerdictSuccessful, wantEnded: true,
			wantMessage: "1 metric successful; dry-run metric shadow Failed",
		},
		{
			name: "the run waits for dry-run metrics still measuring",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 1 }),
				with(rate(webMetric("shadow")), func(m *slipway.Metric) { m.Count = 2; m.DryRun = true }),
			},
			seq:         []obs{on(0, ok(0.01)), on(1, ok(0.01))},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful, slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
		{
			name: "an inconclusive metric waits for the others, then the worst wins",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 1 }),
				with(rate(webMetric("latency")), func(m *slipway.Metric) { m.Count = 2 }),
			},
			seq:         []obs{on(0, ok(0.1)), on(1, ok(0.01)), on(1, ok(0.01))},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive, slipway.VerdictSuccessful},
			wantRun:     slipway.VerdictInconclusive, wantEnded: true,
			wantMessage: "metric errors: 1 inconclusive measurement exceeds inconclusiveLimit 0",
		},
		{
			name: "measurements after the run ended are ignored",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 1 }),
			},
			seq:         []obs{ok(0.5), ok(0.01), ok(0.01)},
			wantMetrics: []slipway.Verdict{slipway.VerdictFailed},
			wantRun:     slipway.VerdictFailed, wantEnded: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun(tt.metrics...)
			at := t0
			var endAt time.Time
			for _, o := range tt.seq {
				at = at.Add(time.Second)
				was := run.Phase
				Record(&run, o.metric, o.value, o.err, at.Add(-time.Millisecond), at)
				if !was.Terminal() && run.Phase.Terminal() {
					endAt = at
				}
			}
			checkVerdicts(t, run, tt.wantMetrics, tt.wantRun, tt.wantMessage)
			switch {
			case tt.wantEnded && (run.FinishedAt == nil || !run.FinishedAt.Equal(endAt)):
				t.Errorf("FinishedAt = %v, want %v", run.FinishedAt, endAt)
			case !tt.wantEnded && run.FinishedAt != nil:
				t.Errorf("FinishedAt = %v on a running run", run.FinishedAt)
			}
			if _, _, due := Due(run); due == run.Phase.Terminal() {
				t.Errorf("Due ok = %v for a run %s", due, run.Phase)
			}
		})
	}
}

func TestRecord_IgnoresAfterEnd(t *testing.T) {
	m := rate(webMetric("errors"))
	m.Count = 1
	run := testRun(m)
	Record(&run, 0, 0.5, nil, t0, t0)
	Record(&run, 0, 0.01, nil, t0, t0)
	Record(&run, 7, 0.01, nil, t0, t0)
	if res := run.Results[0]; res.Count != 1 || len(res.Measurements) != 1 {
		t.Fatalf("result after end = %+v, want the first measurement only", res)
	}
}

func TestRecord_BackgroundKeepsLastMeasurementsAndCounting(t *testing.T) {
	m := rate(webMetric("errors"))
	m.Interval = slipway.Duration(time.Second)
	run := testRun(m)
	const n = slipway.MaxMeasurementsKept + 30
	for k := range n {
		at := t0.Add(time.Duration(k) * time.Second)
		Record(&run, 0, float64(k%2)/100, nil, at, at)
	}
	res := run.Results[0]
	if run.Phase != slipway.VerdictRunning || res.Phase != slipway.VerdictRunning {
		t.Fatalf("background run = %s / metric %s, want Running until terminated", run.Phase, res.Phase)
	}
	if res.Count != n || res.Successful != n {
		t.Errorf("count = %d, successful = %d, want %d", res.Count, res.Successful, n)
	}
	if len(res.Measurements) != slipway.MaxMeasurementsKept {
		t.Fatalf("kept %d measurements, want %d", len(res.Measurements), slipway.MaxMeasurementsKept)
	}
	if first := res.Measurements[0].StartedAt; !first.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("oldest kept measurement started %v, want the 31st", first)
	}
	i, at, due := Due(run)
	if !due || i != 0 || !at.Equal(t0.Add((n-1)*time.Second+time.Second)) {
		t.Errorf("Due = %d %v %v, want metric 0 one interval after the last", i, at, due)
	}

	end := t0.Add(time.Hour)
	Terminate(&run, "rollout completed", end)
	if run.Phase != slipway.VerdictTerminated || run.Message != "rollout completed" || run.FinishedAt == nil || !run.FinishedAt.Equal(end) {
		t.Fatalf("after Terminate: %s %q %v", run.Phase, run.Message, run.FinishedAt)
	}
	if run.Results[0].Phase != slipway.VerdictTerminated {
		t.Errorf("metric = %s, want Terminated", run.Results[0].Phase)
	}
	if _, _, due := Due(run); due {
		t.Error("Due on a terminated run")
	}
}

func TestTerminate_LeavesEndedRun(t *testing.T) {
	m := rate(webMetric("errors"))
	run := testRun(m)
	Record(&run, 0, 0.5, nil, t0, t0)
	Terminate(&run, "skipped", t0.Add(time.Hour))
	if run.Phase != slipway.VerdictFailed || !run.FinishedAt.Equal(t0) || run.Results[0].Phase != slipway.VerdictFailed {
		t.Fatalf("Terminate changed an ended run: %s %v", run.Phase, run.FinishedAt)
	}
}

func TestDue(t *testing.T) {
	slow := rate(webMetric("slow"))
	slow.Count, slow.Interval, slow.InitialDelay = 3, slipway.Duration(time.Minute), slipway.Duration(10*time.Second)
	fast := rate(webMetric("fast"))
	fast.Count, fast.Interval = 3, slipway.Duration(5*time.Second)
	tied := rate(webMetric("tied"))
	tied.Count = 2

	t.Run("first measurement at start plus initial delay, earliest first", func(t *testing.T) {
		run := testRun(slow, fast)
		i, at, ok := Due(run)
		if !ok || i != 1 || !at.Equal(t0) {
			t.Fatalf("Due = %d %v %v, want fast at start", i, at, ok)
		}
	})
	t.Run("ties go to the first metric", func(t *testing.T) {
		run := testRun(fast, tied)
		if i, _, _ := Due(run); i != 0 {
			t.Fatalf("Due = %d, want 0", i)
		}
	})
	t.Run("next measurement an interval after the previous finished", func(t *testing.T) {
		run := testRun(slow, fast)
		Record(&run, 1, 0.01, nil, t0, t0.Add(2*time.Second))
		i, at, ok := Due(run)
		if !ok || i != 1 || !at.Equal(t0.Add(7*time.Second)) {
			t.Fatalf("Due = %d %v %v, want fast at +7s", i, at, ok)
		}
		Record(&run, 1, 0.01, nil, at, at.Add(time.Second))
		i, at, ok = Due(run)
		if !ok || i != 0 || !at.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("Due = %d %v %v, want slow at its initial delay", i, at, ok)
		}
	})
	t.Run("ended metrics are not due", func(t *testing.T) {
		run := testRun(slow, fast)
		for k := range 3 {
			at := t0.Add(time.Duration(k) * time.Second)
			Record(&run, 1, 0.01, nil, at, at)
		}
		if run.Results[1].Phase != slipway.VerdictSuccessful {
			t.Fatalf("fast = %s", run.Results[1].Phase)
		}
		if i, _, ok := Due(run); !ok || i != 0 {
			t.Fatalf("Due = %d %v, want slow", i, ok)
		}
	})
	t.Run("after an error the next try waits the interval", func(t *testing.T) {
		run := testRun(fast)
		Record(&run, 0, nil, errors.New("refused"), t0, t0.Add(time.Second))
		if i, at, ok := Due(run); !ok || i != 0 || !at.Equal(t0.Add(6*time.Second)) {
			t.Fatalf("Due = %d %v %v, want a retry 5s (the interval) after the error", i, at, ok)
		}
	})
	t.Run("after an error a metric without an interval waits ErrorRetryDelay", func(t *testing.T) {
		once := rate(webMetric("once"))
		run := testRun(once)
		for k := range slipway.DefaultConsecutiveErrorLimit {
			_, at, ok := Due(run)
			if want := t0.Add(time.Duration(k) * (time.Second + ErrorRetryDelay)); !ok || !at.Equal(want) {
				t.Fatalf("try %d due %v %v, want %v", k+1, at, ok, want)
			}
			Record(&run, 0, nil, errors.New("refused"), at, at.Add(time.Second))
		}
		if run.Results[0].Phase != slipway.VerdictRunning || run.Results[0].Count != 0 {
			t.Fatalf("metric = %s with count %d after errors within the limit", run.Results[0].Phase, run.Results[0].Count)
		}
	})
	t.Run("nothing due once the run ended", func(t *testing.T) {
		run := testRun(fast)
		Record(&run, 0, 0.9, nil, t0, t0)
		if _, _, ok := Due(run); ok {
			t.Fatal("Due on a failed run")
		}
	})
}

// BenchmarkRecord measures judging one measurement with a threshold judge kept for the run.
func BenchmarkRecord(b *testing.B) {
	m := rate(webMetric("errors"))
	m.Interval = slipway.Duration(time.Second)
	run := testRun(m)
	j := &threshold{}
	for b.Loop() {
		record(&run, 0, 0.01, nil, t0, t0, j)
	}
}

// checkVerdicts checks each metric's verdict, the run's, and that the run's message holds
// wantMessage.
func checkVerdicts(t *testing.T, run slipway.AnalysisRun, wantMetrics []slipway.Verdict, wantRun slipway.Verdict, wantMessage string) {
	t.Helper()
	for i, want := range wantMetrics {
		if got := run.Results[i].Phase; got != want {
			t.Errorf("metric %s = %s (%s), want %s", run.Results[i].Name, got, run.Results[i].Message, want)
		}
	}
	if run.Phase != wantRun {
		t.Errorf("run = %s (%s), want %s", run.Phase, run.Message, wantRun)
	}
	if !strings.Contains(run.Message, wantMessage) {
		t.Errorf("run message = %q, want it to contain %q", run.Message, wantMessage)
	}
}
