package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// refusedURL returns the URL of a server that has closed: connecting to it is refused.
func refusedURL(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	return url
}

// TestRunner_ErrorsNeverPass runs templates whose every measurement errors (a web check
// whose server refuses connections, a job whose command does not exist) with count 1: the
// run must never end Successful, and its message names the error.
func TestRunner_ErrorsNeverPass(t *testing.T) {
	web := slipway.Metric{Name: "web", Count: 1, Interval: slipway.Duration(2 * time.Millisecond),
		SuccessCondition: "result < 0.05",
		Provider:         slipway.ProviderSpec{Web: &slipway.WebMetric{URL: refusedURL(t), JSONPath: "$.rate"}}}
	job := slipway.Metric{Name: "smoke", Count: 1, Interval: slipway.Duration(2 * time.Millisecond),
		Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "/nonexistent/slipway-smoke-check"}}}
	tests := []struct {
		name    string
		metrics []slipway.Metric
		want    string
	}{
		{name: "web check refused", metrics: []slipway.Metric{web}, want: "connection refused"},
		{name: "job command missing", metrics: []slipway.Metric{job}, want: "no such file"},
		{name: "both", metrics: []slipway.Metric{web, job}, want: "consecutive errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun(tt.metrics...)
			run.StartedAt = time.Now()
			s := newMemStore(t, run)
			if err := NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
				t.Fatal(err)
			}
			got := storedRun(t, s, run.ID)
			if got.Phase != slipway.VerdictInconclusive || !strings.Contains(got.Message, tt.want) {
				t.Fatalf("run = %s %q; want Inconclusive naming %q", got.Phase, got.Message, tt.want)
			}
			for _, res := range got.Results {
				if res.Phase == slipway.VerdictSuccessful || res.Successful != 0 || res.Count != 0 {
					t.Errorf("metric %s = %s with count %d, successful %d; errors must not count", res.Name, res.Phase, res.Count, res.Successful)
				}
			}
		})
	}
}

// TestRecord_ErrorsNeverCount: errors do not count toward count, a metric ends Successful
// only with its count of measurements and at least one success, and a background run ends
// as soon as one of its metrics is inconclusive.
func TestRecord_ErrorsNeverCount(t *testing.T) {
	with := func(m slipway.Metric, f func(*slipway.Metric)) slipway.Metric { f(&m); return m }
	count := func(n int) func(*slipway.Metric) { return func(m *slipway.Metric) { m.Count = n } }
	background := func(m *slipway.Metric) { m.Interval = slipway.Duration(time.Second) }
	tests := []struct {
		name        string
		metrics     []slipway.Metric
		seq         []obs
		wantMetrics []slipway.Verdict
		wantRun     slipway.Verdict
		wantMessage string
	}{
		{
			name:        "an error is not a measurement toward count",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), count(1))},
			seq:         []obs{bad("dial tcp 127.0.0.1:9: connect: connection refused")},
			wantMetrics: []slipway.Verdict{slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
		{
			name:        "errors past the default limit are inconclusive, naming the last error",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), count(1))},
			seq:         []obs{bad("e1"), bad("e2"), bad("e3"), bad("e4"), bad("connection refused")},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive,
			wantMessage: "metric errors: 5 consecutive errors exceed consecutiveErrorLimit 4; last error: connection refused",
		},
		{
			name:        "errors between measurements do not make up the count",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), count(3))},
			seq:         []obs{bad("e"), ok(0.01), bad("e"), ok(0.01)},
			wantMetrics: []slipway.Verdict{slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
		{
			name:        "all inconclusive within the limit is not a pass",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 2; m.InconclusiveLimit = 5 })},
			seq:         []obs{ok(0.1), ok(0.1)},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive,
			wantMessage: "metric errors: 2 measurements, none successful",
		},
		{
			name:        "no data within the limit is not a pass",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 1; m.InconclusiveLimit = 1 })},
			seq:         []obs{noData()},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive,
			wantMessage: "none successful",
		},
		{
			name:        "failures within the limit and no success is not a pass",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 1; m.FailureLimit = 1 })},
			seq:         []obs{ok(0.5)},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictInconclusive,
			wantMessage: "1 measurement, none successful",
		},
		{
			name:        "one success with inconclusives within the limit passes",
			metrics:     []slipway.Metric{with(rate(webMetric("errors")), func(m *slipway.Metric) { m.Count = 2; m.InconclusiveLimit = 1 })},
			seq:         []obs{ok(0.1), bad("e"), ok(0.01)},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful},
			wantRun:     slipway.VerdictSuccessful,
			wantMessage: "1 metric successful",
		},
		{
			name: "an erroring dry-run metric ends inconclusive and is only noted",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), count(1)),
				with(rate(webMetric("shadow")), func(m *slipway.Metric) { m.Count = 1; m.DryRun = true; m.ConsecutiveErrorLimit = ptr(0) }),
			},
			seq:         []obs{on(1, bad("refused")), on(0, ok(0.01))},
			wantMetrics: []slipway.Verdict{slipway.VerdictSuccessful, slipway.VerdictInconclusive},
			wantRun:     slipway.VerdictSuccessful,
			wantMessage: "dry-run metric shadow Inconclusive: 1 consecutive error exceeds consecutiveErrorLimit 0",
		},
		{
			name: "a background run ends inconclusive when one metric does, though others never end",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), background),
				with(rate(webMetric("latency")), background),
			},
			seq:         []obs{on(1, ok(0.01)), on(0, bad("e")), on(0, bad("e")), on(0, bad("e")), on(0, bad("e")), on(0, bad("refused"))},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive, slipway.VerdictTerminated},
			wantRun:     slipway.VerdictInconclusive,
			wantMessage: "metric errors: 5 consecutive errors exceed consecutiveErrorLimit 4; last error: refused",
		},
		{
			name: "a step run waits for its bounded metrics before ending inconclusive",
			metrics: []slipway.Metric{
				with(rate(webMetric("errors")), count(1)),
				with(rate(webMetric("latency")), count(2)),
			},
			seq:         []obs{on(0, ok(0.1)), on(1, ok(0.01))},
			wantMetrics: []slipway.Verdict{slipway.VerdictInconclusive, slipway.VerdictRunning},
			wantRun:     slipway.VerdictRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun(tt.metrics...)
			at := t0
			for _, o := range tt.seq {
				at = at.Add(time.Second)
				Record(&run, o.metric, o.value, o.err, at.Add(-time.Millisecond), at)
			}
			checkVerdicts(t, run, tt.wantMetrics, tt.wantRun, tt.wantMessage)
			for _, res := range run.Results {
				if res.Count != res.Successful+res.Failed+res.Inconclusive {
					t.Errorf("metric %s: count %d is not its %d successful, %d failed and %d inconclusive measurements",
						res.Name, res.Count, res.Successful, res.Failed, res.Inconclusive)
				}
			}
		})
	}
}

// TestRecord_ConditionErrorsNeverPass: a condition that cannot be evaluated on the value
// (a type mismatch, a missing key or index, a conversion that fails, a value that is not a
// bool) makes an Error measurement, which never counts toward a pass.
func TestRecord_ConditionErrorsNeverPass(t *testing.T) {
	tests := []struct {
		name             string
		success, failure string
		value            any
		want             string
	}{
		{name: "number compared with a string", success: "result > 1", value: "0.002", want: "successCondition"},
		{name: "no such key in a map", success: "result.rate < 0.05", value: map[string]any{"ratio": 0.01}, want: "no such key"},
		{name: "no such key in a failure condition alone", failure: "result.errors > 5", value: map[string]any{"total": 3.0}, want: "failureCondition"},
		{name: "index out of range", success: "result[2] < 0.05", value: []any{0.01}, want: "successCondition"},
		{name: "field of a number", success: "result.rate < 0.05", value: 0.01, want: "successCondition"},
		{name: "conversion that fails", success: "double(result) < 0.05", value: "n/a", want: "successCondition"},
		{name: "bool compared with a number", success: "result < 0.05", value: true, want: "successCondition"},
		{name: "not a bool", success: "dyn(result)", value: 0.01, want: "not a bool"},
		{name: "of a type other than bool", success: "result + 1.0", value: 0.01, want: "not bool"},
		{name: "failure condition fails to evaluate before a true success", success: "true", failure: "result.rate > 0.1", value: 0.01, want: "failureCondition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := webMetric("check")
			m.SuccessCondition, m.FailureCondition, m.Count = tt.success, tt.failure, 1
			run := testRun(m)
			Record(&run, 0, tt.value, nil, t0, t0.Add(time.Millisecond))
			res := run.Results[0]
			if ms := res.Measurements[0]; ms.Phase != slipway.VerdictError || !strings.Contains(ms.Message, tt.want) {
				t.Fatalf("measurement = %s %q; want Error naming %q", ms.Phase, ms.Message, tt.want)
			}
			if res.Phase == slipway.VerdictSuccessful || run.Phase == slipway.VerdictSuccessful {
				t.Fatalf("metric %s, run %s (%s) after a condition that cannot be evaluated", res.Phase, run.Phase, run.Message)
			}
			for k := 1; k <= slipway.DefaultConsecutiveErrorLimit; k++ {
				at := t0.Add(time.Duration(k) * time.Minute)
				Record(&run, 0, tt.value, nil, at, at)
			}
			if run.Phase != slipway.VerdictInconclusive || !strings.Contains(run.Message, tt.want) {
				t.Fatalf("run = %s %q; want Inconclusive naming the condition's error", run.Phase, run.Message)
			}
		})
	}
}
