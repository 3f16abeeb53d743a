package engine

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func testRevs(ids ...string) map[string]slipway.Revision {
	m := map[string]slipway.Revision{}
	for i, id := range ids {
		m[id] = slipway.Revision{App: "web", ID: id, Number: i + 1, Version: id}
	}
	return m
}

// placements renders d's placements as "rev=n" in order.
func placements(d slipway.Desired) []string {
	var ps []string
	for _, p := range d.Revisions {
		ps = append(ps, fmt.Sprintf("%s=%d", p.Revision.ID, p.Replicas))
	}
	return ps
}

func weights(ws ...any) slipway.Split {
	var s slipway.Split
	for i := 0; i < len(ws); i += 2 {
		s.Weights = append(s.Weights, slipway.Weight{Revision: ws[i].(string), Weight: ws[i+1].(int)})
	}
	return s
}

func TestDesired(t *testing.T) {
	beta := &slipway.HeaderRoute{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}}
	done := t0.Add(time.Minute)
	later := t0.Add(time.Hour)
	with := func(r slipway.Rollout, f func(*slipway.Rollout)) *slipway.Rollout { f(&r); return &r }
	canary := newTestRollout(canaryApp(), "v1")
	bg := newTestRollout(testApp(slipway.Strategy{BlueGreen: &slipway.BlueGreenStrategy{PreviewReplicas: intp(1)}}, 4), "v1")
	rolling := newTestRollout(testApp(slipway.Strategy{Rolling: &slipway.RollingStrategy{}}, 4), "v1")
	for _, tc := range []struct {
		name    string
		stable  string
		latest  *slipway.Rollout
		revs    map[string]slipway.Revision
		place   []string
		split   slipway.Split
		preview string
	}{
		{name: "no revision yet runs nothing", latest: nil, revs: testRevs()},
		{name: "idle runs the stable revision", stable: "v1", revs: testRevs("v1", "v2"), place: []string{"v1=4"}, split: weights("v1", 100)},
		{name: "first rollout brings its revision up", latest: with(newTestRollout(canaryApp(), ""), func(*slipway.Rollout) {}),
			revs: testRevs("v2"), place: []string{"v2=4"}, split: weights("v2", 100)},
		{name: "aborted first rollout runs nothing", latest: with(newTestRollout(canaryApp(), ""), func(r *slipway.Rollout) { r.Phase = slipway.PhaseAborted }),
			revs: testRevs("v2")},
		{name: "canary at weight 0 runs no canary", stable: "v1", latest: with(canary, func(*slipway.Rollout) {}),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=0"}, split: weights("v1", 100)},
		{name: "canary weight shares traffic", stable: "v1", latest: with(canary, func(r *slipway.Rollout) { r.Weight = 20 }),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=1"}, split: weights("v2", 20, "v1", 80)},
		{name: "canary header route", stable: "v1", latest: with(canary, func(r *slipway.Rollout) { r.Weight, r.HeaderRoute = 20, beta }),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=1"},
			split: slipway.Split{Weights: weights("v2", 20, "v1", 80).Weights, Routes: []slipway.Route{{Name: "beta", Match: beta.Match, Revision: "v2"}}}},
		{name: "canary scale apart from weight", stable: "v1", latest: with(canary, func(r *slipway.Rollout) {
			r.Weight, r.CanaryScale = 20, &slipway.CanaryScale{Replicas: intp(3)}
		}), revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=3"}, split: weights("v2", 20, "v1", 80)},
		{name: "canary final promotion runs both in full", stable: "v1", latest: with(canary, func(r *slipway.Rollout) { r.Step, r.Weight = 10, 100 }),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=4"}, split: weights("v2", 100)},
		{name: "pruned stable revision leaves a whole split", stable: "v1", latest: with(canary, func(r *slipway.Rollout) { r.Weight = 20 }),
			revs: testRevs("v2"), place: []string{"v2=1"}, split: weights("v2", 100)},
		{name: "blue-green preview before the switch", stable: "v1", latest: with(bg, func(*slipway.Rollout) {}),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=1"}, split: weights("v1", 100), preview: "v2"},
		{name: "blue-green rollback to a stable revision runs it in full from the start", stable: "v1", latest: with(bg, func(r *slipway.Rollout) {
			r.Rollback, r.SkipAnalysis = true, true
		}), revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=4"}, split: weights("v1", 100), preview: "v2"},
		{name: "blue-green scaled to full while waiting", stable: "v1", latest: with(bg, func(r *slipway.Rollout) { r.Step = bgWaiting }),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=4"}, split: weights("v1", 100), preview: "v2"},
		{name: "blue-green after the switch", stable: "v1", latest: with(bg, func(r *slipway.Rollout) { r.Step, r.Switched, r.Weight = bgSwitched, true, 100 }),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=4"}, split: weights("v2", 100)},
		{name: "completed with pending scale-down keeps old capacity", stable: "v2", latest: with(bg, func(r *slipway.Rollout) {
			r.Phase, r.Step, r.Switched, r.Weight, r.CompletedAt, r.ScaleDownAt = slipway.PhaseCompleted, bgSwitched, true, 100, &done, &later
		}), revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=4"}, split: weights("v2", 100)},
		{name: "completed and scaled down runs the new stable only", stable: "v2", latest: with(bg, func(r *slipway.Rollout) {
			r.Phase, r.CompletedAt, r.ScaleDownAt, r.ScaledDown = slipway.PhaseCompleted, &done, &later, true
		}), revs: testRevs("v1", "v2"), place: []string{"v2=4"}, split: weights("v2", 100)},
		{name: "aborted returns to stable", stable: "v1", latest: with(canary, func(r *slipway.Rollout) {
			r.Phase, r.CompletedAt, r.Step = slipway.PhaseAborted, &done, 3
		}), revs: testRevs("v1", "v2"), place: []string{"v1=4"}, split: weights("v1", 100)},
		{name: "paused canary keeps its split", stable: "v1", latest: with(canary, func(r *slipway.Rollout) { r.Phase, r.Weight = slipway.PhasePaused, 50 }),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=2"}, split: weights("v2", 50, "v1", 50)},
		{name: "rolling runs the counts it asked for", stable: "v1", latest: with(rolling, func(r *slipway.Rollout) { r.OldReplicas, r.NewReplicas, r.Weight = 1, 4, 67 }),
			revs: testRevs("v1", "v2"), place: []string{"v1=1", "v2=4"}, split: weights("v2", 67, "v1", 33)},
		{name: "rolling before any new instance", stable: "v1", latest: with(rolling, func(*slipway.Rollout) {}),
			revs: testRevs("v1", "v2"), place: []string{"v1=4", "v2=0"}, split: weights("v1", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := slipway.AppState{Spec: slipway.App{Name: "web", Replicas: 4, Traffic: slipway.Traffic{Listen: "127.0.0.1:8080"}}, Stable: tc.stable}
			d := Desired(app, tc.latest, tc.revs)
			if d.App != "web" || d.Traffic.Listen != "127.0.0.1:8080" {
				t.Fatalf("app %q traffic %+v", d.App, d.Traffic)
			}
			if got := placements(d); !slices.Equal(got, tc.place) {
				t.Fatalf("placements %v, want %v", got, tc.place)
			}
			if !reflect.DeepEqual(d.Split, tc.split) {
				t.Fatalf("split %+v, want %+v", d.Split, tc.split)
			}
			if d.Preview != tc.preview {
				t.Fatalf("preview %q, want %q", d.Preview, tc.preview)
			}
			if tc.latest != nil && tc.latest.Active() && !d.Split.Equal(RolloutSplit(*tc.latest)) && len(tc.revs) == 2 {
				t.Fatalf("Desired split %+v differs from RolloutSplit %+v", d.Split, RolloutSplit(*tc.latest))
			}
			if again := Desired(app, tc.latest, tc.revs); !reflect.DeepEqual(again, d) {
				t.Fatalf("Desired is not deterministic")
			}
		})
	}
}

func TestCanaryReplicas(t *testing.T) {
	steps := canarySteps()
	for _, tc := range []struct {
		name             string
		replicas, weight int
		scale            *slipway.CanaryScale
		step             int
		want             int
	}{
		{"weight 0 runs none", 1, 0, nil, 0, 0},
		{"weight 1 of 1 replica runs one", 1, 1, nil, 0, 1},
		{"weight 99 of 1 replica runs one", 1, 99, nil, 0, 1},
		{"weight 100 of 1 replica runs one", 1, 100, nil, 0, 1},
		{"weight rounds up", 10, 11, nil, 0, 2},
		{"weight exact", 10, 30, nil, 0, 3},
		{"weight 1 of 4 rounds up to one", 4, 1, nil, 0, 1},
		{"weight 26 of 4", 4, 26, nil, 0, 2},
		{"no replicas runs none", 0, 50, nil, 0, 0},
		{"scale replicas overrides weight", 4, 20, &slipway.CanaryScale{Replicas: intp(3)}, 0, 3},
		{"scale replicas 0", 4, 20, &slipway.CanaryScale{Replicas: intp(0)}, 0, 0},
		{"scale weight rounds up", 10, 20, &slipway.CanaryScale{Weight: intp(15)}, 0, 2},
		{"scale weight 0", 10, 20, &slipway.CanaryScale{Weight: intp(0)}, 0, 0},
		{"final promotion runs all", 10, 20, &slipway.CanaryScale{Replicas: intp(1)}, len(steps), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := canaryAt(tc.step, tc.weight)
			r.CanaryScale = tc.scale
			if got := CanaryReplicas(r, tc.replicas); got != tc.want {
				t.Fatalf("CanaryReplicas(weight %d, %d replicas) = %d, want %d", tc.weight, tc.replicas, got, tc.want)
			}
		})
	}
	t.Run("skipped analysis is the final promotion", func(t *testing.T) {
		r := canaryAt(0, 20)
		r.SkipAnalysis = true
		if got := CanaryReplicas(r, 5); got != 5 {
			t.Fatalf("got %d, want 5", got)
		}
	})
}

func TestRollingLimits(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		s                      *slipway.RollingStrategy
		replicas               int
		wantSurge, wantUnavail int
	}{
		{"default of 1", nil, 1, 1, 0},
		{"default of 2", nil, 2, 1, 0},
		{"default of 4", nil, 4, 1, 1},
		{"default of 10 rounds surge up and unavailable down", &slipway.RollingStrategy{}, 10, 3, 2},
		{"counts", &slipway.RollingStrategy{MaxSurge: slipway.Count(2), MaxUnavailable: slipway.Count(3)}, 10, 2, 3},
		{"percents", &slipway.RollingStrategy{MaxSurge: slipway.Percent(10), MaxUnavailable: slipway.Percent(15)}, 10, 1, 1},
		{"percent surge of 1 rounds up", &slipway.RollingStrategy{MaxSurge: slipway.Percent(1)}, 1, 1, 0},
		{"100 percent", &slipway.RollingStrategy{MaxSurge: slipway.Percent(100), MaxUnavailable: slipway.Percent(100)}, 4, 4, 4},
		{"only surge set keeps default unavailable", &slipway.RollingStrategy{MaxSurge: slipway.Count(0)}, 4, 0, 1},
		{"both zero counts allow one unavailable", &slipway.RollingStrategy{MaxSurge: slipway.Count(0), MaxUnavailable: slipway.Count(0)}, 4, 0, 1},
		{"both rounding to zero allow one unavailable", &slipway.RollingStrategy{MaxSurge: slipway.Percent(0), MaxUnavailable: slipway.Percent(10)}, 2, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, u := rollingLimits(tc.s, tc.replicas)
			if s != tc.wantSurge || u != tc.wantUnavail {
				t.Fatalf("rollingLimits = (%d, %d), want (%d, %d)", s, u, tc.wantSurge, tc.wantUnavail)
			}
		})
	}
}

func TestRollingStep(t *testing.T) {
	def := (*slipway.RollingStrategy)(nil)
	for _, tc := range []struct {
		name                                  string
		replicas, oldN, newN, newAvail, oldOK int
		wantOld, wantNew                      int
	}{
		{"first step surges and drops one", 4, 4, 0, 0, 4, 3, 1},
		{"unready new instances keep old ones", 4, 3, 2, 0, 3, 3, 2},
		{"available new instances let old ones go", 4, 3, 2, 2, 3, 1, 2},
		{"unready old instances can always go", 4, 4, 0, 0, 1, 1, 1},
		{"never above replicas new", 4, 0, 4, 4, 0, 0, 4},
		{"replicas grown mid-rollout", 6, 1, 4, 4, 1, 1, 6},
		{"replicas shrunk mid-rollout", 2, 2, 3, 3, 2, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, n := rollingStep(def, tc.replicas, tc.oldN, tc.newN, tc.newAvail, tc.oldOK)
			if o != tc.wantOld || n != tc.wantNew {
				t.Fatalf("rollingStep = (%d old, %d new), want (%d, %d)", o, n, tc.wantOld, tc.wantNew)
			}
		})
	}
}

// TestNext_RollingSequence drives rolling updates against an ideal platform: on each tick
// every instance asked for is ready and available and the last split is confirmed, then Next
// runs until it settles. The (old, new) counts and the weights it asks for are recorded.
func TestNext_RollingSequence(t *testing.T) {
	type on = [2]int
	for _, tc := range []struct {
		name           string
		replicas       int
		s              *slipway.RollingStrategy
		surge, unavail int
		counts         []on
		weights        []int
	}{
		{"1 replica default", 1, &slipway.RollingStrategy{}, 1, 0, []on{{1, 1}, {0, 1}}, []int{100}},
		{"2 replicas default", 2, &slipway.RollingStrategy{}, 1, 0, []on{{2, 1}, {1, 1}, {1, 2}, {0, 2}}, []int{50, 100}},
		{"4 replicas default", 4, &slipway.RollingStrategy{}, 1, 1, []on{{3, 1}, {3, 2}, {1, 2}, {1, 4}, {0, 4}}, []int{67, 100}},
		{"10 replicas default", 10, &slipway.RollingStrategy{}, 3, 2, []on{{8, 3}, {8, 5}, {3, 5}, {3, 10}, {0, 10}}, []int{63, 100}},
		{"4 replicas no surge", 4, &slipway.RollingStrategy{MaxSurge: slipway.Count(0), MaxUnavailable: slipway.Count(1)}, 0, 1,
			[]on{{3, 0}, {3, 1}, {2, 1}, {2, 2}, {1, 2}, {1, 3}, {0, 3}, {0, 4}}, []int{33, 67, 100}},
		{"10 replicas small percents", 10, &slipway.RollingStrategy{MaxSurge: slipway.Percent(10), MaxUnavailable: slipway.Percent(15)}, 1, 1,
			[]on{{9, 1}, {9, 2}, {7, 2}, {7, 4}, {5, 4}, {5, 6}, {3, 6}, {3, 8}, {1, 8}, {1, 10}, {0, 10}}, []int{22, 44, 67, 89, 100}},
		{"2 replicas both rounding to zero", 2, &slipway.RollingStrategy{MaxSurge: slipway.Percent(0), MaxUnavailable: slipway.Percent(10)}, 0, 1,
			[]on{{1, 0}, {1, 1}, {0, 1}, {0, 2}}, []int{100}},
		{"1 replica both zero", 1, &slipway.RollingStrategy{MaxSurge: slipway.Count(0), MaxUnavailable: slipway.Count(0)}, 0, 1,
			[]on{{0, 0}, {0, 1}}, []int{100}},
		{"4 replicas surge all at once", 4, &slipway.RollingStrategy{MaxSurge: slipway.Percent(100), MaxUnavailable: slipway.Count(0)}, 4, 0,
			[]on{{4, 4}, {0, 4}}, []int{100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := testApp(slipway.Strategy{Rolling: tc.s}, tc.replicas)
			r := newTestRollout(app, "v1")
			var counts []on
			var ws []int
			now := t0
			for tick := 0; r.Phase == slipway.PhaseProgressing; tick++ {
				if tick > 50 {
					t.Fatalf("no completion after 50 ticks: counts %v weights %v", counts, ws)
				}
				now = now.Add(time.Minute)
				obsOld, obsNew := r.OldReplicas, r.NewReplicas
				in := Input{App: app, Observed: observed(RolloutSplit(r), map[string]int{"v1": obsOld, "v2": obsNew})}
				for range 64 {
					got, eff := Next(r, in, now)
					if reflect.DeepEqual(got, r) {
						break
					}
					if got.OldReplicas != r.OldReplicas || got.NewReplicas != r.NewReplicas {
						counts = append(counts, on{got.OldReplicas, got.NewReplicas})
						if got.OldReplicas+got.NewReplicas > tc.replicas+tc.surge {
							t.Fatalf("(%d, %d) runs more than %d+%d", got.OldReplicas, got.NewReplicas, tc.replicas, tc.surge)
						}
						if ready := min(obsOld, got.OldReplicas) + obsNew; ready < tc.replicas-tc.unavail && got.OldReplicas < r.OldReplicas {
							t.Fatalf("scaled old down to %d leaving %d ready, below %d-%d", got.OldReplicas, ready, tc.replicas, tc.unavail)
						}
						// The platform applies each transition: the instances its split sends
						// traffic to must be enough on their own.
						serving := 0
						if got.Weight > 0 {
							serving += obsNew
						}
						if got.Weight < 100 {
							serving += min(obsOld, got.OldReplicas)
						}
						if serving < tc.replicas-tc.unavail && got.OldReplicas < r.OldReplicas {
							t.Fatalf("scaled old down to %d at weight %d: %d ready instances take the traffic, below %d-%d",
								got.OldReplicas, got.Weight, serving, tc.replicas, tc.unavail)
						}
					}
					if got.Weight != r.Weight {
						ws = append(ws, got.Weight)
					}
					if got.Phase == slipway.PhaseCompleted {
						if got.OldReplicas != 0 || !in.Observed.Split.Equal(RolloutSplit(got)) {
							t.Fatalf("completed at (%d, %d) with split %+v", got.OldReplicas, got.NewReplicas, in.Observed.Split)
						}
						wantCompleted(t, got, eff, now)
					}
					r = got
				}
			}
			if r.Phase != slipway.PhaseCompleted {
				t.Fatalf("ended %s: %s", r.Phase, r.Reason)
			}
			if !slices.Equal(counts, tc.counts) || !slices.Equal(ws, tc.weights) {
				t.Fatalf("counts %v weights %v, want %v %v", counts, ws, tc.counts, tc.weights)
			}
		})
	}
}

func TestNext_Rolling(t *testing.T) {
	app := testApp(slipway.Strategy{Rolling: &slipway.RollingStrategy{MinReady: dur(30 * time.Second)}}, 2)
	now := t0.Add(time.Minute)
	inWith := func(r slipway.Rollout, split slipway.Split, newReadyFor ...time.Duration) Input {
		in := Input{App: app, Observed: observed(split, map[string]int{"v1": r.OldReplicas})}
		st := slipway.RevisionStatus{Revision: "v2"}
		for i, d := range newReadyFor {
			since := now.Add(-d)
			st.Instances = append(st.Instances, slipway.Instance{ID: fmt.Sprint(i), Ready: true, ReadySince: &since})
		}
		in.Observed.Revisions = append(in.Observed.Revisions, st)
		return in
	}
	r := newTestRollout(app, "v1")
	r.OldReplicas, r.NewReplicas = 2, 1
	t.Run("minReady holds old instances until new ones are available", func(t *testing.T) {
		got, eff := next(t, r, inWith(r, RolloutSplit(r), 10*time.Second), now)
		if got.OldReplicas != 2 {
			t.Fatalf("old scaled to %d before the new instance was available", got.OldReplicas)
		}
		// The weight follows readiness; the wake is when the instance becomes available.
		if got.Weight != 33 || !eff.WakeAt.IsZero() {
			t.Fatalf("weight %d wake %v", got.Weight, eff.WakeAt)
		}
		waits(t, got, inWith(got, RolloutSplit(got), 10*time.Second), now, now.Add(20*time.Second))
		if adv, _ := next(t, got, inWith(got, RolloutSplit(got), 30*time.Second), now); adv.OldReplicas != 1 {
			t.Fatalf("old %d once available, want 1", adv.OldReplicas)
		}
	})
	t.Run("completion waits for old to be gone and the split confirmed", func(t *testing.T) {
		r := r
		r.OldReplicas, r.NewReplicas, r.Weight = 0, 2, 100
		waits(t, r, inWith(r, weights("v1", 50, "v2", 50), time.Minute, time.Minute), now, r.LastProgressAt.Add(slipway.DefaultProgressDeadline.D()))
		got, eff := next(t, r, inWith(r, RolloutSplit(r), time.Minute, time.Minute), now)
		wantCompleted(t, got, eff, now)
	})
	t.Run("progress deadline aborts naming ready counts", func(t *testing.T) {
		got, eff := next(t, r, inWith(r, RolloutSplit(r)), t0.Add(slipway.DefaultProgressDeadline.D()))
		wantAborted(t, got, eff, "revision v2 has 0 of 1 instances ready")
	})
}
