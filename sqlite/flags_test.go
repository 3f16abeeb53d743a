package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func testFlagSet(id, state string) slipway.FlagSet {
	return slipway.FlagSet{
		ID:       id,
		Metadata: map[string]any{"team": "web"},
		Flags: map[string]slipway.Flag{"new-ui": {
			Key: "new-ui", State: slipway.FlagState(state),
			Variants:       map[string]json.RawMessage{"on": json.RawMessage(`true`), "off": json.RawMessage(`false`)},
			DefaultVariant: ptr("off"),
		}},
	}
}

func TestStore_FlagSetVersions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)

	c := &slipway.Change{FlagSets: []slipway.FlagSetRecord{{Set: testFlagSet("web", "ENABLED"), Time: t0, Actor: "ann", Reason: "first"}}}
	commit(t, s, c)
	if c.FlagSets[0].Set.Revision != 1 {
		t.Fatalf("version after insert = %d, want 1", c.FlagSets[0].Set.Revision)
	}

	t.Run("inserting again conflicts", func(t *testing.T) {
		err := s.Commit(ctx, &slipway.Change{FlagSets: []slipway.FlagSetRecord{{Set: testFlagSet("web", "ENABLED")}}})
		wantCode(t, err, slipway.ECONFLICT)
	})

	upd := testFlagSet("web", "DISABLED")
	upd.Revision = 1
	commit(t, s, &slipway.Change{FlagSets: []slipway.FlagSetRecord{{Set: upd, Time: t0.Add(time.Minute), Actor: "bob", Reason: "off"}}})

	t.Run("a stale version conflicts and writes nothing", func(t *testing.T) {
		err := s.Commit(ctx, &slipway.Change{
			Events:   []slipway.Event{testEvent("", "", "should not be written")},
			FlagSets: []slipway.FlagSetRecord{{Set: upd}},
		})
		wantCode(t, err, slipway.ECONFLICT)
		evs, err := s.Events(ctx, slipway.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 0 {
			t.Errorf("events after a failed commit: %v", evs)
		}
	})

	t.Run("current and history", func(t *testing.T) {
		cur, err := s.FlagSet(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if cur.Set.Revision != 2 || cur.Actor != "bob" || cur.Reason != "off" || !cur.Time.Equal(t0.Add(time.Minute)) ||
			cur.Set.Flags["new-ui"].State != slipway.FlagDisabled {
			t.Errorf("FlagSet = %+v", cur)
		}
		hist, err := s.FlagSetHistory(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].Set.Revision != 2 || hist[1].Set.Revision != 1 || hist[1].Actor != "ann" ||
			hist[1].Set.Flags["new-ui"].State != slipway.FlagEnabled {
			t.Errorf("FlagSetHistory = %+v", hist)
		}
		all, err := s.FlagSets(ctx)
		if err != nil || len(all) != 1 || all[0].Set.ID != "web" {
			t.Errorf("FlagSets = %+v, %v", all, err)
		}
	})

	t.Run("unknown set", func(t *testing.T) {
		_, err := s.FlagSet(ctx, "nope")
		wantCode(t, err, slipway.ENOTFOUND)
		_, err = s.FlagSetHistory(ctx, "nope")
		wantCode(t, err, slipway.ENOTFOUND)
		err = s.Commit(ctx, &slipway.Change{DeleteFlagSets: []string{"nope"}})
		wantCode(t, err, slipway.ENOTFOUND)
		missing := testFlagSet("nope", "ENABLED")
		missing.Revision = 3
		err = s.Commit(ctx, &slipway.Change{FlagSets: []slipway.FlagSetRecord{{Set: missing}}})
		wantCode(t, err, slipway.ENOTFOUND)
	})

	t.Run("deleted keeps history and a new set continues its numbering", func(t *testing.T) {
		commit(t, s, &slipway.Change{DeleteFlagSets: []string{"web"}})
		if _, err := s.FlagSet(ctx, "web"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Fatalf("FlagSet after delete: %v", err)
		}
		c := &slipway.Change{FlagSets: []slipway.FlagSetRecord{{Set: testFlagSet("web", "ENABLED"), Actor: "cy"}}}
		commit(t, s, c)
		if c.FlagSets[0].Set.Revision != 3 {
			t.Errorf("version of the set created again = %d, want 3", c.FlagSets[0].Set.Revision)
		}
		hist, err := s.FlagSetHistory(ctx, "web")
		if err != nil || len(hist) != 3 {
			t.Errorf("history = %d versions, %v; want 3", len(hist), err)
		}
	})
}

func TestStore_FlagSetsCommitWithApps(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{testApp("web")}})
	// The app's version is stale: the flag set in the same Change must not be written.
	err := s.Commit(ctx, &slipway.Change{
		Apps:     []slipway.AppState{testApp("web")},
		FlagSets: []slipway.FlagSetRecord{{Set: testFlagSet("flags", "ENABLED")}},
	})
	wantCode(t, err, slipway.ECONFLICT)
	if _, err := s.FlagSet(ctx, "flags"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("flag set written by a failed commit: %v", err)
	}
}

func TestStore_FlagStats(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	s := openAt(t, path, newClock(t0).Now)
	if got, err := s.FlagStats(ctx); err != nil || len(got) != 0 {
		t.Fatalf("FlagStats on a new store = %v, %v", got, err)
	}
	want := []slipway.FlagStat{
		{Key: "a", LastEvaluated: t0, LastVariant: "on", SingleVariantSince: t0.Add(-time.Hour), Evaluations: 10},
		{Key: "b", LastEvaluated: t0, Evaluations: 1},
	}
	if err := s.SaveFlagStats(ctx, want); err != nil {
		t.Fatal(err)
	}
	want[0].Evaluations, want[0].SingleVariantSince = 12, time.Time{}
	if err := s.SaveFlagStats(ctx, want[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := s.FlagStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("FlagStats = %+v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || !g.LastEvaluated.Equal(w.LastEvaluated) || g.LastVariant != w.LastVariant ||
			!g.SingleVariantSince.Equal(w.SingleVariantSince) || g.Evaluations != w.Evaluations {
			t.Errorf("stat %d = %+v, want %+v", i, g, w)
		}
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SaveFlagStats(ctxDone, want); err == nil {
		t.Error("SaveFlagStats with an ended context succeeded")
	}
}
