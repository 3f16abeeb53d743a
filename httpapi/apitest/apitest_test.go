package apitest_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

func TestService_EventsFollowTheStoreFilterContract(t *testing.T) {
	s := apitest.NewService()
	s.AddEvent("other", slipway.EventAppCreated)                          // seq 4
	s.AddEvent("web", slipway.EventRolloutStep)                           // seq 5
	s.SetPhase(slipway.PhaseCompleted, "", slipway.EventRolloutCompleted) // seq 6, of rollout web-2
	tests := []struct {
		name string
		f    slipway.EventFilter
		want []int64
	}{
		{"all", slipway.EventFilter{}, []int64{1, 2, 3, 4, 5, 6}},
		{"app", slipway.EventFilter{App: "web"}, []int64{1, 2, 3, 5, 6}},
		{"rollout", slipway.EventFilter{Rollout: "web-2"}, []int64{6}},
		{"after", slipway.EventFilter{After: 4}, []int64{5, 6}},
		{"newest limit without after", slipway.EventFilter{Limit: 2}, []int64{5, 6}},
		{"oldest limit after", slipway.EventFilter{After: 1, Limit: 2}, []int64{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.Events(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range evs {
				got = append(got, e.Seq)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Events(%+v) seqs %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

func TestService_SetPhaseEndsTheRolloutAsTheEngineWould(t *testing.T) {
	ctx := context.Background()
	s := apitest.NewService()
	s.SetPhase(slipway.PhaseAborted, "canary failed", slipway.EventRolloutAborted)
	ro, err := s.Rollout(ctx, "web-2")
	if err != nil {
		t.Fatal(err)
	}
	if ro.Phase != slipway.PhaseAborted || ro.Weight != 0 || ro.CompletedAt == nil || ro.Reason != "canary failed" {
		t.Errorf("rollout %+v, want Aborted at weight 0 with a completion time", ro)
	}
	st, err := s.Status(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rollout.Phase != slipway.PhaseAborted || st.Rollout.Weight != 0 || st.Rollout.Reason != "canary failed" {
		t.Errorf("status rollout %+v, want it to match the record", st.Rollout)
	}
	if active, _ := s.ActiveRollouts(ctx); len(active) != 0 {
		t.Errorf("active rollouts %+v after an abort", active)
	}
}

func TestService_RecordsCallsAndReturnsInjectedErrors(t *testing.T) {
	ctx := context.Background()
	s := apitest.NewService()
	set := slipway.Set{Apps: []slipway.App{{Name: "api", Replicas: 2, Run: slipway.RunSpec{Command: "./api"}}}}
	p, err := s.Apply(ctx, set, slipway.ApplyOptions{Actor: "ann"})
	if err != nil || len(p.Changes) != 1 || p.Changes[0].Action != slipway.ActionCreate || p.Changes[0].Rollout != "web-2" {
		t.Fatalf("Apply = %+v, %v; want a create naming rollout web-2", p, err)
	}
	if _, err := s.Operate(ctx, slipway.Operation{Kind: slipway.OpPause, App: "nope"}); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("Operate on an unknown app = %v, want ENOTFOUND", err)
	}
	if plans := s.Plans(); len(plans) != 1 || plans[0].Options.Actor != "ann" || plans[0].Set.Apps[0].Name != "api" {
		t.Errorf("Plans() = %+v", plans)
	}
	if ops := s.Operations(); len(ops) != 1 || ops[0].App != "nope" {
		t.Errorf("Operations() = %+v", ops)
	}

	boom := errors.New("boom")
	s.SetError("Apps", boom)
	if _, err := s.Apps(ctx); !errors.Is(err, boom) {
		t.Errorf("Apps after SetError = %v, want boom", err)
	}
	s.SetError("Apps", nil)
	if apps, err := s.Apps(ctx); err != nil || len(apps) != 1 {
		t.Errorf("Apps after clearing the error = %+v, %v", apps, err)
	}
}

func TestNewServer_ServesTheServiceAndKeepsItsLogs(t *testing.T) {
	ctx := context.Background()
	srv := apitest.NewServer(t, httpapi.Config{})
	c := httpapi.NewClient(srv.URL, srv.Client())
	want, err := srv.Service.Status(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Status(ctx, "web"); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Status over HTTP = %+v, %v; want %+v", got, err, want)
	}
	srv.Service.SetError("Templates", errors.New("disk on fire"))
	if _, err := c.Templates(ctx); slipway.ErrorCode(err) != slipway.EINTERNAL {
		t.Errorf("Templates = %v, want EINTERNAL", err)
	}
	if !strings.Contains(srv.Logs.String(), "disk on fire") {
		t.Errorf("server logs lack the internal error:\n%s", srv.Logs.String())
	}
}
