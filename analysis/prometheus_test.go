package analysis

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"slipway.dev/slipway"
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
