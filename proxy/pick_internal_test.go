package proxy

import (
	"fmt"
	"testing"
)

// TestPick_ManyBackendsSpreadsAndAvoidsTheBusy: with more backends than a pick scans, every
// backend still gets requests, the one given as except never does, and a backend with
// requests in flight gets fewer new ones than an idle one.
func TestPick_ManyBackendsSpreadsAndAvoidsTheBusy(t *testing.T) {
	const n = 100
	v := &revision{}
	for i := range n {
		v.backends = append(v.backends, &backend{id: fmt.Sprintf("b%d", i)})
	}
	busy, except := v.backends[0], v.backends[1]
	busy.inflight.Store(1000)
	got := map[*backend]int{}
	const picks = 200000
	for range picks {
		b := v.pick(except)
		if b == nil {
			t.Fatal("pick returned nil with backends left")
		}
		got[b]++
	}
	if got[except] != 0 {
		t.Errorf("the excepted backend was picked %d times", got[except])
	}
	for _, b := range v.backends[2:] {
		if got[b] == 0 {
			t.Errorf("backend %s never picked in %d picks", b.id, picks)
		}
	}
	// An idle backend wins every comparison with the busy one: the busy one is picked only
	// when it is compared with the excepted one.
	if fair := picks / (n - 1); got[busy] > fair/10 {
		t.Errorf("the busy backend was picked %d times, idle ones about %d", got[busy], fair)
	}
}

// BenchmarkPick measures one backend pick for a revision of n ready instances: it should
// not grow with n (docs/benchmarks.md).
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 16, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			v := &revision{}
			for i := range n {
				v.backends = append(v.backends, &backend{id: fmt.Sprintf("b%d", i)})
			}
			for b.Loop() {
				if v.pick(nil) == nil {
					b.Fatal("no pick")
				}
			}
		})
	}
}
