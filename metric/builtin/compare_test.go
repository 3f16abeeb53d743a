package builtin

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func compareMetric(baseline string, c slipway.Comparison) slipway.Metric {
	m := metric(slipway.BuiltinLatencyP95, "c1", 10*time.Second)
	m.Provider.Builtin.MinRequests = 12
	m.Provider.Builtin.Compare = &slipway.BuiltinCompare{Baseline: baseline, Comparison: c}
	return m
}

func TestProvider_CompareJudgesLatencyAgainstTheBaseline(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics)
	increase := slipway.Comparison{Direction: "increase", Tolerance: 0.1, Margin: 0.01}

	// Too few requests on either side: the metric waits, never passes.
	s.send(t, "s1", "/", 12, http.StatusOK)
	if _, err := p.Measure(context.Background(), compareMetric("s1", increase)); !errors.Is(err, slipway.ErrInsufficientData) {
		t.Fatalf("a canary with no requests: err %v, want ErrInsufficientData", err)
	}

	// As fast as the baseline: Pass.
	s.send(t, "c1", "/", 12, http.StatusOK)
	got := measureMap(t, p, compareMetric("s1", increase))
	if got["class"] != "Pass" || got["canary"] != "c1" || got["baseline"] != "s1" || got["canarySamples"] != 12 {
		t.Fatalf("canary as fast as the baseline: %v, want Pass of c1 against s1 on 12 samples", got)
	}

	// A new window in which every canary request takes 200ms more: High when higher is
	// worse, Pass when lower is.
	s.clock.Advance(11 * time.Second)
	s.send(t, "s1", "/", 12, http.StatusOK)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { s.send(t, "c1", "/slow", 3, http.StatusOK) })
	}
	wg.Wait()
	if got := measureMap(t, p, compareMetric("s1", increase)); got["class"] != "High" {
		t.Fatalf("a canary 200ms slower: %v, want High", got)
	}
	decrease := increase
	decrease.Direction = "decrease"
	if got := measureMap(t, p, compareMetric("s1", decrease)); got["class"] != "Pass" {
		t.Fatalf("a slower canary when lower is worse: %v, want Pass", got)
	}
}

func TestProvider_CompareRefusesWhatItCannotJudge(t *testing.T) {
	s := newShop(t)
	p := New(s.metrics)
	c := slipway.Comparison{Direction: "increase"}
	for name, m := range map[string]slipway.Metric{
		"error rate": func() slipway.Metric {
			m := compareMetric("s1", c)
			m.Provider.Builtin.Metric = slipway.BuiltinErrorRate
			return m
		}(),
		"unresolved baseline": compareMetric("baseline", c),
		"placeholder":         compareMetric("{{baseline.revision}}", c),
		"bad direction":       compareMetric("s1", slipway.Comparison{Direction: "up"}),
	} {
		s.send(t, "s1", "/", 12, http.StatusOK)
		s.send(t, "c1", "/", 12, http.StatusOK)
		if _, err := p.Measure(context.Background(), m); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
	}
}

func TestLatencySample_KeepsTheShapeUnderTheCap(t *testing.T) {
	w := slipway.RequestWindow{Latency: []slipway.LatencyBucket{
		{Above: 0, UpTo: 10 * time.Millisecond, Count: 3},
		{Above: 10 * time.Millisecond, UpTo: 50 * time.Millisecond, Count: 1},
		{Above: 5 * time.Second, UpTo: 0, Count: 2},
	}}
	got := latencySample(w)
	want := []float64{0.01, 0.01, 0.01, 0.05, 5, 5}
	if len(got) != len(want) {
		t.Fatalf("sample %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %v, want %v", got, want)
		}
	}
	big := slipway.RequestWindow{Latency: []slipway.LatencyBucket{
		{UpTo: time.Millisecond, Count: 300_000}, {Above: time.Millisecond, UpTo: time.Second, Count: 100_000},
	}}
	s := latencySample(big)
	slow := 0
	for _, v := range s {
		if v == 1 {
			slow++
		}
	}
	if len(s) != maxCompareSample || slow != maxCompareSample/4 {
		t.Fatalf("thinned sample of %d values with %d slow, want %d with a quarter slow", len(s), slow, maxCompareSample)
	}
}

func measureMap(tb testing.TB, p *Provider, m slipway.Metric) map[string]any {
	tb.Helper()
	v, err := p.Measure(context.Background(), m)
	if err != nil {
		tb.Fatalf("Measure: %v", err)
	}
	out, ok := v.(map[string]any)
	if !ok {
		tb.Fatalf("Measure returned %T, want a judgement", v)
	}
	return out
}
