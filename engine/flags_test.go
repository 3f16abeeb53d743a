package engine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/spec"
	"slipway.dev/slipway/sqlite"
)

// flagEnv is an engine on a real SQLite file whose flags land in cur.
type flagEnv struct {
	store   *sqlite.Store
	eng     *engine.Engine
	cur     *flags.Current
	stats   *flags.Stats
	clock   *slipwaytest.Clock
	changes atomic.Int64
}

func newFlagEnv(t testing.TB) *flagEnv {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	fe := &flagEnv{store: st, cur: flags.NewCurrent(nil), stats: &flags.Stats{},
		clock: slipwaytest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))}
	fe.eng = engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{}), Now: fe.clock.Now,
		Flags: fe.cur, FlagStats: fe.stats, OnFlagsChanged: func() { fe.changes.Add(1) }})
	return fe
}

func mustLoad(t testing.TB, yaml string) slipway.Set {
	t.Helper()
	s, err := spec.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const flagsDoc = `
apiVersion: slipway.dev/v1alpha1
kind: FlagSet
metadata: {name: shop}
spec:
  metadata: {team: checkout}
  flags:
    new-checkout:
      state: ENABLED
      variants: {"on": true, "off": false}
      defaultVariant: "off"
      targeting: {if: [{$ref: staff}, "on"]}
  $evaluators:
    staff: {ends_with: [{var: email}, "@example.com"]}
---
apiVersion: slipway.dev/v1alpha1
kind: FlagSet
metadata: {name: web}
spec:
  flags:
    banner:
      state: ENABLED
      variants: {red: "#c00", green: "#0a0"}
      defaultVariant: green
      targeting: {if: [{$ref: staff}, red]}
  $evaluators:
    staff: {"==": [{var: tier}, gold]}
`

const appDoc = `
apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web}
spec:
  run: {command: ./web}
  strategy: {rolling: {}}
`

func TestEngine_ApplyFlagSetsWithApps(t *testing.T) {
	ctx := context.Background()
	fe := newFlagEnv(t)
	set := mustLoad(t, appDoc+"---"+flagsDoc)

	plan, err := fe.eng.Plan(ctx, set, slipway.ApplyOptions{Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if fe.cur.Load() != nil {
		t.Fatal("Plan put flags in force")
	}
	p, err := fe.eng.Apply(ctx, set, slipway.ApplyOptions{Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 3 || len(plan.Changes) != 3 {
		t.Fatalf("plan %+v, apply %+v: want 3 changes each", plan, p)
	}
	for _, ch := range p.Changes {
		if ch.Action != slipway.ActionCreate {
			t.Errorf("change %+v, want create", ch)
		}
	}
	if _, err := fe.store.App(ctx, "web"); err != nil {
		t.Errorf("app not stored: %v", err)
	}

	t.Run("merged flags are in force, each set with its own evaluators", func(t *testing.T) {
		s := fe.cur.Load()
		if s == nil {
			t.Fatal("no flags in force after Apply")
		}
		if fe.changes.Load() != 1 {
			t.Errorf("OnFlagsChanged called %d times, want 1", fe.changes.Load())
		}
		now := fe.clock.Now()
		if ev := s.Evaluate("new-checkout", map[string]any{"email": "ann@example.com"}, now); ev.Variant != "on" ||
			ev.Metadata["team"] != "checkout" || ev.Metadata["flagSetId"] != "shop" {
			t.Errorf("new-checkout for staff = %+v", ev)
		}
		if ev := s.Evaluate("banner", map[string]any{"email": "ann@example.com", "tier": "gold"}, now); ev.Variant != "red" {
			t.Errorf("banner for gold = %+v (its set's own staff evaluator)", ev)
		}
		if ev := s.Evaluate("banner", map[string]any{"email": "ann@example.com"}, now); ev.Variant != "green" {
			t.Errorf("banner for a non-gold user = %+v", ev)
		}
	})

	t.Run("applying again changes nothing", func(t *testing.T) {
		p, err := fe.eng.Apply(ctx, set, slipway.ApplyOptions{Actor: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		if p.HasChanges() {
			t.Errorf("second apply: %+v", p)
		}
	})

	t.Run("a bad flag set rejects the apps too", func(t *testing.T) {
		bad := mustLoad(t, strings.ReplaceAll(appDoc, "name: web", "name: api")+`---
apiVersion: slipway.dev/v1alpha1
kind: FlagSet
metadata: {name: other}
spec:
  flags:
    banner: {state: ENABLED, variants: {a: 1}}
`)
		_, err := fe.eng.Apply(ctx, bad, slipway.ApplyOptions{Actor: "ann"})
		if slipway.ErrorCode(err) != slipway.EINVALID || !strings.Contains(err.Error(), `flag "banner" is declared by flag sets "other" and "web"`) {
			t.Fatalf("Apply = %v, want EINVALID naming the duplicate key", err)
		}
		if _, err := fe.store.App(ctx, "api"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("app api stored by a rejected apply: %v", err)
		}
		if _, err := fe.store.FlagSet(ctx, "other"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("flag set stored by a rejected apply: %v", err)
		}
		invalid := set
		invalid.FlagSets = append([]slipway.FlagSet(nil), set.FlagSets...)
		invalid.FlagSets[0].Flags = map[string]slipway.Flag{"x": {State: "ON"}}
		if _, err := fe.eng.Apply(ctx, invalid, slipway.ApplyOptions{}); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("Apply of an invalid flag set = %v, want EINVALID", err)
		}
	})

	t.Run("prune deletes undeclared sets", func(t *testing.T) {
		only := mustLoad(t, appDoc+"---"+strings.SplitN(flagsDoc, "---", 2)[0])
		p, err := fe.eng.Apply(ctx, only, slipway.ApplyOptions{Prune: true, Actor: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		var deleted []string
		for _, ch := range p.Changes {
			if ch.Action == slipway.ActionDelete {
				deleted = append(deleted, ch.Kind+"/"+ch.Name)
			}
		}
		if len(deleted) != 1 || deleted[0] != "FlagSet/web" {
			t.Errorf("pruned %v, want [FlagSet/web]", deleted)
		}
		if ev := fe.cur.Load().Evaluate("banner", nil, fe.clock.Now()); ev.ErrorCode != slipway.FlagNotFound {
			t.Errorf("banner after prune = %+v, want FLAG_NOT_FOUND", ev)
		}
	})
}

func TestEngine_FlagChangesHistoryRollback(t *testing.T) {
	ctx := context.Background()
	fe := newFlagEnv(t)
	if _, err := fe.eng.Apply(ctx, mustLoad(t, flagsDoc), slipway.ApplyOptions{Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	fe.clock.Advance(time.Minute)
	fi, err := fe.eng.FlagManager().ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagDisable, Key: "banner", Actor: "bob", Reason: "incident 42"})
	if err != nil {
		t.Fatal(err)
	}
	if fi.State != slipway.FlagDisabled || fi.Version != 2 || fi.Set != "web" {
		t.Errorf("after disable: %+v", fi)
	}
	if ev := fe.cur.Load().Evaluate("banner", nil, fe.clock.Now()); ev.Reason != slipway.ReasonDisabled {
		t.Errorf("banner after disable = %+v", ev)
	}
	// Disabling again is no change and makes no version.
	if fi, err := fe.eng.FlagManager().ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagDisable, Key: "banner", Actor: "bob"}); err != nil || fi.Version != 2 {
		t.Errorf("second disable = %+v, %v; want version 2", fi, err)
	}
	fe.clock.Advance(time.Minute)
	if _, err := fe.eng.FlagManager().ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagSetDefault, Key: "banner", Variant: "red", Actor: "cy"}); err != nil {
		t.Fatal(err)
	}

	t.Run("errors", func(t *testing.T) {
		_, err := fe.eng.FlagManager().ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagSetDefault, Key: "banner", Variant: "blue"})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("unknown variant: %v", err)
		}
		_, err = fe.eng.FlagManager().ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagEnable, Key: "nope"})
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("unknown flag: %v", err)
		}
		_, err = fe.eng.FlagManager().RollbackFlagSet(ctx, slipway.FlagRollback{Set: "web", Version: 9})
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("unknown version: %v", err)
		}
	})

	hist, err := fe.eng.FlagManager().FlagHistory(ctx, "banner")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Version != 3 || hist[0].Actor != "cy" || *hist[0].Flag.DefaultVariant != "red" ||
		hist[1].Actor != "bob" || hist[1].Reason != "incident 42" || hist[1].Flag.State != slipway.FlagDisabled ||
		hist[2].Version != 1 || hist[2].Actor != "ann" || hist[2].Reason != "apply" {
		b, _ := json.Marshal(hist)
		t.Fatalf("history = %s", b)
	}

	fe.clock.Advance(time.Minute)
	v, err := fe.eng.FlagManager().RollbackFlagSet(ctx, slipway.FlagRollback{Set: "web", Version: 1, Actor: "dee"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 4 || v.Actor != "dee" || v.Reason != "rollback to version 1" {
		t.Errorf("rollback = %+v", v)
	}
	ev := fe.cur.Load().Evaluate("banner", nil, fe.clock.Now())
	if ev.Variant != "green" || ev.Reason != slipway.ReasonDefault {
		t.Errorf("banner after rollback = %+v, want green (enabled, default green)", ev)
	}

	events, err := fe.store.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind+" "+e.Actor)
	}
	want := []string{"flagset.applied ann", "flagset.applied ann", "flag.changed bob", "flag.changed cy", "flagset.rolledBack dee"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if fe.changes.Load() != 4 {
		t.Errorf("OnFlagsChanged called %d times, want 4", fe.changes.Load())
	}
}

func TestEngine_FlagStatsAndStale(t *testing.T) {
	ctx := context.Background()
	fe := newFlagEnv(t)
	if _, err := fe.eng.Apply(ctx, mustLoad(t, flagsDoc), slipway.ApplyOptions{Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fe.eng.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Run loads the flags in force from the store.
	slipwaytest.Eventually(t, 5*time.Second, "Run to load the flags in force", func() bool { return fe.changes.Load() >= 2 })

	fe.clock.Advance(time.Hour)
	for range 5 {
		fe.stats.Record("banner", "green")
	}
	fe.stats.Record("new-checkout", "on")
	fe.stats.Record("new-checkout", "off")
	if err := fe.eng.FlagManager().FlushFlagStats(ctx); err != nil {
		t.Fatal(err)
	}
	fe.clock.Advance(24 * time.Hour)
	fe.stats.Record("banner", "green")
	if err := fe.eng.FlagManager().FlushFlagStats(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := fe.eng.FlagManager().Flag(ctx, "banner")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if fi.LastEvaluated == nil || !fi.LastEvaluated.Equal(start.Add(25*time.Hour)) || fi.LastVariant != "green" ||
		fi.SingleVariantSince == nil || !fi.SingleVariantSince.Equal(start) {
		b, _ := json.Marshal(fi)
		t.Errorf("banner stats = %s", b)
	}

	fe.clock.Advance(48 * time.Hour)
	stale, err := fe.eng.FlagManager().StaleFlags(ctx, slipway.StaleQuery{UnevaluatedFor: 36 * time.Hour, SingleVariantFor: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range stale {
		got[s.Key] = s.Stale
	}
	if len(got) != 2 || !strings.HasPrefix(got["new-checkout"], "not evaluated since 2025-06-01T13:00:00Z") ||
		!strings.HasPrefix(got["banner"], "not evaluated since") {
		t.Errorf("stale = %v", got)
	}
	stale, err = fe.eng.FlagManager().StaleFlags(ctx, slipway.StaleQuery{SingleVariantFor: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0].Key != "banner" || !strings.Contains(stale[0].Stale, `served only variant "green"`) {
		t.Errorf("single-variant stale = %+v", stale)
	}
	if _, err := fe.eng.FlagManager().StaleFlags(ctx, slipway.StaleQuery{UnevaluatedFor: -1}); slipway.ErrorCode(err) != slipway.EINVALID {
		t.Errorf("negative duration: %v", err)
	}

	// Evaluating through the engine (the management API) is not counted.
	if ev, err := fe.eng.FlagManager().EvaluateFlag(ctx, "banner", map[string]any{"tier": "gold"}); err != nil || ev.Variant != "red" {
		t.Errorf("EvaluateFlag = %+v, %v", ev, err)
	}
	if n := len(fe.stats.Drain()); n != 0 {
		t.Errorf("EvaluateFlag recorded %d flags", n)
	}
}
