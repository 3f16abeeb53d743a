package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// Alternative names what a test weighs against the null hypothesis that both samples come
// from one distribution. The first sample (x, the canary) is the one that is Greater or
// Less than the second (y, the baseline).
type Alternative string

const (
	// Greater: x tends to be larger than y.
	Greater Alternative = "greater"
	// Less: x tends to be smaller than y.
	Less Alternative = "less"
	// TwoSided: x tends to be larger or smaller than y.
	TwoSided Alternative = "two-sided"
)

func (a Alternative) valid() bool { return a == Greater || a == Less || a == TwoSided }

// ExactLimit is the largest sample, on either side, for which MannWhitney computes the exact
// null distribution of U (when no value is tied). It is R's bound for wilcox.test: past it
// the normal approximation is within a fraction of a percentage point of the exact p-value,
// and the exact distribution costs n1*n2*U operations.
const ExactLimit = 50

// ErrEmpty is returned for a sample with no values.
var ErrEmpty = errors.New("stats: empty sample")

// ErrNotFinite is returned for a sample holding NaN or an infinity: a rank test would order
// them, but a measurement that is not a number is no data.
var ErrNotFinite = errors.New("stats: sample holds NaN or an infinity")

// Test is the result of a Mann-Whitney U test of x against y.
type Test struct {
	// U counts the pairs (x[i], y[j]) with x[i] > y[j], plus half the tied pairs: from 0
	// (every x below every y) to N1*N2. Its mean under the null hypothesis is N1*N2/2.
	U float64
	// P is the p-value for the Alternative asked.
	P float64
	// Exact tells whether P comes from the exact distribution of U (both samples at most
	// ExactLimit, no ties) or from the normal approximation with tie and continuity
	// corrections.
	Exact bool
	// Z is the normal score of U with continuity correction (0 when Exact).
	Z      float64
	N1, N2 int
}

// MannWhitney tests x against y with the Mann-Whitney U test (the Wilcoxon rank-sum test):
// the exact distribution of U when both samples hold at most ExactLimit values and no value
// is tied, and otherwise the normal approximation with the tie correction of the variance
// and a continuity correction of 0.5. It returns ErrEmpty or ErrNotFinite for a sample it
// cannot rank.
func MannWhitney(x, y []float64, alt Alternative) (Test, error) {
	if !alt.valid() {
		return Test{}, fmt.Errorf("stats: unknown alternative %q", alt)
	}
	if err := check(x); err != nil {
		return Test{}, err
	}
	if err := check(y); err != nil {
		return Test{}, err
	}
	n1, n2 := len(x), len(y)
	u, ties := rankU(x, y)
	t := Test{U: u, N1: n1, N2: n2}
	mn := n1 * n2
	if ties == 0 && n1 <= ExactLimit && n2 <= ExactLimit {
		t.Exact = true
		k := int(u) // U is a whole number when nothing is tied
		switch alt {
		case Greater:
			t.P = exactCDF(n1, n2, mn-k)
		case Less:
			t.P = exactCDF(n1, n2, k)
		case TwoSided:
			t.P = math.Min(1, 2*exactCDF(n1, n2, min(k, mn-k)))
		}
		return t, nil
	}
	t.Z, t.P = normalP(u, n1, n2, ties, alt)
	return t, nil
}

// check reports whether a sample can be ranked.
func check(s []float64) error {
	if len(s) == 0 {
		return ErrEmpty
	}
	for _, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ErrNotFinite
		}
	}
	return nil
}

// rankU returns U for x against y, from the midranks of the pooled sample, and the tie term
// sum(t^3 - t) over the groups of t tied values (0 when nothing is tied).
func rankU(x, y []float64) (u, ties float64) {
	type obs struct {
		v     float64
		fromX bool
	}
	pool := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		pool = append(pool, obs{v, true})
	}
	for _, v := range y {
		pool = append(pool, obs{v, false})
	}
	slices.SortFunc(pool, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	var rx float64 // the sum of x's ranks
	for i := 0; i < len(pool); {
		j := i + 1
		for j < len(pool) && pool[j].v == pool[i].v {
			j++
		}
		mid := float64(i+j+1) / 2 // ranks i+1..j share their mean
		for k := i; k < j; k++ {
			if pool[k].fromX {
				rx += mid
			}
		}
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	n1 := float64(len(x))
	return rx - n1*(n1+1)/2, ties
}

// variance returns the variance of U under the null hypothesis for samples of n1 and n2
// values with the tie term ties (sum of t^3 - t over groups of ties).
func variance(n1, n2 int, ties float64) float64 {
	m, n := float64(n1), float64(n2)
	N := m + n
	return m * n / 12 * ((N + 1) - ties/(N*(N-1)))
}

// normalP returns the normal score and p-value of U by the normal approximation with
// continuity correction. All values tied (no variance) gives P = 1: the samples show no
// difference at all.
func normalP(u float64, n1, n2 int, ties float64, alt Alternative) (z, p float64) {
	mean := float64(n1) * float64(n2) / 2
	sd := math.Sqrt(variance(n1, n2, ties))
	if sd == 0 {
		return 0, 1
	}
	switch alt {
	case Greater:
		z = (u - mean - 0.5) / sd
		p = upperNormal(z)
	case Less:
		z = (u - mean + 0.5) / sd
		p = upperNormal(-z)
	case TwoSided:
		d := u - mean
		z = (d - math.Copysign(0.5, d)) / sd
		if d == 0 {
			z = 0
		}
		p = math.Min(1, 2*upperNormal(math.Abs(z)))
	}
	return z, p
}

// upperNormal returns P(Z > z) for a standard normal Z.
func upperNormal(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normalQuantile returns the z with P(Z <= z) = p for a standard normal Z.
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// exactCDF returns P(U <= k) for samples of n1 and n2 values with no ties, under the null
// hypothesis, from the lower half of the distribution (it is symmetric about n1*n2/2), so
// that an upper tail keeps its precision too.
func exactCDF(n1, n2, k int) float64 {
	mn := n1 * n2
	switch {
	case k < 0:
		return 0
	case k >= mn:
		return 1
	case 2*k > mn:
		return 1 - exactCDF(n1, n2, mn-k-1)
	}
	return lowerCDF(n1, n2)[k]
}

// lowerCDF returns P(U <= k) for k = 0..n1*n2/2. Computing it costs n1*n2*(n1*n2/2)
// operations (3 million at 50 and 50, a few milliseconds), and an analysis judges windows of
// the same sizes again and again, so the last cdfMemoSize distributions are kept.
func lowerCDF(n1, n2 int) []float64 {
	key := [2]int{min(n1, n2), max(n1, n2)}
	cdfMemo.Lock()
	c, ok := cdfMemo.m[key]
	cdfMemo.Unlock()
	if ok {
		return c
	}
	c = exactPMF(key[0], key[1], n1*n2/2)
	var s float64
	for k, p := range c {
		s += p
		c[k] = math.Min(s, 1)
	}
	cdfMemo.Lock()
	defer cdfMemo.Unlock()
	if cdfMemo.m == nil || len(cdfMemo.m) >= cdfMemoSize {
		cdfMemo.m = map[[2]int][]float64{} // start afresh rather than track use
	}
	cdfMemo.m[key] = c
	return c
}

// cdfMemoSize bounds the memo of exact distributions: at most 1,251 values (10 KiB) each.
const cdfMemoSize = 256

// cdfMemo keeps exact distributions by their sizes (smaller first); entries are never
// written after they are stored.
var cdfMemo struct {
	sync.Mutex
	m map[[2]int][]float64
}

// exactPMF returns P(U = u) for u = 0..upTo, for samples of n1 and n2 values with no ties.
// It recurs on the largest pooled value: it is one of x's with probability i/(i+j), and then
// it exceeds all j values of y (U = j + U of the rest), or one of y's, adding nothing. Only
// u <= upTo is needed, since the recurrence never looks up a larger u.
func exactPMF(n1, n2, upTo int) []float64 {
	// prev[i] and cur[i] hold the distribution for sizes (i, j-1) and (i, j).
	prev := make([][]float64, n1+1)
	cur := make([][]float64, n1+1)
	for i := range prev {
		prev[i] = make([]float64, upTo+1)
		cur[i] = make([]float64, upTo+1)
		prev[i][0] = 1 // sizes (i, 0): U = 0
	}
	for j := 1; j <= n2; j++ {
		clear(cur[0])
		cur[0][0] = 1 // sizes (0, j): U = 0
		for i := 1; i <= n1; i++ {
			px := float64(i) / float64(i+j)
			py := 1 - px
			c, fromX, fromY := cur[i], cur[i-1], prev[i]
			for u := range c {
				v := py * fromY[u]
				if u >= j {
					v += px * fromX[u-j]
				}
				c[u] = v
			}
		}
		prev, cur = cur, prev
	}
	return prev[n1]
}

// minP returns the smallest one-sided p-value two samples of n1 and n2 values can give
// (1 / C(n1+n2, n1), when one sample lies wholly above the other and nothing is tied).
func minP(n1, n2 int) float64 {
	a, _ := math.Lgamma(float64(n1 + n2 + 1))
	b, _ := math.Lgamma(float64(n1 + 1))
	c, _ := math.Lgamma(float64(n2 + 1))
	return math.Exp(-(a - b - c))
}
