package flags_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

func rampFlag(steps ...int) slipway.Flag {
	off := "off"
	f := slipway.Flag{Key: "checkout", State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Ramp:     &slipway.FlagRamp{Variant: "on"}}
	for _, w := range steps {
		f.Ramp.Steps = append(f.Ramp.Steps, slipway.RampStep{Weight: w, Pause: slipway.Duration(time.Second)})
	}
	return f
}

func TestCheckRamp(t *testing.T) {
	if p := flags.CheckRamp(rampFlag(1, 5, 25, 50, 100)); len(p) != 0 {
		t.Fatalf("a good ramp: %v", p)
	}
	for _, tc := range []struct {
		name string
		f    func() slipway.Flag
		want string
	}{
		{"unknown variant", func() slipway.Flag { f := rampFlag(100); f.Ramp.Variant = "maybe"; return f }, `variant: "maybe" is not a variant`},
		{"no variant", func() slipway.Flag { f := rampFlag(100); f.Ramp.Variant = ""; return f }, "variant: required"},
		{"decreasing", func() slipway.Flag { return rampFlag(5, 5, 100) }, "steps[1].weight: 5 does not increase"},
		{"over 100", func() slipway.Flag { return rampFlag(5, 101) }, "steps[1].weight: 101 is not a share"},
		{"not ending at 100", func() slipway.Flag { return rampFlag(5, 50) }, "steps[1].weight: the last step must be 100"},
		{"no steps", func() slipway.Flag { return rampFlag() }, "steps: required"},
		{"other is the variant", func() slipway.Flag { f := rampFlag(100); f.Ramp.Other = "on"; return f }, "other: \"on\" is the ramped variant"},
		{"no other", func() slipway.Flag {
			f := rampFlag(100)
			f.DefaultVariant = nil
			f.Variants["maybe"] = json.RawMessage("false")
			return f
		}, "other: required"},
		{"own targeting", func() slipway.Flag { f := rampFlag(100); f.Targeting = json.RawMessage(`{"var":"x"}`); return f }, "targeting: a ramped flag's targeting is set by slipway"},
		{"analysis without templates", func() slipway.Flag { f := rampFlag(100); f.Ramp.Analysis = &slipway.AnalysisRef{}; return f }, "analysis.templates: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := flags.CheckRamp(tc.f())
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Fatalf("problems %q; want one containing %q", p, tc.want)
			}
		})
	}
}

// TestRampTargeting_Sticky checks the property a ramp relies on: as the weight rises, no
// targeting key ever moves from the ramped variant back to the other one, and the share
// served is close to the weight.
func TestRampTargeting_Sticky(t *testing.T) {
	f := rampFlag(1, 5, 25, 50, 100)
	const users = 20000
	served := make([]bool, users) // whether each user was on the ramped variant
	for _, pct := range []int{0, 1, 5, 25, 50, 100} {
		tg, err := flags.RampTargeting(f, pct*100)
		if err != nil {
			t.Fatal(err)
		}
		g := f
		g.Targeting = tg
		if w, ok := flags.RampWeight(g); !ok || w != pct*100 {
			t.Fatalf("RampWeight = %d, %v; want %d", w, ok, pct*100)
		}
		set, err := flags.Compile(slipway.FlagSet{ID: "s", Flags: map[string]slipway.Flag{"checkout": g}})
		if err != nil {
			t.Fatal(err)
		}
		on := 0
		for u := range users {
			ev := set.Evaluate("checkout", map[string]any{"targetingKey": fmt.Sprintf("user-%d", u)}, time.Time{})
			isOn := ev.Variant == "on"
			if served[u] && !isOn {
				t.Fatalf("at %d%%: user-%d moved from on back to off", pct, u)
			}
			served[u] = isOn
			if isOn {
				on++
			}
		}
		if share := float64(on) / users * 100; share < float64(pct)-1.5 || share > float64(pct)+1.5 {
			t.Fatalf("at %d%%: %.2f%% served on", pct, share)
		}
	}
}
