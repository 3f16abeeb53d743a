package builtin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// sequentialMetric is a builtin metric of app shop judging canary c1 against stable s1 by a
// sequential test counted from since.
func sequentialMetric(name string, since time.Time, s slipway.SequentialTest) slipway.Metric {
	s.Baseline = "s1"
	s.Since = &since
	return slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
		Metric: name, Revision: "c1", App: "shop", Sequential: &s,
	}}}
}

func TestProvider_SequentialDecides(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics).WithClock(s.clock.Now)
	start := s.clock.Now()
	m := sequentialMetric(slipway.BuiltinErrorRate, start, slipway.SequentialTest{Tolerance: 0.01, Scale: 0.1, MinRequests: 20})

	t.Run("too few requests is no decision, whatever they were", func(t *testing.T) {
		s.send(t, "c1", "/fail", 5, http.StatusInternalServerError)
		s.send(t, "s1", "/", 200, http.StatusOK)
		_, err := p.Measure(context.Background(), m)
		if !errors.Is(err, slipway.ErrInsufficientData) || !strings.Contains(err.Error(), "waiting for 20 requests on each side (canary 5/5, baseline 0/200)") {
			t.Fatalf("Measure = %v, want insufficient data naming the counts", err)
		}
	})
	t.Run("a canary failing a fifth of its requests fails", func(t *testing.T) {
		s.clock.Advance(time.Second)
		s.send(t, "c1", "/", 20, http.StatusOK)
		v, err := p.Measure(context.Background(), m)
		if err != nil {
			t.Fatalf("Measure: %v", err)
		}
		got := v.(map[string]any)
		canary, baseline := got["canary"].(map[string]any), got["baseline"].(map[string]any)
		if got["decision"] != "Fail" || canary["requests"] != 25.0 || canary["failures"] != 5.0 || canary["revision"] != "c1" ||
			baseline["requests"] != 200.0 || baseline["failures"] != 0.0 || baseline["revision"] != "s1" {
			t.Errorf("value = %v", got)
		}
		if f := got["failEvidence"].(float64); f < got["failAt"].(float64) || got["failAt"] != 20.0 {
			t.Errorf("fail evidence %v does not reach %v", f, got["failAt"])
		}
		if r := got["reason"].(string); !strings.Contains(r, "the canary fails more than tolerated") || !strings.Contains(r, "canary 5/25, baseline 0/200") {
			t.Errorf("reason = %q", r)
		}
	})
	t.Run("counts start with the run", func(t *testing.T) {
		s.clock.Advance(time.Second)
		later := sequentialMetric(slipway.BuiltinErrorRate, s.clock.Now(), slipway.SequentialTest{Tolerance: 0.01, Scale: 0.1, MinRequests: 20})
		s.send(t, "c1", "/", 25, http.StatusOK)
		s.send(t, "s1", "/", 25, http.StatusOK)
		_, err := p.Measure(context.Background(), later)
		// The five failures of the earlier seconds are not the new run's: no failure each
		// side, and too few requests to show the canary within one point.
		if !errors.Is(err, slipway.ErrInsufficientData) || !strings.Contains(err.Error(), "not yet decided") || !strings.Contains(err.Error(), "canary 0/25, baseline 0/25") {
			t.Fatalf("Measure = %v, want no decision on 0/25 against 0/25", err)
		}
	})
}

func TestProvider_SequentialPasses(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics).WithClock(s.clock.Now)
	m := sequentialMetric(slipway.BuiltinErrorRate, s.clock.Now(), slipway.SequentialTest{Tolerance: 0.1, MinRequests: 20})
	s.send(t, "c1", "/", 150, http.StatusOK)
	s.send(t, "s1", "/", 150, http.StatusOK)
	v, err := p.Measure(context.Background(), m)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	got := v.(map[string]any)
	if got["decision"] != "Pass" || !strings.Contains(got["reason"].(string), "within tolerance") {
		t.Errorf("value = %v", got)
	}
}

func TestProvider_SequentialNeverPassesWithoutBaseline(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics).WithClock(s.clock.Now)
	m := sequentialMetric(slipway.BuiltinErrorRate, s.clock.Now(), slipway.SequentialTest{Tolerance: 0.1, MinRequests: 20})
	s.send(t, "c1", "/", 300, http.StatusOK)
	_, err := p.Measure(context.Background(), m)
	if !errors.Is(err, slipway.ErrInsufficientData) || !strings.Contains(err.Error(), "baseline 0/0") {
		t.Fatalf("Measure = %v, want insufficient data: the stable revision served nothing", err)
	}
}

func TestProvider_SequentialSlowRequests(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics).WithClock(s.clock.Now)
	m := sequentialMetric(slipway.BuiltinSlowRate, s.clock.Now(), slipway.SequentialTest{Tolerance: 0.05, Scale: 0.2, MinRequests: 10})
	m.Provider.Builtin.SlowerThan = slipway.Duration(100 * time.Millisecond)
	s.send(t, "c1", "/slow", 10, http.StatusOK)
	s.send(t, "c1", "/", 10, http.StatusOK)
	s.send(t, "s1", "/", 30, http.StatusOK)
	v, err := p.Measure(context.Background(), m)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	got := v.(map[string]any)
	if got["decision"] != "Fail" || got["canary"].(map[string]any)["failures"] != 10.0 {
		t.Errorf("value = %v, want Fail with 10 slow canary requests", got)
	}
	// Without a sequential test, slow_rate is the share of slow requests.
	plain := metric(slipway.BuiltinSlowRate, "c1", time.Minute)
	plain.Provider.Builtin.SlowerThan = slipway.Duration(100 * time.Millisecond)
	if got := measure(t, p, plain); got != 0.5 {
		t.Errorf("slow_rate = %v, want 0.5", got)
	}
}

func TestProvider_SequentialFailsClosed(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics).WithClock(s.clock.Now)
	start := s.clock.Now()
	s.send(t, "c1", "/", 100, http.StatusOK)
	s.send(t, "s1", "/", 100, http.StatusOK)
	tests := map[string]struct {
		edit func(*slipway.Metric)
		want error
	}{
		"unresolved baseline": {func(m *slipway.Metric) { m.Provider.Builtin.Sequential.Baseline = "stable" }, slipway.Errorf(slipway.EINVALID, "")},
		"no start":            {func(m *slipway.Metric) { m.Provider.Builtin.Sequential.Since = nil }, slipway.Errorf(slipway.EINVALID, "")},
		"a latency quantile":  {func(m *slipway.Metric) { m.Provider.Builtin.Metric = slipway.BuiltinLatencyP99 }, slipway.Errorf(slipway.EINVALID, "")},
		"tolerance out of range": {func(m *slipway.Metric) { m.Provider.Builtin.Sequential.Tolerance = 2 },
			slipway.Errorf(slipway.EINVALID, "")},
		"longer than the proxy keeps": {func(m *slipway.Metric) {
			old := start.Add(-11 * time.Minute)
			m.Provider.Builtin.Sequential.Since = &old
		}, slipway.ErrNoData},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := sequentialMetric(slipway.BuiltinErrorRate, start, slipway.SequentialTest{Tolerance: 0.1, MinRequests: 20})
			tc.edit(&m)
			v, err := p.Measure(context.Background(), m)
			if v != nil || err == nil {
				t.Fatalf("Measure = %v, %v; want no value and an error", v, err)
			}
			var want *slipway.Error
			if errors.As(tc.want, &want) {
				if slipway.ErrorCode(err) != want.Code {
					t.Errorf("error %v has code %s, want %s", err, slipway.ErrorCode(err), want.Code)
				}
			} else if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}
