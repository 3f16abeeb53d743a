package engine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

// TestRampWorker_ResumesAfterRestart stops the engine while a ramp holds its first step and
// starts another on the same SQLite file: the ramp carries on from where it was (no new
// ramp) and completes; removing the ramp from the flag then removes its record.
func TestRampWorker_ResumesAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	st, err := sqlite.Open(path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	run := func() (*engine.Engine, func()) {
		eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{}), Poll: 5 * time.Millisecond, Resync: 30 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		return eng, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	off := "off"
	flag := slipway.Flag{State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Ramp: &slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{
			{Weight: 50, Pause: slipway.Duration(400 * time.Millisecond)}, {Weight: 100},
		}}}
	set := func(f slipway.Flag) slipway.Set {
		return slipway.Set{FlagSets: []slipway.FlagSet{{ID: "web", Flags: map[string]slipway.Flag{"checkout": f}}}}
	}

	eng, stop := run()
	if _, err := eng.Apply(context.Background(), set(flag), slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var first slipway.Ramp
	slipwaytest.Eventually(t, 10*time.Second, "the first step", func() bool {
		first, err = st.Ramp(context.Background(), "checkout")
		return err == nil && first.Weight == 5000
	})
	stop()

	eng, stop = run()
	defer stop()
	var done slipway.Ramp
	slipwaytest.Eventually(t, 10*time.Second, "the ramp to complete after the restart", func() bool {
		done, err = eng.FlagManager().Ramp(context.Background(), "checkout")
		return err == nil && done.Phase == slipway.PhaseCompleted
	})
	if !done.StartedAt.Equal(first.StartedAt) || done.Weight != slipway.RampTotal {
		t.Fatalf("ramp after restart = %+v; want the first one (started %v) at 100%%", done, first.StartedAt)
	}
	evs, err := st.Events(context.Background(), slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, e := range evs {
		if e.Kind == slipway.EventRampStarted {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d flag.ramp.started events; want 1", started)
	}

	// A new ramp declared, then removed before it ends: its record goes.
	flag.Ramp.Steps[0].Pause = slipway.Duration(time.Hour)
	if _, err := eng.Apply(context.Background(), set(flag), slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 10*time.Second, "the changed ramp to start again", func() bool {
		r, err := eng.FlagManager().Ramp(context.Background(), "checkout")
		return err == nil && r.Phase == slipway.PhaseProgressing && r.Weight == 5000
	})
	flag.Ramp = nil
	if _, err := eng.Apply(context.Background(), set(flag), slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 10*time.Second, "the ramp record to go", func() bool {
		_, err := eng.FlagManager().Ramp(context.Background(), "checkout")
		return slipway.ErrorCode(err) == slipway.ENOTFOUND
	})
}

// gatedRamps is a store's ramp side that holds the first Ramp read: that read takes the
// stored ramp at once, closes held and returns only when open is closed. The first read
// that begins after open is closed closes later.
type gatedRamps struct {
	slipway.RampStore
	first             atomic.Bool
	held, open, later chan struct{}
	laterOnce         sync.Once
}

func (g *gatedRamps) Ramp(ctx context.Context, key string) (slipway.Ramp, error) {
	r, err := g.RampStore.Ramp(ctx, key)
	if g.first.CompareAndSwap(false, true) {
		close(g.held)
		select {
		case <-g.open:
		case <-ctx.Done():
		}
		return r, err
	}
	select {
	case <-g.open:
		g.laterOnce.Do(func() { close(g.later) })
	default:
	}
	return r, err
}

// TestRampWorker_AbortHoldsAgainstAStalePass replays the interleaving in which a worker's
// pass reads the ramp (Progressing at 50%), an abort then saves and serves 0% and returns,
// and the pass carries on with what it read: the flag must keep serving 0%. The pass is
// held inside its read while the abort runs, so the order is fixed, not left to the
// scheduler. A fresh engine on the same file makes that read the worker's first.
func TestRampWorker_AbortHoldsAgainstAStalePass(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	st, err := sqlite.Open(path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	run := func(eng *engine.Engine) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		var once sync.Once
		return func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
	}
	// Resync is long so that nothing but the steps below moves the worker.
	cfg := engine.Config{Store: st, Platform: sim.New(sim.Config{}), Poll: 5 * time.Millisecond, Resync: time.Hour}
	off := "off"
	flag := slipway.Flag{State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Ramp: &slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{
			{Weight: 50, Pause: slipway.Duration(time.Hour)}, {Weight: 100},
		}}}
	set := slipway.Set{FlagSets: []slipway.FlagSet{{ID: "web", Flags: map[string]slipway.Flag{"checkout": flag}}}}
	// served returns the ramped variant's weight in every kept version of the set, oldest first.
	served := func() (revs []int64, weights []int) {
		t.Helper()
		hist, err := st.FlagSetHistory(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		for i := len(hist) - 1; i >= 0; i-- {
			w, ok := flags.RampWeight(hist[i].Set.Flags["checkout"])
			if !ok {
				t.Fatalf("version %d of set web serves no ramp: %s", hist[i].Set.Revision, hist[i].Set.Flags["checkout"].Targeting)
			}
			revs, weights = append(revs, hist[i].Set.Revision), append(weights, w)
		}
		return revs, weights
	}

	// The ramp reaches its first step, 50%, and holds it for an hour.
	first := engine.New(cfg)
	stop := run(first)
	if _, err := first.Apply(ctx, set, slipway.ApplyOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, rerr := st.Ramp(ctx, "checkout")
		_, ws := served()
		if rerr == nil && r.Weight == 5000 && ws[len(ws)-1] == 5000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ramp never served 50%%: ramp %+v (%v), served %v", r, rerr, ws)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()

	// The worker of a new engine reads the ramp at 50% and is held there.
	g := &gatedRamps{RampStore: st, held: make(chan struct{}), open: make(chan struct{}), later: make(chan struct{})}
	cfg.RampStore = g
	eng := engine.New(cfg)
	stop = run(eng)
	defer stop()
	select {
	case <-g.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the ramp's worker never read its ramp")
	}
	// The abort is saved, served and acknowledged meanwhile.
	aborted, err := eng.FlagManager().OperateRamp(ctx, slipway.RampOperation{Flag: "checkout", Op: slipway.RampAbort, Actor: "test", Reason: "bad reviews"})
	if err != nil {
		t.Fatal(err)
	}
	if aborted.Phase != slipway.PhaseAborted || aborted.Weight != 0 {
		t.Fatalf("abort returned %s at %d; want RolledBack at 0", aborted.Phase, aborted.Weight)
	}
	revs, ws := served()
	ackRev := revs[len(revs)-1]
	if ws[len(ws)-1] != 0 {
		t.Fatalf("after the abort returned the flag serves %d (versions %v: %v); want 0", ws[len(ws)-1], revs, ws)
	}
	// The held pass goes on with the ramp it read; the next read of a ramp comes after it
	// has served (or, serving, reads the ramp anew).
	close(g.open)
	select {
	case <-g.later:
	case <-time.After(10 * time.Second):
		t.Fatal("the ramp's worker never read its ramp again after the held pass")
	}
	check := func(when string) {
		t.Helper()
		revs, ws := served()
		for i, rev := range revs {
			if rev > ackRev && ws[i] != 0 {
				t.Fatalf("%s: version %d of set web serves %d after the abort (version %d) was acknowledged; want 0 (versions %v: %v)",
					when, rev, ws[i], ackRev, revs, ws)
			}
		}
	}
	check("after the held pass")
	stop()
	check("after the engine stopped")
	fi, err := eng.FlagManager().Flag(ctx, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Flag == nil {
		t.Fatal("the flag came back without its definition")
	}
	if w, _ := flags.RampWeight(*fi.Flag); w != 0 {
		t.Fatalf("the flag serves %d after the abort; want 0", w)
	}
}
