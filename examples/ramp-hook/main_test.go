package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

// TestOutcomeHook runs the hook and the reporter against a real slipway API and store, and
// checks that slipway counted the outcomes per variant.
func TestOutcomeHook(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{})})
	tokens := auth.New(auth.Config{Store: st})
	reporter, err := tokens.CreateToken(context.Background(), slipway.NewToken{Name: "checkout", Role: slipway.RoleDeployer}, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Config{Tokens: tokens,
		Deployer: eng, Operator: eng, Status: eng, State: st, Flags: eng.FlagManager(), FlagOperator: eng.FlagManager(), Outcomes: eng.FlagManager(),
	}))
	t.Cleanup(srv.Close)
	off := "off"
	fs := slipway.FlagSet{ID: "shop", Flags: map[string]slipway.Flag{"new-checkout": {
		State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
	}}}
	if _, err := eng.Apply(context.Background(), slipway.Set{FlagSets: []slipway.FlagSet{fs}}, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	rep := &Reporter{Base: srv.URL, Token: reporter.Secret, Client: srv.Client()}
	hc := openfeature.NewHookContext("new-checkout", openfeature.Boolean, false, openfeature.NewClientMetadata("shop"),
		openfeature.Metadata{}, openfeature.NewEvaluationContext("user-1", nil))
	request := func(variant string, fail bool) {
		ctx := withExposures(context.Background())
		d := openfeature.InterfaceEvaluationDetails{}
		d.Variant = variant
		if err := (OutcomeHook{}).After(ctx, hc, d, openfeature.HookHints{}); err != nil {
			t.Fatal(err)
		}
		var err error
		if fail {
			err = errors.New("boom")
		}
		if err := rep.Done(ctx, err); err != nil {
			t.Fatal(err)
		}
	}
	request("on", true)
	request("on", false)
	request("on", true)
	request("off", false)

	w := eng.FlagManager().Outcomes().Window("new-checkout", "on", time.Minute)
	if w.Total != 3 || w.Counts["error"] != 2 {
		t.Fatalf("on: %+v; want 3 outcomes, 2 errors", w)
	}
	if w := eng.FlagManager().Outcomes().Window("new-checkout", "off", time.Minute); w.Total != 1 || w.Counts["success"] != 1 {
		t.Fatalf("off: %+v; want 1 success", w)
	}
	if err := rep.Report(context.Background(), "new-checkout", "maybe", "error", 1); err == nil {
		t.Fatal("a report of an unknown variant was accepted")
	}
}
