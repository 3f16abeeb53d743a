package insights_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/insights"
)

// at is a moment of 2026 in UTC: at(2, 5, 16, 30) is 5 February, 16:30.
func at(month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, time.UTC)
}

// ended returns a rollout of app that started at start and ended at end in phase.
func ended(id, app, version string, start, end time.Time, phase slipway.Phase) slipway.Rollout {
	return slipway.Rollout{ID: id, App: app, ToVersion: version, Phase: phase, CreatedAt: start, UpdatedAt: end, CompletedAt: &end}
}

func completed(id, app, version string, start, end time.Time) slipway.Rollout {
	return ended(id, app, version, start, end, slipway.PhaseCompleted)
}

func aborted(id, app, version string, start, end time.Time) slipway.Rollout {
	return ended(id, app, version, start, end, slipway.PhaseAborted)
}

func rollback(r slipway.Rollout) slipway.Rollout { r.Rollback = true; return r }

func superseded(r slipway.Rollout, by string) slipway.Rollout { r.SupersededBy = by; return r }

// release returns a release changed at changed whose rollouts are env=rollout pairs, one
// stage per pair.
func release(id string, changed time.Time, fix bool, rollouts ...string) slipway.Release {
	r := slipway.Release{ID: id, ChangedAt: changed, Fix: fix}
	for i := 0; i < len(rollouts); i += 2 {
		r.Stages = append(r.Stages, slipway.ReleaseStage{Name: rollouts[i],
			Rollouts: []slipway.ReleaseRollout{{Environment: rollouts[i], Rollout: rollouts[i+1]}}})
	}
	return r
}

func h(d time.Duration) slipway.Duration { return slipway.Duration(d) }

func hours(n float64) time.Duration { return time.Duration(n * float64(time.Hour)) }

var (
	staging    = slipway.Environment{Name: "staging", Labels: map[string]string{"tier": "staging"}}
	production = slipway.Environment{Name: "production", Labels: map[string]string{"tier": "production"}}
)

// scripted is four weeks of history (and a little before) of web and api in production and
// web in staging. Rollout IDs are per environment: staging's web-1 is not production's.
//
// production, web (D: deployment attempt, F: failed):
//
//	web-1   v1  30 Jan 10:00 -> 30 Jan 12:00 completed   (before the window)
//	web-2   v2  31 Jan 22:00 -> 31 Jan 23:00 aborted     (before the window; F)
//	web-3   v3   2 Feb 10:00 ->  2 Feb 12:00 completed   D  release web-r3 changed 1 Feb 12:00
//	web-4   v4   5 Feb 09:00 ->  5 Feb 10:00 completed   DF release web-r4 changed 3 Feb 10:00
//	web-5   v3   5 Feb 16:00 ->  5 Feb 16:30 rollback    (6h after web-4: within 24h, web-4 failed)
//	web-6   v5  10 Feb 09:00 -> 10 Feb 11:00 completed   DF release web-r5 changed 10 Feb 05:00
//	web-7   v6  11 Feb 08:00 -> 11 Feb 09:00 completed   D  release web-r6 (Fix) changed 10 Feb 20:00
//	                                                        (starts 21h after web-6: web-6 failed)
//	web-8   v7  14 Feb 10:00 -> 14 Feb 12:00 completed   D  release web-r7 changed 13 Feb 12:00
//	web-9   v6  16 Feb 12:00 -> 16 Feb 12:10 rollback    (48h after web-8: beyond 24h, no failure)
//	web-10  v8  20 Feb 10:00 -> 20 Feb 11:00 aborted     DF release web-r8 changed 19 Feb 00:00
//	web-11  v9  21 Feb 09:00 -> 21 Feb 09:30 superseded by web-12 (not an attempt)
//	web-12  v10 21 Feb 09:30 -> 21 Feb 10:00 completed   D  release web-r10 changed 21 Feb 06:00
//	web-13  v11 27 Feb 10:00 -> 27 Feb 11:00 completed   D  (an apply, no release)
//	web-14  v12 28 Feb 20:00 -> 28 Feb 21:00 aborted     DF release web-r11 changed 28 Feb 12:00
//	web-15  v13 28 Feb 23:00 -> still progressing (not ended)
//
// production, api:
//
//	api-1   v1   3 Feb 10:00 ->  3 Feb 11:00 completed   D  release api-r1 changed 3 Feb 08:00
//	api-2   v2  17 Feb 10:00 -> 17 Feb 10:30 completed   D  release api-r2 changed 16 Feb 10:30
//
// staging, web:
//
//	web-1   v4   4 Feb 10:00 ->  4 Feb 11:00 completed   D  release web-r4 (changed 3 Feb 10:00)
//	web-2   v5  10 Feb 06:00 -> 10 Feb 07:00 completed   D  release web-r5 (changed 10 Feb 05:00)
//	web-3   v8  19 Feb 10:00 -> 19 Feb 11:00 completed   D  release web-r8 (changed 19 Feb 00:00)
func scripted() insights.History {
	progressing := slipway.Rollout{ID: "web-15", App: "web", ToVersion: "v13", Phase: slipway.PhaseProgressing, CreatedAt: at(2, 28, 23, 0)}
	prod := []slipway.Rollout{
		completed("web-1", "web", "v1", at(1, 30, 10, 0), at(1, 30, 12, 0)),
		aborted("web-2", "web", "v2", at(1, 31, 22, 0), at(1, 31, 23, 0)),
		completed("web-3", "web", "v3", at(2, 2, 10, 0), at(2, 2, 12, 0)),
		completed("web-4", "web", "v4", at(2, 5, 9, 0), at(2, 5, 10, 0)),
		rollback(completed("web-5", "web", "v3", at(2, 5, 16, 0), at(2, 5, 16, 30))),
		completed("web-6", "web", "v5", at(2, 10, 9, 0), at(2, 10, 11, 0)),
		completed("web-7", "web", "v6", at(2, 11, 8, 0), at(2, 11, 9, 0)),
		completed("web-8", "web", "v7", at(2, 14, 10, 0), at(2, 14, 12, 0)),
		rollback(completed("web-9", "web", "v6", at(2, 16, 12, 0), at(2, 16, 12, 10))),
		aborted("web-10", "web", "v8", at(2, 20, 10, 0), at(2, 20, 11, 0)),
		superseded(aborted("web-11", "web", "v9", at(2, 21, 9, 0), at(2, 21, 9, 30)), "web-12"),
		completed("web-12", "web", "v10", at(2, 21, 9, 30), at(2, 21, 10, 0)),
		completed("web-13", "web", "v11", at(2, 27, 10, 0), at(2, 27, 11, 0)),
		aborted("web-14", "web", "v12", at(2, 28, 20, 0), at(2, 28, 21, 0)),
		progressing,
		completed("api-1", "api", "v1", at(2, 3, 10, 0), at(2, 3, 11, 0)),
		completed("api-2", "api", "v2", at(2, 17, 10, 0), at(2, 17, 10, 30)),
	}
	stage := []slipway.Rollout{
		completed("web-1", "web", "v4", at(2, 4, 10, 0), at(2, 4, 11, 0)),
		completed("web-2", "web", "v5", at(2, 10, 6, 0), at(2, 10, 7, 0)),
		completed("web-3", "web", "v8", at(2, 19, 10, 0), at(2, 19, 11, 0)),
	}
	return insights.History{
		Environments: []insights.EnvironmentHistory{{Environment: staging, Rollouts: stage}, {Environment: production, Rollouts: prod}},
		Releases: []slipway.Release{
			release("web-r1", at(1, 29, 12, 0), false, "production", "web-1"),
			release("web-r2", at(1, 31, 12, 0), false, "production", "web-2"),
			release("web-r3", at(2, 1, 12, 0), false, "production", "web-3"),
			release("web-r4", at(2, 3, 10, 0), false, "staging", "web-1", "production", "web-4"),
			release("web-r5", at(2, 10, 5, 0), false, "staging", "web-2", "production", "web-6"),
			release("web-r6", at(2, 10, 20, 0), true, "production", "web-7"),
			release("web-r7", at(2, 13, 12, 0), false, "production", "web-8"),
			release("web-r8", at(2, 19, 0, 0), false, "staging", "web-3", "production", "web-10"),
			release("web-r9", at(2, 21, 0, 0), false, "production", "web-11"),
			release("web-r10", at(2, 21, 6, 0), false, "production", "web-12"),
			release("web-r11", at(2, 28, 12, 0), false, "production", "web-14"),
			release("api-r1", at(2, 3, 8, 0), false, "production", "api-1"),
			release("api-r2", at(2, 16, 10, 30), false, "production", "api-2"),
		},
	}
}

func f64(v float64) *float64 { return &v }

// TestCompute_ScriptedHistory checks every figure of the scripted history over February
// 2026 (since 1 Feb 00:00 inclusive, until 1 Mar 00:00 exclusive: 28 days, 4 weeks) with the
// default failure horizon (24h), against values worked out by hand below.
func TestCompute_ScriptedHistory(t *testing.T) {
	now := at(3, 1, 0, 0)
	got, err := insights.Compute(scripted(), slipway.InsightsQuery{Since: at(2, 1, 0, 0), Until: now}, now, insights.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// production, web.
	// Attempts that ended in the window: web-3, 4, 6, 7, 8, 10, 12, 13, 14 = 9 (web-1 and
	// web-2 ended before it; web-5 and web-9 are rollbacks; web-11 was superseded; web-15
	// has not ended).
	// Deployments (completed attempts): web-3, 4, 6, 7, 8, 12, 13 = 7.
	// Failures: web-4 (rolled back by web-5, 16:00 - 10:00 = 6h <= 24h), web-6 (fix release
	// web-r6's rollout web-7 started 11 Feb 08:00 - 10 Feb 11:00 = 21h <= 24h), web-10
	// (aborted), web-14 (aborted) = 4. web-8 is not failed: web-9 came 48h after it.
	// Change failure rate: 4 / 9.
	// Frequency: 7 / 28 days = 0.25 a day; 7 / 4 weeks = 1.75 a week.
	// Lead times (completion - release's change): web-3 12:00 2 Feb - 12:00 1 Feb = 24h;
	// web-4 10:00 5 Feb - 10:00 3 Feb = 48h; web-6 11:00 - 05:00 = 6h; web-7 09:00 11 Feb -
	// 20:00 10 Feb = 13h; web-8 12:00 14 Feb - 12:00 13 Feb = 24h; web-12 10:00 - 06:00 =
	// 4h; web-13 has no release. Sorted: 4h 6h 13h 24h 24h 48h (n = 6): median rank
	// ceil(0.5*6) = 3 -> 13h; p90 rank ceil(0.9*6) = ceil(5.4) = 6 -> 48h.
	// Time to restore (from the failure's end to the next healthy completion of web):
	// web-4 10:00 -> web-5 16:30 = 6h30m; web-6 10 Feb 11:00 -> web-7 11 Feb 09:00 = 22h;
	// web-10 20 Feb 11:00 -> web-12 21 Feb 10:00 = 23h (web-11 did not complete); web-14
	// open. Sorted 6h30m 22h 23h (n = 3): median rank ceil(1.5) = 2 -> 22h; p90 rank
	// ceil(2.7) = 3 -> 23h.
	web := slipway.DeliveryFigures{Deployments: 7, Attempts: 9, Failures: 4, PerDay: f64(0.25), PerWeek: f64(1.75),
		LeadTime:          &slipway.Quantiles{Count: 6, Median: h(13 * time.Hour), P90: h(48 * time.Hour)},
		ChangeFailureRate: f64(4.0 / 9),
		TimeToRestore:     &slipway.Quantiles{Count: 3, Median: h(22 * time.Hour), P90: h(23 * time.Hour)}, OpenFailures: 1}

	// production, api: api-1 and api-2 completed, none failed: 2 attempts, 2 deployments,
	// rate 0 / 2 = 0. Frequency 2 / 28 a day, 2 / 4 = 0.5 a week. Lead times: api-1 11:00 -
	// 08:00 = 3h; api-2 17 Feb 10:30 - 16 Feb 10:30 = 24h. Sorted 3h 24h (n = 2): median
	// rank 1 -> 3h; p90 rank ceil(1.8) = 2 -> 24h. No failure: no time to restore.
	api := slipway.DeliveryFigures{Deployments: 2, Attempts: 2, PerDay: f64(2.0 / 28), PerWeek: f64(0.5),
		LeadTime:          &slipway.Quantiles{Count: 2, Median: h(3 * time.Hour), P90: h(24 * time.Hour)},
		ChangeFailureRate: f64(0)}

	// production, all apps: 9 + 2 = 11 attempts, 7 + 2 = 9 deployments, 4 failures; rate
	// 4 / 11; 9 / 28 a day, 9 / 4 = 2.25 a week. Lead times 3h 4h 6h 13h 24h 24h 24h 48h
	// (n = 8): median rank 4 -> 13h; p90 rank ceil(7.2) = 8 -> 48h. Restores as web's.
	prod := slipway.DeliveryFigures{Deployments: 9, Attempts: 11, Failures: 4, PerDay: f64(9.0 / 28), PerWeek: f64(2.25),
		LeadTime:          &slipway.Quantiles{Count: 8, Median: h(13 * time.Hour), P90: h(48 * time.Hour)},
		ChangeFailureRate: f64(4.0 / 11),
		TimeToRestore:     &slipway.Quantiles{Count: 3, Median: h(22 * time.Hour), P90: h(23 * time.Hour)}, OpenFailures: 1}

	// staging, web: 3 completed, none failed; 3 / 28 a day, 3 / 4 = 0.75 a week. Lead
	// times: web-1 4 Feb 11:00 - 3 Feb 10:00 = 25h; web-2 07:00 - 05:00 = 2h; web-3 11:00 -
	// 00:00 = 11h. Sorted 2h 11h 25h: median rank 2 -> 11h; p90 rank 3 -> 25h.
	stage := slipway.DeliveryFigures{Deployments: 3, Attempts: 3, PerDay: f64(3.0 / 28), PerWeek: f64(0.75),
		LeadTime:          &slipway.Quantiles{Count: 3, Median: h(11 * time.Hour), P90: h(25 * time.Hour)},
		ChangeFailureRate: f64(0)}

	same(t, "headline (production only)", got.Headline, &prod)
	same(t, "production", got.Environments[0], slipway.EnvironmentInsights{Environment: "production", Production: true, Figures: prod})
	same(t, "staging", got.Environments[1], slipway.EnvironmentInsights{Environment: "staging", Figures: stage})
	same(t, "apps", got.Apps, []slipway.AppInsights{
		{App: "api", Environment: "production", Production: true, Figures: api},
		{App: "web", Environment: "production", Production: true, Figures: web},
		{App: "web", Environment: "staging", Figures: stage},
	})
	same(t, "production environments", got.Production, []string{"production"})
	if got.Since != at(2, 1, 0, 0) || got.Until != now || got.FailureHorizon != h(24*time.Hour) {
		t.Errorf("window %s to %s, horizon %s", got.Since, got.Until, got.FailureHorizon)
	}
	if len(got.Unavailable) != 2 {
		t.Errorf("unavailable: %q, want change size and analysis margins", got.Unavailable)
	}

	// Risk signals: the time since the environment's last failure (any app) that ended
	// before the rollout started. Production's failures end 31 Jan 23:00 (web-2), 5 Feb
	// 10:00 (web-4), 10 Feb 11:00 (web-6), 20 Feb 11:00 (web-10), 28 Feb 21:00 (web-14).
	//   web-3  starts  2 Feb 10:00; last web-2:  1 day 11h = 35h
	//   api-1  starts  3 Feb 10:00; last web-2:  2 days 11h = 59h
	//   web-4  starts  5 Feb 09:00; last web-2:  4 days 10h = 106h
	//   web-6  starts 10 Feb 09:00; last web-4:  4 days 23h = 119h
	//   web-7  starts 11 Feb 08:00; last web-6:  21h
	//   web-8  starts 14 Feb 10:00; last web-6:  3 days 23h = 95h
	//   api-2  starts 17 Feb 10:00; last web-6:  6 days 23h = 167h
	//   web-10 starts 20 Feb 10:00; last web-6:  9 days 23h = 239h (web-10 itself ends later)
	//   web-12 starts 21 Feb 09:30; last web-10: 22h30m
	//   web-13 starts 27 Feb 10:00; last web-10: 6 days 23h = 167h
	//   web-14 starts 28 Feb 20:00; last web-10: 8 days 9h = 201h
	// Staging has had no failure. Deployments are listed by their end, oldest first.
	type row struct {
		env, rollout, release string
		lead, since           float64 // hours; -1: absent
		failure               slipway.FailureCause
		by                    string
		restored              time.Time
	}
	want := []row{
		{"production", "web-3", "web-r3", 24, 35, "", "", time.Time{}},
		{"production", "api-1", "api-r1", 3, 59, "", "", time.Time{}},
		{"staging", "web-1", "web-r4", 25, -1, "", "", time.Time{}},
		{"production", "web-4", "web-r4", 48, 106, slipway.FailureRolledBack, "web-5", at(2, 5, 16, 30)},
		{"staging", "web-2", "web-r5", 2, -1, "", "", time.Time{}},
		{"production", "web-6", "web-r5", 6, 119, slipway.FailureFixed, "web-r6", at(2, 11, 9, 0)},
		{"production", "web-7", "web-r6", 13, 21, "", "", time.Time{}},
		{"production", "web-8", "web-r7", 24, 95, "", "", time.Time{}},
		{"production", "api-2", "api-r2", 24, 167, "", "", time.Time{}},
		{"staging", "web-3", "web-r8", 11, -1, "", "", time.Time{}},
		{"production", "web-10", "web-r8", -1, 239, slipway.FailureAborted, "", at(2, 21, 10, 0)},
		{"production", "web-12", "web-r10", 4, 22.5, "", "", time.Time{}},
		{"production", "web-13", "", -1, 167, "", "", time.Time{}},
		{"production", "web-14", "web-r11", -1, 201, slipway.FailureAborted, "", time.Time{}},
	}
	if len(got.Deployments) != len(want) {
		t.Fatalf("%d deployments, want %d: %s", len(got.Deployments), len(want), js(got.Deployments))
	}
	hoursOf := func(d *slipway.Duration) float64 {
		if d == nil {
			return -1
		}
		return d.D().Hours()
	}
	for i, w := range want {
		d := got.Deployments[i]
		var restored time.Time
		if d.RestoredAt != nil {
			restored = *d.RestoredAt
		}
		g := row{d.Environment, d.Rollout, d.Release, hoursOf(d.LeadTime), hoursOf(d.SinceLastFailure), d.Failure, d.FailedBy, restored}
		if g != w {
			t.Errorf("deployment %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if got.Deployments[5].Fix || !got.Deployments[6].Fix {
		t.Errorf("only web-7 is of a fix release (web-r6): web-6 fix %v, web-7 fix %v", got.Deployments[5].Fix, got.Deployments[6].Fix)
	}

	// Narrowed to web in production: the same web figures, the headline now web's alone.
	got, err = insights.Compute(scripted(), slipway.InsightsQuery{App: "web", Environment: "production", Since: at(2, 1, 0, 0), Until: now}, now, insights.Options{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "web in production: headline", got.Headline, &web)
	same(t, "web in production: apps", got.Apps, []slipway.AppInsights{{App: "web", Environment: "production", Production: true, Figures: web}})
	if len(got.Environments) != 1 || len(got.Deployments) != 9 {
		t.Errorf("web in production: %d environments, %d deployments; want 1 and 9", len(got.Environments), len(got.Deployments))
	}

	// A horizon of 20h: web-r6's rollout started 21h after web-6 completed, so web-6 no
	// longer failed. Failures of web: web-4, web-10, web-14 = 3 of 9. Restores 6h30m (web-4)
	// and 23h (web-10); web-14 open. Sorted 6h30m 23h: median rank 1 -> 6h30m, p90 rank
	// ceil(1.8) = 2 -> 23h.
	got, err = insights.Compute(scripted(), slipway.InsightsQuery{App: "web", Environment: "production", Since: at(2, 1, 0, 0), Until: now}, now,
		insights.Options{FailureHorizon: 20 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := got.Apps[0].Figures
	if f.Failures != 3 || *f.ChangeFailureRate != 3.0/9 || *f.TimeToRestore != (slipway.Quantiles{Count: 2, Median: h(hours(6.5)), P90: h(23 * time.Hour)}) {
		t.Errorf("horizon 20h: %s", js(f))
	}
}

// same fails the test when got and want differ, showing both as JSON.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := js(got), js(want); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
