package flags

import (
	"math"
	"strings"
)

// eagerNode is an operator whose arguments are all evaluated first.
type eagerNode struct {
	op     string
	args   []node
	spread bool // the single argument is not an array literal
	fn     func(vals []any, e env) any
	scalar func(v any, e env) any // what a non-array argument value means; nil: an error
}

func (n eagerNode) eval(e env) any {
	if n.spread {
		v := n.args[0].eval(e)
		if l, ok := v.([]any); ok {
			return n.fn(l, e)
		}
		if n.scalar == nil {
			fail(n.op + ": arguments must be an array, not " + describe(v))
		}
		return n.scalar(v, e)
	}
	return n.fn(spreadArgs(e, n.args, false), e)
}

// eagerOperator returns the implementation of an operator with evaluated arguments.
func eagerOperator(op string) (fn func([]any, env) any, scalar func(any, env) any, ok bool) {
	switch op {
	case "cat":
		return opCat, func(v any, _ env) any {
			if s, ok := v.(string); ok {
				return s
			}
			fail("cat: arguments must be an array")
			return nil
		}, true
	case "substr":
		return opSubstr, nil, true
	case "merge":
		return opMerge, func(v any, _ env) any {
			switch v.(type) {
			case string, bool, float64:
				return []any{v}
			}
			if _, ok := number(v); ok {
				return []any{v}
			}
			fail("merge: cannot merge " + describe(v))
			return nil
		}, true
	case "+":
		return opSum, func(v any, _ env) any { return toNumber(v) }, true
	case "-":
		return opMinus, nil, true
	case "*":
		return func(vals []any, _ env) any {
			p := 1.0
			for _, v := range vals {
				p *= toNumber(v)
			}
			return p
		}, nil, true
	case "/":
		return opDiv, nil, true
	case "%":
		return func(vals []any, _ env) any {
			if len(vals) < 2 {
				fail("%: needs two arguments")
			}
			return math.Mod(toNumber(vals[0]), toNumber(vals[1]))
		}, nil, true
	case "min", "max":
		isMax := op == "max"
		return func(vals []any, _ env) any { return opMinMax(vals, isMax) }, nil, true
	case "abs":
		return func(vals []any, _ env) any {
				if len(vals) == 0 {
					fail("abs: needs an argument")
				}
				return math.Abs(toNumber(vals[0]))
			}, func(v any, _ env) any {
				return math.Abs(toNumber(v))
			}, true
	case "missing":
		return opMissing, func(v any, e env) any {
			if s, ok := v.(string); ok {
				return opMissing([]any{s}, e)
			}
			fail("missing: arguments must be an array")
			return nil
		}, true
	case "missing_some":
		return opMissingSome, nil, true
	case "contains_all", "contains_any", "contains_none":
		return func(vals []any, _ env) any { return opContains(op, vals) },
			func(any, env) any { return op == "contains_none" }, true
	case "set":
		return opSet, nil, true
	case "sem_ver":
		return func(vals []any, _ env) any { return semVer(vals) }, func(any, env) any { return nil }, true
	}
	return nil, nil, false
}

func opCat(vals []any, _ env) any {
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return toString(vals[0])
	}
	var b strings.Builder
	for _, v := range vals {
		b.WriteString(toString(v))
	}
	return strings.TrimSpace(b.String())
}

func opSubstr(vals []any, _ env) any {
	if len(vals) < 2 {
		fail("substr: needs a string and a start")
	}
	runes := []rune(toString(vals[0]))
	from := int(toNumber(vals[1]))
	length := len(runes)
	if from < 0 {
		from += length
	}
	if from < 0 || from > length {
		return string(runes)
	}
	if len(vals) == 3 {
		length = int(toNumber(vals[2]))
	}
	var to int
	if length < 0 {
		to = len(runes) + length
	} else {
		to = from + length
	}
	if to > len(runes) {
		to = len(runes)
	}
	if to < from {
		fail("substr: the end is before the start")
	}
	return string(runes[from:to])
}

func opMerge(vals []any, _ env) any {
	out := make([]any, 0, len(vals))
	for _, v := range vals {
		if l, ok := v.([]any); ok {
			out = append(out, l...)
		} else {
			out = append(out, v)
		}
	}
	return out
}

func opSum(vals []any, _ env) any {
	s := 0.0
	for _, v := range vals {
		s += toNumber(v)
	}
	return s
}

func opMinus(vals []any, _ env) any {
	switch len(vals) {
	case 0:
		return 0.0
	case 1:
		return -toNumber(vals[0])
	}
	s := toNumber(vals[0])
	for _, v := range vals[1:] {
		s -= toNumber(v)
	}
	return s
}

func opDiv(vals []any, _ env) any {
	if len(vals) == 0 {
		return 0.0
	}
	s := toNumber(vals[0])
	for _, v := range vals[1:] {
		s /= toNumber(v)
	}
	return s
}

func opMinMax(vals []any, isMax bool) any {
	if len(vals) == 0 {
		return nil
	}
	best := toNumber(vals[0])
	for _, v := range vals[1:] {
		x := toNumber(v)
		if (isMax && x > best) || (!isMax && x < best) {
			best = x
		}
	}
	return best
}

func opMissing(vals []any, e env) any {
	out := []any{}
	for _, name := range vals {
		if dynamicVar(e, name, "") == nil {
			out = append(out, name)
		}
	}
	return out
}

func opMissingSome(vals []any, e env) any {
	if len(vals) < 2 {
		fail("missing_some: needs a count and a list")
	}
	need := int(toNumber(vals[0]))
	names, ok := vals[1].([]any)
	if !ok {
		fail("missing_some: the second argument must be an array")
	}
	missing := []any{}
	found := 0
	for _, name := range names {
		if dynamicVar(e, name, "") == nil {
			missing = append(missing, name)
		} else {
			found++
		}
	}
	if need > found {
		return missing
	}
	return []any{}
}

func opContains(op string, vals []any) any {
	none := op == "contains_none"
	if len(vals) != 2 {
		return none
	}
	search, ok1 := vals[0].([]any)
	check, ok2 := vals[1].([]any)
	if !ok1 || !ok2 {
		return none
	}
	if op == "contains_all" && len(check) == 0 {
		return true
	}
	for _, c := range check {
		found := false
		for _, s := range search {
			if containsEqual(s, c) {
				found = true
				break
			}
		}
		switch {
		case op == "contains_all" && !found:
			return false
		case op == "contains_any" && found:
			return true
		case none && found:
			return false
		}
	}
	return op != "contains_any"
}

func containsEqual(a, b any) bool {
	if fa, ok := a.(float64); ok {
		if fb, ok := b.(float64); ok {
			return fa == fb
		}
	}
	return sameScalar(a, b)
}

func opSet(vals []any, _ env) any {
	if len(vals) < 3 {
		if len(vals) == 0 {
			return nil
		}
		return vals[0]
	}
	obj, ok := vals[0].(map[string]any)
	if !ok {
		return vals[0]
	}
	prop, ok := vals[1].(string)
	if !ok {
		fail("set: the property must be a string")
	}
	out := deepCopy(obj).(map[string]any)
	out[prop] = vals[2]
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, el := range x {
			out[k] = deepCopy(el)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = deepCopy(el)
		}
		return out
	}
	return v
}

// iterNode is map, filter, reduce, all, none and some: a subject array and a rule evaluated
// once per element.
type iterNode struct {
	op      string
	n       int  // number of arguments
	subject node // nil when the subject is neither an array nor a rule (then it is null)
	logic   node
	logicOK bool // the rule is an object, as reduce, all, none and some require
	initial node
}

func (c *compiler) compileIter(op string, raw []any, path []any) node {
	n := iterNode{op: op, n: len(raw)}
	if len(raw) > 0 {
		switch raw[0].(type) {
		case []any:
			n.subject = constNode{raw[0]} // the library does not evaluate a literal subject
		case map[string]any:
			n.subject = c.compile(raw[0], append(path, 0))
		}
	}
	if len(raw) > 1 {
		n.logic = c.compile(raw[1], append(path, 1))
		_, n.logicOK = raw[1].(map[string]any)
	}
	if len(raw) > 2 {
		n.initial = c.compile(raw[2], append(path, 2))
	}
	return n
}

func (n iterNode) subjectList(e env) ([]any, bool) {
	if n.subject == nil {
		return nil, false
	}
	v := n.subject.eval(e)
	if v == nil {
		return nil, false
	}
	if n.op == "all" || n.op == "none" || n.op == "some" {
		if !truthy(v) {
			return nil, false
		}
	}
	l, ok := v.([]any)
	if !ok {
		fail(n.op + ": the subject must be an array, not " + describe(v))
	}
	return l, true
}

func (n iterNode) eval(e env) any {
	switch n.op {
	case "map", "filter":
		if n.n < 2 {
			return []any{}
		}
		list, ok := n.subjectList(e)
		if !ok {
			return []any{}
		}
		inner := env{root: e.root, ts: e.ts, pre: e.pre}
		if n.op == "filter" {
			inner.pre = append(withRoom(e.pre), e.data)
		}
		out := make([]any, 0, len(list))
		for _, el := range list {
			inner.data = el
			v := n.logic.eval(inner)
			if n.op == "map" {
				out = append(out, v)
			} else if truthy(v) {
				out = append(out, el)
			}
		}
		return out
	case "reduce":
		return n.reduce(e)
	}
	// all, none, some
	if n.n < 1 {
		fail(n.op + ": needs a subject")
	}
	list, ok := n.subjectList(e)
	if !ok {
		return n.op == "none"
	}
	if n.n < 2 {
		fail(n.op + ": needs a rule")
	}
	inner := env{root: e.root, ts: e.ts, pre: e.pre}
	if n.op != "all" {
		inner.pre = append(withRoom(e.pre), e.data)
	}
	for _, el := range list {
		if !n.logicOK {
			fail(n.op + ": the rule must be an object")
		}
		inner.data = el
		t := truthy(n.logic.eval(inner))
		switch {
		case n.op == "all" && !t:
			return false
		case n.op == "none" && t:
			return false
		case n.op == "some" && t:
			return true
		}
	}
	return n.op != "some"
}

func (n iterNode) reduce(e env) any {
	if n.n < 3 {
		return 0.0
	}
	var acc any
	var kindOf string
	switch x := n.initial.eval(e).(type) {
	case bool:
		acc, kindOf = x, "bool"
	case string:
		acc, kindOf = x, "string"
	default:
		if _, ok := number(x); !ok {
			fail("reduce: the initial value must be a boolean, number or string, not " + describe(x))
		}
		acc, kindOf = toNumber(x), "number"
	}
	list, ok := n.subjectList(e)
	if !ok {
		return 0.0
	}
	for _, el := range list {
		if el == nil {
			continue
		}
		if !n.logicOK {
			fail("reduce: the rule must be an object")
		}
		data := map[string]any{"current": el, "accumulator": acc, "valueType": kindOf}
		v := n.logic.eval(env{root: e.root, ts: e.ts, pre: e.pre, data: data})
		switch kindOf {
		case "bool":
			acc = truthy(v)
		case "number":
			acc = toNumber(v)
		default:
			acc = toString(v)
		}
	}
	return acc
}

// withRoom returns a copy of l with room for one more element, so appending never aliases.
func withRoom(l []any) []any {
	out := make([]any, len(l), len(l)+1)
	copy(out, l)
	return out
}
