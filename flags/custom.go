package flags

import (
	"fmt"
	"math"
	"strings"

	"github.com/twmb/murmur3"
	"golang.org/x/mod/semver"
)

// Bucket returns the index of the variant that fractional assigns to bucketBy, given
// integer weights: h = murmur3_x86_32(bucketBy, seed 0), bucket = h*total >> 32 in
// [0, total), and the variant whose cumulative weight range holds the bucket. It returns -1
// when the weights add up to 0. For a fixed total, raising the first weight only moves keys
// into the first variant, which is what makes a ramp sticky.
func Bucket(bucketBy string, weights []int64) int {
	return bucketHash(murmur3.StringSum32(bucketBy), weights)
}

func bucketHash(h uint32, weights []int64) int {
	var total uint64
	for _, w := range weights {
		total += uint64(w)
	}
	if total == 0 {
		return -1
	}
	bucket := (uint64(h) * total) >> 32
	var acc uint64
	for i, w := range weights {
		acc += uint64(w)
		if bucket < acc {
			return i
		}
	}
	return len(weights) - 1
}

// distNode is a fractional distribution written as an array literal: [variant, weight?].
type distNode struct {
	variant node
	weight  node // nil when absent
	extra   []node
}

// fractionalNode is flagd's fractional operator (flagd ≥ 0.15 bucketing).
type fractionalNode struct {
	args    []node // each a distNode or any other expression
	array   bool
	flagKey string
}

func (c *compiler) compileFractional(raw any, path []any) node {
	list, ok := raw.([]any)
	if !ok {
		c.compile(raw, path)
		return constNode{nil} // flagd: "fractional evaluation data is not an array" → null
	}
	n := fractionalNode{array: true, flagKey: c.flagKey}
	for i, a := range list {
		p := append(path, i)
		d, ok := a.([]any)
		if !ok {
			n.args = append(n.args, c.compile(a, p))
			continue
		}
		if len(d) == 0 {
			c.problem(p, "a fractional distribution needs a variant: [variant, weight]")
			n.args = append(n.args, constNode{d})
			continue
		}
		dn := distNode{variant: c.compile(d[0], append(p, 0))}
		switch v := d[0].(type) {
		case string, bool, float64, nil, map[string]any:
		default:
			c.problem(append(p, 0), "a fractional variant must be a string, boolean, number or null, not %s", describe(v))
		}
		if len(d) > 1 {
			dn.weight = c.compile(d[1], append(p, 1))
			switch w := d[1].(type) {
			case float64:
				if w != math.Trunc(w) || w > math.MaxInt32 {
					c.problem(append(p, 1), "a fractional weight must be an integer from 0 to 2147483647, not %v", w)
				}
			case string, bool, []any:
				c.problem(append(p, 1), "a fractional weight must be a number, not %s", describe(w))
			}
		}
		for j, x := range d[min(2, len(d)):] {
			dn.extra = append(dn.extra, c.compile(x, append(p, j+2)))
		}
		n.args = append(n.args, dn)
	}
	return n
}

// maxStackDists is how many distributions fractional handles without allocating.
const maxStackDists = 8

func (n fractionalNode) eval(e env) any {
	if len(n.args) < 2 {
		for _, a := range n.args {
			evalDist(a, e)
		}
		return nil
	}
	var (
		hash     uint32
		haveHash bool
		dists    = n.args
	)
	if _, isDist := n.args[0].(distNode); !isDist {
		v0 := n.args[0].eval(e)
		switch x := v0.(type) {
		case string:
			hash, haveHash = murmur3.StringSum32(x), true
			dists = n.args[1:]
		case nil:
			dists = n.args[1:]
		case []any:
			// A distribution computed by a rule; fall through with it as the first one.
		default:
			return nil // a number or object is not a distribution: flagd logs and returns null
		}
	}
	if !haveHash {
		m, ok := dataMap(e)
		if !ok {
			return nil
		}
		tk, ok := m["targetingKey"].(string)
		if !ok || tk == "" {
			return nil
		}
		hash = concatHash(n.flagKey, tk)
	}
	var (
		wbuf     [maxStackDists]int64
		vbuf     [maxStackDists]any
		weights  = wbuf[:0]
		variants = vbuf[:0]
		total    int64
	)
	for _, d := range dists {
		variant, weight, ok := distValue(d, e)
		if !ok {
			return nil
		}
		weights = append(weights, weight)
		variants = append(variants, variant)
		total += weight
	}
	if total > math.MaxInt32 || total == 0 {
		return nil
	}
	i := bucketHash(hash, weights)
	if i < 0 {
		return nil
	}
	return variants[i]
}

// evalDist evaluates a distribution for its errors only.
func evalDist(a node, e env) {
	if d, ok := a.(distNode); ok {
		d.variant.eval(e)
		if d.weight != nil {
			d.weight.eval(e)
		}
		return
	}
	a.eval(e)
}

// distValue evaluates one distribution to its variant and clamped weight; ok is false when
// the distribution is invalid, which makes fractional return null.
func distValue(a node, e env) (variant any, weight int64, ok bool) {
	var w any
	hasWeight := false
	if d, isDist := a.(distNode); isDist {
		variant = d.variant.eval(e)
		if d.weight != nil {
			w, hasWeight = d.weight.eval(e), true
		}
		for _, x := range d.extra {
			x.eval(e)
		}
	} else {
		l, isList := a.eval(e).([]any)
		if !isList || len(l) == 0 {
			return nil, 0, false
		}
		variant = l[0]
		if len(l) > 1 {
			w, hasWeight = l[1], true
		}
	}
	switch variant.(type) {
	case string, bool, float64, nil:
	default:
		return nil, 0, false
	}
	weight = 1
	if hasWeight && w != nil {
		f, isNum := number(w)
		if !isNum || f != math.Trunc(f) || f > math.MaxInt32 {
			return nil, 0, false
		}
		if f < 0 {
			f = 0
		}
		weight = int64(f)
	}
	return variant, weight, true
}

// concatHash hashes flagKey+targetingKey without allocating for usual lengths.
func concatHash(flagKey, tk string) uint32 {
	var buf [256]byte
	b := append(buf[:0], flagKey...)
	b = append(b, tk...)
	return murmur3.Sum32(b)
}

// semVer is flagd's sem_ver: [version, operator, version], compared with
// golang.org/x/mod/semver after stringifying and v-prefixing; null on any bad input.
func semVer(vals []any) any {
	if len(vals) != 3 {
		return nil
	}
	op, ok := vals[1].(string)
	if !ok {
		return nil
	}
	a, b := semverString(vals[0]), semverString(vals[2])
	if !semver.IsValid(a) || !semver.IsValid(b) {
		return nil
	}
	c := semver.Compare(a, b)
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "^":
		return semver.Major(a) == semver.Major(b)
	case "~":
		return semver.MajorMinor(a) == semver.MajorMinor(b)
	}
	return nil
}

func semverString(v any) string {
	var s string
	if f, ok := v.(float64); ok {
		s = fmt.Sprint(f)
	} else {
		s = fmt.Sprintf("%v", v)
	}
	if strings.HasPrefix(s, "V") {
		s = "v" + s[1:]
	}
	if !strings.HasPrefix(s, "v") {
		s = "v" + s
	}
	return s
}

func (d distNode) eval(e env) any {
	out := []any{d.variant.eval(e)}
	if d.weight != nil {
		out = append(out, d.weight.eval(e))
	}
	for _, x := range d.extra {
		out = append(out, x.eval(e))
	}
	return out
}
