package flags

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"slipway.dev/slipway"
)

// RampOther returns the variant a ramp of f serves to everyone it does not move: the
// ramp's Other, else the flag's default variant when it is not the ramped one, else the only
// other variant of a flag with two. ok is false when there is none.
func RampOther(f slipway.Flag) (string, bool) {
	r := f.Ramp
	if r == nil {
		return "", false
	}
	switch {
	case r.Other != "":
		return r.Other, true
	case f.DefaultVariant != nil && *f.DefaultVariant != r.Variant:
		return *f.DefaultVariant, true
	case len(f.Variants) == 2:
		for v := range f.Variants {
			if v != r.Variant {
				return v, true
			}
		}
	}
	return "", false
}

// RampTargeting is the targeting a ramp of f serves at weight basis points (0 to
// slipway.RampTotal): {"fractional": [[variant, weight], [other, RampTotal-weight]]}. The
// ramped variant comes first and the total never changes, so raising weight only moves
// users onto the ramped variant.
func RampTargeting(f slipway.Flag, weight int) (json.RawMessage, error) {
	if p := CheckRamp(f); len(p) > 0 {
		return nil, slipway.Errorf(slipway.EINVALID, "flag %s: ramp: %s", f.Key, p[0])
	}
	other, _ := RampOther(f)
	weight = max(0, min(weight, slipway.RampTotal))
	return json.Marshal(map[string]any{"fractional": []any{
		[]any{f.Ramp.Variant, weight},
		[]any{other, slipway.RampTotal - weight},
	}})
}

// RampWeight reads the ramped variant's weight back from targeting written by RampTargeting;
// ok is false when targeting is not such a rule for f's ramp.
func RampWeight(f slipway.Flag) (weight int, ok bool) {
	if f.Ramp == nil || len(f.Targeting) == 0 {
		return 0, false
	}
	var t struct {
		Fractional [][]any `json:"fractional"`
	}
	if err := json.Unmarshal(f.Targeting, &t); err != nil || len(t.Fractional) != 2 || len(t.Fractional[0]) != 2 {
		return 0, false
	}
	if v, _ := t.Fractional[0][0].(string); v != f.Ramp.Variant {
		return 0, false
	}
	w, isNum := t.Fractional[0][1].(float64)
	return int(w), isNum
}

// CheckRamp returns what is wrong with f's ramp, each problem as "path: message" relative
// to the ramp: a variant of the flag, another to serve the rest, steps of 0-100 percent that
// increase and end at 100, and no pause below zero. A flag without a ramp has no problem.
func CheckRamp(f slipway.Flag) []string {
	r := f.Ramp
	if r == nil {
		return nil
	}
	var out []string
	variants := slices.Sorted(maps.Keys(f.Variants))
	switch _, ok := f.Variants[r.Variant]; {
	case r.Variant == "":
		out = append(out, "variant: required; name the variant to ramp up, one of "+strings.Join(variants, ", "))
	case !ok:
		out = append(out, fmt.Sprintf("variant: %q is not a variant of the flag; use one of %s", r.Variant, strings.Join(variants, ", ")))
	}
	other, ok := RampOther(f)
	switch _, known := f.Variants[other]; {
	case !ok:
		out = append(out, "other: required when the flag has no defaultVariant besides the ramped one; name the variant everyone else is served")
	case !known:
		out = append(out, fmt.Sprintf("other: %q is not a variant of the flag; use one of %s", other, strings.Join(variants, ", ")))
	case other == r.Variant:
		out = append(out, fmt.Sprintf("other: %q is the ramped variant; name a different one", other))
	}
	if len(r.Steps) == 0 {
		out = append(out, "steps: required; list the shares to serve, like [{weight: 5, pause: 1m}, {weight: 100}]")
	}
	prev := -1
	for i, s := range r.Steps {
		switch {
		case s.Weight < 0 || s.Weight > 100:
			out = append(out, fmt.Sprintf("steps[%d].weight: %d is not a share in percent; use 0 to 100", i, s.Weight))
		case s.Weight <= prev:
			out = append(out, fmt.Sprintf("steps[%d].weight: %d does not increase on %d; a ramp only raises the share", i, s.Weight, prev))
		}
		if s.Pause < 0 {
			out = append(out, fmt.Sprintf("steps[%d].pause: %s is negative", i, s.Pause))
		}
		prev = s.Weight
	}
	if n := len(r.Steps); n > 0 && r.Steps[n-1].Weight != 100 {
		out = append(out, fmt.Sprintf("steps[%d].weight: the last step must be 100, so that a completed ramp serves the variant to everyone", n-1))
	}
	if a := r.Analysis; a != nil && len(a.Templates) == 0 {
		out = append(out, "analysis.templates: required; name the AnalysisTemplates to run at every step")
	}
	if len(f.Targeting) > 0 && string(f.Targeting) != "{}" && string(f.Targeting) != "null" {
		if _, isRamp := RampWeight(f); !isRamp {
			out = append(out, "targeting: a ramped flag's targeting is set by slipway; remove targeting or the ramp")
		}
	}
	return out
}
