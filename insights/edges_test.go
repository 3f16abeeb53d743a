package insights_test

import (
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/insights"
)

// TestCompute_Edges: the edges of each definition, one history each, over the week from
// 2 Mar 00:00 (inclusive) to 9 Mar 00:00 (exclusive) with the default horizon of 24h.
func TestCompute_Edges(t *testing.T) {
	since, until := at(3, 2, 0, 0), at(3, 9, 0, 0)
	prod := func(rs ...slipway.Rollout) []insights.EnvironmentHistory {
		return []insights.EnvironmentHistory{{Environment: production, Rollouts: rs}}
	}
	for _, tc := range []struct {
		name     string
		history  insights.History
		want     slipway.DeliveryFigures // of the one app (or the environment when no app)
		headline bool                    // whether the headline is there
	}{{
		// Nothing deployed: every figure is absent, not zero; the counts are 0.
		name:     "no deployments",
		history:  insights.History{Environments: prod()},
		want:     slipway.DeliveryFigures{},
		headline: true,
	}, {
		// Only a rollout still progressing: nothing ended, so nothing counts.
		name: "nothing ended",
		history: insights.History{Environments: prod(slipway.Rollout{ID: "web-1", App: "web", Phase: slipway.PhasePaused,
			CreatedAt: at(3, 3, 0, 0)})},
		want:     slipway.DeliveryFigures{},
		headline: true,
	}, {
		// An aborted rollout and nothing after it: one failure, open; no time to restore;
		// no deployment, so no frequency, but a change failure rate of 1 / 1.
		name:     "failure not restored yet",
		history:  insights.History{Environments: prod(aborted("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0)))},
		want:     slipway.DeliveryFigures{Attempts: 1, Failures: 1, ChangeFailureRate: f64(1), OpenFailures: 1},
		headline: true,
	}, {
		// The window includes its start and excludes its end: web-1 ends at since exactly
		// (counted), web-2 at until exactly (not counted). 1 deployment in 7 days.
		name: "window bounds",
		history: insights.History{Environments: prod(
			completed("web-1", "web", "v1", at(3, 1, 23, 0), since),
			completed("web-2", "web", "v2", at(3, 8, 23, 0), until))},
		want:     slipway.DeliveryFigures{Deployments: 1, Attempts: 1, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(0)},
		headline: true,
	}, {
		// A rollback exactly 24h after the completion is within the horizon: web-1 failed,
		// restored when the rollback completed, 4 Mar 11:30 - 3 Mar 11:00 = 24h30m after it
		// ended. A rollback 24h and 1s after web-3's completion is not: web-3 did not fail.
		name: "failure horizon is inclusive",
		history: insights.History{Environments: prod(
			completed("web-1", "web", "v1", at(3, 3, 10, 0), at(3, 3, 11, 0)),
			rollback(completed("web-2", "web", "v0", at(3, 4, 11, 0), at(3, 4, 11, 30))),
			completed("web-3", "web", "v3", at(3, 5, 10, 0), at(3, 5, 11, 0)),
			rollback(completed("web-4", "web", "v1", at(3, 6, 11, 0).Add(time.Second), at(3, 6, 12, 0))))},
		want: slipway.DeliveryFigures{Deployments: 2, Attempts: 2, Failures: 1, PerDay: f64(2.0 / 7), PerWeek: f64(2), ChangeFailureRate: f64(0.5),
			TimeToRestore: &slipway.Quantiles{Count: 1, Median: h(hours(24.5)), P90: h(hours(24.5))}},
		headline: true,
	}, {
		// A second rollback finds the first rollback as the app's latest completed rollout:
		// nothing more failed. web-1 failed once (rolled back by web-2), restored by web-2.
		name: "rollback of a rollback",
		history: insights.History{Environments: prod(
			completed("web-1", "web", "v1", at(3, 3, 10, 0), at(3, 3, 11, 0)),
			rollback(completed("web-2", "web", "v0", at(3, 3, 12, 0), at(3, 3, 12, 10))),
			rollback(completed("web-3", "web", "v1", at(3, 3, 13, 0), at(3, 3, 13, 10))))},
		want: slipway.DeliveryFigures{Deployments: 1, Attempts: 1, Failures: 1, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(1),
			TimeToRestore: &slipway.Quantiles{Count: 1, Median: h(70 * time.Minute), P90: h(70 * time.Minute)}},
		headline: true,
	}, {
		// A superseded rollout is not an attempt; a failed deployment is not a restore: the
		// aborted web-1 is restored by web-4 (web-2 superseded, web-3 aborted itself).
		// web-1 10:00 -> web-4 16:00 = 6h; web-3 14:00 -> 16:00 = 2h. Sorted 2h 6h: median
		// rank 1 -> 2h, p90 rank 2 -> 6h.
		name: "superseded and failed rollouts restore nothing",
		history: insights.History{Environments: prod(
			aborted("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0)),
			superseded(aborted("web-2", "web", "v2", at(3, 3, 11, 0), at(3, 3, 12, 0)), "web-3"),
			aborted("web-3", "web", "v3", at(3, 3, 12, 0), at(3, 3, 14, 0)),
			completed("web-4", "web", "v4", at(3, 3, 15, 0), at(3, 3, 16, 0)))},
		want: slipway.DeliveryFigures{Deployments: 1, Attempts: 3, Failures: 2, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(2.0 / 3),
			TimeToRestore: &slipway.Quantiles{Count: 2, Median: h(2 * time.Hour), P90: h(6 * time.Hour)}},
		headline: true,
	}, {
		// A deployment that completed but failed restores nothing either: web-2 is rolled
		// back by web-3, which restores both web-1 (aborted 10:00 -> 13:30 = 3h30m) and web-2
		// (12:00 -> 13:30 = 1h30m). Sorted 1h30m 3h30m: median rank 1, p90 rank 2.
		name: "a failed deployment restores nothing",
		history: insights.History{Environments: prod(
			aborted("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0)),
			completed("web-2", "web", "v2", at(3, 3, 11, 0), at(3, 3, 12, 0)),
			rollback(completed("web-3", "web", "v0", at(3, 3, 13, 0), at(3, 3, 13, 30))))},
		want: slipway.DeliveryFigures{Deployments: 1, Attempts: 2, Failures: 2, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(1),
			TimeToRestore: &slipway.Quantiles{Count: 2, Median: h(hours(1.5)), P90: h(hours(3.5))}},
		headline: true,
	}, {
		// Another app's deployment restores nothing of this one's: api-2 completes after
		// web-1's abort, but web's failure stays open. Figures of the environment.
		name: "restore is per app",
		history: insights.History{Environments: prod(
			aborted("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0)),
			completed("api-2", "api", "v2", at(3, 3, 11, 0), at(3, 3, 12, 0)))},
		want:     slipway.DeliveryFigures{Deployments: 1, Attempts: 2, Failures: 1, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(0.5), OpenFailures: 1},
		headline: true,
	}, {
		// A release whose change is after its completion (a wrong --changed-at), or has no
		// change time, has no lead time.
		name: "no lead time without a sound change time",
		history: insights.History{Environments: prod(
			completed("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0)),
			completed("web-2", "web", "v2", at(3, 4, 9, 0), at(3, 4, 10, 0))),
			Releases: []slipway.Release{
				release("web-r1", at(3, 3, 11, 0), false, "production", "web-1"),
				release("web-r2", time.Time{}, false, "production", "web-2"),
			}},
		want:     slipway.DeliveryFigures{Deployments: 2, Attempts: 2, PerDay: f64(2.0 / 7), PerWeek: f64(2), ChangeFailureRate: f64(0)},
		headline: true,
	}, {
		// No environment labelled tier: production: no headline, the environment's figures
		// still reported.
		name: "no production environment",
		history: insights.History{Environments: []insights.EnvironmentHistory{{Environment: staging,
			Rollouts: []slipway.Rollout{completed("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0))}}}},
		want: slipway.DeliveryFigures{Deployments: 1, Attempts: 1, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(0)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := insights.Compute(tc.history, slipway.InsightsQuery{Since: since, Until: until}, until, insights.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Environments) != 1 {
				t.Fatalf("environments: %s", js(got.Environments))
			}
			same(t, "environment figures", got.Environments[0].Figures, tc.want)
			if (got.Headline != nil) != tc.headline {
				t.Errorf("headline %s, want one: %v", js(got.Headline), tc.headline)
			}
			if tc.headline {
				same(t, "headline", got.Headline, &tc.want)
			}
		})
	}
}

// TestCompute_Query: the defaults of a query's window and its refusals.
func TestCompute_Query(t *testing.T) {
	now := at(3, 9, 0, 0)
	h := insights.History{Environments: []insights.EnvironmentHistory{{Environment: production}}}
	got, err := insights.Compute(h, slipway.InsightsQuery{}, now, insights.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Until != now || got.Since != now.Add(-30*24*time.Hour) {
		t.Errorf("default window %s to %s, want the 30 days to now", got.Since, got.Until)
	}
	for _, tc := range []struct {
		q    slipway.InsightsQuery
		code string
	}{
		{slipway.InsightsQuery{Since: now, Until: now}, slipway.EINVALID},
		{slipway.InsightsQuery{Since: now.Add(time.Hour)}, slipway.EINVALID},
		{slipway.InsightsQuery{Environment: "nowhere"}, slipway.ENOTFOUND},
	} {
		if _, err := insights.Compute(h, tc.q, now, insights.Options{}); slipway.ErrorCode(err) != tc.code {
			t.Errorf("%+v: %v, want %s", tc.q, err, tc.code)
		}
	}
}
