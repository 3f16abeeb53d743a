package sqlite

import (
	"context"
	"reflect"
	"testing"

	"slipway.dev/slipway"
)

func TestStore_EnvironmentsRoundTripWithTheirEvents(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if got, err := s.Environments(ctx); err != nil || len(got) != 0 {
		t.Fatalf("new store: %v, %v; want none", got, err)
	}
	staging := slipway.Environment{Name: "staging", Target: slipway.Target{Kind: slipway.TargetLocal}}
	prod := slipway.Environment{Name: "production", Labels: map[string]string{"tier": "production"}, Target: slipway.Target{Kind: slipway.TargetSim}}
	ev := slipway.Event{Kind: slipway.EventEnvironmentCreated, Actor: "admin", Message: "environment staging created"}
	if err := s.PutEnvironments(ctx, []slipway.Environment{staging, prod}, []slipway.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Environments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []slipway.Environment{prod, staging}; !reflect.DeepEqual(got, want) {
		t.Fatalf("environments = %+v, want %+v (by name)", got, want)
	}
	// A second put replaces the one of the same name.
	prod.Labels["region"] = "eu"
	if err := s.PutEnvironments(ctx, []slipway.Environment{prod}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Environments(ctx)
	if len(got) != 2 || got[0].Labels["region"] != "eu" {
		t.Fatalf("after update: %+v", got)
	}
	evs, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != slipway.EventEnvironmentCreated {
		t.Fatalf("events = %+v, want the one environment.created", evs)
	}
}
