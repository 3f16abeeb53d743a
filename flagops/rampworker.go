package flagops

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/progress"
)

// rampWorker owns one flag's ramp while it progresses: it is the only goroutine that moves
// the ramp on by itself and measures its analysis (a progress.Task of the engine's group of
// ramp workers, keyed by flag). Operations (OperateRamp) write the ramp with an optimistic
// version and wake the worker.
type rampWorker struct {
	m   *Manager
	key string
}

var _ progress.Task = (*rampWorker)(nil)

// Pass moves the ramp on (reconcile).
func (w *rampWorker) Pass(ctx context.Context) (progress.Next, error) {
	wakeAt, active, err := w.reconcile(ctx)
	return progress.Next{Active: active, WakeAt: wakeAt}, err
}

// Idle does nothing: a ramp's measurements are taken within its passes.
func (w *rampWorker) Idle() {}

// wakeRamp asks the worker of flag key to look at its ramp now, starting one if none runs.
// Before Run it does nothing (Run looks at every ramp when it starts).
func (m *Manager) wakeRamp(key string) {
	if m.rampsDB == nil {
		return
	}
	m.rampWorkers.Wake(key, nil)
}

// wakeDeclaredRamps nudges the worker of every flag of sets that declares a ramp.
func (m *Manager) wakeDeclaredRamps(sets []slipway.FlagSetRecord) {
	if m.rampsDB == nil {
		return
	}
	for _, rec := range sets {
		for _, key := range slices.Sorted(maps.Keys(rec.Set.Flags)) {
			if rec.Set.Flags[key].Ramp != nil {
				m.wakeRamp(key)
			}
		}
	}
}

// reconcile takes every step the ramp can take now: it starts the ramp the flag declares
// (or a new one when the declaration changed), decides with NextRamp, persists, makes the
// flag serve the ramp's weight, and takes the analysis measurements that are due. It reports
// when it wants to run again and whether the ramp still progresses.
func (w *rampWorker) reconcile(ctx context.Context) (wakeAt time.Time, active bool, err error) {
	m, rs := w.m, w.m.rampsDB
	for range 64 {
		var declared *slipway.FlagRamp
		var set string
		rec, _, err := m.findFlag(ctx, w.key)
		switch {
		case err == nil:
			declared, set = rec.Set.Flags[w.key].Ramp, rec.Set.ID
		case slipway.ErrorCode(err) != slipway.ENOTFOUND:
			return time.Time{}, true, err
		}
		r, err := rs.Ramp(ctx, w.key)
		found := err == nil
		if err != nil && slipway.ErrorCode(err) != slipway.ENOTFOUND {
			return time.Time{}, true, err
		}
		now := m.cfg.Now()
		in := RampInput{Templates: m.cfg.Templates()}
		switch {
		case declared == nil:
			// The flag is gone or no longer ramps: its targeting is what was declared.
			if found && !r.Phase.Terminal() {
				if err := rs.DeleteRamp(ctx, w.key); err != nil {
					return time.Time{}, true, err
				}
			}
			return time.Time{}, false, nil
		case !found || r.Set != set || !reflect.DeepEqual(r.Spec, *declared):
			nr, eff := StartRamp(w.key, set, *declared, in, now)
			nr.Version = r.Version
			// The decision and its events are stored together; then the flag is served.
			if err := rs.SaveRamp(ctx, &nr, eff.Events...); slipway.ErrorCode(err) == slipway.ECONFLICT {
				continue
			} else if err != nil {
				return time.Time{}, true, err
			}
			if err := m.serveRamp(ctx, w.key, nil); err != nil {
				return time.Time{}, true, err
			}
			continue
		}
		next, eff := NextRamp(r, in, now)
		events := eff.Events
		if !reflect.DeepEqual(next, r) {
			// The decision and its events are stored together.
			if err := rs.SaveRamp(ctx, &next, events...); slipway.ErrorCode(err) == slipway.ECONFLICT {
				continue
			} else if err != nil {
				return time.Time{}, true, err
			}
			events = nil
		}
		// Persisted; now act. Serving serves the ramp as stored (an operation may have moved it
		// since it was read) and is idempotent, so a restart between the two repairs it.
		if err := m.serveRamp(ctx, w.key, events); err != nil {
			return time.Time{}, true, err
		}
		if next.Phase != slipway.PhaseProgressing {
			return time.Time{}, false, nil
		}
		wakeAt = eff.WakeAt
		if run := next.Run; run != nil && !run.Phase.Terminal() {
			i, at, ok := analysis.Due(*run)
			if ok && !at.After(now) {
				if err := w.measure(ctx, next, i); err != nil {
					return time.Time{}, true, err
				}
				continue
			}
			if ok && (wakeAt.IsZero() || at.Before(wakeAt)) {
				wakeAt = at
			}
		}
		return wakeAt, true, nil
	}
	return time.Time{}, true, fmt.Errorf("ramp of %s: state kept changing underneath", w.key)
}

// measure takes measurement i of r's run and persists it with the ramp. A conflict (an
// operation moved the ramp meanwhile) drops the measurement: the next pass decides anew.
func (w *rampWorker) measure(ctx context.Context, r slipway.Ramp, i int) error {
	mg := w.m
	run := *r.Run
	metric := run.Metrics[i]
	started := mg.cfg.Now()
	var value any
	var merr error
	if mg.measurer == nil {
		merr = slipway.Errorf(slipway.EINVALID, "this server measures no analysis")
	} else {
		value, merr = mg.measurer.Measure(ctx, metric)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	finished := mg.cfg.Now()
	analysis.Record(&run, i, value, merr, started, finished)
	r.Run = &run
	r.UpdatedAt = finished
	res := run.Results[i]
	if w := res.Waiting; w != nil {
		// Too small a sample yet: no measurement. The wait's first check is an event.
		var evs []slipway.Event
		if w.Checks == 1 {
			data, _ := json.Marshal(map[string]any{"flag": r.Flag, "run": run.ID, "metric": metric.Name, "waiting": w})
			evs = append(evs, slipway.Event{Time: finished, Kind: slipway.EventAnalysisWaiting, Actor: slipway.ActorAnalysis,
				Message: fmt.Sprintf("ramp of flag %s: metric %s waits for a minimum sample", r.Flag, metric.Name), Reason: w.Message, Data: data})
		}
		if err := mg.rampsDB.SaveRamp(ctx, &r, evs...); err != nil && slipway.ErrorCode(err) != slipway.ECONFLICT {
			return err
		}
		return nil
	}
	// Every measurement is an event, stored with the ramp it moves.
	var last slipway.Measurement
	if n := len(res.Measurements); n > 0 {
		last = res.Measurements[n-1]
	}
	data, _ := json.Marshal(map[string]any{"flag": r.Flag, "run": run.ID, "metric": metric.Name, "phase": last.Phase, "value": last.Value})
	ev := slipway.Event{Time: finished, Kind: slipway.EventMeasurement, Actor: slipway.ActorAnalysis,
		Message: fmt.Sprintf("ramp of flag %s: metric %s measured %s", r.Flag, metric.Name, last.Phase), Reason: last.Message, Data: data}
	if err := mg.rampsDB.SaveRamp(ctx, &r, ev); err != nil && slipway.ErrorCode(err) != slipway.ECONFLICT {
		return err
	}
	return nil
}

// resyncRamps nudges the worker of every ramp, declared or stored and unfinished (a stored
// ramp whose flag no longer declares it is then removed).
func (m *Manager) resyncRamps(ctx context.Context) error {
	if m.rampsDB == nil || m.flagsDB == nil {
		return nil
	}
	sets, err := m.flagsDB.FlagSets(ctx)
	if err != nil {
		return err
	}
	m.wakeDeclaredRamps(sets)
	stored, err := m.rampsDB.Ramps(ctx)
	if err != nil {
		return err
	}
	for _, r := range stored {
		if !r.Phase.Terminal() {
			m.wakeRamp(r.Flag)
		}
	}
	return nil
}
