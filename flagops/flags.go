package flagops

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// Flag sets are stored one version per change (slipway.FlagStore); the flags in force are
// all sets merged into one compiled flags.Set, swapped into Config.Flags after every commit
// that changes a set. This file plans flag sets for Apply and rebuilds the merged set;
// ops.go holds the operations on single flags and stats.go the evaluation counts.

// flagStore returns the store's flag side, or an error when the store keeps no flags.
func (m *Manager) flagStore() (slipway.FlagStore, error) {
	if m.flagsDB == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "this server's store keeps no feature flags")
	}
	return m.flagsDB, nil
}

// CurrentFlags returns the flags in force: one compiled Set of every stored flag set,
// replaced after every change (Config.Flags). Serve evaluations from it (OFREP).
func (m *Manager) CurrentFlags() *flags.Current { return m.cfg.Flags }

// FlagStats returns the evaluation counters the flag server records into (Stats.Record);
// Run writes them to the store every Config.FlagStatsFlush.
func (m *Manager) FlagStats() *flags.Stats { return m.cfg.FlagStats }

// planFlagSets adds to c and p what applying the declared flag sets implies: new versions
// of created or changed sets, and deletions when pruning. It checks that the sets that would
// be stored merge into one valid whole (a flag key declared by one set only).
func (m *Manager) planFlagSets(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions, p *slipway.Plan, c *slipway.Change, actor string, now time.Time) error {
	if len(s.FlagSets) == 0 && !opts.Prune {
		return nil
	}
	fst, err := m.flagStore()
	if err != nil {
		if len(s.FlagSets) == 0 {
			return nil
		}
		return err
	}
	stored, err := fst.FlagSets(ctx)
	if err != nil {
		return err
	}
	cur := map[string]slipway.FlagSetRecord{}
	for _, r := range stored {
		cur[r.Set.ID] = r
	}
	result := maps.Clone(cur)
	declared := map[string]bool{}
	for _, fs := range slices.SortedStableFunc(slices.Values(s.FlagSets), func(a, b slipway.FlagSet) int { return strings.Compare(a.ID, b.ID) }) {
		declared[fs.ID] = true
		ch := slipway.PlanChange{Kind: slipway.KindFlagSet, Name: fs.ID, Action: slipway.ActionUnchanged}
		old, ok := cur[fs.ID]
		var prev *slipway.FlagSet
		if ok {
			prev = &old.Set
		}
		if fs, err = withRampTargeting(fs, prev); err != nil {
			return err
		}
		fs.Revision = 0
		switch {
		case !ok:
			ch.Action = slipway.ActionCreate
		default:
			prev := old.Set
			prev.Revision = 0
			if fields := slipway.ChangedFields(prev, fs); len(fields) > 0 {
				ch.Action, ch.Fields = slipway.ActionUpdate, fields
			}
			fs.Revision = old.Set.Revision
		}
		if ch.Action != slipway.ActionUnchanged {
			rec := slipway.FlagSetRecord{Set: fs, Time: now, Actor: actor, Reason: "apply"}
			c.FlagSets = append(c.FlagSets, rec)
			result[fs.ID] = rec
			c.Events = append(c.Events, flagEvent(slipway.EventFlagSetApplied, actor, "apply", now,
				fmt.Sprintf("flag set %s %sd", fs.ID, ch.Action), fs.ID, ""))
		}
		p.Changes = append(p.Changes, ch)
	}
	if opts.Prune {
		for _, id := range slices.Sorted(maps.Keys(cur)) {
			if declared[id] {
				continue
			}
			delete(result, id)
			c.DeleteFlagSets = append(c.DeleteFlagSets, id)
			c.Events = append(c.Events, flagEvent(slipway.EventFlagSetDeleted, actor, "apply", now,
				"flag set "+id+" deleted (pruned)", id, ""))
			p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindFlagSet, Name: id, Action: slipway.ActionDelete})
		}
	}
	if len(c.FlagSets)+len(c.DeleteFlagSets) == 0 {
		return nil
	}
	_, err = compileMerged(slices.Collect(maps.Values(result)))
	return err
}

// flagEvent records a change to a flag set (and, when key is set, to one of its flags).
func flagEvent(kind, actor, reason string, now time.Time, msg, set, key string) slipway.Event {
	d := map[string]string{"set": set}
	if key != "" {
		d["key"] = key
	}
	data, _ := json.Marshal(d)
	return slipway.Event{Time: now, Kind: kind, Actor: actor, Message: msg, Reason: reason, Data: data}
}

// merge joins sets into one flag set for evaluation. Each flag keeps its set's metadata
// under its own (with flagSetId), and each set's $evaluators are renamed "set/name" so that
// sets may use the same names. It returns EINVALID listing every key declared twice.
func merge(sets []slipway.FlagSetRecord) (slipway.FlagSet, error) {
	slices.SortFunc(sets, func(a, b slipway.FlagSetRecord) int { return strings.Compare(a.Set.ID, b.Set.ID) })
	out := slipway.FlagSet{ID: "slipway", Flags: map[string]slipway.Flag{}, Evaluators: map[string]json.RawMessage{}}
	owner := map[string]string{}
	var dups []string
	for _, r := range sets {
		fs := r.Set
		rename := map[string]string{}
		for name := range fs.Evaluators {
			rename[name] = fs.ID + "/" + name
		}
		for name, raw := range fs.Evaluators {
			out.Evaluators[rename[name]] = renameRefs(raw, rename)
		}
		for _, key := range slices.Sorted(maps.Keys(fs.Flags)) {
			f := fs.Flags[key]
			if o, ok := owner[key]; ok {
				dups = append(dups, fmt.Sprintf("flag %q is declared by flag sets %q and %q; declare each flag in one set", key, o, fs.ID))
				continue
			}
			owner[key] = fs.ID
			f.Key = key
			meta := map[string]any{"flagSetId": fs.ID}
			maps.Copy(meta, fs.Metadata)
			maps.Copy(meta, f.Metadata)
			f.Metadata = meta
			f.Targeting = renameRefs(f.Targeting, rename)
			out.Flags[key] = f
		}
	}
	if len(dups) > 0 {
		return slipway.FlagSet{}, &slipway.Error{Code: slipway.EINVALID, Message: "flag sets declare the same flag", Details: dups}
	}
	h := fnv.New64a()
	for _, r := range sets {
		fmt.Fprintf(h, "%s\x00%d\x00", r.Set.ID, r.Set.Revision)
	}
	out.Revision = int64(h.Sum64() >> 1)
	return out, nil
}

// compileMerged merges sets and compiles the result.
func compileMerged(sets []slipway.FlagSetRecord) (*flags.Set, error) {
	m, err := merge(sets)
	if err != nil {
		return nil, err
	}
	return flags.Compile(m)
}

// renameRefs rewrites every {"$ref": name} in a JSON Logic rule by rename.
func renameRefs(raw json.RawMessage, rename map[string]string) json.RawMessage {
	if len(raw) == 0 || len(rename) == 0 || !strings.Contains(string(raw), `"$ref"`) {
		return raw
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok && len(t) == 1 {
				if to, ok := rename[ref]; ok {
					return map[string]any{"$ref": to}
				}
			}
			for k, el := range t {
				t[k] = walk(el)
			}
		case []any:
			for i, el := range t {
				t[i] = walk(el)
			}
		}
		return x
	}
	b, err := json.Marshal(walk(v))
	if err != nil {
		return raw
	}
	return b
}

// reloadFlags compiles every stored flag set into one Set, puts it in force and tells
// Config.OnFlagsChanged. Reloads are serialised and each reads the store anew, so the last
// one always reflects the last commit.
func (m *Manager) reloadFlags(ctx context.Context) error {
	fst, err := m.flagStore()
	if err != nil {
		return nil
	}
	m.flagMu.Lock()
	defer m.flagMu.Unlock()
	sets, err := fst.FlagSets(ctx)
	if err != nil {
		return fmt.Errorf("load flag sets: %w", err)
	}
	s, err := compileMerged(sets)
	if err != nil {
		// Only sets that compiled together were committed; this is a store out of step.
		return fmt.Errorf("compile flag sets: %w", err)
	}
	m.cfg.Flags.Swap(s)
	m.setVariants(sets)
	if m.cfg.OnFlagsChanged != nil {
		m.cfg.OnFlagsChanged()
	}
	m.wakeDeclaredRamps(sets)
	return nil
}
