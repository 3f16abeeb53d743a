package slipwaytest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway"
)

// DefaultWait is how long TestPlatform polls for convergence when PlatformHarness.Wait is 0.
const DefaultWait = 10 * time.Second

// pollInterval is how often TestPlatform observes while it waits.
const pollInterval = 10 * time.Millisecond

// PlatformHarness tells TestPlatform how to drive one Platform implementation.
type PlatformHarness struct {
	// New returns a fresh platform with no apps. It registers its own cleanup with t.
	New func(t *testing.T) slipway.Platform
	// Run is how to start an instance on this platform (a real server command for a platform
	// that runs processes; anything for one that does not). The suite makes revisions of it
	// that differ by version label only.
	Run slipway.RunSpec
	// Container, when set, is how to run an instance as a container (a platform that runs
	// images): the suite's revisions carry it beside Run.
	Container *slipway.ContainerSpec
	// Wait is how long to poll Observe for convergence; 0 means DefaultWait.
	Wait time.Duration
}

// TestPlatform is the conformance suite every slipway.Platform runs. It uses the Platform
// interface only, and checks that Apply converges to replica counts and readiness, is
// idempotent, scales up and down without restarting survivors, stops revisions it is no
// longer asked for, confirms the desired split and preview, rejects an invalid Desired with
// EINVALID and changes nothing, that Remove clears an app, that an unknown app observes
// empty, and that Apply is safe on different apps at once (run it with -race).
func TestPlatform(t *testing.T, h PlatformHarness) {
	if h.New == nil {
		t.Fatal("slipwaytest: PlatformHarness.New is nil")
	}
	if h.Wait <= 0 {
		h.Wait = DefaultWait
	}
	s := suite{h: h}
	t.Run("apply converges to replicas and readiness", s.converges)
	t.Run("apply is idempotent", s.idempotent)
	t.Run("scales up and down", s.scales)
	t.Run("stops a revision not desired", s.stopsUndesired)
	t.Run("confirms the desired split", s.split)
	t.Run("sets and clears the preview", s.preview)
	t.Run("rejects an invalid desired state", s.invalid)
	t.Run("remove clears the app", s.remove)
	t.Run("unknown app observes empty", s.unknown)
	t.Run("concurrent apply on different apps", s.concurrent)
}

type suite struct{ h PlatformHarness }

// revs returns two revisions of app that differ only by version label.
func (s suite) revs(app string) (v1, v2 slipway.Revision) {
	if c := s.h.Container; c != nil {
		return ContainerRevision(app, "v1", *c), ContainerRevision(app, "v2", *c)
	}
	return Revision(app, "v1", s.h.Run), Revision(app, "v2", s.h.Run)
}

func place(r slipway.Revision, n int) slipway.Placement {
	return slipway.Placement{Revision: r, Replicas: n}
}

func all(r slipway.Revision) slipway.Split {
	return slipway.Split{Weights: []slipway.Weight{{Revision: r.ID, Weight: 100}}}
}

func apply(t testing.TB, p slipway.Platform, d slipway.Desired) {
	t.Helper()
	if err := p.Apply(t.Context(), d); err != nil {
		t.Fatalf("apply %s: %v", d.App, err)
	}
}

func observe(t testing.TB, p slipway.Platform, app string) slipway.Observed {
	t.Helper()
	obs, err := p.Observe(t.Context(), app)
	if err != nil {
		t.Fatalf("observe %s: %v", app, err)
	}
	return obs
}

// waitFor polls Observe until ok accepts the observation, and fails the test with the last
// observation when s.h.Wait passes first.
func (s suite) waitFor(t testing.TB, p slipway.Platform, app, what string, ok func(slipway.Observed) bool) slipway.Observed {
	t.Helper()
	deadline := time.Now().Add(s.h.Wait)
	for {
		obs := observe(t, p, app)
		if ok(obs) {
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s after %v; last observed:\n%s", app, what, s.h.Wait, dump(obs))
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: waiting for %s: %v", app, what, t.Context().Err())
		case <-time.After(pollInterval):
		}
	}
}

// converged reports whether obs shows exactly want[rev] instances of each revision, all
// Running and ready, and no instance of any other revision.
func converged(obs slipway.Observed, want map[string]int) bool {
	for _, r := range obs.Revisions {
		if _, ok := want[r.Revision]; !ok && len(r.Instances) > 0 {
			return false
		}
	}
	for rev, n := range want {
		st := obs.Revision(rev)
		if len(st.Instances) != n {
			return false
		}
		for _, in := range st.Instances {
			if !in.Ready || in.State != slipway.InstanceRunning || in.ReadySince == nil {
				return false
			}
		}
	}
	return true
}

func (s suite) waitConverged(t testing.TB, p slipway.Platform, app string, want map[string]int) slipway.Observed {
	t.Helper()
	return s.waitFor(t, p, app, fmt.Sprintf("converged to %v", want), func(o slipway.Observed) bool {
		return converged(o, want)
	})
}

func ids(st slipway.RevisionStatus) []string {
	out := make([]string, len(st.Instances))
	for i, in := range st.Instances {
		out[i] = in.ID
	}
	return out
}

func total(obs slipway.Observed) int {
	n := 0
	for _, r := range obs.Revisions {
		n += len(r.Instances)
	}
	return n
}

func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

func (s suite) converges(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-converge"
	v1, v2 := s.revs(app)
	apply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: all(v1)})
	obs := s.waitConverged(t, p, app, map[string]int{v1.ID: 2, v2.ID: 1})
	if obs.App != app {
		t.Errorf("Observed.App = %q, want %q", obs.App, app)
	}
	got := ids(obs.Revision(v1.ID))
	if len(got) != 2 || got[0] == got[1] {
		t.Errorf("instances of %s = %v, want 2 distinct IDs", v1.ID, got)
	}
}

func (s suite) idempotent(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-idempotent"
	v1, v2 := s.revs(app)
	d := slipway.Desired{
		App:       app,
		Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)},
		Split:     slipway.Split{Weights: []slipway.Weight{{Revision: v1.ID, Weight: 80}, {Revision: v2.ID, Weight: 20}}},
		Preview:   v2.ID,
	}
	apply(t, p, d)
	before := s.waitFor(t, p, app, "converged with split and preview", func(o slipway.Observed) bool {
		return converged(o, map[string]int{v1.ID: 2, v2.ID: 1}) && o.Split.Equal(d.Split) && o.Preview == v2.ID
	})
	apply(t, p, d)
	apply(t, p, d)
	after := observe(t, p, app)
	for _, rev := range []string{v1.ID, v2.ID} {
		b, a := before.Revision(rev), after.Revision(rev)
		if !slices.Equal(ids(b), ids(a)) {
			t.Errorf("instances of %s changed on re-apply: %v, then %v", rev, ids(b), ids(a))
			continue
		}
		for i := range a.Instances {
			x, y := b.Instances[i], a.Instances[i]
			if !y.Ready || y.ReadySince == nil || !y.ReadySince.Equal(*x.ReadySince) || y.Restarts != x.Restarts {
				t.Errorf("instance %s restarted on re-apply: %+v, then %+v", x.ID, x, y)
			}
		}
	}
	if !after.Split.Equal(d.Split) || after.Preview != d.Preview {
		t.Errorf("traffic changed on re-apply: split %+v preview %q", after.Split, after.Preview)
	}
}

func (s suite) scales(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-scale"
	v1, _ := s.revs(app)
	desired := func(n int) slipway.Desired {
		return slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, n)}, Split: all(v1)}
	}
	apply(t, p, desired(1))
	first := ids(s.waitConverged(t, p, app, map[string]int{v1.ID: 1}).Revision(v1.ID))

	apply(t, p, desired(3))
	three := ids(s.waitConverged(t, p, app, map[string]int{v1.ID: 3}).Revision(v1.ID))
	if !slices.Contains(three, first[0]) {
		t.Errorf("scaling up replaced %s: instances now %v", first[0], three)
	}

	apply(t, p, desired(1))
	one := ids(s.waitConverged(t, p, app, map[string]int{v1.ID: 1}).Revision(v1.ID))
	if !slices.Contains(three, one[0]) {
		t.Errorf("scaling down started a new instance %s; had %v", one[0], three)
	}

	apply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 0)}})
	s.waitConverged(t, p, app, map[string]int{v1.ID: 0})
}

func (s suite) stopsUndesired(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-undesired"
	v1, v2 := s.revs(app)
	apply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: all(v1)})
	before := s.waitConverged(t, p, app, map[string]int{v1.ID: 2, v2.ID: 1})

	apply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v2, 1)}, Split: all(v2)})
	after := s.waitConverged(t, p, app, map[string]int{v2.ID: 1})
	if !slices.Equal(ids(before.Revision(v2.ID)), ids(after.Revision(v2.ID))) {
		t.Errorf("instances of the kept revision changed: %v, then %v", ids(before.Revision(v2.ID)), ids(after.Revision(v2.ID)))
	}
	if !after.Split.Equal(all(v2)) {
		t.Errorf("split = %+v, want all traffic on %s", after.Split, v2.ID)
	}
}

func (s suite) split(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-split"
	v1, v2 := s.revs(app)
	revs := []slipway.Placement{place(v1, 1), place(v2, 1)}
	splits := []slipway.Split{
		all(v1),
		{Weights: []slipway.Weight{{Revision: v1.ID, Weight: 90}, {Revision: v2.ID, Weight: 10}}},
		{
			Weights: []slipway.Weight{{Revision: v1.ID, Weight: 50}, {Revision: v2.ID, Weight: 50}},
			Routes: []slipway.Route{{
				Name:     "beta",
				Match:    []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}},
				Revision: v2.ID,
			}},
		},
		{Weights: []slipway.Weight{{Revision: v1.ID, Weight: 0}, {Revision: v2.ID, Weight: 100}}},
	}
	for i, want := range splits {
		apply(t, p, slipway.Desired{App: app, Revisions: revs, Split: want})
		obs := s.waitFor(t, p, app, fmt.Sprintf("split #%d confirmed", i), func(o slipway.Observed) bool {
			return converged(o, map[string]int{v1.ID: 1, v2.ID: 1}) && o.Split.Equal(want)
		})
		if got := obs.Split.WeightOf(v2.ID); got != want.WeightOf(v2.ID) {
			t.Errorf("split #%d: weight of %s = %d, want %d", i, v2.ID, got, want.WeightOf(v2.ID))
		}
	}
}

func (s suite) preview(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-preview"
	v1, v2 := s.revs(app)
	d := slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1), place(v2, 1)}, Split: all(v1), Preview: v2.ID}
	apply(t, p, d)
	s.waitFor(t, p, app, "previewing "+v2.ID, func(o slipway.Observed) bool {
		return converged(o, map[string]int{v1.ID: 1, v2.ID: 1}) && o.Preview == v2.ID
	})
	d.Preview = ""
	apply(t, p, d)
	obs := s.waitFor(t, p, app, "without preview", func(o slipway.Observed) bool { return o.Preview == "" })
	if !obs.Split.Equal(all(v1)) {
		t.Errorf("clearing the preview changed the split to %+v", obs.Split)
	}
}

func (s suite) invalid(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-invalid"
	v1, v2 := s.revs(app)
	apply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: all(v1)})
	before := s.waitConverged(t, p, app, map[string]int{v1.ID: 1})

	w := func(a, b int) []slipway.Weight {
		return []slipway.Weight{{Revision: v1.ID, Weight: a}, {Revision: v2.ID, Weight: b}}
	}
	both := []slipway.Placement{place(v1, 3), place(v2, 1)}
	cases := []struct {
		name string
		d    slipway.Desired
	}{
		{"weights sum to 90", slipway.Desired{Revisions: both, Split: slipway.Split{Weights: w(80, 10)}}},
		{"weights sum to 110", slipway.Desired{Revisions: both, Split: slipway.Split{Weights: w(80, 30)}}},
		{"negative weight", slipway.Desired{Revisions: both, Split: slipway.Split{Weights: w(110, -10)}}},
		{"weight names a revision without placement", slipway.Desired{
			Revisions: []slipway.Placement{place(v1, 3)}, Split: slipway.Split{Weights: w(50, 50)},
		}},
		{"route names a revision without placement", slipway.Desired{
			Revisions: []slipway.Placement{place(v1, 3)},
			Split: slipway.Split{Weights: w(100, 0)[:1], Routes: []slipway.Route{{
				Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}, Revision: v2.ID,
			}}},
		}},
		{"negative replicas", slipway.Desired{
			Revisions: []slipway.Placement{place(v1, 3), place(v2, -1)}, Split: slipway.Split{Weights: w(90, 10)},
		}},
	}
	for _, c := range cases {
		for _, name := range []string{app, app + "-new"} {
			d := c.d
			d.App = name
			err := p.Apply(t.Context(), d)
			if code := slipway.ErrorCode(err); code != slipway.EINVALID {
				t.Errorf("%s on %s: Apply error %v (code %q), want %s", c.name, name, err, code, slipway.EINVALID)
			}
		}
	}
	after := observe(t, p, app)
	if !converged(after, map[string]int{v1.ID: 1}) || !slices.Equal(ids(before.Revision(v1.ID)), ids(after.Revision(v1.ID))) {
		t.Errorf("a rejected apply changed instances:\nbefore %s\nafter %s", dump(before), dump(after))
	}
	if !after.Split.Equal(before.Split) || after.Preview != before.Preview {
		t.Errorf("a rejected apply changed traffic: split %+v preview %q", after.Split, after.Preview)
	}
	if fresh := observe(t, p, app+"-new"); total(fresh) != 0 || len(fresh.Split.Weights) != 0 {
		t.Errorf("a rejected apply created app %s: %s", app+"-new", dump(fresh))
	}
}

func (s suite) remove(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-remove"
	v1, v2 := s.revs(app)
	apply(t, p, slipway.Desired{
		App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: all(v1), Preview: v2.ID,
	})
	s.waitConverged(t, p, app, map[string]int{v1.ID: 2, v2.ID: 1})
	if err := p.Remove(t.Context(), app); err != nil {
		t.Fatalf("remove: %v", err)
	}
	s.waitFor(t, p, app, "removed", func(o slipway.Observed) bool {
		return total(o) == 0 && len(o.Split.Weights) == 0 && len(o.Split.Routes) == 0 && o.Preview == ""
	})
	if err := p.Remove(t.Context(), app); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if err := p.Remove(t.Context(), "conf-remove-unknown"); err != nil {
		t.Errorf("remove of an unknown app: %v", err)
	}
	// The app can come back after removal.
	apply(t, p, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: all(v1)})
	s.waitConverged(t, p, app, map[string]int{v1.ID: 1})
}

func (s suite) unknown(t *testing.T) {
	p := s.h.New(t)
	const app = "conf-unknown"
	obs, err := p.Observe(t.Context(), app)
	if err != nil {
		t.Fatalf("observe unknown app: %v", err)
	}
	if obs.App != app || len(obs.Revisions) != 0 || len(obs.Split.Weights) != 0 || len(obs.Split.Routes) != 0 || obs.Preview != "" {
		t.Errorf("unknown app observed as %s, want empty", dump(obs))
	}
}

func (s suite) concurrent(t *testing.T) {
	p := s.h.New(t)
	const apps = 8
	name := func(i int) string { return fmt.Sprintf("conf-concurrent-%d", i) }
	var g errgroup.Group
	for i := range apps {
		g.Go(func() error {
			app := name(i)
			v1, v2 := s.revs(app)
			for _, d := range []slipway.Desired{
				{App: app, Revisions: []slipway.Placement{place(v1, 2)}, Split: all(v1)},
				{App: app, Revisions: []slipway.Placement{place(v1, 1), place(v2, 1)}, Split: all(v1)},
				{App: app, Revisions: []slipway.Placement{place(v1, 1), place(v2, 1)}, Split: all(v1)},
			} {
				if err := p.Apply(t.Context(), d); err != nil {
					return fmt.Errorf("apply %s: %w", app, err)
				}
				if _, err := p.Observe(t.Context(), app); err != nil {
					return fmt.Errorf("observe %s: %w", app, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range apps {
		v1, v2 := s.revs(name(i))
		s.waitConverged(t, p, name(i), map[string]int{v1.ID: 1, v2.ID: 1})
	}
}
