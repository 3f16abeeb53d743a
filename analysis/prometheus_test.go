package analysis

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/metric/prometheus"
	"slipway.dev/slipway/slipwaytest"
)

// prometheusServer answers every request like Prometheus's query API answers an instant
// vector query: the sample's value is a JSON string.
func prometheusServer(tb testing.TB, value string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"web"},"value":[1700000000.123,%q]}]}}`, value)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// TestRunner_PrometheusValues judges Prometheus answers, whose sample values are strings:
// a number passes or fails by the condition; NaN and infinities are no data, never a pass.
func TestRunner_PrometheusValues(t *testing.T) {
	tests := []struct {
		value string
		want  slipway.Verdict
	}{
		{value: "0.002", want: slipway.VerdictSuccessful},
		{value: "0.5", want: slipway.VerdictFailed},
		{value: "NaN", want: slipway.VerdictInconclusive},
		{value: "+Inf", want: slipway.VerdictInconclusive},
		{value: "-Inf", want: slipway.VerdictInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			m := slipway.Metric{Name: "error-rate", Count: 1, SuccessCondition: "result < 0.01",
				Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{
					URL:      prometheusServer(t, tt.value) + "/api/v1/query?query=rate",
					JSONPath: "$.data.result[0].value[1]",
				}}}
			run := testRun(m)
			run.StartedAt = time.Now()
			s := newMemStore(t, run)
			if err := NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
				t.Fatal(err)
			}
			got := storedRun(t, s, run.ID)
			if got.Phase != tt.want {
				t.Fatalf("run = %s %q; want %s", got.Phase, got.Message, tt.want)
			}
		})
	}
}

// canaryApp is a service of one version behind real HTTP: it answers every failEvery-th
// request 500 (none when 0) and counts its answers by version and code on target, as an
// instrumented service does for Prometheus to scrape.
type canaryApp struct {
	url       string
	failEvery atomic.Int64
}

func newCanaryApp(tb testing.TB, target *slipwaytest.Target, version string) *canaryApp {
	tb.Helper()
	a := &canaryApp{}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if k := a.failEvery.Load(); k > 0 && n.Add(1)%k == 0 {
			code = http.StatusInternalServerError
		}
		target.Add(fmt.Sprintf(`http_requests_total{version=%q,code="%d"}`, version, code), 1)
		w.WriteHeader(code)
	}))
	tb.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// send sends n requests to the app.
func (a *canaryApp) send(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		resp, err := http.Get(a.url)
		if err != nil {
			tb.Fatal(err)
		}
		resp.Body.Close()
	}
}

// TestRunner_RealPrometheus runs analysis runs of a template that asks a real Prometheus
// server for the canary's error rate: the run succeeds while the canary answers few errors
// (whatever the stable version does), and fails once its error rate rises.
func TestRunner_RealPrometheus(t *testing.T) {
	target := slipwaytest.NewTarget(t)
	stable := newCanaryApp(t, target, "v1")
	canary := newCanaryApp(t, target, "v2")
	prom := slipwaytest.StartPrometheus(t, target)

	templates := map[string]slipway.AnalysisTemplate{"error-rate": {
		Name: "error-rate",
		Args: []slipway.TemplateArg{{Name: "prometheus"}, {Name: "max", Value: ptr("0.05")}},
		Metrics: []slipway.Metric{{
			Name:             "canary-error-rate",
			Count:            2,
			Interval:         slipway.Duration(200 * time.Millisecond),
			SuccessCondition: "result < {{args.max}}",
			Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{
				Address: "{{args.prometheus}}",
				// Counters, not rates, so that the expected values are exact: the share of
				// the canary's answers that were errors. With no error series yet the
				// numerator is 0, not nothing.
				Query: `(sum(http_requests_total{version="{{canary.version}}",code=~"5.."}) or vector(0))` +
					` / sum(http_requests_total{version="{{canary.version}}"})`,
			}},
		}},
	}}
	rollout := slipway.Rollout{ID: "api-2", App: "api", From: "aaa111", FromVersion: "v1", To: "bbb222", ToVersion: "v2"}
	ref := slipway.AnalysisRef{Templates: []string{"error-rate"}, Args: []slipway.Arg{{Name: "prometheus", Value: prom.URL}}}
	runner := func(s slipway.Store) *Runner {
		return NewRunner(Config{Store: s, Providers: map[string]slipway.Provider{"prometheus": prometheus.New(prometheus.Config{})}})
	}
	analyse := func(t *testing.T, id string) slipway.AnalysisRun {
		t.Helper()
		run, err := NewRun(id, slipway.AnalysisStep, 1, rollout, "", ref, templates, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s := newMemStore(t, run)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := runner(s).Execute(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
		return storedRun(t, s, id)
	}

	// The stable version fails a quarter of its requests, the canary 1 in 50 (0.02).
	stable.failEvery.Store(4)
	canary.failEvery.Store(50)
	stable.send(t, 100)
	canary.send(t, 100)
	target.Scraped(t)
	run := analyse(t, "api-2-run1")
	if run.Phase != slipway.VerdictSuccessful {
		t.Fatalf("healthy canary: run = %s %q; want Successful", run.Phase, run.Message)
	}
	if got := run.Results[0].Measurements[0].Value; got != "0.02" {
		t.Errorf("healthy canary measured %s; want 0.02", got)
	}

	// The canary now fails every other request: 2 + 50 errors of 200 answers (0.26).
	canary.failEvery.Store(2)
	canary.send(t, 100)
	target.Scraped(t)
	run = analyse(t, "api-2-run2")
	if run.Phase != slipway.VerdictFailed {
		t.Fatalf("failing canary: run = %s %q; want Failed", run.Phase, run.Message)
	}
	if got := run.Results[0].Measurements[0].Value; got != "0.26" {
		t.Errorf("failing canary measured %s; want 0.26", got)
	}
}
