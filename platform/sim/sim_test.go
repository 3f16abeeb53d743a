package sim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newSim returns a platform on a fake clock.
func newSim(t testing.TB, delay time.Duration) (*sim.Platform, *slipwaytest.Clock) {
	t.Helper()
	clock := slipwaytest.NewClock(epoch)
	return sim.New(sim.Config{ReadyDelay: delay, Now: clock.Now}), clock
}

func revs(app string) (v1, v2 slipway.Revision) {
	run := slipway.RunSpec{Command: "sim"}
	return slipwaytest.Revision(app, "v1", run), slipwaytest.Revision(app, "v2", run)
}

func place(r slipway.Revision, n int) slipway.Placement {
	return slipway.Placement{Revision: r, Replicas: n}
}

func weights(kv ...any) []slipway.Weight {
	var ws []slipway.Weight
	for i := 0; i < len(kv); i += 2 {
		ws = append(ws, slipway.Weight{Revision: kv[i].(slipway.Revision).ID, Weight: kv[i+1].(int)})
	}
	return ws
}

func mustApply(t testing.TB, p *sim.Platform, d slipway.Desired) {
	t.Helper()
	if err := p.Apply(context.Background(), d); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func mustObserve(t testing.TB, p *sim.Platform, app string) slipway.Observed {
	t.Helper()
	obs, err := p.Observe(context.Background(), app)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return obs
}

// opLines formats ops as "kind revision instance detail", with "-" for empty fields.
func opLines(ops []sim.Op) []string {
	out := make([]string, len(ops))
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for i, o := range ops {
		out[i] = strings.Join([]string{o.Kind, dash(o.Revision), dash(o.Instance), dash(o.Detail)}, " ")
	}
	return out
}

func instanceIDs(st slipway.RevisionStatus) []string {
	var ids []string
	for _, in := range st.Instances {
		ids = append(ids, in.ID)
	}
	return ids
}

func TestPlatform_OpLog(t *testing.T) {
	p, clock := newSim(t, 0)
	const app = "shop"
	v1, v2 := revs(app)
	r := func(rev slipway.Revision, n int) string { return fmt.Sprintf("%s-%d", rev.ID, n) }
	beta := slipway.Route{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}, Revision: v2.ID}

	steps := []struct {
		name string
		d    slipway.Desired
		want []string
	}{
		{
			name: "first apply starts and splits",
			d:    slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2)}, Split: slipway.Split{Weights: weights(v1, 100)}},
			want: []string{
				"start " + v1.ID + " " + r(v1, 0) + " -",
				"start " + v1.ID + " " + r(v1, 1) + " -",
				"split - - " + v1.ID + "=100",
			},
		},
		{
			name: "same again records nothing",
			d:    slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2)}, Split: slipway.Split{Weights: weights(v1, 100)}},
		},
		{
			name: "canary with a route and a preview",
			d: slipway.Desired{
				App:       app,
				Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)},
				Split:     slipway.Split{Weights: weights(v2, 10, v1, 90), Routes: []slipway.Route{beta}},
				Preview:   v2.ID,
			},
			want: []string{
				"start " + v2.ID + " " + r(v2, 0) + " -",
				"split - - " + sim.SplitString(slipway.Split{Weights: weights(v1, 90, v2, 10), Routes: []slipway.Route{beta}}),
				"preview " + v2.ID + " - -",
			},
		},
		{
			name: "scale the canary up and the stable down, clear the preview",
			d: slipway.Desired{
				App:       app,
				Revisions: []slipway.Placement{place(v2, 3), place(v1, 1)},
				Split:     slipway.Split{Weights: weights(v2, 100, v1, 0)},
			},
			want: []string{
				"start " + v2.ID + " " + r(v2, 1) + " -",
				"start " + v2.ID + " " + r(v2, 2) + " -",
				"split - - " + v2.ID + "=100",
				"preview - - -",
				"stop " + v1.ID + " " + r(v1, 1) + " -",
			},
		},
		{
			name: "zero weight dropped from the split records nothing",
			d: slipway.Desired{
				App:       app,
				Revisions: []slipway.Placement{place(v2, 3), place(v1, 1)},
				Split:     slipway.Split{Weights: weights(v2, 100)},
			},
		},
		{
			name: "scale down highest first and retire the old revision",
			d:    slipway.Desired{App: app, Revisions: []slipway.Placement{place(v2, 1)}, Split: slipway.Split{Weights: weights(v2, 100)}},
			want: []string{
				"stop " + v2.ID + " " + r(v2, 2) + " -",
				"stop " + v2.ID + " " + r(v2, 1) + " -",
				"stop " + v1.ID + " " + r(v1, 0) + " -",
			},
		},
	}
	seen := 0
	for _, s := range steps {
		clock.Advance(time.Minute)
		mustApply(t, p, s.d)
		ops := p.Ops(app)
		got := opLines(ops[seen:])
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: ops\n  %s\nwant\n  %s", s.name, strings.Join(got, "\n  "), strings.Join(s.want, "\n  "))
		}
		for _, o := range ops[seen:] {
			if o.App != app || !o.Time.Equal(clock.Now()) {
				t.Errorf("%s: op %v has app %q time %v, want %q %v", s.name, o, o.App, o.Time, app, clock.Now())
			}
		}
		seen = len(ops)
	}

	if err := p.Remove(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	ops := p.Ops(app)
	if got := opLines(ops[seen:]); !slices.Equal(got, []string{"remove - - instances=1"}) {
		t.Errorf("remove: ops %q", got)
	}
	for i, o := range ops {
		if o.Seq != int64(i+1) {
			t.Errorf("op %d has Seq %d, want %d", i, o.Seq, i+1)
		}
	}
	if err := p.Remove(context.Background(), app); err != nil || len(p.Ops(app)) != len(ops) {
		t.Errorf("second remove: err %v, %d new ops", err, len(p.Ops(app))-len(ops))
	}
	if obs := mustObserve(t, p, app); len(obs.Revisions) != 0 || len(obs.Split.Weights) != 0 || obs.Preview != "" {
		t.Errorf("after remove observed %+v", obs)
	}
}

func TestPlatform_OpsAllApps(t *testing.T) {
	p, _ := newSim(t, 0)
	for i, app := range []string{"b", "a", "b", "c", "a"} {
		v1, _ := revs(app)
		mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, i+1)}})
	}
	all := p.Ops("")
	// b starts 1, then 2 more to reach 3; a starts 2, then 3 more to reach 5; c starts 4.
	if len(all) != 3+5+4 {
		t.Fatalf("Ops(\"\") has %d ops, want 12", len(all))
	}
	for i, o := range all {
		if o.Seq != int64(i+1) {
			t.Errorf("Ops(\"\")[%d].Seq = %d, want %d", i, o.Seq, i+1)
		}
	}
	if got := len(p.Ops("a")); got != 1+4 {
		t.Errorf("Ops(a) has %d ops, want 5", got)
	}
	if got := p.Ops("nobody"); len(got) != 0 {
		t.Errorf("Ops(nobody) = %v, want none", got)
	}
}

func TestPlatform_IdempotentApplyRecordsNothing(t *testing.T) {
	const app = "idem"
	v1, v2 := revs(app)
	stick := &slipway.Stickiness{Enabled: true, Header: "X-User"}
	cases := map[string]slipway.Desired{
		"empty":         {App: app},
		"one revision":  {App: app, Revisions: []slipway.Placement{place(v1, 3)}, Split: slipway.Split{Weights: weights(v1, 100)}},
		"zero replicas": {App: app, Revisions: []slipway.Placement{place(v1, 0)}},
		"canary": {
			App:       app,
			Traffic:   slipway.Traffic{Listen: ":8080", Stickiness: stick},
			Revisions: []slipway.Placement{place(v1, 2), place(v2, 2)},
			Split: slipway.Split{Weights: weights(v1, 75, v2, 25), Routes: []slipway.Route{
				{Name: "beta", Match: []slipway.HeaderMatch{{Cookie: "beta", Exact: "yes"}}, Revision: v2.ID},
			}},
			Preview: v2.ID,
		},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			p, clock := newSim(t, time.Second)
			mustApply(t, p, d)
			n := len(p.Ops(app))
			before := mustObserve(t, p, app)
			for range 3 {
				clock.Advance(time.Second)
				mustApply(t, p, d)
			}
			if extra := p.Ops(app)[n:]; len(extra) != 0 {
				t.Errorf("re-apply recorded %q", opLines(extra))
			}
			after := mustObserve(t, p, app)
			for _, r := range before.Revisions {
				if !slices.Equal(instanceIDs(r), instanceIDs(after.Revision(r.Revision))) {
					t.Errorf("instances of %s changed: %v, then %v", r.Revision, instanceIDs(r), instanceIDs(after.Revision(r.Revision)))
				}
			}
			if got := p.Traffic(app); got.Listen != d.Traffic.Listen {
				t.Errorf("Traffic = %+v, want %+v", got, d.Traffic)
			}
		})
	}
}

func TestPlatform_LazyReadiness(t *testing.T) {
	p, clock := newSim(t, 10*time.Second)
	const app = "lazy"
	v1, _ := revs(app)
	started := clock.Now()
	mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2)}})

	check := func(wantState slipway.InstanceState, wantReady int) slipway.RevisionStatus {
		t.Helper()
		st := mustObserve(t, p, app).Revision(v1.ID)
		if len(st.Instances) != 2 || st.Ready() != wantReady {
			t.Fatalf("at +%v: %d instances, %d ready; want 2, %d", clock.Now().Sub(started), len(st.Instances), st.Ready(), wantReady)
		}
		for _, in := range st.Instances {
			if in.State != wantState {
				t.Errorf("at +%v: %s is %s, want %s", clock.Now().Sub(started), in.ID, in.State, wantState)
			}
		}
		return st
	}
	check(slipway.InstanceStarting, 0)
	clock.Advance(10*time.Second - time.Nanosecond)
	check(slipway.InstanceStarting, 0)
	clock.Advance(time.Nanosecond)
	st := check(slipway.InstanceRunning, 2)
	for _, in := range st.Instances {
		if in.ReadySince == nil || !in.ReadySince.Equal(started.Add(10*time.Second)) {
			t.Errorf("%s ReadySince = %v, want %v", in.ID, in.ReadySince, started.Add(10*time.Second))
		}
	}
	if n := st.Available(5*time.Second, clock.Now()); n != 0 {
		t.Errorf("Available(5s) right after ready = %d, want 0", n)
	}
	clock.Advance(5 * time.Second)
	if n := mustObserve(t, p, app).Revision(v1.ID).Available(5*time.Second, clock.Now()); n != 2 {
		t.Errorf("Available(5s) 5s after ready = %d, want 2", n)
	}

	// A new delay applies to instances started from now on.
	p.SetReadyDelay(time.Minute)
	mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 3)}})
	if got := mustObserve(t, p, app).Revision(v1.ID).Ready(); got != 2 {
		t.Errorf("after scaling to 3 with a 1m delay: %d ready, want 2", got)
	}
	clock.Advance(time.Minute)
	if got := mustObserve(t, p, app).Revision(v1.ID).Ready(); got != 3 {
		t.Errorf("1m later: %d ready, want 3", got)
	}
}

func TestPlatform_ObserveSortsByID(t *testing.T) {
	p, _ := newSim(t, 0)
	const app = "sorted"
	v1, v2 := revs(app)
	mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v2, 12), place(v1, 1)}})
	obs := mustObserve(t, p, app)
	var revIDs []string
	for _, r := range obs.Revisions {
		revIDs = append(revIDs, r.Revision)
	}
	if !slices.IsSorted(revIDs) || len(revIDs) != 2 {
		t.Errorf("revisions %v, want 2 sorted by ID", revIDs)
	}
	ids := instanceIDs(obs.Revision(v2.ID))
	if len(ids) != 12 || !slices.IsSorted(ids) || !slices.Contains(ids, v2.ID+"-11") {
		t.Errorf("instances %v, want %s-0 to %s-11 sorted by ID", ids, v2.ID, v2.ID)
	}
}

// TestPlatform_ScalesManyAtOnce: one Apply that starts or stops many instances of a
// revision does what as many Applies of one would: new instances take the lowest free
// ordinals in order, and a scale-down stops the unready ones first, then the highest
// ordinals, one op each, in that order.
func TestPlatform_ScalesManyAtOnce(t *testing.T) {
	p, clock := newSim(t, time.Second)
	const app = "many"
	v1, _ := revs(app)
	id := func(n int) string { return fmt.Sprintf("%s-%d", v1.ID, n) }
	at := func(n int) slipway.Desired {
		return slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, n)}, Split: slipway.Split{Weights: weights(v1, 100)}}
	}
	mustApply(t, p, at(12))
	clock.Advance(time.Second)
	for _, n := range []int{3, 7, 10} {
		if err := p.Kill(app, id(n)); err != nil {
			t.Fatal(err)
		}
	}
	before := len(p.Ops(app))
	mustApply(t, p, at(14))
	want := []string{}
	for _, n := range []int{3, 7, 10, 12, 13} {
		want = append(want, "start "+v1.ID+" "+id(n)+" -")
	}
	if got := opLines(p.Ops(app)[before:]); !slices.Equal(got, want) {
		t.Errorf("scale-up ops %q, want %q", got, want)
	}
	ids := instanceIDs(mustObserve(t, p, app).Revision(v1.ID))
	if len(ids) != 14 || !slices.IsSorted(ids) {
		t.Errorf("instances %v, want 14 sorted by ID", ids)
	}

	// The five just started are not ready yet: they go first, highest ordinal first, then
	// the highest ready ones.
	before = len(p.Ops(app))
	mustApply(t, p, at(7))
	want = want[:0]
	for _, n := range []int{13, 12, 10, 7, 3, 11, 9} {
		want = append(want, "stop "+v1.ID+" "+id(n)+" -")
	}
	if got := opLines(p.Ops(app)[before:]); !slices.Equal(got, want) {
		t.Errorf("scale-down ops %q, want %q", got, want)
	}
	if got, want := instanceIDs(mustObserve(t, p, app).Revision(v1.ID)), []string{id(0), id(1), id(2), id(4), id(5), id(6), id(8)}; !slices.Equal(got, want) {
		t.Errorf("after scale-down: %v, want %v", got, want)
	}
}

func TestPlatform_FailRevisionAndHeal(t *testing.T) {
	p, clock := newSim(t, time.Second)
	const app = "faulty"
	v1, v2 := revs(app)
	p.FailRevision(app, v2.ID) // before the app exists
	d := slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1), place(v2, 2)}, Split: slipway.Split{Weights: weights(v1, 100)}}
	mustApply(t, p, d)
	clock.Advance(time.Hour)

	obs := mustObserve(t, p, app)
	if got := obs.Revision(v1.ID).Ready(); got != 1 {
		t.Errorf("healthy revision: %d ready, want 1", got)
	}
	for _, in := range obs.Revision(v2.ID).Instances {
		if in.Ready || in.State != slipway.InstanceFailed || in.Message != sim.FailMessage || in.ReadySince != nil {
			t.Errorf("failing instance %+v, want Failed, not ready, message %q", in, sim.FailMessage)
		}
	}
	if len(obs.Revision(v2.ID).Instances) != 2 {
		t.Errorf("failing revision has %d instances, want 2", len(obs.Revision(v2.ID).Instances))
	}

	healedAt := clock.Now()
	p.Heal(app, v2.ID)
	clock.Advance(time.Second)
	for _, in := range mustObserve(t, p, app).Revision(v2.ID).Instances {
		if !in.Ready || in.State != slipway.InstanceRunning || in.ReadySince == nil || !in.ReadySince.Equal(healedAt) {
			t.Errorf("healed instance %+v, want Running, ready since %v", in, healedAt)
		}
	}

	// Failing a ready revision takes its instances out of readiness at once.
	p.FailRevision(app, v1.ID)
	if st := mustObserve(t, p, app).Revision(v1.ID); st.Ready() != 0 || st.Instances[0].State != slipway.InstanceFailed {
		t.Errorf("after failing a ready revision: %+v", st)
	}
	if n := len(p.Ops(app)); n != 4 {
		t.Errorf("fault injection recorded ops: %q", opLines(p.Ops(app)))
	}
	p.Heal("no-such-app", v1.ID) // a no-op, not a panic
}

func TestPlatform_KillThenApply(t *testing.T) {
	p, clock := newSim(t, time.Second)
	const app = "crashy"
	v1, _ := revs(app)
	d := slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 3)}, Split: slipway.Split{Weights: weights(v1, 100)}}
	mustApply(t, p, d)
	clock.Advance(time.Second)
	n := len(p.Ops(app))

	victim := v1.ID + "-1"
	if err := p.Kill(app, victim); err != nil {
		t.Fatalf("kill: %v", err)
	}
	obs := mustObserve(t, p, app)
	if got := instanceIDs(obs.Revision(v1.ID)); !slices.Equal(got, []string{v1.ID + "-0", v1.ID + "-2"}) {
		t.Errorf("after kill: instances %v", got)
	}
	if !obs.Split.Equal(d.Split) {
		t.Errorf("kill changed the split to %+v", obs.Split)
	}
	mustApply(t, p, d)
	if got, want := opLines(p.Ops(app)[n:]), []string{
		"kill " + v1.ID + " " + victim + " -",
		"start " + v1.ID + " " + victim + " -",
	}; !slices.Equal(got, want) {
		t.Errorf("kill then apply: ops %q, want %q", got, want)
	}
	st := mustObserve(t, p, app).Revision(v1.ID)
	if len(st.Instances) != 3 || st.Ready() != 2 {
		t.Errorf("after repair: %d instances, %d ready; want 3, 2 (the replacement is starting)", len(st.Instances), st.Ready())
	}

	// Scaling down stops the unready replacement before higher ordinals that are ready.
	mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2)}, Split: d.Split})
	if got := instanceIDs(mustObserve(t, p, app).Revision(v1.ID)); !slices.Equal(got, []string{v1.ID + "-0", v1.ID + "-2"}) {
		t.Errorf("scale-down kept %v, want the ready instances", got)
	}

	for _, c := range []struct{ app, id string }{{app, victim}, {app, "nope-0"}, {"no-such-app", victim}} {
		if err := p.Kill(c.app, c.id); slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("Kill(%s, %s) = %v, want %s", c.app, c.id, err, slipway.ENOTFOUND)
		}
	}

	// Killing the last instance of a revision leaves it absent from Observe.
	mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: d.Split})
	if err := p.Kill(app, v1.ID+"-0"); err != nil {
		t.Fatal(err)
	}
	if obs := mustObserve(t, p, app); len(obs.Revisions) != 0 {
		t.Errorf("after killing every instance: %+v", obs.Revisions)
	}
}

func TestPlatform_RejectsInvalid(t *testing.T) {
	const app = "bad"
	v1, v2 := revs(app)
	other, _ := revs("other")
	ok := []slipway.Placement{place(v1, 1), place(v2, 1)}
	cases := map[string]slipway.Desired{
		"no app name":          {Revisions: ok},
		"empty revision ID":    {App: app, Revisions: []slipway.Placement{{Replicas: 1}}},
		"placed twice":         {App: app, Revisions: []slipway.Placement{place(v1, 1), place(v1, 2)}},
		"another app's":        {App: app, Revisions: []slipway.Placement{place(other, 1)}},
		"negative replicas":    {App: app, Revisions: []slipway.Placement{place(v1, -1)}},
		"sum under 100":        {App: app, Revisions: ok, Split: slipway.Split{Weights: weights(v1, 50, v2, 49)}},
		"sum over 100":         {App: app, Revisions: ok, Split: slipway.Split{Weights: weights(v1, 50, v2, 51)}},
		"all zero weights":     {App: app, Revisions: ok, Split: slipway.Split{Weights: weights(v1, 0)}},
		"negative weight":      {App: app, Revisions: ok, Split: slipway.Split{Weights: weights(v1, 101, v2, -1)}},
		"weighted twice":       {App: app, Revisions: ok, Split: slipway.Split{Weights: weights(v1, 50, v1, 50)}},
		"weight unplaced":      {App: app, Revisions: ok[:1], Split: slipway.Split{Weights: weights(v1, 50, v2, 50)}},
		"route unplaced":       {App: app, Revisions: ok[:1], Split: slipway.Split{Routes: []slipway.Route{{Name: "beta", Revision: v2.ID}}}},
		"preview unplaced":     {App: app, Revisions: ok[:1], Preview: v2.ID},
		"zero weight unplaced": {App: app, Revisions: ok[:1], Split: slipway.Split{Weights: weights(v1, 100, v2, 0)}},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			p, _ := newSim(t, 0)
			good := slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2)}, Split: slipway.Split{Weights: weights(v1, 100)}}
			mustApply(t, p, good)
			before := p.Ops("")
			err := p.Apply(context.Background(), d)
			var e *slipway.Error
			if slipway.ErrorCode(err) != slipway.EINVALID || !errors.As(err, &e) || len(e.Details) == 0 {
				t.Fatalf("Apply = %v, want %s with details", err, slipway.EINVALID)
			}
			if after := p.Ops(""); len(after) != len(before) {
				t.Errorf("rejected apply recorded %q", opLines(after[len(before):]))
			}
			if p.Traffic(app).Listen != "" {
				t.Errorf("rejected apply changed the traffic config")
			}
		})
	}
}

func TestPlatform_ContextCanceled(t *testing.T) {
	p, _ := newSim(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v1, _ := revs("ctx")
	if err := p.Apply(ctx, slipway.Desired{App: "ctx", Revisions: []slipway.Placement{place(v1, 1)}}); err == nil {
		t.Error("Apply with a canceled context succeeded")
	}
	if _, err := p.Observe(ctx, "ctx"); err == nil {
		t.Error("Observe with a canceled context succeeded")
	}
	if err := p.Remove(ctx, "ctx"); err == nil {
		t.Error("Remove with a canceled context succeeded")
	}
	if n := len(p.Ops("")); n != 0 {
		t.Errorf("canceled calls recorded %d ops", n)
	}
}

func TestPlatform_MaxOps(t *testing.T) {
	clock := slipwaytest.NewClock(epoch)
	p := sim.New(sim.Config{Now: clock.Now, MaxOps: 4})
	const app = "chatty"
	v1, v2 := revs(app)
	ps := []slipway.Placement{place(v1, 1), place(v2, 1)}
	for i := range 50 {
		mustApply(t, p, slipway.Desired{App: app, Revisions: ps, Split: slipway.Split{Weights: weights(v1, 100-i, v2, i)}})
	}
	ops := p.Ops(app)
	if len(ops) < 4 || len(ops) >= 8 {
		t.Fatalf("with MaxOps 4 the log holds %d ops", len(ops))
	}
	last := ops[len(ops)-1]
	if last.Seq != 52 || last.Detail != sim.SplitString(slipway.Split{Weights: weights(v1, 51, v2, 49)}) {
		t.Errorf("last op %v, want Seq 52, the split of the last apply", last)
	}
	for i := 1; i < len(ops); i++ {
		if ops[i].Seq != ops[i-1].Seq+1 {
			t.Errorf("kept ops are not the latest in order: %v", ops)
		}
	}
}

func TestSplitString(t *testing.T) {
	cases := []struct {
		s    slipway.Split
		want string
	}{
		{slipway.Split{}, "none"},
		{slipway.Split{Weights: []slipway.Weight{{Revision: "def456", Weight: 10}, {Revision: "abc123", Weight: 90}}}, "abc123=90,def456=10"},
		{slipway.Split{Weights: []slipway.Weight{{Revision: "def456", Weight: 0}, {Revision: "abc123", Weight: 100}}}, "abc123=100"},
		{slipway.Split{
			Weights: []slipway.Weight{{Revision: "abc123", Weight: 90}, {Revision: "def456", Weight: 10}},
			Routes:  []slipway.Route{{Name: "beta", Revision: "def456"}},
		}, "abc123=90,def456=10 routes=beta->def456"},
		{slipway.Split{Routes: []slipway.Route{{Name: "b", Revision: "x"}, {Name: "a", Revision: "y"}}}, "routes=b->x,a->y"},
	}
	for _, c := range cases {
		if got := sim.SplitString(c.s); got != c.want {
			t.Errorf("SplitString(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestPlatform_ConcurrentUse(t *testing.T) {
	p, clock := newSim(t, time.Second)
	const workers, apps = 32, 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range 40 {
				app := fmt.Sprintf("app-%d", (w*7+i)%apps)
				v1, v2 := revs(app)
				d := slipway.Desired{
					App:       app,
					Revisions: []slipway.Placement{place(v1, 1+i%3), place(v2, 1)},
					Split:     slipway.Split{Weights: weights(v1, 50+i%2*40, v2, 50-i%2*40)},
				}
				if err := p.Apply(context.Background(), d); err != nil {
					errs <- err
					return
				}
				if _, err := p.Observe(context.Background(), app); err != nil {
					errs <- err
					return
				}
				switch i % 5 {
				case 0:
					_ = p.Kill(app, v1.ID+"-0") // may already be gone: ENOTFOUND is fine
				case 1:
					p.FailRevision(app, v2.ID)
				case 2:
					p.Heal(app, v2.ID)
				case 3:
					_ = p.Ops("")
				case 4:
					clock.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[int64]bool{}
	for _, o := range p.Ops("") {
		if seen[o.Seq] {
			t.Fatalf("Seq %d appears twice", o.Seq)
		}
		seen[o.Seq] = true
	}
	// Every app converges on one more apply, whatever the interleaving was.
	for i := range apps {
		app := fmt.Sprintf("app-%d", i)
		v1, v2 := revs(app)
		mustApply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: slipway.Split{Weights: weights(v1, 100)}})
		obs := mustObserve(t, p, app)
		if len(obs.Revision(v1.ID).Instances) != 2 || len(obs.Revision(v2.ID).Instances) != 1 {
			t.Errorf("%s did not converge: %+v", app, obs.Revisions)
		}
	}
}
