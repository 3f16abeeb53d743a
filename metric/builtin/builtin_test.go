package builtin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/proxy"

	"slipway.dev/slipway/slipwaytest"
)

// shop is app "shop" behind a real proxy.Proxy in an httptest server, with two revisions:
// "c1" (the canary: /fail answers 500, /slow takes 200ms) and "s1" (the stable: always 200).
type shop struct {
	clock   *slipwaytest.Clock
	metrics *proxy.Metrics
	url     string
	client  *http.Client
}

func newShop(tb testing.TB) *shop {
	tb.Helper()
	c := slipwaytest.NewClock(time.Unix(1_700_000_000, 0))
	m := proxy.NewMetricsWithClock(nil, c.Now)
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			time.Sleep(200 * time.Millisecond) // a slow backend: the latency under test
		}
	}))
	tb.Cleanup(canary.Close)
	stable := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tb.Cleanup(stable.Close)
	p := proxy.New(proxy.Config{App: "shop", Metrics: m})
	front := httptest.NewServer(p)
	tb.Cleanup(func() {
		front.Close()
		p.CloseIdleConnections()
	})
	// Header routes send X-Rev: c1 to the canary and everything else to the stable.
	err := p.Update(proxy.Table{
		Split: slipway.Split{
			Weights: []slipway.Weight{{Revision: "c1", Weight: 0}, {Revision: "s1", Weight: 100}},
			Routes:  []slipway.Route{{Name: "canary", Revision: "c1", Match: []slipway.HeaderMatch{{Header: "X-Rev", Exact: "c1"}}}},
		},
		Backends: map[string][]proxy.Backend{
			"c1": {{ID: "c1-0", Addr: canary.Listener.Addr().String()}},
			"s1": {{ID: "s1-0", Addr: stable.Listener.Addr().String()}},
		},
		Versions: map[string]string{"c1": "v2", "s1": "v1"},
	})
	if err != nil {
		tb.Fatalf("proxy update: %v", err)
	}
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &shop{clock: c, metrics: m, url: front.URL, client: &http.Client{Transport: tr}}
}

// send makes n requests for path through the proxy to revision rev and checks the status.
func (s *shop) send(tb testing.TB, rev, path string, n, want int) {
	tb.Helper()
	for range n {
		req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if rev == "c1" {
			req.Header.Set("X-Rev", "c1")
		}
		resp, err := s.client.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			tb.Fatalf("GET %s on %s: status %d, want %d", path, rev, resp.StatusCode, want)
		}
	}
}

// metric is a builtin metric of app shop with a minimum sample of one request, so that a
// handful of requests is measured.
func metric(name, rev string, window time.Duration) slipway.Metric {
	return slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
		Metric: name, Revision: rev, Window: slipway.Duration(window), App: "shop", MinRequests: 1,
	}}}
}

func measure(tb testing.TB, p *Provider, m slipway.Metric) float64 {
	tb.Helper()
	v, err := p.Measure(context.Background(), m)
	if err != nil {
		tb.Fatalf("Measure(%+v): %v", *m.Provider.Builtin, err)
	}
	f, ok := v.(float64)
	if !ok {
		tb.Fatalf("Measure returned %T, want float64", v)
	}
	return f
}

func TestProvider_MeasuresWhatTheProxyServed(t *testing.T) {
	s := newShop(t)
	s.send(t, "c1", "/", 4, http.StatusOK)
	s.send(t, "c1", "/fail", 2, http.StatusInternalServerError)
	s.clock.Advance(time.Second)
	s.send(t, "c1", "/slow", 2, http.StatusOK)
	s.send(t, "s1", "/", 5, http.StatusOK)
	p := New(s.metrics)

	tests := []struct {
		metric, rev string
		window      time.Duration
		want        float64
	}{
		{slipway.BuiltinRequests, "c1", 2 * time.Second, 8},
		{slipway.BuiltinErrorRate, "c1", 2 * time.Second, 0.25},
		{slipway.BuiltinRequestRate, "c1", 2 * time.Second, 4},
		{slipway.BuiltinRequests, "c1", time.Second, 2}, // only the current second
		{slipway.BuiltinErrorRate, "c1", time.Second, 0},
		{slipway.BuiltinRequests, "s1", 2 * time.Second, 5},
		{slipway.BuiltinErrorRate, "s1", 2 * time.Second, 0},
		{slipway.BuiltinRequestRate, "s1", 10 * time.Second, 0.5},
	}
	for _, tc := range tests {
		if got := measure(t, p, metric(tc.metric, tc.rev, tc.window)); got != tc.want {
			t.Errorf("%s of %s over %s = %v, want %v", tc.metric, tc.rev, tc.window, got, tc.want)
		}
	}

	// Latency is in seconds: two of the eight canary requests took at least 200ms.
	p50 := measure(t, p, metric(slipway.BuiltinLatencyP50, "c1", 2*time.Second))
	p95 := measure(t, p, metric(slipway.BuiltinLatencyP95, "c1", 2*time.Second))
	p99 := measure(t, p, metric(slipway.BuiltinLatencyP99, "c1", 2*time.Second))
	if p50 <= 0 || p50 >= 0.15 {
		t.Errorf("latency_p50 = %v s, want between 0 and 0.15 (six fast requests of eight)", p50)
	}
	if p95 < 0.15 || p99 < p95 || p99 > 5 {
		t.Errorf("latency_p95 = %v s, p99 = %v s, want 0.15 <= p95 <= p99 < 5 (two 200ms requests of eight)", p95, p99)
	}
}

func TestProvider_WaitsForTheMinimumSample(t *testing.T) {
	s := newShop(t)
	s.send(t, "c1", "/", 8, http.StatusOK)
	p := New(s.metrics)
	byDefault := metric(slipway.BuiltinErrorRate, "c1", 0)
	byDefault.Provider.Builtin.MinRequests = 0
	_, err := p.Measure(context.Background(), byDefault)
	if !errors.Is(err, slipway.ErrInsufficientData) || errors.Is(err, slipway.ErrNoData) ||
		!strings.Contains(err.Error(), "answered 8 of the 20 requests needed (minRequests) in the last 30s") {
		t.Fatalf("8 requests against the default minimum: %v; want ErrInsufficientData naming 8 of 20", err)
	}
	s.send(t, "c1", "/fail", 12, http.StatusInternalServerError)
	if got := measure(t, p, byDefault); got != 12.0/20 {
		t.Fatalf("error_rate of 20 requests = %v, want 0.6", got)
	}
	more := metric(slipway.BuiltinRequests, "c1", 0)
	more.Provider.Builtin.MinRequests = 21
	if _, err := p.Measure(context.Background(), more); !errors.Is(err, slipway.ErrInsufficientData) {
		t.Fatalf("20 requests against minRequests 21: %v; want ErrInsufficientData", err)
	}
}

func TestProvider_NoRequestsIsNotEnoughData(t *testing.T) {
	s := newShop(t)
	s.send(t, "c1", "/fail", 3, http.StatusInternalServerError)
	p := New(s.metrics)
	// The default window (30s) still sees them 20s later; at 40s they are out of it.
	s.clock.Advance(20 * time.Second)
	if got := measure(t, p, metric(slipway.BuiltinErrorRate, "c1", 0)); got != 1 {
		t.Errorf("error_rate over the default window = %v, want 1", got)
	}
	s.clock.Advance(20 * time.Second)
	for _, tc := range []struct{ name, metric, rev string }{
		{"window passed", slipway.BuiltinErrorRate, "c1"},
		{"requests of a window passed", slipway.BuiltinRequests, "c1"},
		{"never served", slipway.BuiltinErrorRate, "nope"},
		{"latency of an idle revision", slipway.BuiltinLatencyP99, "s1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Measure(context.Background(), metric(tc.metric, tc.rev, 0))
			if !errors.Is(err, slipway.ErrInsufficientData) || !strings.Contains(err.Error(), "answered 0 of the 1 requests") {
				t.Errorf("Measure = %v, %v; want ErrInsufficientData", v, err)
			}
		})
	}
}

func TestProvider_RejectsUnresolvedMetrics(t *testing.T) {
	p := New(proxy.NewMetrics(nil))
	noApp := metric(slipway.BuiltinErrorRate, "c1", time.Second)
	noApp.Provider.Builtin.App = ""
	for name, m := range map[string]slipway.Metric{
		"not builtin":       {Name: "m", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "true"}}},
		"no app":            noApp,
		"canary unresolved": metric(slipway.BuiltinErrorRate, "canary", time.Second),
		"stable unresolved": metric(slipway.BuiltinErrorRate, "stable", time.Second),
		"no revision":       metric(slipway.BuiltinErrorRate, "", time.Second),
		"placeholder left":  metric(slipway.BuiltinErrorRate, "{{canary.revision}}", time.Second),
		"unknown metric":    metric("error_ratio", "c1", time.Second),
		"empty metric":      metric("", "c1", time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := p.Measure(context.Background(), m)
			if slipway.ErrorCode(err) != slipway.EINVALID {
				t.Errorf("Measure = %v, %v; want EINVALID", v, err)
			}
		})
	}
}

func TestProvider_CanceledContext(t *testing.T) {
	s := newShop(t)
	s.send(t, "c1", "/", 1, http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v, err := New(s.metrics).Measure(ctx, metric(slipway.BuiltinRequests, "c1", time.Second)); !errors.Is(err, context.Canceled) {
		t.Errorf("Measure = %v, %v; want context.Canceled", v, err)
	}
}

// failingMetrics is a platform that cannot measure (a data plane that does not answer).
type failingMetrics struct{}

func (failingMetrics) RequestWindow(context.Context, string, string, time.Duration) (slipway.RequestWindow, error) {
	return slipway.RequestWindow{}, errors.New("the data plane does not answer")
}

// TestProvider_UnmeasurableIsAnError: when the request metrics cannot be read, Measure
// fails; it never reports the empty window as an error rate of 0.
func TestProvider_UnmeasurableIsAnError(t *testing.T) {
	for name, p := range map[string]*Provider{"failing": New(failingMetrics{}), "none": New(nil)} {
		v, err := p.Measure(context.Background(), metric(slipway.BuiltinErrorRate, "c1", 0))
		if err == nil {
			t.Errorf("%s: Measure = %v with no measurement, want an error", name, v)
		}
	}
}
