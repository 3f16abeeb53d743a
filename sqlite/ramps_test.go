package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/sqlite"
)

func TestStore_Ramps(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	if _, err := st.Ramp(ctx, "new-checkout"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("Ramp of a flag without one: %v; want ENOTFOUND", err)
	}
	r := slipway.Ramp{Flag: "new-checkout", Set: "web", Phase: slipway.PhaseProgressing, Weight: 100,
		Spec: slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{{Weight: 1}, {Weight: 100}}}}
	if err := st.SaveRamp(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 {
		t.Fatalf("version after insert = %d; want 1", r.Version)
	}
	dup := r
	dup.Version = 0
	if err := st.SaveRamp(ctx, &dup); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Fatalf("second insert: %v; want ECONFLICT", err)
	}
	r.Step, r.Weight = 1, 10000
	if err := st.SaveRamp(ctx, &r); err != nil {
		t.Fatal(err)
	}
	stale := r
	stale.Version = 1
	if err := st.SaveRamp(ctx, &stale); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Fatalf("stale write: %v; want ECONFLICT", err)
	}
	got, err := st.Ramp(ctx, "new-checkout")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Step != 1 || got.Weight != 10000 || got.Spec.Variant != "on" {
		t.Fatalf("read back %+v", got)
	}
	all, err := st.Ramps(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Ramps = %v, %v; want one", all, err)
	}
	if err := st.DeleteRamp(ctx, "new-checkout"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ramp(ctx, "new-checkout"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("Ramp after delete: %v; want ENOTFOUND", err)
	}
	gone := slipway.Ramp{Flag: "gone", Version: 3}
	if err := st.SaveRamp(ctx, &gone); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("update of a missing ramp: %v; want ENOTFOUND", err)
	}
}

// A ramp decision and its events are written together, or neither is.
func TestStore_SaveRampWritesItsEvents(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := slipway.Ramp{Flag: "f", Set: "web", Phase: slipway.PhaseProgressing,
		Spec: slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{{Weight: 100}}}}
	ev := slipway.Event{Kind: slipway.EventMeasurement, Actor: slipway.ActorAnalysis, Message: "measured"}
	if err := st.SaveRamp(ctx, &r, ev); err != nil {
		t.Fatal(err)
	}
	evs, err := st.Events(ctx, slipway.EventFilter{})
	if err != nil || len(evs) != 1 || evs[0].Message != "measured" || evs[0].Time.IsZero() {
		t.Fatalf("events after SaveRamp: %+v, %v", evs, err)
	}
	stale := r
	stale.Version = 0 // a second insert conflicts: its event must not be written
	if err := st.SaveRamp(ctx, &stale, slipway.Event{Kind: slipway.EventMeasurement, Actor: "x", Message: "lost"}); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Fatalf("conflicting save: %v", err)
	}
	if evs, _ := st.Events(ctx, slipway.EventFilter{}); len(evs) != 1 {
		t.Fatalf("a failed SaveRamp wrote its events: %+v", evs)
	}
}
