package httpapi

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
)

func newTestClient(t testing.TB) (*Client, *testEnv) {
	t.Helper()
	env := newTestEnv(t)
	return NewClient(env.srv.URL+"/", env.srv.Client()), env
}

func TestClient_RoundTrips(t *testing.T) {
	c, env := newTestClient(t)
	ctx := context.Background()
	f := env.fake
	set := slipway.Set{Apps: []slipway.App{f.apps[0].Spec}}

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
	wantPlan, _ := f.Plan(ctx, set, slipway.ApplyOptions{})
	p, err := c.Plan(ctx, set, slipway.ApplyOptions{Prune: true})
	check("Plan", p, wantPlan, err)
	p, err = c.Apply(ctx, set, slipway.ApplyOptions{})
	check("Apply rollout", p.Changes[0].Rollout, "web-1", err)
	apps, err := c.Apps(ctx)
	check("Apps", apps, f.apps, err)
	app, err := c.App(ctx, "web")
	check("App", app, f.apps[0], err)
	st, err := c.Status(ctx, "web")
	check("Status", st, f.statuses["web"], err)
	revs, err := c.Revisions(ctx, "web")
	check("Revisions", revs, f.revisions, err)
	ros, err := c.Rollouts(ctx, "web", 1)
	check("Rollouts", ros, f.rollouts, err)
	ro, err := c.Rollout(ctx, "web-2")
	check("Rollout", ro, f.rollouts[0], err)
	runs, err := c.AnalysisRuns(ctx, "web-2")
	check("AnalysisRuns", runs, f.runs, err)
	run, err := c.AnalysisRun(ctx, "web-2-step-0")
	check("AnalysisRun", run, f.runs[0], err)
	tpls, err := c.Templates(ctx)
	check("Templates", tpls, f.templates, err)
	tpl, err := c.Template(ctx, "success-rate")
	check("Template", tpl, f.templates[0], err)
	evs, err := c.Events(ctx, slipway.EventFilter{App: "web", After: 1, Limit: 1})
	check("Events", evs, f.events[1:2], err)

	c.SetActor("carol")
	ro, err = c.Operate(ctx, slipway.Operation{Kind: slipway.OpPromote, App: "web", Full: true})
	check("Operate", ro.Reason, "operated: promote", err)
	_, _, ops := f.recorded()
	if got := ops[len(ops)-1]; got.Actor != "carol" || !got.Full || got.Kind != slipway.OpPromote {
		t.Errorf("operation seen by the engine: %+v", got)
	}
	plans, _, _ := f.recorded()
	if plans[1].Actor != DefaultActor || !plans[1].Prune { // plans[0] is wantPlan above
		t.Errorf("plan options seen by the engine: %+v", plans[1])
	}
}

func TestClient_DecodesErrors(t *testing.T) {
	c, env := newTestClient(t)
	ctx := context.Background()
	t.Run("domain error with details", func(t *testing.T) {
		env.fake.setErr("Apply", &slipway.Error{Code: slipway.EINVALID, Message: "1 error", Details: []string{"a.yaml:1:1: apps[0].name: required"}})
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
		_, err := NewClient(srv.URL, nil).Apps(ctx)
		if slipway.ErrorCode(err) != slipway.ECONFLICT {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("server unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := NewClient(url, nil).Apps(ctx)
		var e *slipway.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("error %#v, want a plain transport error", err)
		}
	})
}

func TestClient_StreamEvents(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := newStreamEnv(t, time.Hour)
	c := NewClient(env.srv.URL, env.hc)

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
		env.fake.addEvent("web", slipway.EventRolloutStep)
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
		env.fake.setErr("Events", slipway.Errorf(slipway.EFORBIDDEN, "not yours"))
		defer env.fake.setErr("Events", nil)
		err := c.StreamEvents(context.Background(), slipway.EventFilter{}, func(slipway.Event) error { return nil })
		if slipway.ErrorCode(err) != slipway.EFORBIDDEN {
			t.Fatalf("error %v", err)
		}
	})
	env.waitIdle(t)
	env.hc.CloseIdleConnections()
	env.srv.Close()
}
