package flagops

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway"
)

var (
	_ slipway.FlagReader   = (*Manager)(nil)
	_ slipway.FlagOperator = (*Manager)(nil)
)

// findFlag returns the stored set that declares key, and every stored set.
func (m *Manager) findFlag(ctx context.Context, key string) (slipway.FlagSetRecord, []slipway.FlagSetRecord, error) {
	fst, err := m.flagStore()
	if err != nil {
		return slipway.FlagSetRecord{}, nil, err
	}
	sets, err := fst.FlagSets(ctx)
	if err != nil {
		return slipway.FlagSetRecord{}, nil, err
	}
	for _, r := range sets {
		if _, ok := r.Set.Flags[key]; ok {
			return r, sets, nil
		}
	}
	return slipway.FlagSetRecord{}, sets, slipway.Errorf(slipway.ENOTFOUND, "flag %q not found; see `slipway flags list`", key)
}

// ChangeFlag enables or disables a flag or sets its default variant, as a new version of the
// flag's set with an event. A change that changes nothing writes nothing.
func (m *Manager) ChangeFlag(ctx context.Context, ch slipway.FlagChange) (slipway.FlagInfo, error) {
	m.cfg.Lock.Lock()
	defer m.cfg.Lock.Unlock()
	actor := cmp.Or(ch.Actor, "unknown")
	for range maxAttempts {
		rec, _, err := m.findFlag(ctx, ch.Key)
		if err != nil {
			return slipway.FlagInfo{}, err
		}
		f := rec.Set.Flags[ch.Key]
		var msg string
		switch ch.Kind {
		case slipway.FlagEnable:
			if f.State == slipway.FlagEnabled {
				return m.flagInfo(ctx, rec, ch.Key, true)
			}
			f.State, msg = slipway.FlagEnabled, "flag "+ch.Key+" enabled"
		case slipway.FlagDisable:
			if f.State == slipway.FlagDisabled {
				return m.flagInfo(ctx, rec, ch.Key, true)
			}
			f.State, msg = slipway.FlagDisabled, "flag "+ch.Key+" disabled"
		case slipway.FlagSetDefault:
			if _, ok := f.Variants[ch.Variant]; !ok {
				return slipway.FlagInfo{}, slipway.Errorf(slipway.EINVALID, "flag %s has no variant %q; use one of %s",
					ch.Key, ch.Variant, strings.Join(slices.Sorted(maps.Keys(f.Variants)), ", "))
			}
			if f.DefaultVariant != nil && *f.DefaultVariant == ch.Variant {
				return m.flagInfo(ctx, rec, ch.Key, true)
			}
			from := "none"
			if f.DefaultVariant != nil {
				from = *f.DefaultVariant
			}
			v := ch.Variant
			f.DefaultVariant = &v
			msg = fmt.Sprintf("flag %s default variant %s -> %s", ch.Key, from, v)
		default:
			return slipway.FlagInfo{}, slipway.Errorf(slipway.EINVALID, "%q is not a flag change; use enable, disable or default", ch.Kind)
		}
		now := m.cfg.Now()
		next := rec.Set
		next.Flags = maps.Clone(rec.Set.Flags)
		next.Flags[ch.Key] = f
		reason := cmp.Or(ch.Reason, string(ch.Kind))
		nrec := slipway.FlagSetRecord{Set: next, Time: now, Actor: actor, Reason: reason}
		c := &slipway.Change{
			FlagSets: []slipway.FlagSetRecord{nrec},
			Events:   []slipway.Event{flagEvent(slipway.EventFlagChanged, actor, reason, now, msg, rec.Set.ID, ch.Key)},
		}
		err = m.cfg.Commit(ctx, c)
		if slipway.ErrorCode(err) == slipway.ECONFLICT {
			continue
		}
		if err != nil {
			return slipway.FlagInfo{}, fmt.Errorf("change flag %s: %w", ch.Key, err)
		}
		if err := m.reloadFlags(ctx); err != nil {
			return slipway.FlagInfo{}, err
		}
		return m.flagInfo(ctx, c.FlagSets[0], ch.Key, true)
	}
	return slipway.FlagInfo{}, slipway.Errorf(slipway.ECONFLICT, "flag %s: state kept changing; try again", ch.Key)
}

// RollbackFlagSet makes the content of an earlier version of a set its newest version.
func (m *Manager) RollbackFlagSet(ctx context.Context, r slipway.FlagRollback) (slipway.FlagVersion, error) {
	fst, err := m.flagStore()
	if err != nil {
		return slipway.FlagVersion{}, err
	}
	m.cfg.Lock.Lock()
	defer m.cfg.Lock.Unlock()
	actor := cmp.Or(r.Actor, "unknown")
	for range maxAttempts {
		hist, err := fst.FlagSetHistory(ctx, r.Set)
		if err != nil {
			return slipway.FlagVersion{}, err
		}
		var target *slipway.FlagSetRecord
		for i := range hist {
			if hist[i].Set.Revision == r.Version {
				target = &hist[i]
			}
		}
		if target == nil {
			return slipway.FlagVersion{}, slipway.Errorf(slipway.ENOTFOUND, "flag set %s has no version %d; see `slipway flags history`", r.Set, r.Version)
		}
		sets, err := fst.FlagSets(ctx)
		if err != nil {
			return slipway.FlagVersion{}, err
		}
		read := int64(0)
		others := make([]slipway.FlagSetRecord, 0, len(sets))
		for _, s := range sets {
			if s.Set.ID == r.Set {
				read = s.Set.Revision
				continue
			}
			others = append(others, s)
		}
		now := m.cfg.Now()
		next := target.Set
		next.Revision = read
		reason := cmp.Or(r.Reason, fmt.Sprintf("rollback to version %d", r.Version))
		if _, err := compileMerged(append(others, slipway.FlagSetRecord{Set: next})); err != nil {
			return slipway.FlagVersion{}, fmt.Errorf("roll back flag set %s to version %d: %w", r.Set, r.Version, err)
		}
		c := &slipway.Change{
			FlagSets: []slipway.FlagSetRecord{{Set: next, Time: now, Actor: actor, Reason: reason}},
			Events: []slipway.Event{flagEvent(slipway.EventFlagSetRolledBack, actor, reason, now,
				fmt.Sprintf("flag set %s rolled back to version %d", r.Set, r.Version), r.Set, "")},
		}
		err = m.cfg.Commit(ctx, c)
		if slipway.ErrorCode(err) == slipway.ECONFLICT {
			continue
		}
		if err != nil {
			return slipway.FlagVersion{}, fmt.Errorf("roll back flag set %s: %w", r.Set, err)
		}
		if err := m.reloadFlags(ctx); err != nil {
			return slipway.FlagVersion{}, err
		}
		w := c.FlagSets[0]
		return slipway.FlagVersion{Set: r.Set, Version: w.Set.Revision, Time: w.Time, Actor: w.Actor, Reason: w.Reason}, nil
	}
	return slipway.FlagVersion{}, slipway.Errorf(slipway.ECONFLICT, "flag set %s: state kept changing; try again", r.Set)
}

// Flags returns every flag of every stored set, by key, with its evaluation statistics.
func (m *Manager) Flags(ctx context.Context) ([]slipway.FlagInfo, error) {
	fst, err := m.flagStore()
	if err != nil {
		return nil, err
	}
	sets, err := fst.FlagSets(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := m.statsByKey(ctx)
	if err != nil {
		return nil, err
	}
	var out []slipway.FlagInfo
	for _, r := range sets {
		for _, key := range slices.Sorted(maps.Keys(r.Set.Flags)) {
			out = append(out, info(r, key, stats[key], false))
		}
	}
	slices.SortFunc(out, func(a, b slipway.FlagInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Flag returns one flag with its definition.
func (m *Manager) Flag(ctx context.Context, key string) (slipway.FlagInfo, error) {
	rec, _, err := m.findFlag(ctx, key)
	if err != nil {
		return slipway.FlagInfo{}, err
	}
	return m.flagInfo(ctx, rec, key, true)
}

func (m *Manager) flagInfo(ctx context.Context, rec slipway.FlagSetRecord, key string, withDef bool) (slipway.FlagInfo, error) {
	stats, err := m.statsByKey(ctx)
	if err != nil {
		return slipway.FlagInfo{}, err
	}
	return info(rec, key, stats[key], withDef), nil
}

func (m *Manager) statsByKey(ctx context.Context) (map[string]slipway.FlagStat, error) {
	fst, err := m.flagStore()
	if err != nil {
		return nil, err
	}
	list, err := fst.FlagStats(ctx)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]slipway.FlagStat, len(list))
	for _, s := range list {
		byKey[s.Key] = s
	}
	return byKey, nil
}

// info describes flag key of set rec.
func info(rec slipway.FlagSetRecord, key string, st slipway.FlagStat, withDef bool) slipway.FlagInfo {
	f := rec.Set.Flags[key]
	fi := slipway.FlagInfo{
		Key: key, Set: rec.Set.ID, Version: rec.Set.Revision, State: f.State, DefaultVariant: f.DefaultVariant,
		Variants:  slices.Sorted(maps.Keys(f.Variants)),
		Targeting: len(f.Targeting) > 0 && string(f.Targeting) != "{}" && string(f.Targeting) != "null",
		UpdatedAt: rec.Time,
	}
	if !st.LastEvaluated.IsZero() {
		t := st.LastEvaluated
		fi.LastEvaluated, fi.LastVariant = &t, st.LastVariant
	}
	if !st.SingleVariantSince.IsZero() {
		t := st.SingleVariantSince
		fi.SingleVariantSince = &t
	}
	if withDef {
		f.Key = key
		fi.Flag = &f
	}
	return fi
}

// FlagHistory returns the versions of the set declaring key, newest first, each with the
// flag's definition in that version.
func (m *Manager) FlagHistory(ctx context.Context, key string) ([]slipway.FlagVersion, error) {
	rec, _, err := m.findFlag(ctx, key)
	if err != nil {
		return nil, err
	}
	hist, err := m.flagsDB.FlagSetHistory(ctx, rec.Set.ID)
	if err != nil {
		return nil, err
	}
	out := make([]slipway.FlagVersion, len(hist))
	for i, h := range hist {
		out[i] = slipway.FlagVersion{Set: h.Set.ID, Version: h.Set.Revision, Time: h.Time, Actor: h.Actor, Reason: h.Reason}
		if f, ok := h.Set.Flags[key]; ok {
			f.Key = key
			out[i].Flag = &f
		}
	}
	return out, nil
}

// StaleFlags returns the flags not evaluated for q.UnevaluatedFor (a flag never evaluated
// counts from when its set first declared it), or serving one variant to every evaluation
// for q.SingleVariantFor.
func (m *Manager) StaleFlags(ctx context.Context, q slipway.StaleQuery) ([]slipway.FlagInfo, error) {
	if q.UnevaluatedFor < 0 || q.SingleVariantFor < 0 {
		return nil, slipway.Errorf(slipway.EINVALID, "stale durations must not be negative")
	}
	all, err := m.Flags(ctx)
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	declared := map[string]map[string]time.Time{} // set -> key -> first declared
	out := []slipway.FlagInfo{}
	for _, fi := range all {
		switch {
		case q.UnevaluatedFor > 0 && fi.LastEvaluated != nil && now.Sub(*fi.LastEvaluated) >= q.UnevaluatedFor:
			fi.Stale = fmt.Sprintf("not evaluated since %s", fi.LastEvaluated.UTC().Format(time.RFC3339))
		case q.UnevaluatedFor > 0 && fi.LastEvaluated == nil:
			if declared[fi.Set] == nil {
				if declared[fi.Set], err = m.firstDeclared(ctx, fi.Set); err != nil {
					return nil, err
				}
			}
			since := declared[fi.Set][fi.Key]
			if now.Sub(since) < q.UnevaluatedFor {
				continue
			}
			fi.Stale = fmt.Sprintf("never evaluated since it was declared at %s", since.UTC().Format(time.RFC3339))
		case q.SingleVariantFor > 0 && fi.SingleVariantSince != nil && now.Sub(*fi.SingleVariantSince) >= q.SingleVariantFor:
			fi.Stale = fmt.Sprintf("served only variant %q since %s", fi.LastVariant, fi.SingleVariantSince.UTC().Format(time.RFC3339))
		default:
			continue
		}
		out = append(out, fi)
	}
	return out, nil
}

// firstDeclared returns, for each flag of a set, the time of the earliest version from which
// on every version declares it.
func (m *Manager) firstDeclared(ctx context.Context, set string) (map[string]time.Time, error) {
	hist, err := m.flagsDB.FlagSetHistory(ctx, set)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	if len(hist) == 0 {
		return out, nil
	}
	for key := range hist[0].Set.Flags {
		out[key] = hist[0].Time
	}
	alive := maps.Clone(out)
	for _, h := range hist[1:] { // newest first
		for key := range alive {
			if _, ok := h.Set.Flags[key]; ok {
				out[key] = h.Time
			} else {
				delete(alive, key)
			}
		}
	}
	return out, nil
}

// EvaluateFlag evaluates key for evalCtx with the flags in force. The evaluation is not
// counted in the flag's statistics: asking about a flag does not keep it alive.
func (m *Manager) EvaluateFlag(ctx context.Context, key string, evalCtx map[string]any) (slipway.Evaluation, error) {
	s := m.cfg.Flags.Load()
	if s == nil {
		if err := m.reloadFlags(ctx); err != nil {
			return slipway.Evaluation{}, err
		}
		s = m.cfg.Flags.Load()
	}
	if s == nil {
		return slipway.Evaluation{Key: key, Reason: slipway.ReasonError, ErrorCode: slipway.FlagNotFound,
			ErrorDetails: "flag " + key + " not found"}, nil
	}
	return s.Evaluate(key, evalCtx, m.cfg.Now()), nil
}
