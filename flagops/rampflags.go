package flagops

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

var _ slipway.RampOperator = (*Manager)(nil)

// rampStore returns the store's ramp side, or an error when the store keeps no ramps.
func (m *Manager) rampStore() (slipway.RampStore, error) {
	if m.rampsDB == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "this server's store keeps no flag ramps")
	}
	return m.rampsDB, nil
}

// withRampTargeting returns fs with the targeting of every ramped flag set by slipway: the
// stored flag's when prev declares the same ramp (so re-applying a file leaves a ramp where
// it is), weight 0 otherwise (a new or changed ramp starts from nothing). It returns EINVALID
// for a ramp that CheckRamp refuses.
func withRampTargeting(fs slipway.FlagSet, prev *slipway.FlagSet) (slipway.FlagSet, error) {
	var out map[string]slipway.Flag
	for _, key := range slices.Sorted(maps.Keys(fs.Flags)) {
		f := fs.Flags[key]
		if f.Ramp == nil {
			continue
		}
		if p := flags.CheckRamp(f); len(p) > 0 {
			return fs, &slipway.Error{Code: slipway.EINVALID, Message: fmt.Sprintf("flag set %s: flag %s: invalid ramp", fs.ID, key), Details: p}
		}
		if out == nil {
			out = maps.Clone(fs.Flags)
		}
		if prev != nil {
			if old, ok := prev.Flags[key]; ok && old.Ramp != nil && reflect.DeepEqual(*old.Ramp, *f.Ramp) {
				if _, isRamp := flags.RampWeight(old); isRamp {
					f.Targeting = old.Targeting
					out[key] = f
					continue
				}
			}
		}
		tg, err := flags.RampTargeting(f, 0)
		if err != nil {
			return fs, err
		}
		f.Targeting = tg
		out[key] = f
	}
	if out != nil {
		fs.Flags = out
	}
	return fs, nil
}

// serveRamp makes flag key serve the weight of its stored ramp, as a new version of its set
// committed with events, and puts the flags in force. When the flag already serves it, has no
// stored ramp, or no longer declares the stored ramp, only the events are committed.
//
// It serves the ramp as stored now, never a caller's copy. The ramp's worker and OperateRamp
// each persist a decision and then serve it, and a worker's pass may have read the ramp before
// an operation saved a newer one: serving that copy after the operation's serve would undo the
// operation (an acknowledged abort would serve the old weight again). Reading the ramp under
// applyMu means that every serve begun after a save serves that save or a newer one.
func (m *Manager) serveRamp(ctx context.Context, key string, events []slipway.Event) error {
	rs, err := m.rampStore()
	if err != nil {
		return err
	}
	m.cfg.Lock.Lock()
	defer m.cfg.Lock.Unlock()
	for range maxAttempts {
		r, err := rs.Ramp(ctx, key)
		if slipway.ErrorCode(err) == slipway.ENOTFOUND {
			return m.cfg.Commit(ctx, &slipway.Change{Events: events})
		}
		if err != nil {
			return fmt.Errorf("serve ramp of %s: %w", key, err)
		}
		rec, _, err := m.findFlag(ctx, key)
		if slipway.ErrorCode(err) == slipway.ENOTFOUND {
			return m.cfg.Commit(ctx, &slipway.Change{Events: events})
		}
		if err != nil {
			return err
		}
		f := rec.Set.Flags[key]
		if f.Ramp == nil || !reflect.DeepEqual(*f.Ramp, r.Spec) {
			return m.cfg.Commit(ctx, &slipway.Change{Events: events})
		}
		if w, ok := flags.RampWeight(f); ok && w == r.Weight {
			return m.cfg.Commit(ctx, &slipway.Change{Events: events})
		}
		tg, err := flags.RampTargeting(f, r.Weight)
		if err != nil {
			return err
		}
		f.Targeting = tg
		now := m.cfg.Now()
		next := rec.Set
		next.Flags = maps.Clone(rec.Set.Flags)
		next.Flags[key] = f
		reason := fmt.Sprintf("ramp: variant %s at %s%%", r.Spec.Variant, percent(r.Weight))
		c := &slipway.Change{
			FlagSets: []slipway.FlagSetRecord{{Set: next, Time: now, Actor: slipway.ActorEngine, Reason: reason}},
			Events:   events,
		}
		if len(events) == 0 {
			c.Events = []slipway.Event{flagEvent(slipway.EventFlagChanged, slipway.ActorEngine, "ramp", now,
				"flag "+key+" "+reason, rec.Set.ID, key)}
		}
		err = m.cfg.Commit(ctx, c)
		if slipway.ErrorCode(err) == slipway.ECONFLICT {
			continue
		}
		if err != nil {
			return fmt.Errorf("serve ramp of %s: %w", key, err)
		}
		return m.reloadFlags(ctx)
	}
	return slipway.Errorf(slipway.ECONFLICT, "flag %s: state kept changing; try again", key)
}

// percent formats basis points as a percentage.
func percent(bp int) string {
	if bp%100 == 0 {
		return fmt.Sprint(bp / 100)
	}
	return fmt.Sprintf("%.2f", float64(bp)/100)
}

// Ramps returns every ramp, by flag key.
func (m *Manager) Ramps(ctx context.Context) ([]slipway.Ramp, error) {
	rs, err := m.rampStore()
	if err != nil {
		return nil, err
	}
	out, err := rs.Ramps(ctx)
	if out == nil && err == nil {
		out = []slipway.Ramp{}
	}
	return out, err
}

// Ramp returns the ramp of flag key.
func (m *Manager) Ramp(ctx context.Context, key string) (slipway.Ramp, error) {
	rs, err := m.rampStore()
	if err != nil {
		return slipway.Ramp{}, err
	}
	r, err := rs.Ramp(ctx, key)
	if slipway.ErrorCode(err) == slipway.ENOTFOUND {
		return slipway.Ramp{}, slipway.Errorf(slipway.ENOTFOUND, "flag %q has no ramp; see `slipway flags list`", key)
	}
	return r, err
}

// OperateRamp pauses, resumes or aborts a ramp: it decides with NextRamp, persists the
// ramp, makes the flag serve its weight, and nudges the ramp's worker.
func (m *Manager) OperateRamp(ctx context.Context, op slipway.RampOperation) (slipway.Ramp, error) {
	switch op.Op {
	case slipway.RampPause, slipway.RampResume, slipway.RampAbort:
	default:
		return slipway.Ramp{}, slipway.Errorf(slipway.EINVALID, "%q is not a ramp operation; use pause, resume or abort", op.Op)
	}
	rs, err := m.rampStore()
	if err != nil {
		return slipway.Ramp{}, err
	}
	for range maxAttempts {
		r, err := m.Ramp(ctx, op.Flag)
		if err != nil {
			return slipway.Ramp{}, err
		}
		if r.Phase == slipway.PhaseCompleted || (r.Phase == slipway.PhaseAborted && op.Op != slipway.RampResume) {
			return slipway.Ramp{}, slipway.Errorf(slipway.ECONFLICT, "the ramp of %s has ended (%s)", op.Flag, r.Phase)
		}
		now := m.cfg.Now()
		next, eff := NextRamp(r, RampInput{Templates: m.cfg.Templates(), Op: &op}, now)
		if reflect.DeepEqual(next, r) {
			return r, nil
		}
		if err := rs.SaveRamp(ctx, &next, eff.Events...); slipway.ErrorCode(err) == slipway.ECONFLICT {
			continue
		} else if err != nil {
			return slipway.Ramp{}, fmt.Errorf("%s ramp of %s: %w", op.Op, op.Flag, err)
		}
		if err := m.serveRamp(ctx, op.Flag, nil); err != nil {
			return next, err
		}
		m.wakeRamp(op.Flag)
		return next, nil
	}
	return slipway.Ramp{}, slipway.Errorf(slipway.ECONFLICT, "ramp of %s: state kept changing; try again", op.Flag)
}
