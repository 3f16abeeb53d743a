package engine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

// TestRampWorker_ResumesAfterRestart stops the engine while a ramp holds its first step and
// starts another on the same SQLite file: the ramp carries on from where it was (no new
// ramp) and completes; removing the ramp from the flag then removes its record.
func TestRampWorker_ResumesAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	st, err := sqlite.Open(path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	run := func() (*engine.Engine, func()) {
		eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{}), Poll: 5 * time.Millisecond, Resync: 30 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		return eng, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	off := "off"
	flag := slipway.Flag{State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Ramp: &slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{
			{Weight: 50, Pause: slipway.Duration(400 * time.Millisecond)}, {Weight: 100},
		}}}
	set := func(f slipway.Flag) slipway.Set {
		return slipway.Set{FlagSets: []slipway.FlagSet{{ID: "web", Flags: map[string]slipway.Flag{"checkout": f}}}}
	}

	eng, stop := run()
	if _, err := eng.Apply(context.Background(), set(flag), slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var first slipway.Ramp
	waitFor("the first step", func() bool {
		first, err = st.Ramp(context.Background(), "checkout")
		return err == nil && first.Weight == 5000
	})
	stop()

	eng, stop = run()
	defer stop()
	var done slipway.Ramp
	waitFor("the ramp to complete after the restart", func() bool {
		done, err = eng.Ramp(context.Background(), "checkout")
		return err == nil && done.Phase == slipway.RampCompleted
	})
	if !done.StartedAt.Equal(first.StartedAt) || done.Weight != slipway.RampTotal {
		t.Fatalf("ramp after restart = %+v; want the first one (started %v) at 100%%", done, first.StartedAt)
	}
	evs, err := st.Events(context.Background(), slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, e := range evs {
		if e.Kind == slipway.EventRampStarted {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d flag.ramp.started events; want 1", started)
	}

	// A new ramp declared, then removed before it ends: its record goes.
	flag.Ramp.Steps[0].Pause = slipway.Duration(time.Hour)
	if _, err := eng.Apply(context.Background(), set(flag), slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the changed ramp to start again", func() bool {
		r, err := eng.Ramp(context.Background(), "checkout")
		return err == nil && r.Phase == slipway.RampProgressing && r.Weight == 5000
	})
	flag.Ramp = nil
	if _, err := eng.Apply(context.Background(), set(flag), slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the ramp record to go", func() bool {
		_, err := eng.Ramp(context.Background(), "checkout")
		return slipway.ErrorCode(err) == slipway.ENOTFOUND
	})
}
