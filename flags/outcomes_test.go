package flags_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/flags"
)

func TestOutcomes_Window(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC).Unix())
	o := flags.NewOutcomes(func() time.Time { return time.Unix(now.Load(), 0) })

	t.Run("counts per variant and outcome", func(t *testing.T) {
		o.Record("checkout", "on", "error", 3)
		o.Record("checkout", "on", "success", 7)
		o.Record("checkout", "off", "success", 0) // 0 counts one
		w := o.Window("checkout", "on", 30*time.Second)
		if w.Total != 10 || w.Counts["error"] != 3 || w.Rate("error") != 0.3 {
			t.Fatalf("on: %+v rate %v; want total 10, 3 errors, rate 0.3", w, w.Rate("error"))
		}
		if w := o.Window("checkout", "off", time.Second); w.Total != 1 || w.Rate("error") != 0 {
			t.Fatalf("off: %+v; want 1 success", w)
		}
	})
	t.Run("the window forgets what is older", func(t *testing.T) {
		now.Add(31)
		o.Record("checkout", "on", "error", 1)
		if w := o.Window("checkout", "on", 30*time.Second); w.Total != 1 || w.Rate("error") != 1 {
			t.Fatalf("after 31s: %+v; want only the new error", w)
		}
		now.Add(flags.OutcomeSeconds) // a full lap: the slot of the old second is reused
		if w := o.Window("checkout", "on", flags.OutcomeSeconds*time.Second); w.Total != 0 {
			t.Fatalf("after a lap: %+v; want nothing", w)
		}
	})
	t.Run("unknown series are empty", func(t *testing.T) {
		if w := o.Window("nope", "on", time.Minute); w.Total != 0 || w.Rate("error") != 0 {
			t.Fatalf("%+v", w)
		}
	})
	t.Run("bad names and counts are refused", func(t *testing.T) {
		for _, c := range []struct {
			outcome string
			n       int64
		}{{"", 1}, {"Error", 1}, {"a b", 1}, {"error", -1}, {"error", flags.MaxOutcomeCount + 1}} {
			if o.Record("checkout", "on", c.outcome, c.n) {
				t.Errorf("Record(%q, %d) = true; want false", c.outcome, c.n)
			}
		}
	})
	t.Run("outcome names per variant are bounded", func(t *testing.T) {
		kept := 0
		for i := range 40 {
			if o.Record("many", "on", "o"+string(rune('a'+i%26))+string(rune('a'+i/26)), 1) {
				kept++
			}
		}
		if kept != 16 {
			t.Fatalf("kept %d names; want 16", kept)
		}
	})
}

func TestOutcomes_ConcurrentRecord(t *testing.T) {
	o := flags.NewOutcomes(nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 1000 {
				o.Record("f", "on", []string{"error", "success"}[g%2], 1)
			}
		})
	}
	wg.Wait()
	w := o.Window("f", "on", flags.OutcomeSeconds*time.Second)
	if w.Total != 8000 || w.Counts["error"] != 4000 {
		t.Fatalf("%+v; want 8000 in all, 4000 errors", w)
	}
}

func BenchmarkOutcomes_Record(b *testing.B) {
	o := flags.NewOutcomes(nil)
	o.Record("f", "on", "error", 1)
	for b.Loop() {
		o.Record("f", "on", "error", 1)
	}
}
