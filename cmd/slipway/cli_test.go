package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"

	"slipway.dev/slipway/slipwaytest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// newCLIEnv starts an API server over an apitest.Service and points the CLI at it.
func newCLIEnv(t testing.TB) *apitest.Server {
	t.Helper()
	srv := apitest.NewServer(t, httpapi.Config{})
	t.Setenv(envServer, srv.URL)
	useToken(t, srv.Tokens, "tester")
	return srv
}

// useToken creates an admin token named name and points the CLI at it ($SLIPWAY_TOKEN).
func useToken(t testing.TB, tm slipway.TokenManager, name string) {
	t.Helper()
	created, err := tm.CreateToken(context.Background(), slipway.NewToken{Name: name, Role: slipway.RoleAdmin}, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envToken, created.Secret)
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit: %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

func runCLI(t testing.TB, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb apitest.Buffer
	code := run(ctx, args, strings.NewReader(""), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func golden(t testing.TB, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

var allChanges = slipway.Plan{Changes: []slipway.PlanChange{
	{Kind: slipway.KindApp, Name: "api", Action: slipway.ActionCreate, ToRevision: "aaaaaaaaaaaa", ToReplicas: 2},
	{Kind: slipway.KindApp, Name: "web", Action: slipway.ActionNewRevision, Fields: []string{"run.args", "replicas"},
		FromRevision: "02eba93290be", ToRevision: "4193928e8b74", FromReplicas: 3, ToReplicas: 5},
	{Kind: slipway.KindApp, Name: "worker", Action: slipway.ActionScale, FromReplicas: 3, ToReplicas: 1},
	{Kind: slipway.KindApp, Name: "cron", Action: slipway.ActionUpdate, Fields: []string{"strategy.rolling.maxSurge"}},
	{Kind: slipway.KindAnalysisTemplate, Name: "success-rate", Action: slipway.ActionUnchanged},
	{Kind: slipway.KindApp, Name: "old", Action: slipway.ActionDelete},
}}

var noChanges = slipway.Plan{Changes: []slipway.PlanChange{
	{Kind: slipway.KindApp, Name: "web", Action: slipway.ActionUnchanged},
	{Kind: slipway.KindAnalysisTemplate, Name: "success-rate", Action: slipway.ActionUnchanged},
}}

func TestCLI_Golden(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		code  int
		setup func(testing.TB, *apitest.Service)
	}{
		{name: "validate_ok", args: []string{"validate", "-f", "testdata/good.yaml"}},
		{name: "validate_ok_json", args: []string{"validate", "-o", "json", "-f", "testdata/good.yaml"}},
		{name: "validate_environments", args: []string{"validate", "-f", "testdata/environments.yaml"}},
		{name: "validate_bad", args: []string{"validate", "-f", "testdata/bad.yaml"}, code: exitError},
		{name: "validate_bad_json", args: []string{"validate", "-o", "json", "-f", "testdata/bad.yaml"}, code: exitError},
		{name: "validate_bad_yaml", args: []string{"validate", "-o", "yaml", "-f", "testdata/bad.yaml"}, code: exitError},
		{name: "validate_missing_file", args: []string{"validate", "-f", "testdata/nope.yaml"}, code: exitError},
		{name: "plan_changes", args: []string{"plan", "-f", "testdata/good.yaml"}, code: exitChanges,
			setup: func(t testing.TB, f *apitest.Service) { f.SetPlan(allChanges) }},
		{name: "plan_changes_json", args: []string{"plan", "-o", "json", "-f", "testdata/good.yaml"}, code: exitChanges,
			setup: func(t testing.TB, f *apitest.Service) { f.SetPlan(allChanges) }},
		{name: "plan_no_changes", args: []string{"plan", "-f", "testdata/good.yaml"}, code: exitOK,
			setup: func(t testing.TB, f *apitest.Service) { f.SetPlan(noChanges) }},
		{name: "plan_invalid_file", args: []string{"plan", "-f", "testdata/bad.yaml"}, code: exitError},
		{name: "plan_rejected_by_server", args: []string{"plan", "-f", "testdata/good.yaml"}, code: exitError,
			setup: func(t testing.TB, f *apitest.Service) {
				f.SetError("Plan", &slipway.Error{Code: slipway.EINVALID, Message: "1 error in set", Details: []string{"apps[0].strategy.canary.steps[1].analysis.templates[0]: template \"x\" does not exist"}})
			}},
		{name: "apply", args: []string{"apply", "-f", "testdata/good.yaml"},
			setup: func(t testing.TB, f *apitest.Service) { f.SetPlan(allChanges) }},
		{name: "apply_yaml", args: []string{"apply", "-o", "yaml", "-f", "testdata/good.yaml"},
			setup: func(t testing.TB, f *apitest.Service) { f.SetPlan(allChanges) }},
		{name: "status", args: []string{"status", "web"}},
		{name: "status_json", args: []string{"status", "web", "-o", "json"}},
		{name: "status_yaml", args: []string{"status", "web", "-o", "yaml"}},
		{name: "status_drift_analysis", args: []string{"status", "web"}, setup: func(t testing.TB, f *apitest.Service) {
			st, err := f.Status(context.Background(), "web")
			if err != nil {
				t.Fatal(err)
			}
			st.Drift = []slipway.Drift{{Kind: slipway.DriftMissing, Revision: "4193928e8b74", Desired: 2, Actual: 1, Message: "1 instance is starting"}}
			st.Analysis = []slipway.AnalysisBrief{{ID: "web-2-step-1", Kind: slipway.AnalysisStep, Phase: slipway.VerdictRunning, Message: "2 of 5 measurements"}}
			f.SetStatus(st)
		}},
		{name: "status_missing", args: []string{"status", "nope"}, code: exitError},
		{name: "get_apps", args: []string{"get", "apps"}},
		{name: "get_apps_json", args: []string{"get", "apps", "-o", "json"}},
		{name: "get_templates", args: []string{"get", "templates"}},
		{name: "history", args: []string{"history", "web"}},
		{name: "history_json", args: []string{"history", "web", "-o", "json"}},
		{name: "events", args: []string{"events", "web"}},
		{name: "events_json", args: []string{"events", "--limit", "2", "-o", "json"}},
		{name: "promote", args: []string{"promote", "web", "--full"}},
		{name: "rollback_json", args: []string{"rollback", "web", "--to", "1", "-o", "json"}},
		{name: "abort_conflict", args: []string{"abort", "web"}, code: exitError, setup: func(t testing.TB, f *apitest.Service) {
			f.SetError("Operate", slipway.Errorf(slipway.ECONFLICT, "rollout web-2 has ended; nothing to abort"))
		}},
		{name: "analysis", args: []string{"analysis", "web"}},
		{name: "analysis_sequential", args: []string{"analysis", "web", "--rollout", "web-2"}, setup: addSequentialRun},
		{name: "analysis_sequential_json", args: []string{"analysis", "web", "-o", "json"}, setup: addSequentialRun},
		{name: "analysis_missing", args: []string{"analysis", "nope"}, code: exitError},
		{name: "analysis_scored", args: []string{"analysis", "web", "--rollout", "web-2"}, setup: addScoredRun},
		{name: "bad_output", args: []string{"get", "apps", "-o", "xml"}, code: exitError},
		{name: "wait_completed", args: []string{"status", "web", "--wait"}, setup: func(t testing.TB, f *apitest.Service) {
			f.SetPhase(slipway.PhaseCompleted, "", slipway.EventRolloutCompleted)
		}},
		{name: "wait_aborted", args: []string{"status", "web", "--wait"}, code: exitAborted, setup: func(t testing.TB, f *apitest.Service) {
			f.SetPhase(slipway.PhaseAborted, "analysis success-rate failed", slipway.EventRolloutAborted)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newCLIEnv(t)
			if tt.setup != nil {
				tt.setup(t, env.Service)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := runCLI(t, ctx, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, r)
			}
			golden(t, tt.name, strings.ReplaceAll(r.String(), env.URL, "SERVER"))
		})
	}
}

func TestCLI_PlanChecksFilesBeforeAskingTheServer(t *testing.T) {
	env := newCLIEnv(t)
	r := runCLI(t, context.Background(), "plan", "-f", "testdata/bad.yaml")
	if r.code != exitError || !strings.Contains(r.stderr, "testdata/bad.yaml:6:13: spec.replicas") {
		t.Fatalf("%s", r)
	}
	if plans := env.Service.Plans(); len(plans) != 0 {
		t.Errorf("server asked to plan an invalid set")
	}
}

func TestCLI_SendsSetPruneAndActor(t *testing.T) {
	env := newCLIEnv(t)
	r := runCLI(t, context.Background(), "apply", "--prune", "-f", "testdata/good.yaml")
	if r.code != exitOK {
		t.Fatalf("%s", r)
	}
	plans := env.Service.Plans()
	if len(plans) != 1 || plans[0].Options.Actor != "tester" || !plans[0].Options.Prune {
		t.Fatalf("apply options %+v", plans)
	}
	if s := plans[0].Set; len(s.Apps) != 1 || s.Apps[0].Name != "web" || len(s.Templates) != 1 {
		t.Errorf("set %+v", s)
	}
	r = runCLI(t, context.Background(), "abort", "web", "--reason", "error budget")
	ops := env.Service.Operations()
	if r.code != exitOK || len(ops) != 1 || ops[0] != (slipway.Operation{Kind: slipway.OpAbort, App: "web", Actor: "tester", Reason: "error budget"}) {
		t.Errorf("operations %+v\n%s", ops, r)
	}
}

func TestCLI_StatusWaitFollowsTheRollout(t *testing.T) {
	tests := []struct {
		name   string
		phase  slipway.Phase
		kind   string
		code   int
		stderr string
	}{
		{"completed", slipway.PhaseCompleted, slipway.EventRolloutCompleted, exitOK, ""},
		{"aborted", slipway.PhaseAborted, slipway.EventRolloutAborted, exitAborted, "error: rollout web-2 was aborted: canary failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newCLIEnv(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errb apitest.Buffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"status", "web", "--wait"}, strings.NewReader(""), &out, &errb) }()
			// The first progress line shows the wait has begun.
			slipwaytest.Eventually(t, 5*time.Second, "the wait to begin", func() bool { return strings.Contains(errb.String(), "rollout web-2 (canary) Paused") })
			env.Service.AddEvent("web", slipway.EventRolloutStep) // an event that changes nothing
			env.Service.SetPhase(tt.phase, map[bool]string{true: "canary failed"}[tt.phase == slipway.PhaseAborted], tt.kind)
			var code int
			select {
			case code = <-done:
			case <-ctx.Done():
				t.Fatal("status --wait did not return")
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), "Phase:     "+string(tt.phase)) {
				t.Errorf("final status not printed:\n%s", out.String())
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", errb.String(), tt.stderr)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		newCLIEnv(t)
		r := runCLI(t, context.Background(), "status", "web", "--wait", "--timeout", "50ms")
		if r.code != exitError || !strings.Contains(r.stderr, "error: rollout web-2: timed out after 50ms") {
			t.Errorf("%s", r)
		}
	})
}

func TestCLI_ApplyWait(t *testing.T) {
	env := newCLIEnv(t)
	env.Service.SetPhase(slipway.PhaseAborted, "analysis failed", slipway.EventRolloutAborted)
	env.Service.SetPlan(allChanges)
	r := runCLI(t, context.Background(), "apply", "--wait", "-f", "testdata/good.yaml")
	if r.code != exitAborted || !strings.Contains(r.stderr, "rollouts aborted: web-2") {
		t.Errorf("%s", r)
	}
}

func TestCLI_WatchRedrawsOnEventsUntilInterrupted(t *testing.T) {
	env := newCLIEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb apitest.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"status", "web", "--watch"}, strings.NewReader(""), &out, &errb) }()
	slipwaytest.Eventually(t, 5*time.Second, "the first draw", func() bool { return strings.Count(out.String(), "--- web") == 1 })
	env.Service.SetPhase(slipway.PhaseProgressing, "", slipway.EventRolloutResumed)
	slipwaytest.Eventually(t, 5*time.Second, "a redraw", func() bool { return strings.Contains(out.String(), "Phase:     Progressing") })
	cancel() // as Ctrl-C does
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d; stderr %s", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end when interrupted")
	}
}

func TestCLI_EventsFollow(t *testing.T) {
	env := newCLIEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb apitest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"events", "web", "--follow", "-o", "json"}, strings.NewReader(""), &out, &errb)
	}()
	slipwaytest.Eventually(t, 5*time.Second, "past events", func() bool { return strings.Count(out.String(), "\n") == 3 })
	env.Service.AddEvent("other", slipway.EventAppCreated)
	env.Service.AddEvent("web", slipway.EventRolloutStep)
	slipwaytest.Eventually(t, 5*time.Second, "the new event", func() bool { return strings.Contains(out.String(), `"seq":5`) })
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d; stderr %s", code, errb.String())
	}
	if strings.Contains(out.String(), `"seq":4`) {
		t.Errorf("event of another app printed:\n%s", out.String())
	}
}

// addSequentialRun adds a failed background run of rollout web-2 whose metric is judged by a
// sequential test: one wait, then a Fail with its counts and evidence.
func addSequentialRun(t testing.TB, f *apitest.Service) {
	start := time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC)
	end := start.Add(900 * time.Millisecond)
	value := `{"baseline":{"failures":0,"rate":0,"requests":194,"revision":"02eba93290be"},"canary":{"failures":3,"rate":0.17647058823529413,"requests":17,"revision":"4193928e8b74"},` +
		`"decision":"Fail","difference":0.17647058823529413,"failAt":20,"failEvidence":73.7,"passAt":20,"passEvidence":0.0012,"reason":"the canary fails more than tolerated","scale":0.1,"tolerance":0.01}`
	f.AddAnalysisRun(slipway.AnalysisRun{
		ID: "web-2-run2", App: "web", Rollout: "web-2", Kind: slipway.AnalysisBackground, Templates: []string{"watch"},
		Metrics: []slipway.Metric{{Name: "errors", Interval: slipway.Duration(100 * time.Millisecond), Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
			Metric: slipway.BuiltinErrorRate, App: "web", Revision: "4193928e8b74",
			Sequential: &slipway.SequentialTest{Tolerance: 0.01, Scale: 0.1, MinRequests: 10, Baseline: "02eba93290be", Since: &start}}}}},
		Results: []slipway.MetricResult{{Name: "errors", Phase: slipway.VerdictFailed, Count: 1, Failed: 1,
			Message: "1 failed measurement exceeds failureLimit 0; last: the canary fails more than tolerated",
			Measurements: []slipway.Measurement{{Phase: slipway.VerdictFailed, Value: value, Message: "the canary fails more than tolerated: canary 3/17, baseline 0/194",
				StartedAt: end, FinishedAt: end}}}},
		Phase: slipway.VerdictFailed, Message: "metric errors: 1 failed measurement exceeds failureLimit 0; last: the canary fails more than tolerated",
		StartedAt: start, FinishedAt: &end,
	})
}

// addScoredRun adds a scored run whose p95 failed: its score is judged by analysis.Record.
func addScoredRun(t testing.TB, f *apitest.Service) {
	start := time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC)
	metric := func(name, group string, weight float64, critical bool) slipway.Metric {
		return slipway.Metric{Name: name, Group: group, Weight: weight, Critical: critical, SuccessCondition: "result < 1",
			Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://metrics.example/" + name}}}
	}
	run := slipway.AnalysisRun{
		ID: "web-2-run3", App: "web", Rollout: "web-2", Kind: slipway.AnalysisStep, Step: 1, Templates: []string{"scored"},
		Metrics: []slipway.Metric{metric("errors", "errors", 0, true), metric("p95", "latency", 2, false), metric("p50", "latency", 0, false)},
		Phase:   slipway.VerdictRunning, StartedAt: start,
		Scoring: &slipway.Scoring{Marginal: 75, Pass: 95, Groups: map[string]float64{"errors": 2, "latency": 1}},
	}
	for _, m := range run.Metrics {
		run.Results = append(run.Results, slipway.MetricResult{Name: m.Name, Phase: slipway.VerdictRunning})
	}
	at := start.Add(time.Second)
	analysis.Record(&run, 0, 0.2, nil, at, at)
	analysis.Record(&run, 1, 3.5, nil, at, at)
	analysis.Record(&run, 2, 0.4, nil, at, at)
	if run.Phase != slipway.VerdictInconclusive {
		t.Fatalf("scored run %s (%s), want Inconclusive", run.Phase, run.Message)
	}
	f.AddAnalysisRun(run)
}
