package insights_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"slipway.dev/slipway"
	"slipway.dev/slipway/insights"
	"slipway.dev/slipway/sqlite"
)

// openStore opens a SQLite store in a temporary directory.
func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// seed stores the apps of rs and rs in st.
func seed(t testing.TB, st *sqlite.Store, rs ...slipway.Rollout) {
	t.Helper()
	c := &slipway.Change{Rollouts: rs}
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.App] {
			seen[r.App] = true
			c.Apps = append(c.Apps, slipway.AppState{Spec: slipway.App{Name: r.App}})
		}
	}
	if err := st.Commit(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// storeRelease stores r (its number and ID are the store's: web-r1, web-r2, ...).
func storeRelease(t testing.TB, st *sqlite.Store, r slipway.Release) {
	t.Helper()
	if err := st.CreateRelease(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
}

// world is a server's stores: the default environment's (with the releases) and
// production's, and an environment "broken" that is listed but not running.
type world struct {
	def, prod *sqlite.Store
	now       time.Time
}

func newWorld(t testing.TB) *world {
	w := &world{def: openStore(t), prod: openStore(t), now: at(3, 9, 0, 0)}
	// production: web-1 completed; web-2 completed, rolled back 2h later by web-3; default:
	// web-1 completed, no release.
	seed(t, w.prod,
		completed("web-1", "web", "v1", at(3, 3, 9, 0), at(3, 3, 10, 0)),
		completed("web-2", "web", "v2", at(3, 4, 9, 0), at(3, 4, 10, 0)),
		rollback(completed("web-3", "web", "v1", at(3, 4, 12, 0), at(3, 4, 12, 30))))
	seed(t, w.def, completed("web-1", "web", "v1", at(3, 5, 9, 0), at(3, 5, 10, 0)))
	storeRelease(t, w.def, slipway.Release{App: "web", Version: "v1", ChangedAt: at(3, 3, 4, 0), CreatedAt: at(3, 3, 5, 0), Phase: slipway.PhaseCompleted,
		Stages: []slipway.ReleaseStage{{Name: "prod", Rollouts: []slipway.ReleaseRollout{{Environment: "production", Rollout: "web-1"}}}}})
	storeRelease(t, w.def, slipway.Release{App: "web", Version: "v2", ChangedAt: at(3, 4, 8, 0), CreatedAt: at(3, 4, 8, 30), Phase: slipway.PhaseCompleted,
		Stages: []slipway.ReleaseStage{{Name: "prod", Rollouts: []slipway.ReleaseRollout{{Environment: "production", Rollout: "web-2"}}}}})
	return w
}

func (w *world) config() insights.Config {
	return insights.Config{
		Environments: func(context.Context) ([]slipway.Environment, error) {
			return []slipway.Environment{{Name: slipway.DefaultEnvironment}, {Name: "broken"}, production}, nil
		},
		State: func(name string) (slipway.StateReader, bool) {
			switch name {
			case slipway.DefaultEnvironment:
				return w.def, true
			case "production":
				return w.prod, true
			}
			return nil, false
		},
		Releases: w.def,
		Now:      func() time.Time { return w.now },
	}
}

// TestReader_ReadsEveryEnvironmentsStore: the reader finds each environment's rollouts in
// its own store and the releases in the default one, and says which environment it could
// not read.
func TestReader_ReadsEveryEnvironmentsStore(t *testing.T) {
	w := newWorld(t)
	r := insights.NewReader(w.config())
	got, err := r.Insights(context.Background(), slipway.InsightsQuery{Since: at(3, 2, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	// production (2 Mar to 9 Mar, 7 days): web-1 and web-2 completed; web-2 failed (rolled
	// back by web-3 2h after it), restored 2h30m after it ended. Lead times: web-1 10:00 -
	// 04:00 = 6h; web-2 10:00 - 08:00 = 2h; sorted 2h 6h: median rank 1 -> 2h, p90 rank 2
	// -> 6h.
	prod := slipway.DeliveryFigures{Deployments: 2, Attempts: 2, Failures: 1, PerDay: f64(2.0 / 7), PerWeek: f64(2),
		LeadTime:          &slipway.Quantiles{Count: 2, Median: h(2 * time.Hour), P90: h(6 * time.Hour)},
		ChangeFailureRate: f64(0.5),
		TimeToRestore:     &slipway.Quantiles{Count: 1, Median: h(hours(2.5)), P90: h(hours(2.5))}}
	// default: web-1 completed, no release (its web-1 is not production's): no lead time.
	def := slipway.DeliveryFigures{Deployments: 1, Attempts: 1, PerDay: f64(1.0 / 7), PerWeek: f64(1), ChangeFailureRate: f64(0)}
	same(t, "headline", got.Headline, &prod)
	same(t, "apps", got.Apps, []slipway.AppInsights{
		{App: "web", Environment: slipway.DefaultEnvironment, Figures: def},
		{App: "web", Environment: "production", Production: true, Figures: prod},
	})
	if got.Until != w.now {
		t.Errorf("until %s, want the reader's now %s", got.Until, w.now)
	}
	if !strings.Contains(strings.Join(got.Unavailable, "\n"), "environment broken: it is not running now") {
		t.Errorf("unavailable: %q", got.Unavailable)
	}
	if _, err := r.Insights(context.Background(), slipway.InsightsQuery{Environment: "broken"}); slipway.ErrorCode(err) != slipway.EUNAVAILABLE {
		t.Errorf("insights of a broken environment: %v, want EUNAVAILABLE", err)
	}
	if _, err := r.Insights(context.Background(), slipway.InsightsQuery{Environment: "nowhere"}); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("insights of an unknown environment: %v, want ENOTFOUND", err)
	}
}

// TestCollector_GaugesPerAppAndEnvironment: the gauges carry each app's figures in each
// environment over the last window, absent figures have no series, and one computation
// serves the scrapes within its TTL.
func TestCollector_GaugesPerAppAndEnvironment(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(insights.NewCollector(insights.NewReader(w.config()),
		insights.CollectorConfig{Window: 7 * 24 * time.Hour, TTL: time.Minute, Now: func() time.Time { return w.now }}))
	// The figures of TestReader_ReadsEveryEnvironmentsStore: 9 Mar 00:00 - 7 days is 2 Mar.
	want := `
# HELP slipway_change_failure_ratio Deployments in the window that failed (aborted, rolled back or followed by a fix within the failure horizon) over all that ended in it.
# TYPE slipway_change_failure_ratio gauge
slipway_change_failure_ratio{app="web",environment="default"} 0
slipway_change_failure_ratio{app="web",environment="production"} 0.5
# HELP slipway_deployments Deployments (rollouts, not rollbacks) that completed in the window (the last 30 days by default).
# TYPE slipway_deployments gauge
slipway_deployments{app="web",environment="default"} 1
slipway_deployments{app="web",environment="production"} 2
# HELP slipway_lead_time_seconds Lead time for changes of the deployments completed in the window: from a release's change to its rollout's completion (nearest-rank quantiles).
# TYPE slipway_lead_time_seconds gauge
slipway_lead_time_seconds{app="web",environment="production",quantile="0.5"} 7200
slipway_lead_time_seconds{app="web",environment="production",quantile="0.9"} 21600
# HELP slipway_time_to_restore_seconds Time to restore of the failures in the window: from the failed deployment's end to the next healthy deployment's (nearest-rank quantiles).
# TYPE slipway_time_to_restore_seconds gauge
slipway_time_to_restore_seconds{app="web",environment="production",quantile="0.5"} 9000
`
	names := []string{"slipway_change_failure_ratio", "slipway_deployments", "slipway_lead_time_seconds", "slipway_time_to_restore_seconds"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// A deployment stored now is not seen until the TTL has passed.
	seed(t, w.prod, completed("api-1", "api", "v1", at(3, 8, 9, 0), at(3, 8, 10, 0)))
	if n, err := testutil.GatherAndCount(reg, "slipway_deployments"); err != nil || n != 2 {
		t.Errorf("series of slipway_deployments within the TTL: %d, %v; want 2", n, err)
	}
	w.now = w.now.Add(time.Minute)
	if n, err := testutil.GatherAndCount(reg, "slipway_deployments"); err != nil || n != 3 {
		t.Errorf("series of slipway_deployments after the TTL: %d, %v; want 3", n, err)
	}
}
