package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics_PrometheusText(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if again := NewMetrics(reg); again.requests != m.requests {
		t.Error("a second NewMetrics on one registry did not reuse the series")
	}
	p, url := newProxy(t, Config{Metrics: m})
	status := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	mustUpdate(t, p, Table{
		Split:    weights("stable", 100),
		Backends: map[string][]Backend{"stable": {{ID: "s1", Addr: startBackend(t, status)}}},
		Versions: map[string]string{"stable": "1.4.2"},
	})
	c := client(t)
	for _, path := range []string{"/", "/", "/fail"} {
		get(t, c, http.MethodGet, url+path, nil)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	_, text, _ := get(t, c, http.MethodGet, srv.URL, nil)
	for _, want := range []string{
		`slipway_proxy_requests_total{app="shop",code_class="2xx",revision="stable",version="1.4.2"} 2`,
		`slipway_proxy_requests_total{app="shop",code_class="5xx",revision="stable",version="1.4.2"} 1`,
		`slipway_proxy_request_duration_seconds_count{app="shop",revision="stable",version="1.4.2"} 3`,
		`slipway_proxy_in_flight{app="shop",revision="stable",version="1.4.2"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

func TestMetrics_WindowThroughProxy(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m := NewMetricsWithClock(nil, clock.Now)
	p, url := newProxy(t, Config{Metrics: m})
	status := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/404":
			w.WriteHeader(http.StatusNotFound)
		}
	})
	mustUpdate(t, p, Table{
		Split:    weights("canary", 50, "stable", 50),
		Backends: map[string][]Backend{"canary": {{ID: "c1", Addr: startBackend(t, status)}}, "stable": nil},
	})
	c := client(t)
	send := func(path string, n int) {
		for range n {
			get(t, c, http.MethodGet, url+path, nil)
		}
	}
	send("/", 6) // second 0
	send("/500", 2)
	clock.Add(time.Second)
	send("/404", 1) // second 1
	send("/500", 1)
	clock.Add(5 * time.Second) // now second 6

	w := m.Window("shop", "canary", 10*time.Second)
	if w.Requests != 10 || w.Errors5xx != 3 || w.Errors4xx != 1 {
		t.Errorf("10s window: %+v", w)
	}
	if w.ErrorRate != 0.3 || w.RequestRate != 1 {
		t.Errorf("rates: error %v request %v, want 0.3 and 1", w.ErrorRate, w.RequestRate)
	}
	if !w.Since.Equal(time.Unix(1_700_000_000-3, 0)) {
		t.Errorf("since %v", w.Since)
	}
	if w.P50 <= 0 || w.P99 < w.P50 {
		t.Errorf("quantiles %v %v", w.P50, w.P99)
	}
	// The last 6 seconds hold second 1 only.
	if w := m.Window("shop", "canary", 6*time.Second); w.Requests != 2 || w.Errors5xx != 1 || w.Errors4xx != 1 {
		t.Errorf("6s window: %+v", w)
	}
	if w := m.Window("shop", "canary", time.Second); w.Requests != 0 {
		t.Errorf("1s window: %+v", w)
	}
	if w := m.Window("shop", "stable", time.Minute); w.Requests != 0 {
		t.Errorf("stable served nothing: %+v", w)
	}
	// Ten minutes later the ring has wrapped: old counts do not come back.
	clock.Add(10 * time.Minute)
	if w := m.Window("shop", "canary", 10*time.Minute); w.Requests != 0 {
		t.Errorf("after the ring wrapped: %+v", w)
	}
}

func TestMetrics_WindowQuantiles(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m := NewMetricsWithClock(nil, clock.Now)
	rm := m.revision("shop", "r1", "v1")
	// 100 requests over two seconds: 90 at 10ms, 9 at 200ms, 1 at 2s.
	for i := range 100 {
		d := 10 * time.Millisecond
		switch {
		case i >= 99:
			d = 2 * time.Second
		case i >= 90:
			d = 200 * time.Millisecond
		}
		rm.record(http.StatusOK, d, time.Now())
		if i == 49 {
			clock.Add(time.Second)
		}
	}
	w := m.Window("shop", "r1", 2*time.Second)
	if w.Requests != 100 || w.RequestRate != 50 {
		t.Fatalf("window: %+v", w)
	}
	within := func(name string, got, want time.Duration) {
		if got < want*3/4 || got > want*5/4 {
			t.Errorf("%s = %v, want about %v", name, got, want)
		}
	}
	within("p50", w.P50, 10*time.Millisecond)
	within("p95", w.P95, 200*time.Millisecond)
	within("p99", w.P99, 200*time.Millisecond)
	// The histogram: 100 requests in all, 10 slower than 100ms (the 200ms and 2s ones), 1
	// slower than 1s, and none of the 10ms ones counted slow against 50ms.
	var total int64
	for _, b := range w.Latency {
		total += b.Count
		if b.UpTo != 0 && b.UpTo <= b.Above {
			t.Errorf("bucket %+v is empty", b)
		}
	}
	for _, c := range []struct {
		limit time.Duration
		want  int64
	}{{50 * time.Millisecond, 10}, {100 * time.Millisecond, 10}, {time.Second, 1}, {time.Minute, 0}, {time.Millisecond, 100}} {
		if got := w.SlowerThan(c.limit); got != c.want {
			t.Errorf("SlowerThan(%v) = %d, want %d (histogram %+v)", c.limit, got, c.want, w.Latency)
		}
	}
	if total != w.Requests {
		t.Errorf("histogram holds %d requests, the window %d", total, w.Requests)
	}
	if w := m.Window("nope", "r1", time.Minute); w.Requests != 0 || w.P99 != 0 {
		t.Errorf("unknown app: %+v", w)
	}
}

func TestMetrics_ForgetsIdleRevisions(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	m := NewMetricsWithClock(reg, clock.Now)
	p := New(Config{App: "shop", Metrics: m})
	mustUpdate(t, p, Table{Split: weights("old", 100), Versions: map[string]string{"old": "1"}})
	m.revision("shop", "old", "1").record(200, time.Millisecond, time.Now())
	mustUpdate(t, p, Table{Split: weights("new", 100)})
	if w := m.Window("shop", "old", time.Minute); w.Requests != 1 {
		t.Fatalf("a revision's recent data was dropped: %+v", w)
	}
	clock.Add(11 * time.Minute)
	mustUpdate(t, p, Table{Split: weights("new", 100)})
	m.mu.Lock()
	_, kept := m.rings[ringKey{"shop", "old"}]
	m.mu.Unlock()
	if kept {
		t.Error("idle revision's ring kept")
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	_, text, _ := get(t, client(t), http.MethodGet, srv.URL, nil)
	if strings.Contains(text, `revision="old"`) {
		t.Errorf("idle revision's series kept:\n%s", text)
	}
}
