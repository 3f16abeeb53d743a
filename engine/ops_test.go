package engine

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

var opNow = t0.Add(5 * time.Minute)

func operate(tb testing.TB, r slipway.Rollout, kind slipway.OperationKind, full bool, runs ...slipway.AnalysisRun) (slipway.Rollout, Effects) {
	tb.Helper()
	m := map[string]slipway.AnalysisRun{}
	for _, run := range runs {
		m[run.ID] = run
	}
	got, eff, err := Operate(r, slipway.Operation{Kind: kind, App: "web", Actor: "ann", Reason: "looks bad", Full: full}, 4, m, opNow)
	if err != nil {
		tb.Fatalf("%s: %v", kind, err)
	}
	if !got.UpdatedAt.Equal(opNow) || !got.LastProgressAt.Equal(opNow) {
		tb.Fatalf("%s: UpdatedAt %v LastProgressAt %v, want %v", kind, got.UpdatedAt, got.LastProgressAt, opNow)
	}
	for _, e := range eff.Events {
		if e.Actor != "ann" || e.Rollout != r.ID || !e.Time.Equal(opNow) {
			tb.Fatalf("%s: event %+v", kind, e)
		}
	}
	return got, eff
}

func wantConflict(tb testing.TB, r slipway.Rollout, op slipway.Operation, code string) {
	tb.Helper()
	got, eff, err := Operate(r, op, 4, nil, opNow)
	if slipway.ErrorCode(err) != code {
		tb.Fatalf("%s on %s: err %v (code %q), want %s", op.Kind, r.Phase, err, slipway.ErrorCode(err), code)
	}
	if !reflect.DeepEqual(got, r) || !reflect.DeepEqual(eff, Effects{}) {
		tb.Fatalf("%s on %s changed the rollout: %+v %+v", op.Kind, r.Phase, got, eff)
	}
}

func paused(r slipway.Rollout, cause slipway.PauseCause) slipway.Rollout {
	r.Phase, r.Cause, r.Reason = slipway.PhasePaused, cause, "why"
	return r
}

func ended(r slipway.Rollout, p slipway.Phase) slipway.Rollout {
	at := t0.Add(time.Minute)
	r.Phase, r.CompletedAt = p, &at
	return r
}

func wantProgressing(tb testing.TB, r slipway.Rollout) {
	tb.Helper()
	if r.Phase != slipway.PhaseProgressing || r.Cause != slipway.PauseNone || r.Reason != "" {
		tb.Fatalf("phase %s cause %q reason %q, want Progressing", r.Phase, r.Cause, r.Reason)
	}
}

func TestOperate_Promote(t *testing.T) {
	t.Run("canary skips the current step", func(t *testing.T) {
		got, eff := operate(t, canaryAt(1, 20), slipway.OpPromote, false)
		wantProgressing(t, got)
		if got.Step != 2 || !got.StepStartedAt.Equal(opNow) {
			t.Fatalf("step %d started %v", got.Step, got.StepStartedAt)
		}
		wantKinds(t, eff, slipway.EventRolloutPromoted)
		if eff.Events[0].Message != "promoted to step 3/10" {
			t.Fatalf("event %q", eff.Events[0].Message)
		}
	})
	t.Run("canary paused at a step goes past it", func(t *testing.T) {
		got, _ := operate(t, paused(canaryAt(5, 20), slipway.PauseAtStep), slipway.OpPromote, false)
		wantProgressing(t, got)
		if got.Step != 6 {
			t.Fatalf("step %d, want 6", got.Step)
		}
	})
	t.Run("canary skipping an analysis step keeps background analysis", func(t *testing.T) {
		r := canaryAt(2, 20)
		r.BackgroundRun, r.StepRun = "web-1-run1", "web-1-run2"
		got, eff := operate(t, r, slipway.OpPromote, false)
		if got.StepRun != "" || got.BackgroundRun != "web-1-run1" || !slices.Equal(eff.StopRuns, []string{"web-1-run2"}) {
			t.Fatalf("StepRun %q BackgroundRun %q StopRuns %v", got.StepRun, got.BackgroundRun, eff.StopRuns)
		}
	})
	t.Run("canary last step promotes to the final promotion", func(t *testing.T) {
		got, eff := operate(t, canaryAt(9, 20), slipway.OpPromote, false)
		if got.Step != 10 || eff.Events[0].Message != "promoted to the final promotion" {
			t.Fatalf("step %d event %q", got.Step, eff.Events[0].Message)
		}
	})
	t.Run("canary at the final promotion conflicts", func(t *testing.T) {
		wantConflict(t, canaryAt(10, 100), slipway.Operation{Kind: slipway.OpPromote}, slipway.ECONFLICT)
	})
	t.Run("canary paused at the final promotion resumes", func(t *testing.T) {
		got, _ := operate(t, paused(canaryAt(10, 100), slipway.PauseManual), slipway.OpPromote, false)
		wantProgressing(t, got)
		if got.Step != 10 {
			t.Fatalf("step %d", got.Step)
		}
	})
	t.Run("inconclusive pause measures again", func(t *testing.T) {
		r := paused(canaryAt(3, 20), slipway.PauseInconclusive)
		r.BackgroundRun = "web-1-run1"
		got, _ := operate(t, r, slipway.OpPromote, false, runOf("web-1-run1", slipway.VerdictInconclusive, ""))
		if got.BackgroundRun != "" || got.Step != 4 {
			t.Fatalf("BackgroundRun %q step %d", got.BackgroundRun, got.Step)
		}
	})
	t.Run("full skips every step and analysis", func(t *testing.T) {
		r := canaryAt(2, 20)
		r.BackgroundRun, r.StepRun = "web-1-run1", "web-1-run2"
		got, eff := operate(t, r, slipway.OpPromote, true)
		wantProgressing(t, got)
		if !got.SkipAnalysis || !got.Approved || got.StepRun != "" || got.BackgroundRun != "" || got.Steps() != 0 {
			t.Fatalf("%+v", got)
		}
		if !slices.Equal(eff.StopRuns, []string{"web-1-run2", "web-1-run1"}) {
			t.Fatalf("StopRuns %v", eff.StopRuns)
		}
		wantKinds(t, eff, slipway.EventRolloutPromoted)
		promoted, _ := next(t, got, canaryInput(got, 4), opNow)
		if promoted.Weight != 100 || CanaryReplicas(promoted, 4) != 4 {
			t.Fatalf("after Next: weight %d", promoted.Weight)
		}
	})
	t.Run("full blue-green skips preview and approval", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{AutoPromote: boolp(false), PrePromotionAnalysis: okRef()}, bgPreview)
		got, _ := operate(t, r, slipway.OpPromote, true)
		if got.Step != bgWaiting {
			t.Fatalf("step %d", got.Step)
		}
		if sw, _ := next(t, got, in(3), opNow); !sw.Switched {
			t.Fatalf("not switched: %+v", sw)
		}
	})
	t.Run("blue-green approves the switch", func(t *testing.T) {
		r, in := blueGreenAt(slipway.BlueGreenStrategy{AutoPromote: boolp(false)}, bgWaiting)
		got, eff := operate(t, paused(r, slipway.PauseApproval), slipway.OpPromote, false)
		wantProgressing(t, got)
		if !got.Approved || got.Step != bgWaiting || eff.Events[0].Message != "switch approved" {
			t.Fatalf("%+v", got)
		}
		if sw, _ := next(t, got, in(3), opNow); !sw.Switched {
			t.Fatalf("not switched: %+v", sw)
		}
	})
	t.Run("blue-green approval given early is remembered", func(t *testing.T) {
		r, _ := blueGreenAt(slipway.BlueGreenStrategy{AutoPromote: boolp(false)}, bgPreview)
		got, _ := operate(t, r, slipway.OpPromote, false)
		if !got.Approved || got.Step != bgPreview {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("blue-green during pre-promotion analysis skips it", func(t *testing.T) {
		r, _ := blueGreenAt(slipway.BlueGreenStrategy{PrePromotionAnalysis: okRef()}, bgAnalysis)
		r.StepRun, r.BackgroundRun = "web-1-run2", "web-1-run1"
		got, eff := operate(t, r, slipway.OpPromote, false)
		if got.Step != bgWaiting || got.StepRun != "" || got.BackgroundRun != "web-1-run1" || !slices.Equal(eff.StopRuns, []string{"web-1-run2"}) {
			t.Fatalf("%+v %v", got, eff.StopRuns)
		}
	})
	rolling := newTestRollout(testApp(slipway.Strategy{Rolling: &slipway.RollingStrategy{}}, 4), "v1")
	t.Run("rolling has no steps to promote", func(t *testing.T) {
		wantConflict(t, rolling, slipway.Operation{Kind: slipway.OpPromote}, slipway.ECONFLICT)
	})
	t.Run("rolling paused resumes", func(t *testing.T) {
		got, eff := operate(t, paused(rolling, slipway.PauseManual), slipway.OpPromote, false)
		wantProgressing(t, got)
		wantKinds(t, eff, slipway.EventRolloutResumed)
	})
	for _, p := range []slipway.Phase{slipway.PhaseCompleted, slipway.PhaseAborted} {
		t.Run("conflicts when "+string(p), func(t *testing.T) {
			wantConflict(t, ended(canaryAt(1, 20), p), slipway.Operation{Kind: slipway.OpPromote}, slipway.ECONFLICT)
			wantConflict(t, ended(canaryAt(1, 20), p), slipway.Operation{Kind: slipway.OpPromote, Full: true}, slipway.ECONFLICT)
		})
	}
}

func TestOperate_Abort(t *testing.T) {
	for _, r := range []slipway.Rollout{canaryAt(4, 20), paused(canaryAt(5, 50), slipway.PauseAtStep), blueGreenAtStep(bgSwitched)} {
		t.Run("aborts "+string(r.Strategy)+" "+string(r.Phase), func(t *testing.T) {
			r.HeaderRoute, r.StepRun = canarySteps()[4].SetHeaderRoute, "web-1-run3"
			got, eff := operate(t, r, slipway.OpAbort, false)
			wantAborted(t, got, eff, "aborted by ann: looks bad")
			if !slices.Equal(eff.StopRuns, []string{"web-1-run3"}) || !got.CompletedAt.Equal(opNow) {
				t.Fatalf("StopRuns %v", eff.StopRuns)
			}
			if !RolloutSplit(got).Equal(weights("v1", 100)) {
				t.Fatalf("split %+v", RolloutSplit(got))
			}
		})
	}
	t.Run("without actor or reason", func(t *testing.T) {
		got, _, err := Operate(canaryAt(0, 0), slipway.Operation{Kind: slipway.OpAbort}, 4, nil, opNow)
		if err != nil || got.Reason != "aborted by unknown" {
			t.Fatalf("err %v reason %q", err, got.Reason)
		}
	})
	for _, p := range []slipway.Phase{slipway.PhaseCompleted, slipway.PhaseAborted} {
		t.Run("conflicts when "+string(p), func(t *testing.T) {
			wantConflict(t, ended(canaryAt(1, 20), p), slipway.Operation{Kind: slipway.OpAbort}, slipway.ECONFLICT)
		})
	}
}

func TestOperate_PauseResume(t *testing.T) {
	t.Run("pause", func(t *testing.T) {
		got, eff := operate(t, canaryAt(0, 20), slipway.OpPause, false)
		if got.Phase != slipway.PhasePaused || got.Cause != slipway.PauseManual || got.Reason != "paused by ann" {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutPaused)
		waits(t, got, canaryInput(got, 0), opNow.Add(time.Hour), time.Time{})
	})
	for _, r := range []slipway.Rollout{paused(canaryAt(0, 20), slipway.PauseManual), ended(canaryAt(0, 20), slipway.PhaseCompleted), ended(canaryAt(0, 20), slipway.PhaseAborted)} {
		t.Run("pause conflicts when "+string(r.Phase), func(t *testing.T) {
			wantConflict(t, r, slipway.Operation{Kind: slipway.OpPause}, slipway.ECONFLICT)
		})
	}
	inconclusive := paused(canaryAt(2, 20), slipway.PauseInconclusive)
	inconclusive.StepRun, inconclusive.BackgroundRun, inconclusive.RunSeq = "web-1-run2", "web-1-run1", 2
	for _, tc := range []struct {
		name  string
		r     slipway.Rollout
		check func(t *testing.T, got slipway.Rollout)
	}{
		{"manual pause resumes where it was", paused(canaryAt(3, 20), slipway.PauseManual), func(t *testing.T, got slipway.Rollout) {
			if got.Step != 3 {
				t.Fatalf("step %d", got.Step)
			}
		}},
		{"pause at a step goes past it", paused(canaryAt(5, 20), slipway.PauseAtStep), func(t *testing.T, got slipway.Rollout) {
			if got.Step != 6 || !got.StepStartedAt.Equal(opNow) {
				t.Fatalf("step %d started %v", got.Step, got.StepStartedAt)
			}
		}},
		{"approval approves", paused(blueGreenAtStep(bgWaiting), slipway.PauseApproval), func(t *testing.T, got slipway.Rollout) {
			if !got.Approved || got.Step != bgWaiting {
				t.Fatalf("%+v", got)
			}
		}},
		{"inconclusive replaces the inconclusive run only", inconclusive, func(t *testing.T, got slipway.Rollout) {
			if got.StepRun != "" || got.BackgroundRun != "web-1-run1" || got.Step != 2 {
				t.Fatalf("StepRun %q BackgroundRun %q", got.StepRun, got.BackgroundRun)
			}
			nx, eff := next(t, got, canaryInput(got, 1, runOf("web-1-run1", slipway.VerdictRunning, "")), opNow)
			if len(eff.StartRuns) != 1 || nx.StepRun != "web-1-run3" {
				t.Fatalf("no fresh run: StepRun %q RunSeq %d", nx.StepRun, nx.RunSeq)
			}
		}},
	} {
		t.Run("resume "+tc.name, func(t *testing.T) {
			got, eff := operate(t, tc.r, slipway.OpResume, false,
				runOf("web-1-run2", slipway.VerdictInconclusive, ""), runOf("web-1-run1", slipway.VerdictRunning, ""))
			wantProgressing(t, got)
			wantKinds(t, eff, slipway.EventRolloutResumed)
			tc.check(t, got)
		})
	}
	for _, r := range []slipway.Rollout{canaryAt(0, 20), ended(canaryAt(0, 20), slipway.PhaseCompleted)} {
		t.Run("resume conflicts when "+string(r.Phase), func(t *testing.T) {
			wantConflict(t, r, slipway.Operation{Kind: slipway.OpResume}, slipway.ECONFLICT)
		})
	}
}

func TestOperate_Retry(t *testing.T) {
	t.Run("restarts an aborted rollout from its first step", func(t *testing.T) {
		r := ended(canaryAt(4, 50), slipway.PhaseAborted)
		r.Reason, r.RunSeq, r.StepRun, r.BackgroundRun = "analysis failed", 3, "web-1-run3", "web-1-run2"
		r.CanaryScale, r.HeaderRoute = &slipway.CanaryScale{Replicas: intp(1)}, canarySteps()[4].SetHeaderRoute
		got, eff := operate(t, r, slipway.OpRetry, false)
		wantProgressing(t, got)
		if got.Attempt != 1 || got.Step != 0 || got.Weight != 0 || got.CanaryScale != nil || got.HeaderRoute != nil ||
			got.CompletedAt != nil || got.StepRun != "" || got.BackgroundRun != "" || got.RunSeq != 3 || got.OldReplicas != 4 ||
			!got.StepStartedAt.Equal(opNow) || got.ID != r.ID {
			t.Fatalf("%+v", got)
		}
		wantKinds(t, eff, slipway.EventRolloutRetried)
		if eff.Events[0].Message != "retry 1" {
			t.Fatalf("event %q", eff.Events[0].Message)
		}
	})
	t.Run("a first rollout retried sends it everything", func(t *testing.T) {
		r := ended(newTestRollout(canaryApp(), ""), slipway.PhaseAborted)
		got, _ := operate(t, r, slipway.OpRetry, false)
		if got.Weight != 100 || !RolloutSplit(got).Equal(weights("v2", 100)) {
			t.Fatalf("weight %d", got.Weight)
		}
	})
	t.Run("blue-green retry forgets the switch", func(t *testing.T) {
		r := ended(blueGreenAtStep(bgSwitched), slipway.PhaseAborted)
		ready := t0
		r.PreviewReadyAt, r.Approved = &ready, true
		got, _ := operate(t, r, slipway.OpRetry, false)
		if got.Step != bgPreview || got.Switched || got.Approved || got.PreviewReadyAt != nil {
			t.Fatalf("%+v", got)
		}
	})
	for _, r := range []slipway.Rollout{canaryAt(0, 0), paused(canaryAt(0, 0), slipway.PauseManual), ended(canaryAt(0, 0), slipway.PhaseCompleted)} {
		t.Run("conflicts when "+string(r.Phase), func(t *testing.T) {
			wantConflict(t, r, slipway.Operation{Kind: slipway.OpRetry}, slipway.ECONFLICT)
		})
	}
}

func TestOperate_Invalid(t *testing.T) {
	t.Run("rollback is not an operation on a rollout", func(t *testing.T) {
		wantConflict(t, canaryAt(0, 0), slipway.Operation{Kind: slipway.OpRollback}, slipway.EINTERNAL)
	})
	t.Run("unknown operation", func(t *testing.T) {
		wantConflict(t, canaryAt(0, 0), slipway.Operation{Kind: "restart"}, slipway.EINVALID)
	})
	t.Run("conflict message names the rollout and phase", func(t *testing.T) {
		_, _, err := Operate(ended(canaryAt(0, 0), slipway.PhaseCompleted), slipway.Operation{Kind: slipway.OpAbort}, 4, nil, opNow)
		if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "web-1") || !strings.Contains(msg, "Completed") || !strings.Contains(msg, "rollback") {
			t.Fatalf("message %q", msg)
		}
	})
}

func TestNewRollout(t *testing.T) {
	app := canaryApp()
	app.Analysis = &slipway.BackgroundAnalysis{AnalysisRef: *okRef()}
	r := NewRollout(app, 7, slipway.Revision{ID: "v1", Version: "1.0"}, slipway.Revision{ID: "v2", Version: "2.0"}, t0)
	if r.ID != "web-7" || r.App != "web" || r.Number != 7 || r.From != "v1" || r.To != "v2" || r.FromVersion != "1.0" || r.ToVersion != "2.0" {
		t.Fatalf("identity %+v", r)
	}
	if r.Strategy != slipway.StrategyCanary || r.Spec.Canary == nil || r.Analysis == nil || r.Phase != slipway.PhaseProgressing ||
		r.Attempt != 0 || r.Step != 0 || r.Weight != 0 || r.OldReplicas != 4 || !r.CreatedAt.Equal(t0) || !r.StepStartedAt.Equal(t0) || !r.LastProgressAt.Equal(t0) {
		t.Fatalf("state %+v", r)
	}
}
