package engine

import (
	"context"
	"time"

	"slipway.dev/slipway"
)

// flushTimeout bounds the last write of the evaluation counts when the engine stops.
const flushTimeout = 5 * time.Second

// runFlagStats writes the evaluation counts to the store every Config.FlagStatsFlush, and
// once more when ctx ends.
func (e *Engine) runFlagStats(ctx context.Context) {
	t := time.NewTicker(e.cfg.FlagStatsFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			if err := e.FlushFlagStats(fctx); err != nil {
				e.log.Error("flag stats flush failed", "err", err)
			}
			return
		case <-t.C:
			if err := e.FlushFlagStats(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("flag stats flush failed", "err", err)
			}
		}
	}
}

// FlushFlagStats writes the evaluations counted since the last flush to the store, in one
// batch. A flag that served one variant in this period and the same one before keeps the
// time it began serving it; one that began in this period counts from the period's start.
func (e *Engine) FlushFlagStats(ctx context.Context) error {
	if e.flagsDB == nil {
		return nil
	}
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	counts := e.cfg.FlagStats.Drain()
	now := e.cfg.Now()
	start := e.lastFlush
	if start.IsZero() {
		start = now
	}
	e.lastFlush = now
	if len(counts) == 0 {
		return nil
	}
	prev, err := e.statsByKey(ctx)
	if err != nil {
		return err
	}
	out := make([]slipway.FlagStat, 0, len(counts))
	for _, key := range sortedKeys(counts) {
		variants := counts[key]
		st := prev[key]
		st.Key, st.LastEvaluated = key, now
		var best string
		var bestN int64 = -1
		for _, v := range sortedKeys(variants) {
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
	return e.flagsDB.SaveFlagStats(ctx, out)
}
