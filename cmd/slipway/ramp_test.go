package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

const rampFile = `apiVersion: slipway.dev/v1alpha1
kind: FlagSet
metadata:
  name: shop
spec:
  flags:
    new-checkout:
      state: ENABLED
      variants: {"on": true, "off": false}
      defaultVariant: "off"
      ramp:
        variant: "on"
        steps:
          - {weight: 50, pause: 1h}
          - {weight: 100}
`

func TestCLI_FlagsRamp(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{})})
	tokens := auth.New(auth.Config{Store: st})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Config{Tokens: tokens,
		Deployer: eng, Operator: eng, Status: eng, State: st, Flags: eng.FlagManager(), FlagOperator: eng.FlagManager(), Ramps: eng.FlagManager(), Outcomes: eng.FlagManager(),
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		_ = st.Close()
	})
	t.Setenv(envServer, srv.URL)
	useToken(t, tokens, "tester")
	file := filepath.Join(t.TempDir(), "ramp.yaml")
	if err := os.WriteFile(file, []byte(rampFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, ctx, "apply", "-f", file); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := runCLI(t, ctx, "flags", "ramp", "new-checkout")
		if r.code == 0 && strings.Contains(r.stdout, "on at 50%") {
			if !strings.Contains(r.stdout, "Progressing") || !strings.Contains(r.stdout, "1     50%") {
				t.Fatalf("status:\n%s", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ramp never reached 50%%:\n%s", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, st := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"flags", "ramp", "new-checkout", "pause", "--reason", "looking"}, 0, "Paused (manual)"},
		{[]string{"flags", "ramp", "new-checkout", "resume"}, 0, "Progressing"},
		{[]string{"flags", "ramp", "new-checkout", "abort", "--reason", "bad reviews"}, 0, "on at 0%"},
		{[]string{"flags", "ramp", "new-checkout", "pause"}, exitError, "has ended"},
		{[]string{"flags", "ramp", "new-checkout", "jump"}, exitError, "not a ramp command"},
		{[]string{"flags", "ramp", "nope"}, exitError, "has no ramp"},
	} {
		r := runCLI(t, ctx, st.args...)
		if r.code != st.code || !strings.Contains(r.String(), st.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", st.args, r.code, st.code, st.want, r)
		}
	}
	fi, err := eng.FlagManager().Flag(ctx, "new-checkout")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fi.Flag.Targeting), `["on",0]`) {
		t.Fatalf("after abort the flag's targeting is %s; want on at 0", fi.Flag.Targeting)
	}
	var sawRolledBack bool
	evs, err := st.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == slipway.EventRampAborted && e.Actor == "tester" && e.Reason == "bad reviews" {
			sawRolledBack = true
		}
	}
	if !sawRolledBack {
		t.Fatalf("no flag.ramp.aborted event by tester with the reason in %+v", evs)
	}
}
