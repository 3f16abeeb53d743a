package engine

import (
	"context"
	"maps"
	"slices"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// Outcomes returns where reported flag outcomes are counted (Config.Outcomes); the builtin
// analysis provider reads them (builtin.NewWithOutcomes).
func (e *Engine) Outcomes() *flags.Outcomes { return e.cfg.Outcomes }

// setVariants remembers every flag's variants, for checking reported outcomes without
// reading the store.
func (e *Engine) setVariants(sets []slipway.FlagSetRecord) {
	m := map[string][]string{}
	for _, rec := range sets {
		for key, f := range rec.Set.Flags {
			m[key] = slices.Sorted(maps.Keys(f.Variants))
		}
	}
	e.variants.Store(&m)
}

// RecordOutcomes counts outcomes an app reports for variants of flag key. It returns
// ENOTFOUND for an unknown flag and EINVALID, counting nothing, when a report names an
// unknown variant, a malformed outcome or a count out of range.
func (e *Engine) RecordOutcomes(ctx context.Context, key string, reports []slipway.OutcomeReport) error {
	p := e.variants.Load()
	if p == nil {
		if err := e.reloadFlags(ctx); err != nil {
			return err
		}
		p = e.variants.Load()
	}
	var variants []string
	if p != nil {
		variants = (*p)[key]
	}
	if variants == nil {
		return slipway.Errorf(slipway.ENOTFOUND, "flag %q not found; see `slipway flags list`", key)
	}
	if len(reports) == 0 {
		return slipway.Errorf(slipway.EINVALID, "no outcome reported; send {\"variant\": \"on\", \"outcome\": \"error\", \"count\": 1}")
	}
	for i := range reports {
		o := &reports[i]
		if o.Outcome == "" {
			o.Outcome = slipway.OutcomeSuccess
		}
		if o.Count == 0 {
			o.Count = 1
		}
		if !slices.Contains(variants, o.Variant) {
			return slipway.Errorf(slipway.EINVALID, "flag %s has no variant %q; use one of %s", key, o.Variant, strings.Join(variants, ", "))
		}
		if err := flags.CheckOutcome(o.Outcome, o.Count); err != nil {
			return slipway.Errorf(slipway.EINVALID, "flag %s: %v", key, err)
		}
	}
	for _, o := range reports {
		if !e.cfg.Outcomes.Record(key, o.Variant, o.Outcome, o.Count) {
			return slipway.Errorf(slipway.EINVALID, "flag %s variant %s: too many different outcomes; report at most 16 names per variant", key, o.Variant)
		}
	}
	return nil
}
