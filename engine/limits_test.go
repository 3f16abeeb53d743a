package engine_test

import (
	"context"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

// TestApply_RefusesReplicasOverTheServersMaximum: a set beyond the server's maximum is
// refused by plan and apply, and nothing is stored or started.
func TestApply_RefusesReplicasOverTheServersMaximum(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	two := 2
	for _, a := range []slipway.App{
		{Name: "web", Replicas: slipway.DefaultMaxReplicas + 1},
		{Name: "web", Replicas: 1, Strategy: slipway.Strategy{BlueGreen: &slipway.BlueGreenStrategy{PreviewReplicas: ptr(slipway.DefaultMaxReplicas + 1)}}},
		{Name: "web", Replicas: 1, Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{
			{SetCanaryScale: &slipway.CanaryScale{Replicas: ptr(slipway.DefaultMaxReplicas + 1)}}, {SetWeight: &two}}}}},
	} {
		a.Run = slipway.RunSpec{Command: "./web"}
		if a.Strategy.Kind() == "" {
			a.Strategy.Rolling = &slipway.RollingStrategy{}
		}
		set := slipway.Set{Apps: []slipway.App{a}}
		for name, call := range map[string]func() error{
			"plan":  func() error { _, err := h.eng.Plan(ctx, set, slipway.ApplyOptions{}); return err },
			"apply": func() error { _, err := h.eng.Apply(ctx, set, slipway.ApplyOptions{}); return err },
		} {
			err := call()
			if slipway.ErrorCode(err) != slipway.EINVALID || !strings.Contains(err.Error(), "exceeds this server's maximum") {
				t.Errorf("%s: %v; want EINVALID naming the maximum", name, err)
			}
		}
	}
	if apps, err := h.store.Apps(ctx); err != nil || len(apps) != 0 {
		t.Errorf("apps stored after refused applies: %d, %v", len(apps), err)
	}
}

func ptr[T any](v T) *T { return &v }
