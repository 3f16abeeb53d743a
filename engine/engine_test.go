package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func canarySet(url, version string) slipway.Set {
	st := canary(
		slipway.Step{SetWeight: intp(20)},
		slipway.Step{Pause: &slipway.PauseStep{Duration: slipway.Duration(20 * time.Millisecond)}},
		slipway.Step{Analysis: &slipway.AnalysisRef{Templates: []string{"error-rate"}}},
		slipway.Step{SetWeight: intp(60)},
	)
	return slipway.Set{Apps: []slipway.App{app("web", version, 4, st)}, Templates: []slipway.AnalysisTemplate{errorRateTemplate(url)}}
}

func TestEngine_CanaryPromotedByAnalysis(t *testing.T) {
	h := newHarness(t)
	chk := newCheckServer(t, 0.01)
	p := h.apply(canarySet(chk.URL, "v1"))
	if len(p.Changes) != 2 || p.Changes[1].Action != slipway.ActionCreate {
		t.Fatalf("first apply plan: %+v", p.Changes)
	}
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)

	p = h.apply(canarySet(chk.URL, "v2"))
	if p.Changes[1].Action != slipway.ActionNewRevision || p.Changes[1].Rollout != "web-2" {
		t.Fatalf("second apply plan: %+v", p.Changes[1])
	}
	s := h.waitPhase("web", "web-2", slipway.PhaseCompleted)
	if s.Stable == nil || s.Stable.Version != "v2" || s.Rollout.Weight != 100 || s.Rollout.Steps != 4 {
		t.Fatalf("status after promotion: %+v %+v", s.Stable, s.Rollout)
	}
	if len(s.Live) != 1 || s.Live[0].Ready != 4 || len(s.Drift) != 0 {
		t.Fatalf("live after promotion: %+v drift %+v", s.Live, s.Drift)
	}
	// The platform saw the canary weights in order: 20, 60, 100.
	var splits []string
	for _, op := range h.sim.Ops("web") {
		if op.Kind == "split" {
			splits = append(splits, op.Detail)
		}
	}
	if len(splits) != 4 || !strings.Contains(splits[1], "=20") || !strings.Contains(splits[2], "=60") {
		t.Fatalf("splits: %q", splits)
	}
	// Analysis ran and passed, and every measurement is an event.
	var measured int
	for _, e := range h.events("web") {
		if e.Kind == slipway.EventMeasurement {
			measured++
		}
	}
	if measured != 3 {
		t.Fatalf("measurement events = %d, want 3", measured)
	}
}

func TestEngine_CanaryAbortedByAnalysis(t *testing.T) {
	h := newHarness(t)
	chk := newCheckServer(t, 0.01)
	h.apply(canarySet(chk.URL, "v1"))
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)
	chk.value.Store(0.2)
	h.apply(canarySet(chk.URL, "v2"))
	s := h.waitPhase("web", "web-2", slipway.PhaseAborted)
	if !strings.Contains(s.Rollout.Reason, "failed") || s.Stable.Version != "v1" {
		t.Fatalf("aborted status: %+v", s.Rollout)
	}
	// All traffic back on stable, canary instances gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		obs, _ := h.sim.Observe(context.Background(), "web")
		if len(obs.Revisions) == 1 && obs.Split.WeightOf(s.Stable.Revision) == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after abort: %+v", obs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Applying the same file again does not restart the aborted rollout; retry does.
	if p := h.apply(canarySet(chk.URL, "v2")); p.HasChanges() {
		t.Fatalf("re-apply of aborted revision changed: %+v", p.Changes)
	}
	chk.value.Store(0.0)
	if _, err := h.eng.Operate(context.Background(), slipway.Operation{Kind: slipway.OpRetry, App: "web", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("web", "web-2", slipway.PhaseCompleted)
}

func TestEngine_ManualOperations(t *testing.T) {
	h := newHarness(t)
	st := canary(slipway.Step{SetWeight: intp(25)}, slipway.Step{Pause: &slipway.PauseStep{}}, slipway.Step{SetWeight: intp(50)})
	set := func(v string) slipway.Set { return slipway.Set{Apps: []slipway.App{app("api", v, 2, st)}} }
	h.apply(set("v1"))
	h.waitPhase("api", "api-1", slipway.PhaseCompleted)
	h.apply(set("v2"))
	s := h.waitPhase("api", "api-2", slipway.PhasePaused)
	if s.Rollout.Cause != slipway.PauseAtStep || s.Rollout.Weight != 25 {
		t.Fatalf("paused at step: %+v", s.Rollout)
	}
	ctx := context.Background()
	if _, err := h.eng.Operate(ctx, slipway.Operation{Kind: slipway.OpResume, App: "nope"}); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("resume unknown app: %v", err)
	}
	if _, err := h.eng.Operate(ctx, slipway.Operation{Kind: slipway.OpPromote, App: "api", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("api", "api-2", slipway.PhaseCompleted)
	if _, err := h.eng.Operate(ctx, slipway.Operation{Kind: slipway.OpAbort, App: "api"}); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Fatalf("abort of completed rollout: %v", err)
	}

	// Rollback to the previous stable revision skips the steps.
	r, err := h.eng.Operate(ctx, slipway.Operation{Kind: slipway.OpRollback, App: "api", Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Rollback || !r.SkipAnalysis || r.ToVersion != "v1" {
		t.Fatalf("rollback rollout: %+v", r)
	}
	s = h.waitPhase("api", r.ID, slipway.PhaseCompleted)
	if s.Stable.Version != "v1" {
		t.Fatalf("stable after rollback: %+v", s.Stable)
	}

	// Abort mid-rollout puts all traffic back on stable.
	h.apply(set("v3"))
	h.waitPhase("api", "api-4", slipway.PhasePaused)
	if _, err := h.eng.Operate(ctx, slipway.Operation{Kind: slipway.OpAbort, App: "api", Actor: "bob", Reason: "looks wrong"}); err != nil {
		t.Fatal(err)
	}
	s = h.waitPhase("api", "api-4", slipway.PhaseAborted)
	if s.Rollout.Reason != "aborted by bob: looks wrong" || s.Rollout.Weight != 0 {
		t.Fatalf("aborted: %+v", s.Rollout)
	}
	var who []string
	for _, e := range h.events("api") {
		if e.Kind == slipway.EventRolloutAborted || e.Kind == slipway.EventRolloutPromoted {
			who = append(who, e.Actor)
		}
	}
	if strings.Join(who, ",") != "alice,bob" {
		t.Fatalf("operation actors: %v", who)
	}
}

func TestEngine_ScaleWithoutRollout(t *testing.T) {
	h := newHarness(t)
	a := app("svc", "v1", 2, slipway.Strategy{Rolling: &slipway.RollingStrategy{}})
	h.apply(slipway.Set{Apps: []slipway.App{a}})
	h.waitPhase("svc", "svc-1", slipway.PhaseCompleted)
	a.Replicas = 5
	p := h.apply(slipway.Set{Apps: []slipway.App{a}})
	if p.Changes[0].Action != slipway.ActionScale || p.Changes[0].Rollout != "" {
		t.Fatalf("scale plan: %+v", p.Changes[0])
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := h.eng.Status(context.Background(), "svc")
		if err == nil && len(s.Live) == 1 && s.Live[0].Ready == 5 && s.Rollout.ID == "svc-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not scaled: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEngine_RepairsDrift(t *testing.T) {
	h := newHarness(t)
	a := app("svc", "v1", 3, slipway.Strategy{Rolling: &slipway.RollingStrategy{}})
	h.apply(slipway.Set{Apps: []slipway.App{a}})
	s := h.waitPhase("svc", "svc-1", slipway.PhaseCompleted)
	// The pass that completed the rollout may still be applying its end state when the
	// status says it completed; a kill that lands before that apply is undone by it, with
	// nothing to record. So kill again, until a kill lands on an idle engine: its repair
	// must be recorded.
	for kills := 1; ; kills++ {
		victim := s.Live[0].List[0].ID
		if err := h.sim.Kill("svc", victim); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var repaired bool
			for _, e := range h.events("svc") {
				repaired = repaired || e.Kind == slipway.EventDriftRepaired
			}
			s, _ = h.eng.Status(context.Background(), "svc")
			back := len(s.Live) == 1 && s.Live[0].Instances == 3
			if back && repaired {
				return
			}
			if back && kills < 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("drift not repaired after %d kills: %+v", kills, s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestEngine_InvalidApplyChangesNothing(t *testing.T) {
	h := newHarness(t)
	good := app("svc", "v1", 1, slipway.Strategy{Rolling: &slipway.RollingStrategy{}})
	bad := app("bad", "v1", -1, slipway.Strategy{})
	_, err := h.eng.Apply(context.Background(), slipway.Set{Apps: []slipway.App{good, bad}}, slipway.ApplyOptions{})
	if slipway.ErrorCode(err) != slipway.EINVALID {
		t.Fatalf("apply invalid set: %v", err)
	}
	apps, err := h.store.Apps(context.Background())
	if err != nil || len(apps) != 0 || len(h.events("")) != 0 || len(h.sim.Ops("")) != 0 {
		t.Fatalf("state changed by an invalid apply: apps %v err %v", apps, err)
	}
}

func TestEngine_PruneRemovesApp(t *testing.T) {
	h := newHarness(t)
	a := app("one", "v1", 1, slipway.Strategy{Rolling: &slipway.RollingStrategy{}})
	b := app("two", "v1", 1, slipway.Strategy{Rolling: &slipway.RollingStrategy{}})
	h.apply(slipway.Set{Apps: []slipway.App{a, b}})
	h.waitPhase("two", "two-1", slipway.PhaseCompleted)
	p, err := h.eng.Plan(context.Background(), slipway.Set{Apps: []slipway.App{a}}, slipway.ApplyOptions{Prune: true})
	if err != nil || p.Changes[1].Action != slipway.ActionDelete || p.Changes[1].Name != "two" {
		t.Fatalf("prune plan: %+v %v", p, err)
	}
	if _, err := h.eng.Apply(context.Background(), slipway.Set{Apps: []slipway.App{a}}, slipway.ApplyOptions{Prune: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Status(context.Background(), "two"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("pruned app status: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		obs, _ := h.sim.Observe(context.Background(), "two")
		if len(obs.Revisions) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pruned app still runs: %+v", obs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEngine_BlueGreenWaitsForApproval(t *testing.T) {
	h := newHarness(t)
	no := false
	st := slipway.Strategy{BlueGreen: &slipway.BlueGreenStrategy{AutoPromote: &no, ScaleDownDelay: slipway.Duration(time.Hour)}}
	set := func(v string) slipway.Set { return slipway.Set{Apps: []slipway.App{app("bg", v, 2, st)}} }
	h.apply(set("v1"))
	h.waitPhase("bg", "bg-1", slipway.PhaseCompleted)
	h.apply(set("v2"))
	s := h.waitPhase("bg", "bg-2", slipway.PhasePaused)
	obs, _ := h.sim.Observe(context.Background(), "bg")
	if s.Rollout.Cause != slipway.PauseApproval || obs.Preview == "" || obs.Split.WeightOf(s.Stable.Revision) != 100 {
		t.Fatalf("waiting for approval: %+v %+v", s.Rollout, obs)
	}
	if _, err := h.eng.Operate(context.Background(), slipway.Operation{Kind: slipway.OpPromote, App: "bg"}); err != nil {
		t.Fatal(err)
	}
	s = h.waitPhase("bg", "bg-2", slipway.PhaseCompleted)
	// The old revision stays up through scaleDownDelay: a rollback is instant.
	if len(s.Live) != 2 {
		t.Fatalf("old capacity not kept: %+v", s.Live)
	}
	r, err := h.eng.Operate(context.Background(), slipway.Operation{Kind: slipway.OpRollback, App: "bg"})
	if err != nil {
		t.Fatal(err)
	}
	s = h.waitPhase("bg", r.ID, slipway.PhaseCompleted)
	if s.Stable.Version != "v1" {
		t.Fatalf("stable after instant rollback: %+v", s.Stable)
	}
}

// TestEngine_SupersededRolloutNamesItsSuccessor: a rollout replaced by a newer apply before it
// ended is aborted and names the rollout that replaced it, so that nothing needs to read its
// reason to tell it from a failure.
func TestEngine_SupersededRolloutNamesItsSuccessor(t *testing.T) {
	h := newHarness(t)
	st := canary(slipway.Step{SetWeight: intp(25)}, slipway.Step{Pause: &slipway.PauseStep{}})
	set := func(v string) slipway.Set { return slipway.Set{Apps: []slipway.App{app("api", v, 2, st)}} }
	h.apply(set("v1"))
	h.waitPhase("api", "api-1", slipway.PhaseCompleted)
	h.apply(set("v2"))
	h.waitPhase("api", "api-2", slipway.PhasePaused)
	h.apply(set("v3"))
	h.waitPhase("api", "api-3", slipway.PhasePaused)
	r, err := h.store.Rollout(context.Background(), "api-2")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != slipway.PhaseAborted || r.SupersededBy != "api-3" {
		t.Fatalf("superseded rollout: phase %s, supersededBy %q", r.Phase, r.SupersededBy)
	}
	if r, err = h.store.Rollout(context.Background(), "api-1"); err != nil || r.SupersededBy != "" {
		t.Fatalf("completed rollout: supersededBy %q, %v", r.SupersededBy, err)
	}
}
