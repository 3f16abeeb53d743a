package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

// flagCLIEnv is the API over a real engine and SQLite store, for the flags commands.
type flagCLIEnv struct {
	eng   *engine.Engine
	stats *flags.Stats
	clock *slipwaytest.Clock
}

func newFlagCLIEnv(t *testing.T) *flagCLIEnv {
	t.Helper()
	clock := slipwaytest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) // the golden files' times
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	stats := &flags.Stats{}
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{}), Now: clock.Now, FlagStats: stats})
	tokens := auth.New(auth.Config{Store: st})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Config{Tokens: tokens,
		Deployer: eng, Operator: eng, Status: eng, State: st, Flags: eng.FlagManager(), FlagOperator: eng.FlagManager(),
	}))
	t.Cleanup(srv.Close)
	t.Setenv(envServer, srv.URL)
	useToken(t, tokens, "tester")
	return &flagCLIEnv{eng: eng, stats: stats, clock: clock}
}

func TestCLI_FlagsGolden(t *testing.T) {
	env := newFlagCLIEnv(t)
	ctx := context.Background()
	if r := runCLI(t, ctx, "apply", "-f", "../../examples/flags.yaml"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	if r := runCLI(t, ctx, "apply", "-f", "testdata/flags.flagd.json"); r.code != 0 {
		t.Fatalf("apply of a flagd file: %s", r)
	}
	env.clock.Advance(time.Hour)
	env.stats.Record("banner-color", "green")
	env.stats.Record("new-checkout", "on")
	env.stats.Record("new-checkout", "off")
	if err := env.eng.FlagManager().FlushFlagStats(ctx); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		args    []string
		code    int
		advance time.Duration
	}{
		{name: "flags_list", args: []string{"flags", "list"}},
		{name: "flags_get", args: []string{"flags", "get", "new-checkout"}},
		{name: "flags_eval", args: []string{"flags", "eval", "new-checkout", "--context", `{"email": "ann@example.com"}`}},
		{name: "flags_eval_json", args: []string{"flags", "eval", "dark-mode", "-o", "json", "--context", `{"tier": "beta"}`}},
		{name: "flags_eval_bad_context", args: []string{"flags", "eval", "dark-mode", "--context", `[1]`}, code: exitError},
		{name: "flags_disable", args: []string{"flags", "disable", "banner-color", "--reason", "incident 42"}, advance: time.Minute},
		{name: "flags_set_default", args: []string{"flags", "set", "banner-color", "--default", "red"}, advance: time.Minute},
		{name: "flags_set_unknown_variant", args: []string{"flags", "set", "banner-color", "--default", "blue"}, code: exitError},
		{name: "flags_history", args: []string{"flags", "history", "banner-color"}},
		{name: "flags_history_yaml", args: []string{"flags", "history", "banner-color", "-o", "yaml"}},
		{name: "flags_rollback", args: []string{"flags", "rollback", "shop", "--to", "1", "--reason", "undo"}, advance: time.Minute},
		{name: "flags_get_unknown", args: []string{"flags", "get", "nope"}, code: exitError},
		{name: "flags_stale", args: []string{"flags", "stale", "--unevaluated-for", "30m", "--single-variant-for", "0"}, advance: 2 * time.Hour},
		{name: "flags_stale_single", args: []string{"flags", "stale", "--unevaluated-for", "0", "--single-variant-for", "1h"}},
	}
	for _, st := range steps {
		env.clock.Advance(st.advance)
		r := runCLI(t, ctx, st.args...)
		if r.code != st.code {
			t.Errorf("%s: exit %d, want %d\n%s", st.name, r.code, st.code, r)
		}
		golden(t, st.name, r.String())
	}
}

// TestCLI_FlagsJSONRoundTrip checks that -o json is the API's shape.
func TestCLI_FlagsJSONRoundTrip(t *testing.T) {
	newFlagCLIEnv(t)
	ctx := context.Background()
	if r := runCLI(t, ctx, "apply", "-f", "testdata/flags.flagd.json"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	r := runCLI(t, ctx, "flags", "list", "-o", "json")
	var fs []slipway.FlagInfo
	if err := json.Unmarshal([]byte(r.stdout), &fs); err != nil {
		t.Fatalf("flags list -o json: %v\n%s", err, r)
	}
	if len(fs) != 1 || fs[0].Key != "dark-mode" || fs[0].Set != "web-flags" || fs[0].Version != 1 {
		t.Errorf("flags = %+v", fs)
	}
	data, err := os.ReadFile("testdata/flags.flagd.json")
	if err != nil || !strings.Contains(string(data), `"flagSetId": "web-flags"`) {
		t.Errorf("testdata/flags.flagd.json should name its set web-flags: %v", err)
	}
}
