package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
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
		// An experiment runs this many of each of canary and baseline.
		{Name: "web", Replicas: 1, Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{
			{Experiment: &slipway.Experiment{Weight: 10, Replicas: ptr(slipway.DefaultMaxReplicas + 1), Duration: slipway.Duration(time.Minute)}}, {SetWeight: &two}}}}},
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
			if msg := slipway.ErrorMessage(err); msg != "1 error in the set" {
				t.Errorf("%s: message %q, want \"1 error in the set\"", name, msg)
			}
		}
	}
	if apps, err := h.store.Apps(ctx); err != nil || len(apps) != 0 {
		t.Errorf("apps stored after refused applies: %d, %v", len(apps), err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestApply_RefusesWhatThisEnvironmentCannotRun: an app of another environment, an app
// that runs as a container on a target that runs processes, and an Environment document
// are refused by plan and apply, and nothing is stored.
func TestApply_RefusesWhatThisEnvironmentCannotRun(t *testing.T) {
	h := newHarnessWithConfig(t, func(c *engine.Config) { c.Target = slipway.TargetLocal })
	ctx := context.Background()
	app := func(f func(*slipway.App)) slipway.App {
		a := slipway.App{Name: "web", Replicas: 1, Run: slipway.RunSpec{Command: "./web"}, Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}
		f(&a)
		return a
	}
	for name, tc := range map[string]struct {
		set  slipway.Set
		want string
	}{
		"another environment": {slipway.Set{Apps: []slipway.App{app(func(a *slipway.App) { a.Environment = "staging" })}},
			"the app is in environment staging; this request is for environment default"},
		"a container on local": {slipway.Set{Apps: []slipway.App{app(func(a *slipway.App) {
			a.Run = slipway.RunSpec{}
			a.Container = &slipway.ContainerSpec{Image: "registry.example/web:1", Port: 8080}
		})}}, "runs apps as processes (target local); use spec.run"},
		"an Environment": {slipway.Set{Environments: []slipway.Environment{{Name: "staging", Target: slipway.Target{Kind: slipway.TargetLocal}}}},
			"does not take Environment documents"},
	} {
		for call, f := range map[string]func() error{
			"plan":  func() error { _, err := h.eng.Plan(ctx, tc.set, slipway.ApplyOptions{}); return err },
			"apply": func() error { _, err := h.eng.Apply(ctx, tc.set, slipway.ApplyOptions{}); return err },
		} {
			if err := f(); slipway.ErrorCode(err) != slipway.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s, %s: %v; want EINVALID saying %q", name, call, err, tc.want)
			}
		}
	}
	if apps, err := h.store.Apps(ctx); err != nil || len(apps) != 0 {
		t.Errorf("apps stored after refused applies: %d, %v", len(apps), err)
	}
	// The default environment's app, run as a process, is taken.
	if _, err := h.eng.Apply(ctx, slipway.Set{Apps: []slipway.App{app(func(a *slipway.App) { a.Environment = slipway.DefaultEnvironment })}}, slipway.ApplyOptions{}); err != nil {
		t.Errorf("apply of an app of this environment: %v", err)
	}
}

// TestApply_AnAppNamingItsEnvironmentIsTheSameApp: an engine of environment staging takes
// an app that names staging and one that names none as the same app (no new revision).
func TestApply_AnAppNamingItsEnvironmentIsTheSameApp(t *testing.T) {
	h := newHarnessWithConfig(t, func(c *engine.Config) { c.Environment = "staging"; c.Target = slipway.TargetSim })
	ctx := context.Background()
	a := slipway.App{Name: "web", Environment: "staging", Replicas: 1, Run: slipway.RunSpec{Command: "./web"}, Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}
	if _, err := h.eng.Apply(ctx, slipway.Set{Apps: []slipway.App{a}}, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	a.Environment = ""
	p, err := h.eng.Plan(ctx, slipway.Set{Apps: []slipway.App{a}}, slipway.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Action != slipway.ActionUnchanged {
		t.Fatalf("plan = %+v, want web unchanged", p.Changes)
	}
	if err := engine.Check(slipway.Set{Apps: []slipway.App{a}}, "staging", slipway.TargetLocal, 0); err != nil {
		t.Fatalf("Check: %v", err)
	}
	a.Environment = "production"
	if err := engine.Check(slipway.Set{Apps: []slipway.App{a}}, "staging", slipway.TargetLocal, 0); slipway.ErrorCode(err) != slipway.EINVALID {
		t.Fatalf("Check of an app of another environment: %v, want EINVALID", err)
	}
}
