package flagops

import (
	"context"
	"maps"
	"slices"
	"time"

	"slipway.dev/slipway"
)

// flushTimeout bounds the last write of the evaluation counts when the engine stops.
const flushTimeout = 5 * time.Second

// runFlagStats writes the evaluation counts to the store every Config.FlagStatsFlush, and
// once more when ctx ends.
func (m *Manager) runFlagStats(ctx context.Context) {
	t := time.NewTicker(m.cfg.FlagStatsFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			if err := m.FlushFlagStats(fctx); err != nil {
				m.log.Error("flag stats flush failed", "err", err)
			}
			return
		case <-t.C:
			if err := m.FlushFlagStats(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("flag stats flush failed", "err", err)
			}
		}
	}
}

// FlushFlagStats writes the evaluations counted since the last flush to the store, in one
// batch. A flag that served one variant in this period and the same one before keeps the
// time it began serving it; one that began in this period counts from the period's start.
func (m *Manager) FlushFlagStats(ctx context.Context) error {
	if m.flagsDB == nil {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	counts := m.cfg.FlagStats.Drain()
	now := m.cfg.Now()
	start := m.lastFlush
	if start.IsZero() {
		start = now
	}
	m.lastFlush = now
	if len(counts) == 0 {
		return nil
	}
	prev, err := m.statsByKey(ctx)
	if err != nil {
		return err
	}
	out := make([]slipway.FlagStat, 0, len(counts))
	for _, key := range slices.Sorted(maps.Keys(counts)) {
		variants := counts[key]
		st := prev[key]
		st.Key, st.LastEvaluated = key, now
		var best string
		var bestN int64 = -1
		for _, v := range slices.Sorted(maps.Keys(variants)) {
			st.Evaluations += variants[v]
			if variants[v] > bestN {
				best, bestN = v, variants[v]
			}
		}
		switch {
		case len(variants) > 1:
			st.SingleVariantSince = time.Time{}
		case prev[key].LastVariant != best || prev[key].SingleVariantSince.IsZero():
			st.SingleVariantSince = start
		}
		st.LastVariant = best
		out = append(out, st)
	}
	return m.flagsDB.SaveFlagStats(ctx, out)
}
