package fleet_test

import (
	"context"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

// TestFleet_TrafficAddressesAcrossEnvironments: on the local target every environment's
// apps share the machine's addresses; an app that would take one another local
// environment's app has (or one the same set gives another environment's app) is refused,
// by plan and apply, through the fleet and through the environment's own API, naming the
// other app. The same address on a sim environment, an app keeping its own address, port
// 0, and addresses that move between environments in one set are accepted.
func TestFleet_TrafficAddressesAcrossEnvironments(t *testing.T) {
	w := newWorldOn(t, nil, slipway.TargetLocal)
	ctx := context.Background()
	local := func(name string) slipway.Environment {
		return slipway.Environment{Name: name, Target: slipway.Target{Kind: slipway.TargetLocal}}
	}
	at := func(name, env, listen string) slipway.App {
		a := app(name, env, "v1")
		a.Traffic.Listen = listen
		return a
	}
	refused := func(what string, err error, want ...string) {
		t.Helper()
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("%s: %v; want EINVALID", what, err)
			return
		}
		for _, s := range want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %v; want it to say %q", what, err, s)
			}
		}
	}
	apply := func(s slipway.Set) error { _, err := w.fleet.Apply(ctx, s, slipway.ApplyOptions{}); return err }
	plan := func(s slipway.Set) error { _, err := w.fleet.Plan(ctx, s, slipway.ApplyOptions{}); return err }

	// One set, the same file in two new environments.
	both := slipway.Set{Environments: []slipway.Environment{local("staging"), local("production")},
		Apps: []slipway.App{at("web", "staging", "127.0.0.1:18001"), at("web", "production", "127.0.0.1:18001")}}
	refused("plan of one address in two environments", plan(both), "environment production: App/web: spec.traffic.listen: 127.0.0.1:18001 is also the listen address of App web in environment staging")
	refused("apply of one address in two environments", apply(both))
	if envs, _ := w.def.store.Environments(ctx); len(envs) != 0 {
		t.Fatalf("%d environments stored by a refused set", len(envs))
	}

	// Created one by one: the second environment's app is refused through the fleet and
	// through its own API; the default environment's addresses count too.
	if err := apply(slipway.Set{Environments: []slipway.Environment{local("staging"), local("production"), env("sandbox")},
		Apps: []slipway.App{at("web", "staging", "127.0.0.1:18001"), at("api", "", "127.0.0.1:18002")}}); err != nil {
		t.Fatal(err)
	}
	prod := w.runtime("production").eng
	refused("apply to production through the fleet", apply(slipway.Set{Apps: []slipway.App{at("web", "production", "127.0.0.1:18001")}}), "App web in environment staging")
	_, err := w.fleet.ApplyIn(ctx, "production", prod, slipway.Set{Apps: []slipway.App{at("web", "", "127.0.0.1:18001")}}, slipway.ApplyOptions{})
	refused("apply to production through its API", err, "App web in environment staging")
	_, err = w.fleet.PlanIn(ctx, "production", prod, slipway.Set{Apps: []slipway.App{at("web", "", ":18002")}}, slipway.ApplyOptions{})
	refused("plan of every host on the default's port", err, "App api;")
	refused("the default environment's app on staging's address", apply(slipway.Set{Environments: []slipway.Environment{local("staging")},
		Apps: []slipway.App{at("www", "", "0.0.0.0:18001")}}), "App/www: spec.traffic.listen: 0.0.0.0:18001 is also the listen address of App web in environment staging")
	if apps, _ := w.runtime("production").store.Apps(ctx); len(apps) != 0 {
		t.Errorf("production holds %d apps after refused applies", len(apps))
	}

	// Accepted: the same address again by its own app; port 0; a sim environment; another host.
	for what, s := range map[string]slipway.Set{
		"staging's web again":  {Apps: []slipway.App{at("web", "staging", "127.0.0.1:18001")}},
		"port 0 twice":         {Apps: []slipway.App{at("a", "production", "127.0.0.1:0"), at("b", "staging", "127.0.0.1:0")}},
		"a sim environment":    {Apps: []slipway.App{at("web", "sandbox", "127.0.0.1:18001")}},
		"another host, a port": {Apps: []slipway.App{at("web", "production", "127.0.0.2:18001")}},
	} {
		if err := apply(s); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	// Addresses that move in one set: staging's web leaves 18001, production's takes it.
	if err := apply(slipway.Set{Apps: []slipway.App{at("web", "staging", "127.0.0.1:18003"), at("web", "production", "127.0.0.1:18001")}}); err != nil {
		t.Errorf("a swap in one set: %v", err)
	}
}
