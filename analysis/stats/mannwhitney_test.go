package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// enumerate is the naive reference: it assigns every choice of len(x) of the pooled values
// to x (all C(N, n1) of them, equally likely under the null hypothesis, ties and all) and
// calls f with U for each, counted pair by pair.
func enumerate(x, y []float64, f func(u float64)) {
	pool := append(append([]float64{}, x...), y...)
	n1, N := len(x), len(pool)
	pick := make([]bool, N)
	var rec func(i, left int)
	rec = func(i, left int) {
		if left == 0 {
			var xs, ys []float64
			for k, v := range pool {
				if pick[k] {
					xs = append(xs, v)
				} else {
					ys = append(ys, v)
				}
			}
			f(pairU(xs, ys))
			return
		}
		if N-i < left {
			return
		}
		pick[i] = true
		rec(i+1, left-1)
		pick[i] = false
		rec(i+1, left)
	}
	rec(0, n1)
}

// pairU counts U pair by pair: 1 for x[i] > y[j], 1/2 for a tie.
func pairU(x, y []float64) float64 {
	var u float64
	for _, a := range x {
		for _, b := range y {
			switch {
			case a > b:
				u++
			case a == b:
				u += 0.5
			}
		}
	}
	return u
}

// permP returns the exact permutation p-value of U for alt by enumeration.
func permP(x, y []float64, alt Alternative) float64 {
	u0 := pairU(x, y)
	mean := float64(len(x)*len(y)) / 2
	var n, ge, le, far float64
	enumerate(x, y, func(u float64) {
		n++
		if u >= u0-1e-9 {
			ge++
		}
		if u <= u0+1e-9 {
			le++
		}
		if math.Abs(u-mean) >= math.Abs(u0-mean)-1e-9 {
			far++
		}
	})
	switch alt {
	case Greater:
		return ge / n
	case Less:
		return le / n
	case TwoSided:
	}
	return far / n
}

var alternatives = []Alternative{Greater, Less, TwoSided}

func TestMannWhitney_ExactMatchesEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n1 := 1; n1 <= 7; n1++ {
		for n2 := 1; n2 <= 7; n2++ {
			for range 3 {
				// Distinct values: a random permutation of 1..N, shuffled between x and y.
				perm := rng.Perm(n1 + n2)
				x, y := make([]float64, n1), make([]float64, n2)
				for i, r := range perm {
					if i < n1 {
						x[i] = float64(r) + 0.25
					} else {
						y[i-n1] = float64(r)
					}
				}
				for _, alt := range alternatives {
					got, err := MannWhitney(x, y, alt)
					if err != nil {
						t.Fatal(err)
					}
					if !got.Exact {
						t.Fatalf("n1=%d n2=%d without ties: not exact", n1, n2)
					}
					if want := pairU(x, y); got.U != want {
						t.Errorf("x=%v y=%v: U=%v, pair by pair %v", x, y, got.U, want)
					}
					// Two-sided: the enumeration counts |U - mean| at least as far; the
					// doubled smaller tail is the same for a symmetric distribution.
					if want := permP(x, y, alt); math.Abs(got.P-want) > 1e-12 {
						t.Errorf("x=%v y=%v %s: p=%.15g, enumeration %.15g", x, y, alt, got.P, want)
					}
				}
			}
		}
	}
}

func TestExactCDF_MatchesEnumerationAtEveryU(t *testing.T) {
	for n1 := 1; n1 <= 6; n1++ {
		for n2 := 1; n2 <= 6; n2++ {
			x, y := make([]float64, n1), make([]float64, n2)
			for i := range x {
				x[i] = float64(i)
			}
			for i := range y {
				y[i] = float64(n1 + i)
			}
			counts := make([]float64, n1*n2+1)
			var total float64
			enumerate(x, y, func(u float64) { counts[int(u)]++; total++ })
			var cum float64
			for k := range counts {
				cum += counts[k]
				if got := exactCDF(n1, n2, k); math.Abs(got-cum/total) > 1e-12 {
					t.Errorf("P(U <= %d) for %d,%d: %v, enumeration %v", k, n1, n2, got, cum/total)
				}
			}
			if got, want := minP(n1, n2), counts[0]/total; math.Abs(got-want) > 1e-12 {
				t.Errorf("minP(%d,%d)=%v, enumeration %v", n1, n2, got, want)
			}
		}
	}
}

// TestMannWhitney_PublishedCriticalValues checks the exact distribution against the
// standard table of critical values of U (the largest U whose tail probability is at most
// alpha: reject when U <= it), as printed in Zar, Biostatistical Analysis (Appendix Table
// B.11) and in the tables most statistics textbooks reproduce. A "-" there (no U is
// significant) is -1 here.
func TestMannWhitney_PublishedCriticalValues(t *testing.T) {
	for _, c := range []struct {
		n1, n2             int
		twoTailed05, one05 int
	}{
		{3, 3, -1, 0},
		{4, 4, 0, 1},
		{5, 5, 2, 4},
		{6, 6, 5, 7},
		{7, 7, 8, 11},
		{8, 8, 13, 15},
		{9, 9, 17, 21},
		{10, 10, 23, 27},
		{15, 15, 64, 72},
		{20, 20, 127, 138},
		{5, 10, 8, 11},
	} {
		crit := func(tail float64) int {
			k := -1
			for exactCDF(c.n1, c.n2, k+1) <= tail {
				k++
			}
			return k
		}
		if got := crit(0.025); got != c.twoTailed05 {
			t.Errorf("n1=%d n2=%d two-tailed 0.05: critical U %d, table %d", c.n1, c.n2, got, c.twoTailed05)
		}
		if got := crit(0.05); got != c.one05 {
			t.Errorf("n1=%d n2=%d one-tailed 0.05: critical U %d, table %d", c.n1, c.n2, got, c.one05)
		}
	}
}

// TestMannWhitney_PublishedPValues checks worked examples whose p-values are published.
func TestMannWhitney_PublishedPValues(t *testing.T) {
	// Hollander & Wolfe (1973), p. 69: permeability constants of the human chorioamnion at
	// term (x) and at 12 to 26 weeks (y); R's wilcox.test(x, y, alternative = "greater")
	// prints W = 35, p-value = 0.1272 in its documentation's example.
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	got, err := MannWhitney(x, y, Greater)
	if err != nil {
		t.Fatal(err)
	}
	if got.U != 35 || !got.Exact || math.Abs(got.P-0.1272) > 5e-5 {
		t.Errorf("Hollander & Wolfe: U=%v exact=%v p=%.5f; published W = 35, p = 0.1272", got.U, got.Exact, got.P)
	}

	// SciPy's mannwhitneyu documentation (the example of Mann & Whitney's sexes): U1 = 17,
	// exact two-sided p = 0.1111 (1/9), asymptotic with continuity correction 0.11134688653314041.
	males := []float64{19, 22, 16, 29, 24}
	females := []float64{20, 11, 17, 12}
	got, err = MannWhitney(males, females, TwoSided)
	if err != nil {
		t.Fatal(err)
	}
	if got.U != 17 || !got.Exact || math.Abs(got.P-1.0/9) > 1e-12 {
		t.Errorf("males/females: U=%v exact=%v p=%v; published 17, 0.1111", got.U, got.Exact, got.P)
	}
	_, p := normalP(got.U, 5, 4, 0, TwoSided)
	if math.Abs(p-0.11134688653314041) > 1e-12 {
		t.Errorf("males/females asymptotic p=%.17g; published 0.11134688653314041", p)
	}
}

// tied draws n values from a few levels, so that many are tied.
func tied(rng *rand.Rand, n, levels int, shift float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(rng.IntN(levels)) + shift
	}
	return s
}

func TestMannWhitney_TiesUseMidranksAndTheCorrectedVariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n1 := 1; n1 <= 6; n1++ {
		for n2 := 1; n2 <= 6; n2++ {
			x, y := tied(rng, n1, 3, 0), tied(rng, n2, 3, 0)
			u, ties := rankU(x, y)
			if want := pairU(x, y); u != want {
				t.Errorf("x=%v y=%v: midrank U=%v, pair by pair %v", x, y, u, want)
			}
			// The tie-corrected variance is the variance of U over all assignments.
			var n, s, s2 float64
			enumerate(x, y, func(u float64) { n++; s += u; s2 += u * u })
			mean := s / n
			if want, got := s2/n-mean*mean, variance(n1, n2, ties); math.Abs(got-want) > 1e-9 {
				t.Errorf("x=%v y=%v: variance %v, over all assignments %v", x, y, got, want)
			}
			if math.Abs(mean-float64(n1*n2)/2) > 1e-9 {
				t.Errorf("x=%v y=%v: mean over assignments %v", x, y, mean)
			}
		}
	}
}

func TestMannWhitney_NormalApproximationNearEnumeration(t *testing.T) {
	// With ties the test uses the normal approximation; at 8 and 9 values it must already be
	// near the exact permutation p-value.
	rng := rand.New(rand.NewPCG(5, 6))
	var worst float64
	for range 12 {
		x, y := tied(rng, 8, 5, 0.6), tied(rng, 9, 5, 0)
		for _, alt := range alternatives {
			got, err := MannWhitney(x, y, alt)
			if err != nil {
				t.Fatal(err)
			}
			if got.Exact {
				t.Fatalf("x=%v y=%v: exact despite ties", x, y)
			}
			want := permP(x, y, alt)
			worst = math.Max(worst, math.Abs(got.P-want))
			if math.Abs(got.P-want) > 0.04 {
				t.Errorf("x=%v y=%v %s: normal p=%.4f, enumeration %.4f", x, y, alt, got.P, want)
			}
		}
	}
	t.Logf("worst gap to the exact permutation p-value at n=8,9 with ties: %.4f", worst)
}

func TestMannWhitney_LargeSamplesNearPermutationTest(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	perms := 20000
	if testing.Short() {
		perms = 5000
	}
	tol := 4 * math.Sqrt(0.25/float64(perms)) // four standard errors of the Monte Carlo estimate
	for _, c := range []struct {
		name string
		x, y []float64
	}{
		{"continuous", normals(rng, 60, 0.3), normals(rng, 70, 0)},
		{"tied", tied(rng, 60, 6, 0.5), tied(rng, 70, 6, 0)},
		{"exact limit", normals(rng, 50, 0.4), normals(rng, 50, 0)},
	} {
		for _, alt := range alternatives {
			got, err := MannWhitney(c.x, c.y, alt)
			if err != nil {
				t.Fatal(err)
			}
			want := monteCarloP(rng, c.x, c.y, alt, perms)
			if math.Abs(got.P-want) > tol {
				t.Errorf("%s %s: p=%.4f (exact %v), permutation test %.4f", c.name, alt, got.P, got.Exact, want)
			}
		}
	}
}

func normals(rng *rand.Rand, n int, shift float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64() + shift
	}
	return s
}

// monteCarloP estimates the permutation p-value of U with random relabellings. The pooled
// values' midranks are counted the long way once (values below, plus half the others equal);
// each relabelling's U is then its x-ranks' sum less n1(n1+1)/2.
func monteCarloP(rng *rand.Rand, x, y []float64, alt Alternative, perms int) float64 {
	u0 := pairU(x, y)
	n1 := float64(len(x))
	mean := n1 * float64(len(y)) / 2
	pool := append(append([]float64{}, x...), y...)
	ranks := make([]float64, len(pool))
	for i, a := range pool {
		ranks[i] = 1
		for j, b := range pool {
			switch {
			case b < a:
				ranks[i]++
			case b == a && j != i:
				ranks[i] += 0.5
			}
		}
	}
	var hit int
	for range perms {
		rng.Shuffle(len(ranks), func(i, j int) { ranks[i], ranks[j] = ranks[j], ranks[i] })
		var rx float64
		for _, r := range ranks[:len(x)] {
			rx += r
		}
		u := rx - n1*(n1+1)/2
		switch alt {
		case Greater:
			if u >= u0-1e-9 {
				hit++
			}
		case Less:
			if u <= u0+1e-9 {
				hit++
			}
		case TwoSided:
			if math.Abs(u-mean) >= math.Abs(u0-mean)-1e-9 {
				hit++
			}
		}
	}
	return float64(hit) / float64(perms)
}

func TestMannWhitney_TinySamples(t *testing.T) {
	for _, c := range []struct {
		x, y []float64
		alt  Alternative
		u, p float64
	}{
		{[]float64{2}, []float64{1}, Greater, 1, 0.5},
		{[]float64{2}, []float64{1}, TwoSided, 1, 1},
		{[]float64{1}, []float64{1}, Greater, 0.5, 1}, // one tie: no variance, p = 1
		{[]float64{3, 4}, []float64{1, 2}, Greater, 4, 1.0 / 6},
		{[]float64{4, 5, 6}, []float64{1, 2, 3}, Greater, 9, 1.0 / 20},
		{[]float64{4, 5, 6}, []float64{1, 2, 3}, Less, 9, 1},
		{[]float64{1, 2, 3}, []float64{4, 5, 6}, TwoSided, 0, 2.0 / 20},
	} {
		got, err := MannWhitney(c.x, c.y, c.alt)
		if err != nil {
			t.Fatal(err)
		}
		if got.U != c.u || math.Abs(got.P-c.p) > 1e-12 {
			t.Errorf("%v vs %v %s: U=%v p=%v, want %v %v", c.x, c.y, c.alt, got.U, got.P, c.u, c.p)
		}
		if want := permP(c.x, c.y, c.alt); math.Abs(got.P-want) > 1e-12 && got.Exact {
			t.Errorf("%v vs %v %s: p=%v, enumeration %v", c.x, c.y, c.alt, got.P, want)
		}
	}
}

func TestMannWhitney_RefusesWhatItCannotRank(t *testing.T) {
	for _, c := range []struct {
		x, y []float64
		alt  Alternative
		want error
	}{
		{nil, []float64{1}, Greater, ErrEmpty},
		{[]float64{1}, []float64{}, Greater, ErrEmpty},
		{[]float64{1, math.NaN()}, []float64{1}, Greater, ErrNotFinite},
		{[]float64{1}, []float64{math.Inf(1)}, Less, ErrNotFinite},
	} {
		if _, err := MannWhitney(c.x, c.y, c.alt); !errors.Is(err, c.want) {
			t.Errorf("%v vs %v: err %v, want %v", c.x, c.y, err, c.want)
		}
	}
	if _, err := MannWhitney([]float64{1}, []float64{2}, "bigger"); err == nil {
		t.Error("an unknown alternative was accepted")
	}
}
