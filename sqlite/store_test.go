package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func TestStore_RoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	s := openAt(t, filepath.Join(t.TempDir(), "s.db"), clk.Now)

	app := testApp("web")
	rev1, rev2 := testRevision("web", 1), testRevision("web", 2)
	app.Stable = rev1.ID
	tmpl := slipway.AnalysisTemplate{
		Name: "errors",
		Args: []slipway.TemplateArg{{Name: "svc"}, {Name: "q", Value: ptr("rate")}},
		Metrics: []slipway.Metric{{
			Name:     "job",
			Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "check", Args: []string{"-v"}, Env: map[string]string{"X": "1"}}},
			DryRun:   true,
		}},
	}
	ro := testRollout("web-1", "web", 1, rev1.ID, rev2.ID)
	ro.ScaleDownAt = ptr(t0.Add(time.Minute))
	ro.CompletedAt = ptr(t0.Add(2 * time.Minute))
	run := testRun("web-1-1", "web", "web-1", t0.Add(time.Second))
	run.FinishedAt = ptr(t0.Add(time.Hour))
	bare := slipway.Event{Kind: slipway.EventAppCreated, Actor: "alice", Message: "created"}
	c := &slipway.Change{
		Apps:      []slipway.AppState{app},
		Templates: []slipway.AnalysisTemplate{tmpl},
		Revisions: []slipway.Revision{rev1, rev2},
		Rollouts:  []slipway.Rollout{ro},
		Runs:      []slipway.AnalysisRun{run},
		Events:    []slipway.Event{testEvent("web", "web-1", "one"), bare},
	}
	commit(t, s, c)

	// Commit reports what it stored.
	if c.Apps[0].Version != 1 || c.Rollouts[0].Version != 1 || c.Runs[0].Version != 1 {
		t.Fatalf("versions after insert = %d, %d, %d, want 1, 1, 1", c.Apps[0].Version, c.Rollouts[0].Version, c.Runs[0].Version)
	}
	if c.Events[0].Seq <= 0 || c.Events[1].Seq <= c.Events[0].Seq {
		t.Fatalf("event seqs = %d, %d, want increasing and positive", c.Events[0].Seq, c.Events[1].Seq)
	}
	if !c.Events[1].Time.Equal(t0) {
		t.Fatalf("event without a time got %v, want the store clock's %v", c.Events[1].Time, t0)
	}

	gotApp, err := s.App(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "app", gotApp, c.Apps[0])
	apps, err := s.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "apps", apps, c.Apps)

	gotTmpl, err := s.Template(ctx, "errors")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "template", gotTmpl, tmpl)

	gotRev, err := s.Revision(ctx, "web", rev2.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "revision", gotRev, rev2)
	revs, err := s.Revisions(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "revisions", revs, []slipway.Revision{rev2, rev1})

	gotRo, err := s.Rollout(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "rollout", gotRo, c.Rollouts[0])

	gotRun, err := s.AnalysisRun(ctx, "web-1-1")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "analysis run", gotRun, c.Runs[0])

	evs, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "events", evs, c.Events)
	if evs[1].Data != nil {
		t.Errorf("event without data read back Data %q, want nil", evs[1].Data)
	}

	// An update bumps the version and reads back whole.
	ro2 := c.Rollouts[0]
	ro2.Step, ro2.Weight, ro2.Phase, ro2.Cause = 2, 100, slipway.PhasePaused, slipway.PauseManual
	c2 := &slipway.Change{Rollouts: []slipway.Rollout{ro2}}
	commit(t, s, c2)
	if c2.Rollouts[0].Version != 2 {
		t.Fatalf("version after update = %d, want 2", c2.Rollouts[0].Version)
	}
	gotRo, err = s.Rollout(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "updated rollout", gotRo, c2.Rollouts[0])
}

func TestStore_ReadersReturnNotFound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	checks := map[string]error{}
	_, checks["App"] = s.App(ctx, "x")
	_, checks["Template"] = s.Template(ctx, "x")
	_, checks["Revision"] = s.Revision(ctx, "x", "y")
	_, checks["Rollout"] = s.Rollout(ctx, "x")
	_, checks["AnalysisRun"] = s.AnalysisRun(ctx, "x")
	for name, err := range checks {
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("%s of a missing record: %v, want ENOTFOUND", name, err)
		}
	}
	// Lists of nothing are empty, not errors.
	revs, err := s.Revisions(ctx, "x")
	if err != nil || revs == nil || len(revs) != 0 {
		t.Errorf("Revisions of unknown app = %v, %v; want empty slice", revs, err)
	}
}

func TestStore_Lists(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{
		Apps: []slipway.AppState{testApp("zeta"), testApp("alpha"), testApp("mid")},
		Templates: []slipway.AnalysisTemplate{
			{Name: "b", Metrics: []slipway.Metric{{Name: "m"}}},
			{Name: "a", Metrics: []slipway.Metric{{Name: "m"}}},
		},
	})
	apps, err := s.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Spec.Name)
	}
	assertEqual(t, "app names", names, []string{"alpha", "mid", "zeta"})

	tmpls, err := s.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpls) != 2 || tmpls[0].Name != "a" || tmpls[1].Name != "b" {
		t.Fatalf("templates = %+v, want a, b", tmpls)
	}

	// Templates are upserts; deleting one removes it, deleting a missing one is ENOTFOUND.
	commit(t, s, &slipway.Change{Templates: []slipway.AnalysisTemplate{{Name: "a", Metrics: []slipway.Metric{{Name: "n"}}}}})
	a, err := s.Template(ctx, "a")
	if err != nil || a.Metrics[0].Name != "n" {
		t.Fatalf("upserted template = %+v, %v; want metric n", a, err)
	}
	commit(t, s, &slipway.Change{DeleteTemplates: []string{"b"}})
	_, err = s.Template(ctx, "b")
	wantCode(t, err, slipway.ENOTFOUND)
	wantCode(t, s.Commit(ctx, &slipway.Change{DeleteTemplates: []string{"b"}}), slipway.ENOTFOUND)

	// Rollouts come newest first, limited; runs oldest first.
	var ros []slipway.Rollout
	for _, n := range []int{2, 3, 1} {
		r := testRollout("mid-"+string(rune('0'+n)), "mid", n, "", "x")
		r.Phase = slipway.PhaseCompleted
		ros = append(ros, r)
	}
	runs := []slipway.AnalysisRun{
		testRun("mid-1-b", "mid", "mid-1", t0.Add(2*time.Second)),
		testRun("mid-1-a", "mid", "mid-1", t0.Add(time.Second)),
		testRun("mid-1-c", "mid", "mid-1", t0.Add(3*time.Second)),
		testRun("mid-2-a", "mid", "mid-2", t0),
	}
	commit(t, s, &slipway.Change{Rollouts: ros, Runs: runs})
	for _, tc := range []struct {
		limit int
		want  []int
	}{{0, []int{3, 2, 1}}, {-1, []int{3, 2, 1}}, {2, []int{3, 2}}, {5, []int{3, 2, 1}}} {
		got, err := s.Rollouts(ctx, "mid", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var nums []int
		for _, r := range got {
			nums = append(nums, r.Number)
		}
		assertEqual(t, "rollout numbers", nums, tc.want)
	}
	gotRuns, err := s.AnalysisRuns(ctx, "mid-1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range gotRuns {
		ids = append(ids, r.ID)
	}
	assertEqual(t, "run order", ids, []string{"mid-1-a", "mid-1-b", "mid-1-c"})
}

func TestStore_OptimisticVersions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	base := &slipway.Change{
		Apps:     []slipway.AppState{testApp("web")},
		Rollouts: []slipway.Rollout{testRollout("web-1", "web", 1, "", "r")},
		Runs:     []slipway.AnalysisRun{testRun("web-1-1", "web", "web-1", t0)},
	}
	commit(t, s, base)

	type kind struct {
		name   string
		change func(version int64, key string) *slipway.Change
		read   func() (int64, error)
	}
	kinds := []kind{
		{"app", func(v int64, key string) *slipway.Change {
			a := testApp(key)
			a.Version = v
			return &slipway.Change{Apps: []slipway.AppState{a}}
		}, func() (int64, error) { a, err := s.App(ctx, "web"); return a.Version, err }},
		{"rollout", func(v int64, key string) *slipway.Change {
			r := testRollout(key, "web", 1, "", "r")
			r.Version = v
			return &slipway.Change{Rollouts: []slipway.Rollout{r}}
		}, func() (int64, error) { r, err := s.Rollout(ctx, "web-1"); return r.Version, err }},
		{"run", func(v int64, key string) *slipway.Change {
			r := testRun(key, "web", "web-1", t0)
			r.Version = v
			return &slipway.Change{Runs: []slipway.AnalysisRun{r}}
		}, func() (int64, error) { r, err := s.AnalysisRun(ctx, "web-1-1"); return r.Version, err }},
	}
	keys := map[string]string{"app": "web", "rollout": "web-1", "run": "web-1-1"}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			key := keys[k.name]
			t.Run("insert of existing conflicts", func(t *testing.T) {
				wantCode(t, s.Commit(ctx, k.change(0, key)), slipway.ECONFLICT)
			})
			t.Run("update of missing is not found", func(t *testing.T) {
				wantCode(t, s.Commit(ctx, k.change(1, key+"-missing")), slipway.ENOTFOUND)
			})
			t.Run("current version updates", func(t *testing.T) {
				c := k.change(1, key)
				commit(t, s, c)
				if v, err := k.read(); err != nil || v != 2 {
					t.Fatalf("stored version = %d, %v; want 2", v, err)
				}
			})
			t.Run("stale version conflicts", func(t *testing.T) {
				wantCode(t, s.Commit(ctx, k.change(1, key)), slipway.ECONFLICT)
				wantCode(t, s.Commit(ctx, k.change(7, key)), slipway.ECONFLICT)
				if v, err := k.read(); err != nil || v != 2 {
					t.Fatalf("stored version after conflicts = %d, %v; want 2", v, err)
				}
			})
			t.Run("negative version is invalid", func(t *testing.T) {
				wantCode(t, s.Commit(ctx, k.change(-1, key)), slipway.EINVALID)
			})
		})
	}

	t.Run("missing parent is not found", func(t *testing.T) {
		wantCode(t, s.Commit(ctx, &slipway.Change{Rollouts: []slipway.Rollout{testRollout("x-1", "nope", 1, "", "r")}}), slipway.ENOTFOUND)
		wantCode(t, s.Commit(ctx, &slipway.Change{Runs: []slipway.AnalysisRun{testRun("x-1-1", "web", "nope", t0)}}), slipway.ENOTFOUND)
		wantCode(t, s.Commit(ctx, &slipway.Change{Revisions: []slipway.Revision{testRevision("nope", 1)}}), slipway.ENOTFOUND)
	})
	t.Run("delete of missing app is not found", func(t *testing.T) {
		wantCode(t, s.Commit(ctx, &slipway.Change{DeleteApps: []string{"nope"}}), slipway.ENOTFOUND)
	})
	t.Run("existing revision is left as is", func(t *testing.T) {
		rev := testRevision("web", 1)
		commit(t, s, &slipway.Change{Revisions: []slipway.Revision{rev}})
		again := rev
		again.Number, again.Version = 9, "other"
		commit(t, s, &slipway.Change{Revisions: []slipway.Revision{again}})
		got, err := s.Revision(ctx, "web", rev.ID)
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "revision", got, rev)
	})
}

func TestStore_CommitIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{
		Apps:     []slipway.AppState{testApp("old")},
		Rollouts: []slipway.Rollout{testRollout("old-1", "old", 1, "", "r")},
		Events:   []slipway.Event{testEvent("old", "", "setup")},
	})
	before, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}

	oldApp := testApp("old")
	oldApp.Version = 1
	oldApp.Stable = "changed"
	stale := testRollout("old-1", "old", 1, "", "r") // version 0: the rollout exists
	c := &slipway.Change{
		Apps:       []slipway.AppState{testApp("new"), oldApp},
		Templates:  []slipway.AnalysisTemplate{{Name: "t"}},
		Revisions:  []slipway.Revision{testRevision("new", 1)},
		Rollouts:   []slipway.Rollout{testRollout("new-1", "new", 1, "", "r"), stale},
		Events:     []slipway.Event{testEvent("new", "new-1", "a"), testEvent("old", "", "b")},
		DeleteApps: nil,
	}
	orig := cloneChange(t, c)
	wantCode(t, s.Commit(ctx, c), slipway.ECONFLICT)

	assertEqual(t, "change after a failed commit", c, orig)
	_, err = s.App(ctx, "new")
	wantCode(t, err, slipway.ENOTFOUND)
	_, err = s.Template(ctx, "t")
	wantCode(t, err, slipway.ENOTFOUND)
	_, err = s.Rollout(ctx, "new-1")
	wantCode(t, err, slipway.ENOTFOUND)
	a, err := s.App(ctx, "old")
	if err != nil || a.Stable != "" || a.Version != 1 {
		t.Fatalf("old app = stable %q version %d, %v; want untouched", a.Stable, a.Version, err)
	}
	after, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "events", after, before)

	// The next successful commit's events follow on without a gap in what readers see.
	ok := &slipway.Change{Events: []slipway.Event{testEvent("old", "", "c")}}
	commit(t, s, ok)
	if ok.Events[0].Seq <= before[len(before)-1].Seq {
		t.Fatalf("seq %d after failed commit, want > %d", ok.Events[0].Seq, before[len(before)-1].Seq)
	}
}

// cloneChange deep-copies c through JSON.
func cloneChange(tb testing.TB, c *slipway.Change) *slipway.Change {
	tb.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	var out slipway.Change
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return &out
}

func TestStore_DeleteAppCascadesAndKeepsEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{
		Apps:      []slipway.AppState{testApp("web"), testApp("api")},
		Revisions: []slipway.Revision{testRevision("web", 1), testRevision("api", 1)},
		Rollouts:  []slipway.Rollout{testRollout("web-1", "web", 1, "", "r"), testRollout("api-1", "api", 1, "", "r")},
		Runs:      []slipway.AnalysisRun{testRun("web-1-1", "web", "web-1", t0), testRun("api-1-1", "api", "api-1", t0)},
		Events:    []slipway.Event{testEvent("web", "web-1", "started")},
	})
	commit(t, s, &slipway.Change{
		DeleteApps: []string{"web"},
		Events:     []slipway.Event{{App: "web", Kind: slipway.EventAppDeleted, Actor: "bob", Message: "deleted"}},
	})

	_, err := s.App(ctx, "web")
	wantCode(t, err, slipway.ENOTFOUND)
	_, err = s.Rollout(ctx, "web-1")
	wantCode(t, err, slipway.ENOTFOUND)
	_, err = s.AnalysisRun(ctx, "web-1-1")
	wantCode(t, err, slipway.ENOTFOUND)
	revs, err := s.Revisions(ctx, "web")
	if err != nil || len(revs) != 0 {
		t.Fatalf("revisions of deleted app = %v, %v; want none", revs, err)
	}
	active, err := s.ActiveRollouts(ctx)
	if err != nil || len(active) != 1 || active[0].ID != "api-1" {
		t.Fatalf("active rollouts = %v, %v; want api-1 only", active, err)
	}
	// The other app is untouched.
	if _, err := s.AnalysisRun(ctx, "api-1-1"); err != nil {
		t.Fatalf("other app's run: %v", err)
	}
	evs, err := s.Events(ctx, slipway.EventFilter{App: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Message != "started" || evs[1].Message != "deleted" {
		t.Fatalf("events of deleted app = %+v, want started, deleted", evs)
	}

	// The name can be used again, from version 0.
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{testApp("web")}})
}

func TestStore_PrunesRevisions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	app := testApp("web")
	app.Spec.RevisionHistoryLimit = 3
	var revs []slipway.Revision
	for n := 1; n <= 9; n++ {
		revs = append(revs, testRevision("web", n))
	}
	id := func(n int) string { return revs[n-1].ID }
	app.Stable = id(1)

	active := testRollout("web-1", "web", 1, id(2), id(3))
	done := testRollout("web-2", "web", 2, id(4), id(5))
	done.Phase = slipway.PhaseCompleted
	scaling := testRollout("web-3", "web", 3, id(6), id(9))
	scaling.Phase = slipway.PhaseCompleted
	scaling.ScaleDownAt = ptr(t0.Add(time.Minute))

	c := &slipway.Change{
		Apps:      []slipway.AppState{app},
		Revisions: revs,
		Rollouts:  []slipway.Rollout{active, done, scaling},
	}
	commit(t, s, c)
	assertRevisionNumbers(t, s, "web", []int{9, 8, 7, 6, 3, 2, 1})

	// The rollout ends: its revisions are no longer protected.
	active = c.Rollouts[0]
	active.Phase = slipway.PhaseAborted
	c2 := &slipway.Change{Rollouts: []slipway.Rollout{active}}
	commit(t, s, c2)
	assertRevisionNumbers(t, s, "web", []int{9, 8, 7, 6, 1})

	// Old capacity scaled down: revision 6 goes too.
	scaling = c.Rollouts[2]
	scaling.ScaledDown = true
	commit(t, s, &slipway.Change{Rollouts: []slipway.Rollout{scaling}})
	assertRevisionNumbers(t, s, "web", []int{9, 8, 7, 1})

	// A new stable revision releases the old one.
	a, err := s.App(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	a.Stable = id(9)
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{a}})
	assertRevisionNumbers(t, s, "web", []int{9, 8, 7})

	// A rollout that, still active, moves on to another revision releases the one it left;
	// one that only moves a step (the update that writes its data alone) keeps both.
	job := testApp("job")
	job.Spec.RevisionHistoryLimit = 2
	var jobRevs []slipway.Revision
	for n := 1; n <= 4; n++ {
		jobRevs = append(jobRevs, testRevision("job", n))
	}
	moving := testRollout("job-1", "job", 1, jobRevs[0].ID, jobRevs[1].ID)
	c4 := &slipway.Change{Apps: []slipway.AppState{job}, Revisions: jobRevs, Rollouts: []slipway.Rollout{moving}}
	commit(t, s, c4)
	assertRevisionNumbers(t, s, "job", []int{4, 3, 2, 1})
	for _, step := range []struct {
		move func(r *slipway.Rollout)
		want []int
	}{
		{func(r *slipway.Rollout) { r.Step++ }, []int{4, 3, 2, 1}},
		{func(r *slipway.Rollout) { r.To = jobRevs[2].ID }, []int{4, 3, 1}},
		{func(r *slipway.Rollout) { r.Weight++ }, []int{4, 3, 1}},
		{func(r *slipway.Rollout) { r.From = jobRevs[3].ID }, []int{4, 3}},
	} {
		moving = c4.Rollouts[0]
		step.move(&moving)
		c4 = &slipway.Change{Rollouts: []slipway.Rollout{moving}}
		commit(t, s, c4)
		assertRevisionNumbers(t, s, "job", step.want)
	}

	// Other apps are not pruned by this app's limit.
	other := testApp("api")
	var otherRevs []slipway.Revision
	for n := 1; n <= 12; n++ {
		otherRevs = append(otherRevs, testRevision("api", n))
	}
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{other}, Revisions: otherRevs})
	got, err := s.Revisions(ctx, "api")
	if err != nil || len(got) != slipway.DefaultRevisionHistoryLimit {
		t.Fatalf("api keeps %d revisions (%v), want %d", len(got), err, slipway.DefaultRevisionHistoryLimit)
	}
}

func assertRevisionNumbers(tb testing.TB, s *Store, app string, want []int) {
	tb.Helper()
	revs, err := s.Revisions(context.Background(), app)
	if err != nil {
		tb.Fatal(err)
	}
	got := []int{}
	for _, r := range revs {
		got = append(got, r.Number)
	}
	if !slices.Equal(got, want) {
		tb.Fatalf("revisions of %s = %v, want %v", app, got, want)
	}
}

func TestStore_ActiveRollouts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	mk := func(id string, app string, n int, phase slipway.Phase, scaleDown, scaledDown bool) slipway.Rollout {
		r := testRollout(id, app, n, "", "r")
		r.Phase = phase
		if scaleDown {
			r.ScaleDownAt = ptr(t0)
		}
		r.ScaledDown = scaledDown
		return r
	}
	ros := []slipway.Rollout{
		mk("b-1", "b", 1, slipway.PhaseCompleted, false, false),
		mk("b-2", "b", 2, slipway.PhaseProgressing, false, false),
		mk("a-1", "a", 1, slipway.PhaseAborted, false, false),
		mk("a-2", "a", 2, slipway.PhaseCompleted, true, false), // ended, old capacity still up
		mk("a-3", "a", 3, slipway.PhasePaused, false, false),
		mk("a-4", "a", 4, slipway.PhaseCompleted, true, true),
		mk("a-5", "a", 5, slipway.PhaseAborted, true, false),
	}
	c := &slipway.Change{Apps: []slipway.AppState{testApp("a"), testApp("b")}, Rollouts: ros}
	commit(t, s, c)

	activeIDs := func() []string {
		t.Helper()
		got, err := s.ActiveRollouts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, r := range got {
			if !r.Active() {
				t.Errorf("ActiveRollouts returned %s, which is not Active()", r.ID)
			}
			ids = append(ids, r.ID)
		}
		return ids
	}
	var want []string
	for _, r := range ros {
		if r.Active() {
			want = append(want, r.ID)
		}
	}
	slices.Sort(want)
	assertEqual(t, "active rollouts", activeIDs(), want)
	assertEqual(t, "active rollouts", want, []string{"a-2", "a-3", "a-5", "b-2"})

	// Scaling down ends a-2; completing b-2 ends it.
	a2, b2 := c.Rollouts[3], c.Rollouts[1]
	a2.ScaledDown = true
	b2.Phase = slipway.PhaseCompleted
	commit(t, s, &slipway.Change{Rollouts: []slipway.Rollout{a2, b2}})
	assertEqual(t, "active rollouts after updates", activeIDs(), []string{"a-3", "a-5"})
}

func TestStore_Events(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	// seq: 1 web/web-1, 2 api, 3 web/web-2, 4 web/web-1, 5 (none), 6 web/web-1
	c := &slipway.Change{Events: []slipway.Event{
		testEvent("web", "web-1", "e1"),
		testEvent("api", "", "e2"),
		testEvent("web", "web-2", "e3"),
		testEvent("web", "web-1", "e4"),
		testEvent("", "", "e5"),
		testEvent("web", "web-1", "e6"),
	}}
	commit(t, s, c)
	seq := func(i int) int64 { return c.Events[i-1].Seq }

	tests := []struct {
		name string
		f    slipway.EventFilter
		want []string
	}{
		{"all", slipway.EventFilter{}, []string{"e1", "e2", "e3", "e4", "e5", "e6"}},
		{"app", slipway.EventFilter{App: "web"}, []string{"e1", "e3", "e4", "e6"}},
		{"rollout", slipway.EventFilter{Rollout: "web-1"}, []string{"e1", "e4", "e6"}},
		{"app and rollout", slipway.EventFilter{App: "api", Rollout: "web-1"}, []string{}},
		{"after", slipway.EventFilter{After: seq(3)}, []string{"e4", "e5", "e6"}},
		{"after the last", slipway.EventFilter{After: seq(6)}, []string{}},
		{"newest limit", slipway.EventFilter{Limit: 2}, []string{"e5", "e6"}},
		{"limit beyond count", slipway.EventFilter{Limit: 10}, []string{"e1", "e2", "e3", "e4", "e5", "e6"}},
		{"first limit after", slipway.EventFilter{After: seq(1), Limit: 2}, []string{"e2", "e3"}},
		{"app newest limit", slipway.EventFilter{App: "web", Limit: 3}, []string{"e3", "e4", "e6"}},
		{"rollout after limit", slipway.EventFilter{Rollout: "web-1", After: seq(1), Limit: 1}, []string{"e4"}},
		{"app after", slipway.EventFilter{App: "web", After: seq(4)}, []string{"e6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.Events(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for i, e := range evs {
				got = append(got, e.Message)
				if i > 0 && e.Seq <= evs[i-1].Seq {
					t.Errorf("events out of order: seq %d after %d", e.Seq, evs[i-1].Seq)
				}
			}
			assertEqual(t, "events", got, tt.want)
		})
	}
}

func TestStore_ReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	clk := newClock(t0)
	s, err := Open(path, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	c := &slipway.Change{
		Apps:      []slipway.AppState{testApp("web")},
		Revisions: []slipway.Revision{testRevision("web", 1)},
		Rollouts:  []slipway.Rollout{testRollout("web-1", "web", 1, "", "r")},
		Events:    []slipway.Event{testEvent("web", "web-1", "one")},
	}
	if err := s.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Set(t0.Add(24 * time.Hour))
	s2 := openAt(t, path, clk.Now)
	if s2.Path() != path {
		t.Errorf("Path() = %q, want %q", s2.Path(), path)
	}
	a, err := s2.App(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "app", a, c.Apps[0])
	r, err := s2.Rollout(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "rollout", r, c.Rollouts[0])
	evs, err := s2.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "events", evs, c.Events)

	// Migrations ran once, at the first Open.
	rows := migrationRows(t, s2)
	assertEqual(t, "schema_migrations", rows, []string{"1 0001_init " + formatTime(t0), "2 0002_flags " + formatTime(t0), "3 0003_ramps " + formatTime(t0), "4 0004_tokens " + formatTime(t0), "5 0005_meta " + formatTime(t0), "6 0006_environments " + formatTime(t0), "7 0007_one_home_for_runs " + formatTime(t0), "8 0008_releases " + formatTime(t0), "9 0009_notifications " + formatTime(t0)})
}

// migrationRows lists schema_migrations as "version name applied_at".
func migrationRows(tb testing.TB, s *Store) []string {
	tb.Helper()
	rows, err := s.r.Query(`SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			v          int
			name, when string
		)
		if err := rows.Scan(&v, &name, &when); err != nil {
			tb.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s %s", v, name, when))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestOpen_RejectsUnusablePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		if _, err := Open(p, nil); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("Open(%q) = %v, want EINVALID", p, err)
		}
	}
	_, err := Open(filepath.Join(t.TempDir(), "missing", "dir", "x.db"), nil)
	wantCode(t, err, slipway.EUNAVAILABLE)
}

func TestStore_ReadsDoNotWaitForWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{testApp("web")}})

	// Hold the write connection inside an open transaction, as a slow Commit would.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.Exec(`UPDATE apps SET stable = 'uncommitted' WHERE name = 'web'`); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := s.App(rctx, "web")
	if err != nil {
		t.Fatalf("read during a write: %v", err)
	}
	if a.Stable != "" {
		t.Fatalf("read saw uncommitted stable %q", a.Stable)
	}
}

func assertEqual[T any](tb testing.TB, what string, got, want T) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		tb.Fatalf("%s differs\n got: %s\nwant: %s\n(got %#v)", what, gb, wb, got)
	}
}
