package flags

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A targeting rule is compiled once into a tree of nodes; evaluating it walks the tree with
// the caller's context and never re-reads the JSON. The operators and their semantics follow
// github.com/diegoholiveira/jsonlogic/v3 v3.9.1 (the library flagd uses), plus flagd's
// fractional, sem_ver, starts_with and ends_with.

// node is one compiled JSON Logic expression.
type node interface {
	eval(e env) any
}

// env is what a node sees while it evaluates. It is passed by value so that evaluating a
// rule does not allocate.
type env struct {
	root map[string]any // the caller's context
	ts   int64          // $flagd.timestamp
	data any            // the data var reads: rootRef{} at the top, an element inside map & co
	// pre lists the data that var consults before data inside filter, some and none
	// (outermost first), as the library substitutes variables there before iterating.
	pre []any
}

// rootRef stands for the caller's context enriched with $flagd, without copying it.
type rootRef struct{}

// problem is one error found while compiling a rule, located by its path in the flag file.
type problem struct {
	path []any // string keys and int indexes
	msg  string
}

// pathString renders a path as flags.my-flag.targeting.if[0].
func pathString(p []any) string {
	var b strings.Builder
	for _, e := range p {
		switch x := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", x)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(x)
		}
	}
	return b.String()
}

// compiler turns decoded JSON Logic into nodes, collecting every problem.
type compiler struct {
	flagKey    string
	evaluators map[string]any
	refs       []string // $ref names being expanded, to catch cycles
	problems   []problem
}

func (c *compiler) problem(path []any, format string, args ...any) {
	c.problems = append(c.problems, problem{path: slices.Clone(path), msg: fmt.Sprintf(format, args...)})
}

// knownOperators lists every operator a rule may use.
var knownOperators = []string{
	"!", "!!", "!=", "!==", "%", "*", "+", "-", "/", "<", "<=", "==", "===", ">", ">=", "?:",
	"abs", "all", "and", "cat", "contains_all", "contains_any", "contains_none", "ends_with",
	"filter", "fractional", "if", "in", "map", "max", "merge", "min", "missing", "missing_some",
	"none", "or", "reduce", "sem_ver", "set", "some", "starts_with", "substr", "var",
}

// lazyOperators take their arguments unevaluated and must be given an array.
var lazyOperators = []string{"and", "or", "if", "?:", "map", "filter", "reduce", "all", "none", "some"}

type constNode struct{ v any }

func (n constNode) eval(env) any { return n.v }

type arrayNode struct{ elems []node }

func (n arrayNode) eval(e env) any {
	out := make([]any, len(n.elems))
	for i, el := range n.elems {
		out[i] = el.eval(e)
	}
	return out
}

// compile compiles one JSON value found at path.
func (c *compiler) compile(v any, path []any) node {
	switch x := v.(type) {
	case []any:
		elems := make([]node, len(x))
		allConst := true
		for i, el := range x {
			elems[i] = c.compile(el, append(path, i))
			if _, ok := elems[i].(constNode); !ok {
				allConst = false
			}
		}
		if allConst {
			vals := make([]any, len(elems))
			for i, el := range elems {
				vals[i] = el.(constNode).v
			}
			return constNode{vals}
		}
		return arrayNode{elems}
	case map[string]any:
		if len(x) != 1 {
			// The library returns an object that is not a one-key operator as it is.
			return constNode{x}
		}
		for op, args := range x {
			return c.operator(op, args, append(path, op))
		}
	}
	return constNode{v}
}

// args compiles an operator's arguments: each element of an array, or the one value.
func (c *compiler) args(raw any, path []any) ([]node, bool) {
	if list, ok := raw.([]any); ok {
		out := make([]node, len(list))
		for i, el := range list {
			out[i] = c.compile(el, append(path, i))
		}
		return out, true
	}
	return []node{c.compile(raw, path)}, false
}

func (c *compiler) operator(op string, raw any, path []any) node {
	if op == "$ref" {
		return c.ref(raw, path)
	}
	if slices.Contains(lazyOperators, op) {
		if _, ok := raw.([]any); !ok {
			c.problem(path, "%q takes an array of arguments, not %s", op, describe(raw))
			return constNode{nil}
		}
	}
	switch op {
	case "var":
		return c.compileVar(raw, path)
	case "if", "?:":
		args, _ := c.args(raw, path)
		return ifNode{args: args, flagKey: c.flagKey}
	case "and", "or":
		args, _ := c.args(raw, path)
		return logicNode{args: args, and: op == "and"}
	case "!", "!!":
		args, array := c.args(raw, path)
		return notNode{args: args, array: array, not: op == "!"}
	case "==", "===", "!=", "!==", "<", "<=", ">", ">=":
		args, array := c.args(raw, path)
		return cmpNode{op: op, args: args, spread: !array}
	case "in":
		args, array := c.args(raw, path)
		return inNode{args: args, spread: !array}
	case "starts_with", "ends_with":
		args, array := c.args(raw, path)
		return affixNode{args: args, array: array, prefix: op == "starts_with"}
	case "fractional":
		return c.compileFractional(raw, path)
	case "map", "filter", "reduce", "all", "none", "some":
		return c.compileIter(op, raw.([]any), path)
	}
	if fn, scalar, ok := eagerOperator(op); ok {
		args, array := c.args(raw, path)
		return eagerNode{op: op, args: args, spread: !array, fn: fn, scalar: scalar}
	}
	c.problem(path, "unknown operator %q; use one of %s", op, strings.Join(knownOperators, ", "))
	return constNode{nil}
}

// ref substitutes {"$ref": "name"} with the evaluator of that name.
func (c *compiler) ref(raw any, path []any) node {
	name, ok := raw.(string)
	if !ok {
		c.problem(path, "$ref must be the name of an evaluator, not %s", describe(raw))
		return constNode{nil}
	}
	rule, ok := c.evaluators[name]
	if !ok {
		names := make([]string, 0, len(c.evaluators))
		for n := range c.evaluators {
			names = append(names, n)
		}
		slices.Sort(names)
		if len(names) == 0 {
			c.problem(path, "$ref %q names no evaluator; $evaluators is empty", name)
		} else {
			c.problem(path, "$ref %q names no evaluator; use one of %s", name, strings.Join(names, ", "))
		}
		return constNode{nil}
	}
	if slices.Contains(c.refs, name) {
		c.problem(path, "$ref %q refers to itself through %s", name, strings.Join(c.refs, " -> "))
		return constNode{nil}
	}
	c.refs = append(c.refs, name)
	defer func() { c.refs = c.refs[:len(c.refs)-1] }()
	// Problems inside an evaluator are reported where the evaluator is written.
	return c.compile(rule, []any{"$evaluators", name})
}

// ifNode is if and ?:: [cond, then, cond, then, ..., else].
type ifNode struct {
	args    []node
	flagKey string
}

func (n ifNode) eval(e env) any {
	l := len(n.args)
	for i := 0; i < l-1; i += 2 {
		if truthy(n.args[i].eval(e)) {
			return reapply(n.args[i+1].eval(e), e, n.flagKey)
		}
	}
	if l%2 == 1 {
		return reapply(n.args[l-1].eval(e), e, n.flagKey)
	}
	return nil
}

// reapply evaluates a branch result that is itself a one-key object as a rule, as the
// library does for if.
func reapply(v any, e env, flagKey string) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	c := &compiler{flagKey: flagKey}
	nd := c.compile(m, nil)
	if len(c.problems) > 0 {
		fail(c.problems[0].msg)
	}
	return nd.eval(e)
}

// logicNode is and / or: short-circuit, returning the deciding value.
type logicNode struct {
	args []node
	and  bool
}

func (n logicNode) eval(e env) any {
	var last any
	for _, a := range n.args {
		last = a.eval(e)
		if truthy(last) != n.and {
			return last
		}
	}
	return last
}

// notNode is ! and !!.
type notNode struct {
	args  []node
	array bool
	not   bool
}

func (n notNode) eval(e env) any {
	var v any
	if n.array {
		if len(n.args) == 0 {
			v = []any{}
		} else {
			v = n.args[0].eval(e)
			for _, a := range n.args[1:] {
				a.eval(e)
			}
		}
	} else {
		v = n.args[0].eval(e)
		if l, ok := v.([]any); ok && len(l) > 0 {
			v = l[0]
		}
	}
	return truthy(v) != n.not
}

// spreadArgs evaluates an operator's arguments into a list: one per array element, or the
// list that the single argument evaluates to.
func spreadArgs(e env, args []node, spread bool) []any {
	if spread {
		v := args[0].eval(e)
		l, ok := v.([]any)
		if !ok {
			fail("operator arguments must be an array, not " + describe(v))
		}
		return l
	}
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.eval(e)
	}
	return out
}

// cmpNode is ==, ===, !=, !==, <, <=, >, >= (the last four also as between: a < b < c).
type cmpNode struct {
	op     string
	args   []node
	spread bool
}

func (n cmpNode) eval(e env) any {
	if !n.spread {
		switch len(n.args) {
		case 0, 1:
			for _, a := range n.args {
				a.eval(e)
			}
			return n.op == "!=" || n.op == "!=="
		case 2:
			return compare(n.op, n.args[0].eval(e), n.args[1].eval(e), nil, false)
		}
		a, b, c := n.args[0].eval(e), n.args[1].eval(e), n.args[2].eval(e)
		for _, x := range n.args[3:] {
			x.eval(e)
		}
		return compare(n.op, a, b, c, len(n.args) == 3)
	}
	vals := spreadArgs(e, n.args, true)
	if len(vals) < 2 {
		return n.op == "!=" || n.op == "!=="
	}
	if len(vals) == 3 {
		return compare(n.op, vals[0], vals[1], vals[2], true)
	}
	return compare(n.op, vals[0], vals[1], nil, false)
}

func compare(op string, a, b, c any, between bool) bool {
	lessEq := func(x, y any) bool { return less(x, y) || looseEqual(x, y) }
	switch op {
	case "==":
		return looseEqual(a, b)
	case "!=":
		return !looseEqual(a, b)
	case "===":
		return strictEqual(a, b)
	case "!==":
		return !strictEqual(a, b)
	case "<":
		if between {
			return less(a, b) && less(b, c)
		}
		return less(a, b)
	case "<=":
		if between {
			return lessEq(a, b) && lessEq(b, c)
		}
		return lessEq(a, b)
	case ">":
		if between {
			return less(c, b) && less(b, a)
		}
		return less(b, a)
	case ">=":
		if between {
			return lessEq(c, b) && lessEq(b, a)
		}
		return lessEq(b, a)
	}
	return false
}

// inNode is in: substring of a string, or membership in an array (an inner [lo, hi] array
// matches a number in that range).
type inNode struct {
	args   []node
	spread bool
}

func (n inNode) eval(e env) any {
	var a, b any
	if !n.spread && len(n.args) <= 2 {
		if len(n.args) == 0 {
			fail("in needs an argument")
		}
		a = n.args[0].eval(e)
		if len(n.args) == 2 {
			b = n.args[1].eval(e)
		}
	} else {
		vals := spreadArgs(e, n.args, n.spread)
		if len(vals) == 0 {
			fail("in needs an argument")
		}
		a = vals[0]
		if len(vals) > 1 {
			b = vals[1]
		}
	}
	switch hay := b.(type) {
	case string:
		s, ok := a.(string)
		if !ok {
			fail("in: cannot look for " + describe(a) + " in a string")
		}
		return strings.Contains(hay, s)
	case []any:
		an, aIsNum := a.(float64)
		for _, el := range hay {
			if r, ok := el.([]any); ok {
				if len(r) < 2 {
					fail("in: a range needs two bounds")
				}
				x := toNumber(a)
				if x >= toNumber(r[0]) && toNumber(r[1]) >= x {
					return true
				}
				continue
			}
			if aIsNum {
				if toNumber(el) == an {
					return true
				}
				continue
			}
			if sameScalar(el, a) {
				return true
			}
		}
	}
	return false
}

// sameScalar is Go's == on two JSON values, failing where Go would panic.
func sameScalar(x, y any) bool {
	switch xv := x.(type) {
	case map[string]any:
		if _, ok := y.(map[string]any); ok {
			fail("cannot compare objects")
		}
		return false
	case []any:
		if _, ok := y.([]any); ok {
			fail("cannot compare arrays")
		}
		return false
	case string:
		yv, ok := y.(string)
		return ok && xv == yv
	case bool:
		yv, ok := y.(bool)
		return ok && xv == yv
	case nil:
		return y == nil
	case float64:
		yv, ok := y.(float64)
		return ok && xv == yv
	}
	return false
}

// affixNode is flagd's starts_with and ends_with: exactly two strings, else null.
type affixNode struct {
	args   []node
	array  bool
	prefix bool
}

func (n affixNode) eval(e env) any {
	if !n.array || len(n.args) != 2 {
		for _, a := range n.args {
			a.eval(e)
		}
		return nil
	}
	s, ok1 := n.args[0].eval(e).(string)
	affix, ok2 := n.args[1].eval(e).(string)
	if !ok1 || !ok2 {
		return nil
	}
	if n.prefix {
		return strings.HasPrefix(s, affix)
	}
	return strings.HasSuffix(s, affix)
}

// varNode is var: a dotted path into the data, with an optional default.
type varNode struct {
	parts   []string // path parts, empty ones dropped
	current bool     // the path is "" or starts with ".": only the current data is read
	def     node     // nil when there is no default
	dyn     node     // non-nil when the path is computed at evaluation time
	flagKey string
}

func (c *compiler) compileVar(raw any, path []any) node {
	n := varNode{flagKey: c.flagKey}
	var p any
	switch x := raw.(type) {
	case string:
		p = x
	case float64:
		p = strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		if len(x) == 0 {
			return varNode{current: true, flagKey: c.flagKey}
		}
		s, ok := x[0].(string)
		if !ok {
			n.dyn = c.compile(raw, path)
			return n
		}
		p = s
		if len(x) == 2 {
			n.def = c.compile(x[1], append(path, 1))
		}
		for i, el := range x[min(2, len(x)):] {
			c.compile(el, append(path, i+2))
		}
	case nil:
		n.dyn = constNode{nil}
		return n
	default:
		n.dyn = c.compile(raw, path)
		return n
	}
	s := p.(string)
	n.current = s == "" || strings.HasPrefix(s, ".")
	for _, part := range strings.Split(s, ".") {
		if part != "" {
			n.parts = append(n.parts, part)
		}
	}
	return n
}

func (n varNode) eval(e env) any {
	if n.dyn != nil {
		return dynamicVar(e, n.dyn.eval(e), n.flagKey)
	}
	if !n.current {
		for _, d := range e.pre {
			if v := n.get(e, d); v != nil {
				return v
			}
		}
	}
	return n.get(e, e.data)
}

func (n varNode) get(e env, d any) any {
	if v := lookup(e, d, n.parts, n.flagKey); v != nil {
		return v
	}
	if n.def != nil {
		return n.def.eval(e)
	}
	return nil
}

// dynamicVar is var with a computed argument, read from the current data.
func dynamicVar(e env, v any, flagKey string) any {
	var def any
	switch x := v.(type) {
	case nil:
		d := e.data
		if _, ok := d.(rootRef); ok {
			return nil
		}
		switch d.(type) {
		case string, bool, float64:
			return d
		}
		return nil
	case []any:
		if len(x) == 0 {
			return whole(e, e.data, flagKey)
		}
		if len(x) == 2 {
			def = x[1]
		}
		s, ok := x[0].(string)
		if !ok {
			fail("var: the path must be a string, not " + describe(x[0]))
		}
		v = s
	case float64:
		v = strconv.FormatFloat(x, 'f', -1, 64)
	case string:
	default:
		fail("var: the path must be a string, not " + describe(v))
	}
	s := v.(string)
	if s == "" {
		return whole(e, e.data, flagKey)
	}
	var parts []string
	for _, p := range strings.Split(s, ".") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if r := lookup(e, e.data, parts, flagKey); r != nil {
		return r
	}
	return def
}

// whole returns data itself; for the caller's context, a copy that includes $flagd.
func whole(e env, d any, flagKey string) any {
	if _, ok := d.(rootRef); !ok {
		return d
	}
	m := make(map[string]any, len(e.root)+1)
	for k, v := range e.root {
		m[k] = v
	}
	m["$flagd"] = map[string]any{"flagKey": flagKey, "timestamp": float64(e.ts)}
	return m
}

// lookup walks parts into d; nil means not found.
func lookup(e env, d any, parts []string, flagKey string) any {
	if len(parts) == 0 {
		return whole(e, d, flagKey)
	}
	var cur any
	if _, ok := d.(rootRef); ok {
		if parts[0] == "$flagd" {
			if len(parts) == 1 {
				return map[string]any{"flagKey": flagKey, "timestamp": float64(e.ts)}
			}
			switch parts[1] {
			case "flagKey":
				cur = flagKey
			case "timestamp":
				cur = float64(e.ts)
			default:
				return nil
			}
			parts = parts[2:]
		} else {
			cur = e.root[parts[0]]
			parts = parts[1:]
		}
		if cur == nil {
			return nil
		}
	} else {
		cur = d
	}
	for _, p := range parts {
		switch x := cur.(type) {
		case map[string]any:
			cur = x[p]
		case []any:
			f, _ := strconv.ParseFloat(p, 64)
			if math.IsNaN(f) || f < 0 || f >= float64(len(x)) {
				return nil
			}
			cur = x[int(f)]
		default:
			return nil
		}
		if cur == nil {
			return nil
		}
	}
	return cur
}

// dataMap returns the current data as an object, for operators that read targetingKey.
func dataMap(e env) (map[string]any, bool) {
	if _, ok := e.data.(rootRef); ok {
		return e.root, true
	}
	m, ok := e.data.(map[string]any)
	return m, ok
}
