package flags_test

import (
	"maps"
	"strconv"
	"sync"
	"testing"

	"slipway.dev/slipway/flags"
)

func TestStats_CountsAndDrains(t *testing.T) {
	var s flags.Stats
	if got := s.Drain(); len(got) != 0 {
		t.Fatalf("empty Stats drained %v", got)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				s.Record("new-ui", []string{"on", "off"}[i%2])
				s.Record("color-"+strconv.Itoa(g%2), "")
			}
		}()
	}
	wg.Wait()
	got := s.Drain()
	want := map[string]map[string]int64{
		"new-ui":  {"on": 4000, "off": 4000},
		"color-0": {"": 4000},
		"color-1": {"": 4000},
	}
	if len(got) != len(want) {
		t.Fatalf("Drain() = %v, want %v", got, want)
	}
	for k, w := range want {
		if !maps.Equal(got[k], w) {
			t.Errorf("Drain()[%q] = %v, want %v", k, got[k], w)
		}
	}
	s.Record("new-ui", "on")
	got = s.Drain()
	if len(got) != 1 || !maps.Equal(got["new-ui"], map[string]int64{"on": 1}) {
		t.Errorf("second Drain() = %v, want only new-ui:on=1", got)
	}
}

// BenchmarkStats_Record measures the evaluation path's cost of counting, for a seen flag.
func BenchmarkStats_Record(b *testing.B) {
	var s flags.Stats
	for _, k := range []string{"a", "b", "new-ui", "d"} {
		s.Record(k, "on")
		s.Record(k, "off")
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Record("new-ui", "off")
	}
}
