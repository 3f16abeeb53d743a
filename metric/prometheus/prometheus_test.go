package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/metric/prometheus"
	"slipway.dev/slipway/slipwaytest"
)

// metric returns a metric measured by query at address.
func metric(address, query string) slipway.Metric {
	return slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{Address: address, Query: query}}}
}

// measure measures m with a new provider.
func measure(tb testing.TB, m slipway.Metric) (any, error) {
	tb.Helper()
	return prometheus.New(prometheus.Config{}).Measure(context.Background(), m)
}

// wantValue fails unless m measures want.
func wantValue(tb testing.TB, m slipway.Metric, want float64) {
	tb.Helper()
	got, err := measure(tb, m)
	if err != nil {
		tb.Fatalf("%s: %v", m.Provider.Prometheus.Query, err)
	}
	if got != want {
		tb.Fatalf("%s = %v (%T); want %v", m.Provider.Prometheus.Query, got, got, want)
	}
}

// wantError fails unless measuring m errs with a message holding every part, and, when
// noData, an error that is slipway.ErrNoData (and otherwise one that is not).
func wantError(tb testing.TB, m slipway.Metric, noData bool, parts ...string) error {
	tb.Helper()
	got, err := measure(tb, m)
	if err == nil {
		tb.Fatalf("%s = %v; want an error", m.Provider.Prometheus.Query, got)
	}
	if errors.Is(err, slipway.ErrNoData) != noData {
		tb.Errorf("errors.Is(%v, ErrNoData) = %v; want %v", err, !noData, noData)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			tb.Errorf("error %q does not say %q", err, p)
		}
	}
	return err
}

// TestProvider_RealPrometheus measures queries against a real Prometheus server scraping a
// target whose series the test sets.
func TestProvider_RealPrometheus(t *testing.T) {
	target := slipwaytest.NewTarget(t)
	target.Set(`http_requests_total{version="v1",code="200"}`, 900)
	target.Set(`http_requests_total{version="v1",code="500"}`, 100)
	target.Set(`queue_depth`, 100)
	for rev, v := range map[string]float64{"stable": 0.1, "slow": 0.5, "close": 0.105, "fast": 0.05} {
		target.Set(`latency_seconds{rev="`+rev+`"}`, v)
	}
	target.Set(`idle_ratio{pool="a"}`, math.NaN())
	target.Set(`idle_ratio{pool="b"}`, math.NaN())
	prom := slipwaytest.StartPrometheus(t, target)
	target.Scraped(t)
	// A second value of queue_depth, so that a range query sees it change.
	target.Set(`queue_depth`, 150)
	target.Scraped(t)
	addr := prom.URL

	t.Run("instant query with one series", func(t *testing.T) {
		wantValue(t, metric(addr, `http_requests_total{version="v1",code="500"}`), 100)
		wantValue(t, metric(addr, `sum(http_requests_total{version="v1",code="500"}) / sum(http_requests_total{version="v1"})`), 0.1)
	})
	t.Run("scalar", func(t *testing.T) {
		wantValue(t, metric(addr, `scalar(sum(http_requests_total))`), 1000)
	})
	t.Run("many series without reduce", func(t *testing.T) {
		wantError(t, metric(addr, `http_requests_total`), false, "2 series", `code="200"`, `code="500"`, "sum(...)", "set reduce")
	})
	t.Run("many series reduced", func(t *testing.T) {
		for reduce, want := range map[string]float64{"sum": 1000, "avg": 500, "min": 100, "max": 900} {
			m := metric(addr, `http_requests_total`)
			m.Provider.Prometheus.Reduce = reduce
			wantValue(t, m, want)
		}
		m := metric(addr, `http_requests_total`)
		m.Provider.Prometheus.Reduce = "last"
		wantError(t, m, false, "reduce last takes the latest sample of one series", "2")
	})
	t.Run("empty answer is no data", func(t *testing.T) {
		wantError(t, metric(addr, `http_requests_total{version="v9"}`), true, "no series")
		m := metric(addr, `http_requests_total{version="v9"}`)
		m.Provider.Prometheus.Reduce = "sum"
		wantError(t, m, true, "no series")
	})
	t.Run("NaN and infinities are no data", func(t *testing.T) {
		for _, q := range []string{`0/0`, `1/0`, `-1/0`, `idle_ratio{pool="a"}`, `vector(0) / 0`, `vector(1) / 0`} {
			wantError(t, metric(addr, q), true, "not a finite number")
		}
		m := metric(addr, `idle_ratio`)
		m.Provider.Prometheus.Reduce = "max"
		wantError(t, m, true, "all 2 samples are NaN or infinite")
	})
	t.Run("a reduction leaves NaN out", func(t *testing.T) {
		m := metric(addr, `idle_ratio or queue_depth`)
		m.Provider.Prometheus.Reduce = "avg"
		wantValue(t, m, 150)
	})
	t.Run("range query", func(t *testing.T) {
		for reduce, want := range map[string]float64{"last": 150, "max": 150, "min": 100} {
			m := metric(addr, `queue_depth`)
			m.Provider.Prometheus.Range = &slipway.PrometheusRange{Duration: slipway.Duration(time.Minute), Step: slipway.Duration(time.Second)}
			m.Provider.Prometheus.Reduce = reduce
			wantValue(t, m, want)
		}
		m := metric(addr, `queue_depth`)
		m.Provider.Prometheus.Range = &slipway.PrometheusRange{Duration: slipway.Duration(time.Minute), Step: slipway.Duration(time.Second)}
		wantError(t, m, false, "samples of", "queue_depth", "set reduce")
	})
	t.Run("canary compared with a baseline", func(t *testing.T) {
		cmp := func(canary string, c slipway.PrometheusCompare) map[string]any {
			t.Helper()
			m := metric(addr, `latency_seconds{rev="`+canary+`"}`)
			m.Provider.Prometheus.Range = &slipway.PrometheusRange{Duration: slipway.Duration(time.Minute), Step: slipway.Duration(100 * time.Millisecond)}
			c.Baseline = `latency_seconds{rev="stable"}`
			m.Provider.Prometheus.Compare = &c
			v, err := measure(t, m)
			if err != nil {
				t.Fatal(err)
			}
			return v.(map[string]any)
		}
		// Slower by 5x: High, with the figures behind it.
		got := cmp("slow", slipway.PrometheusCompare{Comparison: slipway.Comparison{Direction: "increase", Tolerance: 0.1}})
		if got["class"] != "High" || got["canaryMedian"] != 0.5 || got["baselineMedian"] != 0.1 || got["canarySamples"].(int) < 10 {
			t.Errorf("a canary 5x slower: %v", got)
		}
		// 5% slower with 10% tolerated: Pass.
		if got := cmp("close", slipway.PrometheusCompare{Comparison: slipway.Comparison{Direction: "increase", Tolerance: 0.1}}); got["class"] != "Pass" {
			t.Errorf("a canary 5%% slower with 10%% tolerated: %v", got)
		}
		// Faster, with higher worse: Pass; with lower worse: Low.
		if got := cmp("fast", slipway.PrometheusCompare{Comparison: slipway.Comparison{Direction: "increase"}}); got["class"] != "Pass" {
			t.Errorf("a faster canary, increase is worse: %v", got)
		}
		if got := cmp("fast", slipway.PrometheusCompare{Comparison: slipway.Comparison{Direction: "decrease"}}); got["class"] != "Low" {
			t.Errorf("a faster canary, decrease is worse: %v", got)
		}
		// A canary with no series: no data, never a pass.
		if got := cmp("gone", slipway.PrometheusCompare{Comparison: slipway.Comparison{Direction: "increase"}}); got["class"] != "NoData" {
			t.Errorf("a canary without samples: %v", got)
		}
	})
	t.Run("string", func(t *testing.T) {
		// client_golang's API client refuses a string answer itself.
		wantError(t, metric(addr, `"ready"`), false, `"string"`)
	})
	t.Run("bad PromQL gives Prometheus's message", func(t *testing.T) {
		wantError(t, metric(addr, `sum(rate(http_requests_total[1m])`), false, addr, "bad_data", "parse error")
		wantError(t, metric(addr, `rate(http_requests_total)`), false, "bad_data", "expected type range vector")
	})
}

// TestProvider_Unreachable: a server that cannot be reached is an error, never no data.
func TestProvider_Unreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantError(t, metric(addr, `up`), false, addr, "connection refused")
}

// TestProvider_Timeout: a server that does not answer within the metric's timeout is an
// error that says so, and the measurement ends then.
func TestProvider_Timeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	m := metric(srv.URL, `up`)
	m.Provider.Prometheus.Timeout = slipway.Duration(200 * time.Millisecond)
	start := time.Now()
	err := wantError(t, m, false, "timed out after 200ms")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v is not context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the measurement took %s; want it to end at its 200ms timeout", d)
	}
}

// authProxy is a reverse proxy in front of a Prometheus server, as many deployments run one:
// it answers 401 unless a request carries the token and tenant it wants, and remembers the
// headers of the last request.
func authProxy(tb testing.TB, backend, token, tenant string) (string, func() http.Header) {
	tb.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		tb.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	seen := make(chan http.Header, 1)
	seen <- nil
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-seen
		seen <- r.Header.Clone()
		if r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("X-Scope-OrgID") != tenant {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL, func() http.Header { h := <-seen; seen <- h; return h }
}

// TestProvider_Headers sends the metric's headers, with a credential read from the server's
// environment or a file, through an authenticating proxy to a real Prometheus server.
func TestProvider_Headers(t *testing.T) {
	target := slipwaytest.NewTarget(t)
	target.Set(`queue_depth`, 7)
	prom := slipwaytest.StartPrometheus(t, target)
	target.Scraped(t)
	const token = "s3cret-token"
	addr, last := authProxy(t, prom.URL, token, "team-a")

	t.Run("without the credential the proxy refuses", func(t *testing.T) {
		m := metric(addr, `queue_depth`)
		m.Provider.Prometheus.Headers = map[string]string{"X-Scope-OrgID": "team-a"}
		wantError(t, m, false, "401", "unauthorized")
	})
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv("SLIPWAY_TEST_PROM_TOKEN", token)
		m := metric(addr, `queue_depth`)
		m.Provider.Prometheus.Headers = map[string]string{"X-Scope-OrgID": "team-a"}
		m.Provider.Prometheus.HeadersFrom = map[string]slipway.HeaderSource{"Authorization": {Env: "SLIPWAY_TEST_PROM_TOKEN", Prefix: "Bearer "}}
		wantValue(t, m, 7)
		if h := last(); h.Get("Authorization") != "Bearer "+token || h.Get("X-Scope-OrgID") != "team-a" {
			t.Errorf("the proxy saw %v", h)
		}
	})
	t.Run("from a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		m := metric(addr, `queue_depth`)
		m.Provider.Prometheus.Headers = map[string]string{"X-Scope-OrgID": "team-a"}
		m.Provider.Prometheus.HeadersFrom = map[string]slipway.HeaderSource{"Authorization": {File: file, Prefix: "Bearer "}}
		wantValue(t, m, 7)
	})
	t.Run("a missing source is an error that names it, not the value", func(t *testing.T) {
		m := metric(addr, `queue_depth`)
		m.Provider.Prometheus.HeadersFrom = map[string]slipway.HeaderSource{"Authorization": {Env: "SLIPWAY_TEST_PROM_UNSET"}}
		wantError(t, m, false, "header Authorization", "SLIPWAY_TEST_PROM_UNSET is not set")
		t.Setenv("SLIPWAY_TEST_PROM_TOKEN", "line\nbreak")
		m.Provider.Prometheus.HeadersFrom = map[string]slipway.HeaderSource{"Authorization": {Env: "SLIPWAY_TEST_PROM_TOKEN", Prefix: "Bearer "}}
		err := wantError(t, m, false, "line break")
		if strings.Contains(err.Error(), "line") && strings.Contains(err.Error(), "break\"") {
			t.Errorf("error %q quotes the value", err)
		}
	})
}

// TestProvider_ResponseLimit: a response larger than MaxResponse is an error, read no
// further.
func TestProvider_ResponseLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"string","result":[1,"`)
		_, _ = w.Write(bytes.Repeat([]byte("x"), prometheus.MaxResponse))
		fmt.Fprint(w, `"]}}`)
	}))
	t.Cleanup(srv.Close)
	wantError(t, metric(srv.URL, `up`), false, "larger than")
}

// TestProvider_Warnings: the warnings Prometheus answers with are logged with the metric,
// and the value is still measured.
func TestProvider_Warnings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","warnings":["partial response: store b unreachable"],`+
			`"data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}}`)
	}))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	p := prometheus.New(prometheus.Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	got, err := p.Measure(context.Background(), metric(srv.URL, `up`))
	if err != nil || got != 0.25 {
		t.Fatalf("Measure = %v, %v; want 0.25", got, err)
	}
	for _, want := range []string{"prometheus answered with warnings", "metric=m", "store b unreachable"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q does not say %q", logs.String(), want)
		}
	}
}

// TestProvider_InvalidSpec: what validation refuses is refused here too, before any request.
func TestProvider_InvalidSpec(t *testing.T) {
	long := metric("http://127.0.0.1:9", strings.Repeat("x", slipway.MaxPrometheusQuery+1))
	badReduce := metric("http://127.0.0.1:9", "up")
	badReduce.Provider.Prometheus.Reduce = "median"
	points := metric("http://127.0.0.1:9", "up")
	points.Provider.Prometheus.Range = &slipway.PrometheusRange{Duration: slipway.Duration(24 * time.Hour), Step: slipway.Duration(time.Second)}
	for name, m := range map[string]slipway.Metric{
		"scheme":    metric("ftp://127.0.0.1:9", "up"),
		"query":     metric("http://127.0.0.1:9?x=1", "up"),
		"empty":     metric("http://127.0.0.1:9", " "),
		"long":      long,
		"reduce":    badReduce,
		"points":    points,
		"not prom":  {Name: "m"},
		"no header": {Name: "m", Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{Address: "http://127.0.0.1:9", Query: "up", Headers: map[string]string{"Content-Type": "text/plain"}}}},
	} {
		_, err := measure(t, m)
		if slipway.ErrorCode(err) != slipway.EINVALID && name != "no header" {
			t.Errorf("%s: error %v; want EINVALID", name, err)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
