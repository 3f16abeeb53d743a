package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
	"slipway.dev/slipway/insights"
	"slipway.dev/slipway/sqlite"
)

// TestInsights_ThroughTheAPI: delivery figures computed from real SQLite stores (the default
// environment's, with the releases, and production's), served by the API to a viewer token,
// printed by `slipway insights` as text and JSON, and as gauges on /metrics.
func TestInsights_ThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	day := func(d, hour int) time.Time { return time.Date(2026, 4, d, hour, 0, 0, 0, time.UTC) }
	open := func() *sqlite.Store {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	def, prod := open(), open()
	ro := func(id, version string, start, end time.Time, phase slipway.Phase) slipway.Rollout {
		return slipway.Rollout{ID: id, App: "web", ToVersion: version, Phase: phase, CreatedAt: start, UpdatedAt: end, CompletedAt: &end}
	}
	// production, the week of 1 to 8 April: web-1 (v1) completed; web-2 (v2) aborted; web-3
	// (v3, a fix) completed. default: web-1 completed, no release.
	if err := prod.Commit(ctx, &slipway.Change{Apps: []slipway.AppState{{Spec: slipway.App{Name: "web"}}}, Rollouts: []slipway.Rollout{
		ro("web-1", "v1", day(2, 9), day(2, 10), slipway.PhaseCompleted),
		ro("web-2", "v2", day(3, 9), day(3, 10), slipway.PhaseAborted),
		ro("web-3", "v3", day(4, 9), day(4, 12), slipway.PhaseCompleted),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := def.Commit(ctx, &slipway.Change{Apps: []slipway.AppState{{Spec: slipway.App{Name: "web"}}}, Rollouts: []slipway.Rollout{
		ro("web-1", "v1", day(5, 9), day(5, 10), slipway.PhaseCompleted),
	}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []slipway.Release{
		{App: "web", Version: "v1", ChangedAt: day(1, 10), Stages: []slipway.ReleaseStage{{Rollouts: []slipway.ReleaseRollout{{Environment: "production", Rollout: "web-1"}}}}},
		{App: "web", Version: "v2", ChangedAt: day(3, 8), Stages: []slipway.ReleaseStage{{Rollouts: []slipway.ReleaseRollout{{Environment: "production", Rollout: "web-2"}}}}},
		{App: "web", Version: "v3", ChangedAt: day(4, 6), Fix: true, Stages: []slipway.ReleaseStage{{Rollouts: []slipway.ReleaseRollout{{Environment: "production", Rollout: "web-3"}}}}},
	} {
		if err := def.CreateRelease(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	now := day(8, 0)
	production := slipway.Environment{Name: "production", Labels: map[string]string{slipway.LabelTier: slipway.TierProduction}}
	reader := insights.NewReader(insights.Config{Releases: def, Now: func() time.Time { return now },
		Environments: func(context.Context) ([]slipway.Environment, error) {
			return []slipway.Environment{{Name: slipway.DefaultEnvironment}, production}, nil
		},
		State: func(name string) (slipway.StateReader, bool) {
			switch name {
			case slipway.DefaultEnvironment:
				return def, true
			case "production":
				return prod, true
			}
			return nil, false
		}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(insights.NewCollector(reader, insights.CollectorConfig{Window: 7 * 24 * time.Hour, Now: func() time.Time { return now }}))
	tokens := auth.New(auth.Config{Store: def})
	srv := apitest.NewServer(t, httpapi.Config{Tokens: tokens, Insights: reader, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	viewer, err := tokens.CreateToken(ctx, slipway.NewToken{Name: "watcher", Role: slipway.RoleViewer}, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envServer, srv.URL)
	t.Setenv(envToken, viewer.Secret)

	// production: 3 attempts, 2 deployments (web-1, web-3), 1 failure (web-2, aborted 3 Apr
	// 10:00, restored by web-3 at 4 Apr 12:00: 26h): rate 1/3; 2 / 1 week. Lead times:
	// web-1 2 Apr 10:00 - 1 Apr 10:00 = 24h; web-3 12:00 - 06:00 = 6h; sorted 6h 24h: median
	// rank 1 -> 6h, p90 rank 2 -> 24h. The fix web-3 started 4 Apr 09:00; the latest
	// completed rollout before it, web-1 (web-2 did not complete), completed 47h before:
	// beyond the 24h horizon, so web-1 did not fail. default: 1 deployment, no lead time.
	res := runCLI(t, ctx, "insights", "--since", "2026-04-01T00:00:00Z", "--until", "2026-04-08T00:00:00Z")
	if res.code != 0 {
		t.Fatalf("insights: %s", res)
	}
	golden(t, "insights", res.stdout)

	res = runCLI(t, ctx, "-o", "json", "insights", "--since", "2026-04-01T00:00:00Z", "--until", "2026-04-08T00:00:00Z", "--app", "web", "--env", "production")
	if res.code != 0 {
		t.Fatalf("insights -o json: %s", res)
	}
	var got slipway.Insights
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("decode %s: %v", res.stdout, err)
	}
	f := got.Headline
	if f == nil || f.Deployments != 2 || f.Attempts != 3 || f.Failures != 1 || *f.ChangeFailureRate != 1.0/3 || *f.PerWeek != 2 ||
		*f.LeadTime != (slipway.Quantiles{Count: 2, Median: slipway.Duration(6 * time.Hour), P90: slipway.Duration(24 * time.Hour)}) ||
		*f.TimeToRestore != (slipway.Quantiles{Count: 1, Median: slipway.Duration(26 * time.Hour), P90: slipway.Duration(26 * time.Hour)}) {
		t.Errorf("headline: %s", res.stdout)
	}
	if len(got.Environments) != 1 || len(got.Deployments) != 3 || got.Deployments[2].Release != "web-r3" || !got.Deployments[2].Fix {
		t.Errorf("narrowed to production: %s", res.stdout)
	}

	// The API refuses a request without a token, and a window that is not one.
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/api/v1/insights", ""); code != http.StatusUnauthorized {
		t.Errorf("insights without a token: %d", code)
	}
	if code, body := get("/api/v1/insights?since=yesterday", viewer.Secret); code != http.StatusBadRequest || !strings.Contains(body, "since") {
		t.Errorf("insights since=yesterday: %d %s", code, body)
	}
	if code, body := get("/api/v1/insights?environment=nowhere", viewer.Secret); code != http.StatusNotFound {
		t.Errorf("insights of an unknown environment: %d %s", code, body)
	}

	// The gauges, over the week before now (the same window).
	code, body := get("/metrics", viewer.Secret)
	for _, line := range []string{
		`slipway_deployments{app="web",environment="production"} 2`,
		`slipway_deployments{app="web",environment="default"} 1`,
		`slipway_change_failure_ratio{app="web",environment="production"} 0.3333333333333333`,
		`slipway_lead_time_seconds{app="web",environment="production",quantile="0.9"} 86400`,
		`slipway_time_to_restore_seconds{app="web",environment="production",quantile="0.5"} 93600`,
		`slipway_failures_open{app="web",environment="production"} 0`,
	} {
		if code != http.StatusOK || !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics (%d) lacks %s:\n%s", code, line, body)
		}
	}
	if strings.Contains(body, `slipway_lead_time_seconds{app="web",environment="default"`) {
		t.Errorf("/metrics has a lead time for default, which has no release:\n%s", body)
	}
}
