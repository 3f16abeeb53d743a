package sim_test

import (
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
)

func TestPlatform_Conformance(t *testing.T) {
	run := slipway.RunSpec{Command: "sim"}
	t.Run("ready at once", func(t *testing.T) {
		slipwaytest.TestPlatform(t, slipwaytest.PlatformHarness{
			New:  func(*testing.T) slipway.Platform { return sim.New(sim.Config{}) },
			Run:  run,
			Wait: 5 * time.Second,
		})
	})
	t.Run("ready after a delay", func(t *testing.T) {
		slipwaytest.TestPlatform(t, slipwaytest.PlatformHarness{
			New:  func(*testing.T) slipway.Platform { return sim.New(sim.Config{ReadyDelay: 20 * time.Millisecond}) },
			Run:  run,
			Wait: 5 * time.Second,
		})
	})
}
