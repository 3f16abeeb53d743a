package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// TestFleet_AnEnvironmentThatCannotStart: a stored environment whose runtime cannot start
// (a damaged store, a data plane that does not come up) keeps neither the fleet from
// opening nor any other environment from serving. It is still listed; its requests, and
// plans and applies of its apps, are refused as unavailable with the reason; it starts
// again with the fleet once fixed. A restart in place (held) still fails whole, so that the
// server handing over carries on.
func TestFleet_AnEnvironmentThatCannotStart(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	if _, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env("staging"), env("qa")},
		Apps: []slipway.App{app("web", "staging", "v1"), app("web", "qa", "v1")}}, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCompleted(t, w.runtime("qa").eng, "web")

	w.mu.Lock()
	w.fail["qa"] = errors.New("sqlite: file is not a database")
	w.mu.Unlock()
	if err := w.reopenHeld(true); err == nil || !strings.Contains(err.Error(), "environment qa") {
		t.Errorf("held open with qa broken: %v; want it to fail naming qa", err)
	}
	if err := w.reopenHeld(false); err != nil {
		t.Fatalf("open with qa broken: %v; want the other environments served", err)
	}
	if _, err := w.fleet.Lookup("staging"); err != nil {
		t.Errorf("staging: %v", err)
	}
	waitCompleted(t, w.runtime("staging").eng, "web")
	_, err := w.fleet.Lookup("qa")
	if slipway.ErrorCode(err) != slipway.EUNAVAILABLE || !strings.Contains(err.Error(), "file is not a database") {
		t.Errorf("qa: %v; want EUNAVAILABLE with the reason", err)
	}
	if _, err := w.fleet.Lookup("nowhere"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("nowhere: %v; want ENOTFOUND", err)
	}
	envs, err := w.fleet.Environments(ctx)
	if err != nil || len(envs) != 3 || envs[1].Name != "qa" {
		t.Errorf("environments = %+v, %v; want default, qa and staging", envs, err)
	}
	for call, f := range map[string]func(slipway.Set) error{
		"plan":  func(s slipway.Set) error { _, err := w.fleet.Plan(ctx, s, slipway.ApplyOptions{}); return err },
		"apply": func(s slipway.Set) error { _, err := w.fleet.Apply(ctx, s, slipway.ApplyOptions{}); return err },
	} {
		if err := f(slipway.Set{Apps: []slipway.App{app("web", "qa", "v2"), app("web", "staging", "v2")}}); slipway.ErrorCode(err) != slipway.EUNAVAILABLE || !strings.Contains(err.Error(), "environment qa") {
			t.Errorf("%s of an app in qa: %v; want EUNAVAILABLE naming qa", call, err)
		}
	}
	if st := waitCompleted(t, w.runtime("staging").eng, "web"); st.Rollout.ID != "web-1" {
		t.Errorf("staging rolled out %s from a refused set", st.Rollout.ID)
	}
	// Fixed, it starts with the fleet again, its apps as they were.
	w.mu.Lock()
	delete(w.fail, "qa")
	w.mu.Unlock()
	w.reopen()
	if _, err := w.fleet.Lookup("qa"); err != nil {
		t.Fatalf("qa after the fix: %v", err)
	}
	waitCompleted(t, w.runtime("qa").eng, "web")
}

// TestFleet_AStartingEnvironmentHoldsUpNoRequest: while a new environment's runtime is
// starting (a data plane may take seconds), requests to the other environments are routed
// and the environments listed at once.
func TestFleet_AStartingEnvironmentHoldsUpNoRequest(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	if _, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env("staging")}}, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	w.mu.Lock()
	w.gate["slow"] = gate
	w.mu.Unlock()
	applied := make(chan error, 1)
	go func() {
		_, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env("slow")}}, slipway.ApplyOptions{})
		applied <- err
	}()
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()
	select {
	case <-w.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("slow's start never began")
	}
	answered := make(chan error, 1)
	go func() {
		if _, err := w.fleet.Lookup("staging"); err != nil {
			answered <- err
			return
		}
		_, err := w.fleet.Environments(ctx)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("while slow starts: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a request to staging waited on slow's start")
	}
	release()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if _, err := w.fleet.Lookup("slow"); err != nil {
		t.Errorf("slow after its start: %v", err)
	}
}

// TestFleet_AnEnvironmentThatCannotBeCreated: an apply whose new environment cannot start
// says why (not an internal error), stores nothing and applies none of the set's apps.
func TestFleet_AnEnvironmentThatCannotBeCreated(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	w.mu.Lock()
	w.fail["qa"] = errors.New("create the environment's directory: mkdir env/qa: not a directory")
	w.mu.Unlock()
	_, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env("staging"), env("qa")},
		Apps: []slipway.App{app("web", "qa", "v1"), app("api", "", "v1")}}, slipway.ApplyOptions{})
	if slipway.ErrorCode(err) != slipway.EUNAVAILABLE || !strings.Contains(slipway.ErrorMessage(err), "environment qa could not start: create the environment's directory") {
		t.Errorf("apply: %v (%s); want EUNAVAILABLE saying why qa could not start", err, slipway.ErrorCode(err))
	}
	if envs, _ := w.def.store.Environments(ctx); len(envs) != 0 {
		t.Errorf("%d environments stored after a failed apply", len(envs))
	}
	if _, err := w.fleet.Lookup("staging"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("staging after a failed apply: %v; want ENOTFOUND", err)
	}
	if w.runtime("staging") == nil || !w.runtime("staging").isClosed() {
		t.Error("staging, started by the failed apply, was not stopped")
	}
	if apps, _ := w.def.store.Apps(ctx); len(apps) != 0 {
		t.Errorf("default holds %d apps after a failed apply", len(apps))
	}
}

// TestFleet_AnAppInARefusedEnvironment: an app in an environment the set declares but the
// server refuses (a kubernetes target) is refused for that reason alone, not told that its
// environment does not exist and should be declared.
func TestFleet_AnAppInARefusedEnvironment(t *testing.T) {
	w := newWorld(t, nil)
	kube := slipway.Environment{Name: "cluster", Target: slipway.Target{Kind: slipway.TargetKubernetes, Kubernetes: &slipway.KubernetesTarget{Namespace: "shop"}}}
	web := app("web", "cluster", "v1")
	web.Run, web.Container = slipway.RunSpec{}, &slipway.ContainerSpec{Image: "web:1", Port: 8080}
	_, err := w.fleet.Plan(context.Background(), slipway.Set{Environments: []slipway.Environment{kube}, Apps: []slipway.App{web}}, slipway.ApplyOptions{})
	var e *slipway.Error
	if !errors.As(err, &e) || e.Code != slipway.EINVALID || len(e.Details) != 1 || !strings.Contains(e.Details[0], "Environment/cluster: spec.target.kind") {
		t.Errorf("plan: %+v; want one detail, about the environment's target", err)
	} else if e.Message != "1 error in the set" {
		t.Errorf("plan: message %q, want \"1 error in the set\"", e.Message)
	}
}

// TestFleet_AHandoverWaitsForAStartingEnvironment: a restart in place asked for while an
// environment is being created holds it too, once it has started (the next server opens it
// from the store); it is never left running unheld in the server that hands over. Each
// round races a handover against the end of a start.
func TestFleet_AHandoverWaitsForAStartingEnvironment(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	for i := range 10 {
		name := fmt.Sprintf("slow-%d", i)
		gate := make(chan struct{})
		w.mu.Lock()
		w.gate[name] = gate
		w.mu.Unlock()
		applied := make(chan error, 1)
		go func() {
			_, err := w.fleet.Apply(ctx, slipway.Set{Environments: []slipway.Environment{env(name)}}, slipway.ApplyOptions{})
			applied <- err
		}()
		select {
		case <-w.entered:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s's start never began", name)
		}
		held := make(chan error, 1)
		go func() { held <- w.fleet.Handover() }()
		close(gate)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		err := <-applied
		rt := w.runtime(name)
		switch {
		case err != nil && slipway.ErrorCode(err) != slipway.EUNAVAILABLE:
			t.Fatalf("%s: %v", name, err)
		case err == nil && (rt == nil || !rt.held.Load()):
			t.Fatalf("%s, created while the fleet was handing over, is not held", name)
		}
		w.fleet.Resume()
	}
}

// TestFleet_CloseWaitsForAStartingEnvironment: a server stopping while an environment is
// being created stops that environment too before Close returns, so that its data plane is
// not left running after the server has exited.
func TestFleet_CloseWaitsForAStartingEnvironment(t *testing.T) {
	w := newWorld(t, nil)
	gate := make(chan struct{})
	w.mu.Lock()
	w.gate["slow"] = gate
	w.mu.Unlock()
	applied := make(chan error, 1)
	go func() {
		_, err := w.fleet.Apply(context.Background(), slipway.Set{Environments: []slipway.Environment{env("slow")}}, slipway.ApplyOptions{})
		applied <- err
	}()
	select {
	case <-w.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("slow's start never began")
	}
	closed := make(chan error, 1)
	go func() { closed <- w.fleet.Close() }()
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if rt := w.runtime("slow"); rt == nil || !rt.isClosed() {
		t.Error("Close returned while slow, being created, still ran (or had not started)")
	}
	<-applied
}

// TestFleet_ChecksEnvironmentDocuments: Environment documents that come through the API
// (never seen by slipway validate) are checked like a file's: a name that is no DNS label
// (it names a directory), bad labels, a target without a kind are refused with every
// problem at once, and nothing is started or stored.
func TestFleet_ChecksEnvironmentDocuments(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	bad := []slipway.Environment{env("../x"), env("Staging"), env(strings.Repeat("a", 70)),
		{Name: "labelled", Labels: map[string]string{"tier": "prod\x1b[31m"}, Target: slipway.Target{Kind: slipway.TargetSim}},
		{Name: "nowhere"}}
	for call, f := range map[string]func() error{
		"plan": func() error {
			_, err := w.fleet.Plan(ctx, slipway.Set{Environments: bad}, slipway.ApplyOptions{})
			return err
		},
		"apply": func() error {
			_, err := w.fleet.Apply(ctx, slipway.Set{Environments: bad}, slipway.ApplyOptions{})
			return err
		},
	} {
		err := f()
		var e *slipway.Error
		if !errors.As(err, &e) || e.Code != slipway.EINVALID {
			t.Errorf("%s: %v; want EINVALID", call, err)
			continue
		}
		for _, want := range []string{"../x", "Staging", "70 characters", "labelled", "Environment/nowhere: spec.target.kind"} {
			if !strings.Contains(strings.Join(e.Details, "\n"), want) {
				t.Errorf("%s: details %q lack %q", call, e.Details, want)
			}
		}
	}
	if envs, _ := w.def.store.Environments(ctx); len(envs) != 0 || w.starts != 0 {
		t.Errorf("%d environments stored and %d started from refused documents", len(envs), w.starts)
	}
}
