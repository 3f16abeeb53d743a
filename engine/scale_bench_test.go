package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

// BenchmarkConcurrentRollouts runs N canary rollouts at once on the sim platform with a real
// SQLite store, and reports the engine's reconcile latency (p50, p99 of every reconcile pass
// while the rollouts run), how long passes waited for their turn (engine.Config.Reconcilers)
// and how long from when a pass was due until it ended (turn: the wait and the pass), the
// time until all completed, and the process's peak memory.
//
//	go test -run '^$' -bench BenchmarkConcurrentRollouts -benchtime 1x ./engine/
//
// In "staggered" mode the new version reaches the apps in 100 applies 50 ms apart, as
// independent deploys would, and every rollout is still running when the last one starts
// (reported as in-flight-at-last-apply);
// in "lockstep" mode one apply starts them all at the same instant, so every rollout steps
// at the same moment (the worst case).
func BenchmarkConcurrentRollouts(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, mode := range []string{"staggered", "lockstep"} {
			b.Run(fmt.Sprintf("%d/%s", n, mode), func(b *testing.B) {
				for b.Loop() {
					runScale(b, n, mode == "lockstep")
				}
			})
		}
	}
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	on bool
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	if l.on {
		l.d = append(l.d, d)
	}
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func runScale(b *testing.B, n int, lockstep bool) {
	b.Helper()
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := sim.New(sim.Config{ReadyDelay: 500 * time.Millisecond, MaxOps: 16})
	lat, wait, turn := &latencies{}, &latencies{}, &latencies{}
	ts := &timedStore{Store: st, d: map[string][]time.Duration{}}
	eng := engine.New(engine.Config{Store: ts, Platform: p, OnReconcile: lat.add,
		OnReconcileTurn: func(w, t time.Duration) { wait.add(w); turn.add(t) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	// Each rollout lasts longer (two 8 s pauses) than the staggered applies take, so that
	// every rollout is in flight at once when the last apply returns (in-flight-at-last-apply).
	pause := slipway.Duration(8 * time.Second)
	set := func(version string, from, to int) slipway.Set {
		var s slipway.Set
		for i := from; i < to; i++ {
			a := app(fmt.Sprintf("app-%05d", i), version, 2, canary(
				slipway.Step{SetWeight: intp(20)},
				slipway.Step{Pause: &slipway.PauseStep{Duration: pause}},
				slipway.Step{SetWeight: intp(50)},
				slipway.Step{Pause: &slipway.PauseStep{Duration: pause}},
			))
			s.Apps = append(s.Apps, a)
		}
		return s
	}
	// waitAll waits until n rollouts numbered number completed, reading only new events.
	var seq int64
	waitAll := func(number int) time.Duration {
		start := time.Now()
		suffix := "-" + strconv.Itoa(number)
		done := 0
		for done < n {
			evs, err := st.Events(ctx, slipway.EventFilter{After: seq, Limit: 5000})
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range evs {
				seq = e.Seq
				if e.Kind == slipway.EventRolloutCompleted && strings.HasSuffix(e.Rollout, suffix) {
					done++
				}
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("%d of %d rollouts completed after 10 minutes", done, n)
			}
			if len(evs) < 5000 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		return time.Since(start)
	}
	if _, err := eng.Apply(ctx, set("v1", 0, n), slipway.ApplyOptions{Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	waitAll(1)

	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse+ms.StackInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	for _, l := range []*latencies{lat, wait, turn} {
		l.mu.Lock()
		l.on = true
		l.mu.Unlock()
	}
	start := time.Now()
	waves := 100
	if lockstep {
		waves = 1
	}
	for w := range waves {
		if w > 0 {
			time.Sleep(50 * time.Millisecond) // waves 50ms apart: applies arrive over time, not at once
		}
		if _, err := eng.Apply(ctx, set("v2", w*n/waves, (w+1)*n/waves), slipway.ApplyOptions{Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	applyTook := time.Since(start)
	act, err := st.ActiveRollouts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	inFlight := len(act)
	took := waitAll(2) + applyTook
	close(stop)
	<-sampled

	b.Log(ts.summary())
	b.ReportMetric(float64(lat.quantile(0.50).Microseconds())/1000, "p50-reconcile-ms")
	b.ReportMetric(float64(lat.quantile(0.99).Microseconds())/1000, "p99-reconcile-ms")
	b.ReportMetric(float64(wait.quantile(0.50).Microseconds())/1000, "p50-wait-ms")
	b.ReportMetric(float64(wait.quantile(0.99).Microseconds())/1000, "p99-wait-ms")
	b.ReportMetric(float64(turn.quantile(0.50).Microseconds())/1000, "p50-turn-ms")
	b.ReportMetric(float64(turn.quantile(0.99).Microseconds())/1000, "p99-turn-ms")
	b.ReportMetric(float64(len(lat.d)), "reconciles")
	b.ReportMetric(applyTook.Seconds(), "applies-s")
	b.ReportMetric(float64(inFlight), "in-flight-at-last-apply")
	b.ReportMetric(took.Seconds(), "all-completed-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakRSS())/(1<<10), "peak-rss-MiB")
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM), 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
