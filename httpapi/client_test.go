package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

func newTestClient(t testing.TB) (*httpapi.Client, *apitest.Server) {
	t.Helper()
	srv := apitest.NewServer(t, httpapi.Config{})
	return httpapi.NewClient(srv.URL+"/", srv.Client()), srv
}

// TestClient_RoundTrips checks that every method answers what the service behind the server
// answers for the same arguments, and passes on what the caller asked.
func TestClient_RoundTrips(t *testing.T) {
	c, srv := newTestClient(t)
	ctx := context.Background()
	f := srv.Service
	web, err := f.App(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	set := slipway.Set{Apps: []slipway.App{web.Spec}}

	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", name, got, want)
		}
	}
	// want returns what the service answers directly; a seeded record must exist.
	want := func(v any, err error) any {
		t.Helper()
		if err != nil || reflect.ValueOf(v).IsZero() {
			t.Fatalf("service answers %+v, %v; want a seeded record", v, err)
		}
		return v
	}
	wantPlan := want(f.Plan(ctx, set, slipway.ApplyOptions{}))
	p, err := c.Plan(ctx, set, slipway.ApplyOptions{Prune: true})
	check("Plan", p, wantPlan, err)
	p, err = c.Apply(ctx, set, slipway.ApplyOptions{})
	check("Apply rollout", p.Changes[0].Rollout, "web-2", err)
	apps, err := c.Apps(ctx)
	check("Apps", apps, want(f.Apps(ctx)), err)
	app, err := c.App(ctx, "web")
	check("App", app, web, err)
	st, err := c.Status(ctx, "web")
	check("Status", st, want(f.Status(ctx, "web")), err)
	revs, err := c.Revisions(ctx, "web")
	check("Revisions", revs, want(f.Revisions(ctx, "web")), err)
	ros, err := c.Rollouts(ctx, "web", 1)
	check("Rollouts", ros, want(f.Rollouts(ctx, "web", 1)), err)
	ro, err := c.Rollout(ctx, "web-2")
	check("Rollout", ro, want(f.Rollout(ctx, "web-2")), err)
	runs, err := c.AnalysisRuns(ctx, "web-2")
	check("AnalysisRuns", runs, want(f.AnalysisRuns(ctx, "web-2")), err)
	run, err := c.AnalysisRun(ctx, "web-2-step-0")
	check("AnalysisRun", run, want(f.AnalysisRun(ctx, "web-2-step-0")), err)
	tpls, err := c.Templates(ctx)
	check("Templates", tpls, want(f.Templates(ctx)), err)
	tpl, err := c.Template(ctx, "success-rate")
	check("Template", tpl, want(f.Template(ctx, "success-rate")), err)
	filter := slipway.EventFilter{App: "web", After: 1, Limit: 1}
	evs, err := c.Events(ctx, filter)
	check("Events", evs, want(f.Events(ctx, filter)), err)
	if len(evs) != 1 || evs[0].Seq != 2 {
		t.Errorf("Events(%+v) = %+v, want the one event with seq 2", filter, evs)
	}

	// The actor is the token's name, whatever the operation claims.
	c.SetToken(apitest.DeployerSecret)
	ro, err = c.Operate(ctx, slipway.Operation{Kind: slipway.OpPromote, App: "web", Full: true, Actor: "mallory"})
	check("Operate", ro.Reason, "operated: promote", err)
	ops := f.Operations()
	if got := ops[len(ops)-1]; got.Actor != "deployer" || !got.Full || got.Kind != slipway.OpPromote {
		t.Errorf("operation seen by the engine: %+v", got)
	}
	plans := f.Plans()
	if got := plans[1].Options; got.Actor != "admin" || !got.Prune { // plans[0] is wantPlan above
		t.Errorf("plan options seen by the engine: %+v", got)
	}
}

func TestClient_DecodesErrors(t *testing.T) {
	c, env := newTestClient(t)
	ctx := context.Background()
	t.Run("domain error with details", func(t *testing.T) {
		env.Service.SetError("Apply", &slipway.Error{Code: slipway.EINVALID, Message: "1 error", Details: []string{"a.yaml:1:1: apps[0].name: required"}})
		_, err := c.Apply(ctx, slipway.Set{}, slipway.ApplyOptions{})
		var e *slipway.Error
		if !errors.As(err, &e) || e.Code != slipway.EINVALID || e.Message != "1 error" || len(e.Details) != 1 {
			t.Fatalf("error %#v", err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := c.Status(ctx, "nope")
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("answer without the error shape", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream says no", http.StatusConflict)
		}))
		defer srv.Close()
		_, err := apitest.NewClient(srv.URL).Apps(ctx)
		if slipway.ErrorCode(err) != slipway.ECONFLICT {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("server unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := apitest.NewClient(url).Apps(ctx)
		var e *slipway.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("error %#v, want a plain transport error", err)
		}
	})
}

func TestClient_StreamEvents(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := newStreamEnv(t, time.Hour)
	c := httpapi.NewClient(env.srv.URL, env.hc)

	t.Run("delivers in order and stops on the callback's error", func(t *testing.T) {
		stop := errors.New("enough")
		var got []int64
		err := c.StreamEvents(context.Background(), slipway.EventFilter{App: "web", After: 1}, func(e slipway.Event) error {
			got = append(got, e.Seq)
			if len(got) == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || !reflect.DeepEqual(got, []int64{2, 3}) {
			t.Fatalf("err %v, events %v", err, got)
		}
	})
	t.Run("returns nil when ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		seen := make(chan int64, 10)
		done := make(chan error, 1)
		go func() {
			done <- c.StreamEvents(ctx, slipway.EventFilter{After: 3}, func(e slipway.Event) error {
				seen <- e.Seq
				return nil
			})
		}()
		env.svc.AddEvent("web", slipway.EventRolloutStep)
		select {
		case seq := <-seen:
			if seq != 4 {
				t.Errorf("seq %d, want 4", seq)
			}
		case <-ctx.Done():
			t.Fatal("no event arrived")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("StreamEvents: %v", err)
		}
	})
	t.Run("stream error answer", func(t *testing.T) {
		env.svc.SetError("Events", slipway.Errorf(slipway.EFORBIDDEN, "not yours"))
		defer env.svc.SetError("Events", nil)
		err := c.StreamEvents(context.Background(), slipway.EventFilter{}, func(slipway.Event) error { return nil })
		if slipway.ErrorCode(err) != slipway.EFORBIDDEN {
			t.Fatalf("error %v", err)
		}
	})
	env.waitIdle(t)
	env.hc.CloseIdleConnections()
	env.srv.Close()
}
