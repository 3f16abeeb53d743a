package flagops

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
func (m *Manager) Outcomes() *flags.Outcomes { return m.cfg.Outcomes }

// setVariants remembers every flag's variants, for checking reported outcomes without
// reading the store.
func (m *Manager) setVariants(sets []slipway.FlagSetRecord) {
	variants := map[string][]string{}
	for _, rec := range sets {
		for key, f := range rec.Set.Flags {
			variants[key] = slices.Sorted(maps.Keys(f.Variants))
		}
	}
	m.variants.Store(&variants)
}

// RecordOutcomes counts outcomes an app reports for variants of flag key. It returns
// ENOTFOUND for an unknown flag and EINVALID, counting nothing, when a report names an
// unknown variant, a malformed outcome or a count out of range.
func (m *Manager) RecordOutcomes(ctx context.Context, key string, reports []slipway.OutcomeReport) error {
	p := m.variants.Load()
	if p == nil {
		if err := m.reloadFlags(ctx); err != nil {
			return err
		}
		p = m.variants.Load()
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
		if !m.cfg.Outcomes.Record(key, o.Variant, o.Outcome, o.Count) {
			return slipway.Errorf(slipway.EINVALID, "flag %s variant %s: too many different outcomes; report at most 16 names per variant", key, o.Variant)
		}
	}
	return nil
}
