package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// diffs returns the n1*n2 differences x[i]-y[j], sorted: the naive reference.
func diffs(x, y []float64) []float64 {
	var d []float64
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	slices.Sort(d)
	return d
}

func TestKthDiff_MatchesSortedDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct{ x, y []float64 }{
		{[]float64{1}, []float64{1}},
		{[]float64{-3, 0.5, 2, 0}, []float64{math.Copysign(0, -1), 7}},
		{tied(rng, 9, 3, 0), tied(rng, 7, 3, 0)},
		{normals(rng, 13, 2), normals(rng, 11, -1)},
		{[]float64{1e300, -1e300}, []float64{5e307, -5e307}},
	} {
		xs, ys := slices.Sorted(slices.Values(c.x)), slices.Sorted(slices.Values(c.y))
		want := diffs(c.x, c.y)
		for k := 1; k <= len(want); k++ {
			if got := kthDiff(xs, ys, k); got != want[k-1] {
				t.Errorf("x=%v y=%v: difference %d is %v, sorted %v", c.x, c.y, k, got, want[k-1])
			}
		}
	}
}

func TestHodgesLehmann_EstimateIsTheMedianDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, c := range []struct{ n1, n2 int }{{1, 1}, {1, 2}, {2, 2}, {3, 5}, {20, 30}, {200, 301}} {
		x, y := normals(rng, c.n1, 0.5), tied(rng, c.n2, 4, 0)
		got, err := HodgesLehmann(x, y, 0.95, TwoSided)
		if err != nil {
			t.Fatal(err)
		}
		d := diffs(x, y)
		want := d[len(d)/2]
		if len(d)%2 == 0 {
			want = (d[len(d)/2-1] + d[len(d)/2]) / 2
		}
		if got.Estimate != want {
			t.Errorf("n1=%d n2=%d: estimate %v, median difference %v", c.n1, c.n2, got.Estimate, want)
		}
	}
}

// TestHodgesLehmann_ExactIntervalMatchesNaive computes the interval the long way: the
// quantile of U from enumerating every assignment, then the sorted differences.
func TestHodgesLehmann_ExactIntervalMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, c := range []struct {
		n1, n2 int
		conf   float64
	}{{4, 5, 0.9}, {6, 6, 0.95}, {7, 5, 0.8}, {3, 3, 0.95}, {8, 7, 0.99}} {
		x, y := normals(rng, c.n1, 1), normals(rng, c.n2, 0)
		var us []float64
		enumerate(x, y, func(u float64) { us = append(us, u) })
		slices.Sort(us)
		// smallest k with P(U <= k) > tail
		quantile := func(tail float64) int {
			for k := 0; ; k++ {
				var le float64
				for _, u := range us {
					if u <= float64(k) {
						le++
					}
				}
				if le/float64(len(us)) > tail {
					return k
				}
			}
		}
		d := diffs(x, y)
		for _, alt := range alternatives {
			got, err := HodgesLehmann(x, y, c.conf, alt)
			if err != nil {
				t.Fatal(err)
			}
			tail := 1 - c.conf
			if alt == TwoSided {
				tail /= 2
			}
			k := quantile(tail)
			lo, hi := math.Inf(-1), math.Inf(1)
			if k >= 1 {
				if alt != Less {
					lo = d[k-1]
				}
				if alt != Greater {
					hi = d[len(d)-k]
				}
			}
			if !got.Exact || got.Lower != lo || got.Upper != hi {
				t.Errorf("n1=%d n2=%d %s at %v: [%v, %v] exact=%v, naive [%v, %v]", c.n1, c.n2, alt, c.conf, got.Lower, got.Upper, got.Exact, lo, hi)
			}
		}
	}
}

// TestHodgesLehmann_IntervalInvertsTheTest: a shift lies outside the exact interval exactly
// when the test of x minus that shift against y rejects.
func TestHodgesLehmann_IntervalInvertsTheTest(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	x, y := normals(rng, 12, 0.8), normals(rng, 10, 0)
	for _, alt := range alternatives {
		s, err := HodgesLehmann(x, y, 0.9, alt)
		if err != nil {
			t.Fatal(err)
		}
		for d := -3.0; d <= 4; d += 0.01 {
			ta, err := MannWhitney(add(x, -d), y, alt)
			if err != nil {
				t.Fatal(err)
			}
			if !ta.Exact {
				continue // d hit a tie; the exact interval says nothing about that test
			}
			outside := d < s.Lower || d > s.Upper
			if rejects := ta.P <= 0.1; rejects != outside {
				t.Errorf("%s: shift %.2f outside [%v, %v] is %v, but the test gives p=%v", alt, d, s.Lower, s.Upper, outside, ta.P)
			}
		}
	}
}

// TestHodgesLehmann_NormalIntervalCovers: past the exact limit or with ties, the
// approximate interval covers the true shift at about its confidence.
func TestHodgesLehmann_NormalIntervalCovers(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	runs := 2000
	if testing.Short() {
		runs = 500
	}
	for _, c := range []struct {
		name string
		draw func(n int, shift float64) []float64
	}{
		{"continuous", func(n int, shift float64) []float64 { return normals(rng, n, shift) }},
		{"rounded", func(n int, shift float64) []float64 {
			s := normals(rng, n, shift)
			for i := range s {
				s[i] = math.Round(s[i]*4) / 4 // a shift of 0.5 keeps the grid: ties stay ties
			}
			return s
		}},
	} {
		covered := 0
		for range runs {
			x, y := c.draw(60, 0.5), c.draw(70, 0)
			s, err := HodgesLehmann(x, y, 0.9, TwoSided)
			if err != nil {
				t.Fatal(err)
			}
			if s.Exact && c.name == "rounded" {
				t.Fatal("rounded samples gave an exact interval")
			}
			if s.Lower <= 0.5 && 0.5 <= s.Upper {
				covered++
			}
		}
		rate := float64(covered) / float64(runs)
		t.Logf("%s: the 90%% interval covered the true shift in %.3f of %d runs", c.name, rate, runs)
		se := math.Sqrt(0.9 * 0.1 / float64(runs))
		if rate < 0.9-4*se {
			t.Errorf("%s: coverage %.3f, below 90%%", c.name, rate)
		}
	}
}

func TestHodgesLehmann_TooSmallForTheConfidenceIsUnbounded(t *testing.T) {
	s, err := HodgesLehmann([]float64{5, 6}, []float64{1, 2}, 0.95, TwoSided)
	if err != nil {
		t.Fatal(err)
	}
	if s.Estimate != 4 || !math.IsInf(s.Lower, -1) || !math.IsInf(s.Upper, 1) {
		t.Errorf("2 and 2 values at 95%%: %+v, want estimate 4 and an unbounded interval", s)
	}
	for _, conf := range []float64{0, 1, -0.5, math.NaN()} {
		if _, err := HodgesLehmann([]float64{1}, []float64{2}, conf, Greater); err == nil {
			t.Errorf("confidence %v accepted", conf)
		}
	}
}
