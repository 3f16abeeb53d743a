package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

func twoStages(verifyCmd string, soak time.Duration) slipway.Pipeline {
	return slipway.Pipeline{Name: "web", Apps: []string{"web"}, Stages: []slipway.Stage{
		{Name: "staging", Environments: []string{"staging"}, Soak: slipway.Duration(soak),
			Verify: []slipway.VerifyJob{{Name: "smoke", Job: slipway.JobMetric{Command: "sh", Args: []string{"-c", verifyCmd}}}}},
		{Name: "production", Environments: []string{"production"}, Approval: &slipway.Approval{}},
	}}
}

// TestRelease_FlowsThroughStagesWithAnApproval: a release deploys to staging, passes its
// verification job (which sees the release in its environment) and soak, then waits for an
// approval: a viewer's is refused, a deployer's lets it into production, where it completes.
// Production never ran the version before the approval.
func TestRelease_FlowsThroughStagesWithAnApproval(t *testing.T) {
	w := newWorld(t, "staging", "production")
	w.app("web")
	w.pipelines(twoStages(`test "$SLIPWAY_VERSION" = v2 && test "$SLIPWAY_STAGE" = staging`, 0))
	r := w.release("web", "v2", false)
	if r.ID != "web-r1" || r.Pipeline != "web" || r.Source.Trigger != "cli" {
		t.Fatalf("release = %+v", r)
	}
	r = w.waitRelease(r.ID, "waiting for approval at production", waitingFor("production", "approval by a deployer"))
	if st := r.Stages[0]; st.State != slipway.StagePassed || len(st.Verified) != 1 || len(st.Rollouts) != 1 || st.Rollouts[0].Phase != slipway.PhaseCompleted {
		t.Fatalf("staging stage = %+v", st)
	}
	if got := w.version("staging", "web"); got != "v2" {
		t.Fatalf("staging runs %s, want v2", got)
	}
	if got := w.version("production", "web"); got != "v1" {
		t.Fatalf("production runs %s before the approval, want v1", got)
	}
	ctx := context.Background()
	if _, err := w.m.Approve(ctx, r.ID, "vera", slipway.RoleViewer, ""); slipway.ErrorCode(err) != slipway.EFORBIDDEN {
		t.Fatalf("a viewer's approval: %v, want EFORBIDDEN", err)
	}
	if _, err := w.m.Approve(ctx, r.ID, "dana", slipway.RoleDeployer, "looks good"); err != nil {
		t.Fatal(err)
	}
	r = w.waitRelease(r.ID, "completed", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
	if got := w.version("production", "web"); got != "v2" {
		t.Fatalf("production runs %s after the release, want v2", got)
	}
	if a := r.Stages[1].Approvals; len(a) != 1 || a[0].Actor != "dana" || a[0].Reason != "looks good" {
		t.Fatalf("approvals = %+v", a)
	}
	evs, err := w.store.Events(ctx, slipway.EventFilter{App: "web"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	for _, k := range []string{slipway.EventReleaseCreated, slipway.EventReleaseVerified, slipway.EventReleaseWaiting, slipway.EventReleaseApproved, slipway.EventReleaseCompleted} {
		if kinds[k] == 0 {
			t.Errorf("no %s event among %v", k, kinds)
		}
	}
	// The rollout in production was made by the pipeline, for this release.
	ro, err := w.places["production"].store.Rollout(ctx, r.Stages[1].Rollouts[0].Rollout)
	if err != nil || ro.ToVersion != "v2" {
		t.Fatalf("production's rollout: %+v, %v", ro, err)
	}
}

// TestRelease_StopsWhereVerificationFails: a failing verification job stops the release in
// staging with the job's output; production never sees the version.
func TestRelease_StopsWhereVerificationFails(t *testing.T) {
	w := newWorld(t, "staging", "production")
	w.app("web")
	p := twoStages(`echo "3 of 40 checks failed"; exit 1`, 0)
	p.Stages[1].Approval = nil
	w.pipelines(p)
	r := w.release("web", "v2", false)
	r = w.waitRelease(r.ID, "aborted", func(r slipway.Release) bool { return r.Phase == slipway.PhaseAborted })
	if r.Stage != 0 || r.Stages[0].State != slipway.StageFailed || !strings.Contains(r.Reason, "verification smoke failed: exit 1: 3 of 40 checks failed") {
		t.Fatalf("release = stage %d %+v, reason %q", r.Stage, r.Stages[0], r.Reason)
	}
	if r.Stages[1].State != slipway.StagePending || len(r.Stages[1].Rollouts) != 0 {
		t.Fatalf("production stage = %+v; want never reached", r.Stages[1])
	}
	if got := w.version("production", "web"); got != "v1" {
		t.Fatalf("production runs %s, want v1", got)
	}
}

// TestRelease_HeldByAFreezeUntilItEnds: a freeze on production holds the release (its words
// name the end); once the clock passes it, the release goes on. An admin override lets a
// second release through a second freeze at once.
func TestRelease_HeldByAFreezeUntilItEnds(t *testing.T) {
	w := newWorld(t, "staging", "production")
	w.app("web")
	now := w.clock.Now()
	p := twoStages("exit 0", 0)
	p.Stages[1].Approval = nil
	p.Stages[1].Freezes = []slipway.Freeze{{From: now.Add(-time.Hour), To: now.Add(48 * time.Hour), Reason: "year end"}}
	w.pipelines(p)
	r := w.release("web", "v2", false)
	w.waitRelease(r.ID, "held by the freeze", waitingFor("production", "freeze until Wed 2026-12-09 10:00 UTC (year end)"))
	w.clock.Advance(49 * time.Hour)
	if err := w.m.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.waitRelease(r.ID, "completed after the freeze", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })

	p.Stages[1].Freezes = append(p.Stages[1].Freezes, slipway.Freeze{From: w.clock.Now(), To: w.clock.Now().Add(time.Hour)})
	w.pipelines(p)
	r2 := w.release("web", "v3", false)
	w.waitRelease(r2.ID, "held by the second freeze", waitingFor("production", "freeze until"))
	if _, err := w.m.Override(context.Background(), r2.ID, "root", ""); slipway.ErrorCode(err) != slipway.EINVALID {
		t.Fatalf("an override without a reason: %v, want EINVALID", err)
	}
	if _, err := w.m.Override(context.Background(), r2.ID, "root", "security fix"); err != nil {
		t.Fatal(err)
	}
	r2 = w.waitRelease(r2.ID, "completed after the override", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
	if o := r2.Stages[1].Overrides; len(o) != 1 || o[0].Reason != "security fix" {
		t.Fatalf("overrides = %+v", o)
	}
}

// TestRelease_HeldByASpentErrorBudgetExceptFixes: while production's SLO budget is spent,
// a release waits (its words give the share spent) and a fix goes through; once the error
// ratio falls, the waiting release goes on. A budget that cannot be measured holds too.
func TestRelease_HeldByASpentErrorBudgetExceptFixes(t *testing.T) {
	var ratio atomic.Value
	ratio.Store("0.0112")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v := ratio.Load().(string)
		if v == "down" {
			http.Error(w, "metrics backend down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"ratio": %s}`, v)
	}))
	defer srv.Close()
	w := newWorld(t, "staging", "production")
	w.app("web")
	p := twoStages("exit 0", 0)
	p.Stages[1].Approval = nil
	p.Stages[1].ErrorBudget = &slipway.ErrorBudget{Objective: 99, Metric: slipway.Metric{Name: "slo",
		Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: srv.URL, JSONPath: "$.ratio"}}}}
	w.pipelines(p)
	r := w.release("web", "v2", false)
	w.waitRelease(r.ID, "held by the budget", waitingFor("production", "error budget 112% spent"))
	fix := w.release("web", "v2-fix", true)
	w.waitRelease(fix.ID, "the fix completed", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
	if got := w.version("production", "web"); got != "v2-fix" {
		t.Fatalf("production runs %s, want the fix", got)
	}
	// The older release was superseded by the fix while it waited.
	old := w.waitRelease(r.ID, "superseded", func(r slipway.Release) bool { return r.Phase.Terminal() })
	if old.SupersededBy != fix.ID {
		t.Fatalf("the waiting release: %+v; want superseded by %s", old, fix.ID)
	}
	r3 := w.release("web", "v3", false)
	ratio.Store("down")
	w.waitRelease(r3.ID, "held while the budget cannot be measured", waitingFor("production", "error budget unknown"))
	ratio.Store("0.002")
	w.waitRelease(r3.ID, "completed once the budget recovered", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
}

// TestRelease_FailsWhenItsRolloutAborts: a rollout aborted in the stage (here by a person)
// stops the release there.
func TestRelease_FailsWhenItsRolloutAborts(t *testing.T) {
	w := newWorld(t, "staging", "production")
	w.app("web")
	// A canary that pauses for approval, so the release's rollout is still running.
	for _, p := range w.places {
		a := slipway.App{Name: "web", Version: "v1", Replicas: 2, Run: slipway.RunSpec{Command: "./web"},
			Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{{SetWeight: ptr(20)}, {Pause: &slipway.PauseStep{}}}}}}
		if _, err := p.eng.Apply(context.Background(), slipway.Set{Apps: []slipway.App{a}}, slipway.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// v1 must be stable first: a first rollout has no stable revision to canary against.
	for env := range w.places {
		slipwaytest.Eventually(t, 20*time.Second, "v1 stable in "+env, func() bool { return w.version(env, "web") == "v1" })
	}
	p := twoStages("exit 0", 0)
	p.Stages[1].Approval = nil
	w.pipelines(p)
	r := w.release("web", "v2", false)
	r = w.waitRelease(r.ID, "waiting on the paused rollout", func(r slipway.Release) bool {
		return r.Stages[0].State == slipway.StageDeploying && strings.Contains(r.Stages[0].Waiting, "is paused")
	})
	if _, err := w.places["staging"].eng.Operate(context.Background(), slipway.Operation{App: "web", Kind: slipway.OpAbort, Reason: "bad smell"}); err != nil {
		t.Fatal(err)
	}
	r = w.waitRelease(r.ID, "aborted", func(r slipway.Release) bool { return r.Phase == slipway.PhaseAborted })
	if !strings.Contains(r.Reason, "was aborted") || r.Stages[1].State != slipway.StagePending {
		t.Fatalf("release = %+v", r)
	}
}

// TestRelease_SurvivesARestartMidSoak: a release soaking when its manager stops is carried
// on by the next one from the store.
func TestRelease_SurvivesARestartMidSoak(t *testing.T) {
	w := newWorld(t, "staging", "production")
	w.app("web")
	p := twoStages("exit 0", time.Hour)
	p.Stages[1].Approval = nil
	w.pipelines(p)
	r := w.release("web", "v2", false)
	w.waitRelease(r.ID, "soaking", func(r slipway.Release) bool { return r.Stages[0].State == slipway.StageSoaking })
	w.stopManager()
	w.clock.Advance(2 * time.Hour)
	w.start()
	w.waitRelease(r.ID, "completed after the restart", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
}

func ptr[T any](v T) *T { return &v }
