package builtin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"

	"slipway.dev/slipway/slipwaytest"
)

func outcomeMetric(metric, variant, outcome string) slipway.Metric {
	return slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
		Metric: metric, Flag: "checkout", Variant: variant, Outcome: outcome, Window: slipway.Duration(10 * time.Second),
	}}}
}

func TestProvider_Outcomes(t *testing.T) {
	c := slipwaytest.NewClock(time.Unix(1_700_000_000, 0))
	o := flags.NewOutcomes(c.Now)
	p := NewWithOutcomes(nil, o)
	ctx := context.Background()
	o.Record("checkout", "on", "error", 6)
	o.Record("checkout", "on", "success", 14)
	o.Record("checkout", "on", "conversion", 5) // every outcome counts in the total
	o.Record("checkout", "off", "success", 20)

	for _, tc := range []struct {
		name string
		m    slipway.Metric
		want float64
	}{
		{"error rate by default", outcomeMetric(slipway.BuiltinOutcomeRate, "on", ""), 6.0 / 25},
		{"named outcome rate", outcomeMetric(slipway.BuiltinOutcomeRate, "on", "conversion"), 5.0 / 25},
		{"count", outcomeMetric(slipway.BuiltinOutcomeCount, "on", "error"), 6},
		{"a healthy variant", outcomeMetric(slipway.BuiltinOutcomeRate, "off", "error"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Measure(ctx, tc.m)
			if err != nil || v != tc.want {
				t.Fatalf("Measure = %v, %v; want %v", v, err, tc.want)
			}
		})
	}
	t.Run("fewer outcomes than the minimum sample is not enough data yet", func(t *testing.T) {
		o.Record("checkout", "beta", "error", 1)
		o.Record("checkout", "beta", "success", 18)
		m := outcomeMetric(slipway.BuiltinOutcomeRate, "beta", "")
		_, err := p.Measure(ctx, m)
		if !errors.Is(err, slipway.ErrInsufficientData) || !strings.Contains(err.Error(), "19 of the 20 reported outcomes") {
			t.Fatalf("err = %v; want ErrInsufficientData naming 19 of 20", err)
		}
		m.Provider.Builtin.MinRequests = 19
		if v, err := p.Measure(ctx, m); err != nil || v != 1.0/19 {
			t.Fatalf("with minRequests 19: Measure = %v, %v; want 1/19", v, err)
		}
	})
	t.Run("nothing reported is not enough data yet", func(t *testing.T) {
		c.Advance(time.Minute)
		_, err := p.Measure(ctx, outcomeMetric(slipway.BuiltinOutcomeRate, "on", ""))
		if !errors.Is(err, slipway.ErrInsufficientData) {
			t.Fatalf("err = %v; want ErrInsufficientData", err)
		}
	})
	t.Run("a metric without flag or variant is invalid", func(t *testing.T) {
		m := outcomeMetric(slipway.BuiltinOutcomeRate, "{{variant}}", "")
		if _, err := p.Measure(ctx, m); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("unexpanded variant: %v; want EINVALID", err)
		}
		m = outcomeMetric(slipway.BuiltinOutcomeRate, "on", "")
		m.Provider.Builtin.Flag = ""
		if _, err := p.Measure(ctx, m); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("no flag: %v; want EINVALID", err)
		}
	})
	t.Run("a provider without outcomes refuses", func(t *testing.T) {
		if _, err := New(nil).Measure(ctx, outcomeMetric(slipway.BuiltinOutcomeRate, "on", "")); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("err = %v; want EINVALID", err)
		}
	})
}
