package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/sim"
)

// waitSim polls the sim platform's view of app until ok accepts it.
func (h *harness) waitSim(app, what string, ok func(slipway.Observed) bool) slipway.Observed {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		obs, err := h.sim.Observe(context.Background(), app)
		if err == nil && ok(obs) {
			return obs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not %s: %+v", app, what, obs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventsOf returns the messages of app's events of kind, oldest first.
func (h *harness) eventsOf(app, kind string) []string {
	var out []string
	for _, e := range h.events(app) {
		if e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

// An abort while the stable revision has no ready instance keeps the ready canary serving
// and running, says so in an event, and moves traffic back once stable is ready again.
func TestEngine_AbortWhileStableUnreadyHoldsTraffic(t *testing.T) {
	h := newHarness(t)
	st := canary(slipway.Step{SetWeight: intp(50)}, slipway.Step{Pause: &slipway.PauseStep{}})
	set := func(v string) slipway.Set { return slipway.Set{Apps: []slipway.App{app("web", v, 2, st)}} }
	h.apply(set("v1"))
	stable := h.waitPhase("web", "web-1", slipway.PhaseCompleted).Stable.Revision
	h.apply(set("v2"))
	s := h.waitPhase("web", "web-2", slipway.PhasePaused)
	var canaryRev string
	for _, l := range s.Live {
		if l.Revision != stable {
			canaryRev = l.Revision
		}
	}
	if held := h.eventsOf("web", slipway.EventTrafficHeld); len(held) != 0 {
		t.Errorf("the canary's first instance starting was recorded as a hold: %q", held)
	}
	h.sim.FailRevision("web", stable)
	h.waitSim("web", "stable unready", func(o slipway.Observed) bool { return o.Revision(stable).Ready() == 0 })
	ops := len(h.sim.Ops("web"))

	if _, err := h.eng.Operate(context.Background(), slipway.Operation{Kind: slipway.OpAbort, App: "web", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	h.waitRollout("web", "web-2 aborted", func(r slipway.RolloutStatus) bool { return r.Phase == slipway.PhaseAborted })
	obs := h.waitSim("web", "past the canary's 50%", func(o slipway.Observed) bool { return o.Split.WeightOf(canaryRev) != 50 })
	if obs.Split.WeightOf(canaryRev) != 100 || obs.Revision(canaryRev).Ready() == 0 {
		t.Fatalf("after an abort with stable unready: split %s, canary ready %d; want all on the ready canary",
			sim.SplitString(obs.Split), obs.Revision(canaryRev).Ready())
	}
	heldOffStable := func(m string) bool { return strings.Contains(m, "held off "+stable) }
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(h.eventsOf("web", slipway.EventTrafficHeld), heldOffStable) {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic.held event for stable after the abort: %q", h.eventsOf("web", slipway.EventTrafficHeld))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, op := range h.sim.Ops("web")[ops:] {
		if op.Kind == sim.OpStop || (op.Kind == sim.OpSplit && strings.Contains(op.Detail, stable)) {
			t.Fatalf("while stable had no ready instance the platform was told: %s", op)
		}
	}

	h.sim.Heal("web", stable)
	h.waitSim("web", "back on stable", func(o slipway.Observed) bool {
		return o.Split.WeightOf(stable) == 100 && o.Revision(canaryRev).Ready() == 0 && len(o.Revisions) == 1
	})
	released := h.eventsOf("web", slipway.EventTrafficReleased)
	if !slices.ContainsFunc(released, func(m string) bool { return strings.Contains(m, stable+" ready") }) {
		t.Errorf("traffic.released events %q do not say stable is ready", released)
	}
}
