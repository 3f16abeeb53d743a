package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
)

// Set is a compiled, immutable flag set: every flag's targeting is compiled once by Compile,
// and evaluating a flag only walks the compiled rule. A Set is safe for concurrent use; to
// change flags, compile a new Set and swap it in a Current.
type Set struct {
	id       string
	revision int64
	metadata map[string]any
	flags    map[string]*compiledFlag
	keys     []string // sorted
}

// variant is a variant's name and decoded value (bool, string, float64 or map[string]any).
type variant struct {
	name  string
	value any
}

type compiledFlag struct {
	key      string
	disabled bool
	variants map[string]*variant
	def      *variant // nil: the caller's code default
	rule     node     // nil: no targeting
	metadata map[string]any
}

// Compile validates fs and compiles every flag's targeting. It returns an *slipway.Error
// with code EINVALID listing every problem (field path and message) when fs is invalid.
func Compile(fs slipway.FlagSet) (*Set, error) {
	s, problems := compileSet(fs)
	if len(problems) > 0 {
		details := make([]string, len(problems))
		for i, p := range problems {
			details[i] = pathString(p.path) + ": " + p.msg
		}
		slices.Sort(details)
		return nil, &slipway.Error{
			Code:    slipway.EINVALID,
			Message: fmt.Sprintf("flag set %q is invalid", fs.ID),
			Details: details,
		}
	}
	return s, nil
}

// Problem is one rule a flag set breaks, at a field path in flagd's format.
type Problem struct {
	// Path holds the keys (string) and indexes (int) from the set's root, like
	// ["flags", "new-ui", "targeting", "if", 0], so that a reader of the file can find the
	// value it points at.
	Path    []any
	Message string
}

// Field renders the path as flags.new-ui.targeting.if[0] ("" for the set as a whole).
func (p Problem) Field() string { return pathString(p.Path) }

// Check returns every rule fs breaks, the problems Compile reports as one error, each with
// its path; none when fs compiles.
func Check(fs slipway.FlagSet) []Problem {
	_, problems := compileSet(fs)
	if len(problems) == 0 {
		return nil
	}
	out := make([]Problem, len(problems))
	for i, p := range problems {
		out[i] = Problem{Path: p.path, Message: p.msg}
	}
	return out
}

// compileSet compiles fs, returning every problem found.
func compileSet(fs slipway.FlagSet) (*Set, []problem) {
	var problems []problem
	add := func(path []any, format string, args ...any) {
		problems = append(problems, problem{path: path, msg: fmt.Sprintf(format, args...)})
	}
	checkMetadata(fs.Metadata, []any{"metadata"}, add)

	evaluators := make(map[string]any, len(fs.Evaluators))
	for name, raw := range fs.Evaluators {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			add([]any{"$evaluators", name}, "not valid JSON: %v", err)
			continue
		}
		evaluators[name] = v
	}
	// Check every evaluator on its own, so that one no flag uses is checked too.
	for _, name := range slices.Sorted(maps.Keys(evaluators)) {
		c := &compiler{evaluators: evaluators, refs: []string{name}}
		c.compile(evaluators[name], []any{"$evaluators", name})
		problems = append(problems, c.problems...)
	}

	s := &Set{
		id:       fs.ID,
		revision: fs.Revision,
		metadata: fs.Metadata,
		flags:    make(map[string]*compiledFlag, len(fs.Flags)),
	}
	for _, key := range slices.Sorted(maps.Keys(fs.Flags)) {
		f, ps := compileFlag(key, fs.Flags[key], fs.Metadata, evaluators)
		problems = append(problems, ps...)
		s.flags[key] = f
		s.keys = append(s.keys, key)
	}
	return s, dedupe(problems)
}

func dedupe(ps []problem) []problem {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		k := pathString(p.path) + "\x00" + p.msg
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

func checkMetadata(m map[string]any, path []any, add func([]any, string, ...any)) {
	for k, v := range m {
		switch v.(type) {
		case string, bool, float64:
			continue
		}
		if _, ok := number(v); ok {
			continue
		}
		add(append(slices.Clone(path), k), "metadata values must be strings, numbers or booleans, not %s", describe(v))
	}
}

func compileFlag(key string, f slipway.Flag, setMeta map[string]any, evaluators map[string]any) (*compiledFlag, []problem) {
	var problems []problem
	base := []any{"flags", key}
	add := func(rel []any, format string, args ...any) {
		problems = append(problems, problem{path: append(slices.Clone(base), rel...), msg: fmt.Sprintf(format, args...)})
	}
	cf := &compiledFlag{key: key, variants: make(map[string]*variant, len(f.Variants))}
	if err := slipway.ValidKey("flag key", key); err != nil {
		short := key
		if len(short) > 32 {
			short = short[:32] + "…"
		}
		return cf, []problem{{path: []any{"flags", short}, msg: slipway.ErrorMessage(err)}}
	}
	for name := range f.Variants {
		if err := slipway.ValidKey("variant name", name); err != nil {
			add([]any{"variants"}, "%s", slipway.ErrorMessage(err))
		}
	}

	switch f.State {
	case slipway.FlagEnabled:
	case slipway.FlagDisabled:
		cf.disabled = true
	case "":
		add([]any{"state"}, "state is required; use ENABLED or DISABLED")
	default:
		add([]any{"state"}, "%q is not a state; use ENABLED or DISABLED", f.State)
	}

	names := slices.Sorted(maps.Keys(f.Variants))
	if len(names) == 0 {
		add([]any{"variants"}, "a flag needs at least one variant")
	}
	firstType, firstName := "", ""
	for _, name := range names {
		var v any
		if err := json.Unmarshal(f.Variants[name], &v); err != nil {
			add([]any{"variants", name}, "not valid JSON: %v", err)
			continue
		}
		t := describe(v)
		switch t {
		case "boolean", "string", "number", "object":
		default:
			add([]any{"variants", name}, "a variant value must be a boolean, string, number or object, not %s", t)
			continue
		}
		if firstType == "" {
			firstType, firstName = t, name
		} else if t != firstType {
			add([]any{"variants", name}, "is a %s, but variant %q is a %s; all variants must have one type", t, firstName, firstType)
		}
		cf.variants[name] = &variant{name: name, value: v}
	}

	if f.DefaultVariant != nil {
		if v, ok := cf.variants[*f.DefaultVariant]; ok {
			cf.def = v
		} else if _, exists := f.Variants[*f.DefaultVariant]; !exists {
			add([]any{"defaultVariant"}, "%q names no variant; use one of %s", *f.DefaultVariant, strings.Join(names, ", "))
		}
	}

	if len(f.Targeting) > 0 {
		var rule any
		if err := json.Unmarshal(f.Targeting, &rule); err != nil {
			add([]any{"targeting"}, "not valid JSON: %v", err)
		} else {
			switch r := rule.(type) {
			case nil:
			case map[string]any:
				if len(r) > 0 {
					c := &compiler{flagKey: key, evaluators: evaluators}
					cf.rule = c.compile(r, append(slices.Clone(base), "targeting"))
					problems = append(problems, c.problems...)
				}
			default:
				add([]any{"targeting"}, "targeting must be a JSON Logic object, not %s", describe(rule))
			}
		}
	}

	checkMetadata(f.Metadata, append(slices.Clone(base), "metadata"), func(p []any, format string, args ...any) {
		problems = append(problems, problem{path: p, msg: fmt.Sprintf(format, args...)})
	})
	if len(setMeta)+len(f.Metadata) > 0 {
		cf.metadata = make(map[string]any, len(setMeta)+len(f.Metadata))
		maps.Copy(cf.metadata, setMeta)
		maps.Copy(cf.metadata, f.Metadata)
	}
	return cf, problems
}

// ID returns the set's ID (FlagSet.ID).
func (s *Set) ID() string { return s.id }

// Revision returns the revision of the flag set the Set was compiled from.
func (s *Set) Revision() int64 { return s.revision }

// Metadata returns the set's metadata. Callers must not modify it.
func (s *Set) Metadata() map[string]any { return s.metadata }

// Keys returns the flag keys in sorted order. Callers must not modify the slice.
func (s *Set) Keys() []string { return s.keys }

// Evaluate evaluates flag key for the caller's context at time now (which $flagd.timestamp
// reports, in Unix seconds). It never fails: an unknown key gives reason ERROR with
// FLAG_NOT_FOUND, a failing rule PARSE_ERROR, a rule naming no variant GENERAL. ctx is only
// read, never copied or modified; it may be nil.
func (s *Set) Evaluate(key string, ctx map[string]any, now time.Time) slipway.Evaluation {
	f := s.flags[key]
	if f == nil {
		return slipway.Evaluation{
			Key:          key,
			Reason:       slipway.ReasonError,
			ErrorCode:    slipway.FlagNotFound,
			ErrorDetails: "flag " + key + " not found",
			Metadata:     s.metadata,
		}
	}
	return f.evaluate(ctx, now)
}

// EvaluateAll evaluates every flag for one context, in key order (the OFREP bulk body).
func (s *Set) EvaluateAll(ctx map[string]any, now time.Time) []slipway.Evaluation {
	out := make([]slipway.Evaluation, len(s.keys))
	for i, k := range s.keys {
		out[i] = s.flags[k].evaluate(ctx, now)
	}
	return out
}

// Bool evaluates flag key and returns its value when a boolean variant was served, def
// otherwise (disabled, code default, error, or another type). It skips building an
// Evaluation, for in-process callers.
func (s *Set) Bool(key string, def bool, ctx map[string]any, now time.Time) bool {
	if v, ok := s.value(key, ctx, now).(bool); ok {
		return v
	}
	return def
}

// String is Bool for string flags.
func (s *Set) String(key, def string, ctx map[string]any, now time.Time) string {
	if v, ok := s.value(key, ctx, now).(string); ok {
		return v
	}
	return def
}

// Float is Bool for number flags.
func (s *Set) Float(key string, def float64, ctx map[string]any, now time.Time) float64 {
	if v, ok := s.value(key, ctx, now).(float64); ok {
		return v
	}
	return def
}

func (s *Set) value(key string, ctx map[string]any, now time.Time) any {
	f := s.flags[key]
	if f == nil {
		return nil
	}
	v, _, _, _ := f.resolve(ctx, now)
	if v == nil {
		return nil
	}
	return v.value
}

// resolve picks the variant to serve; v is nil when none is (see reason and code).
func (f *compiledFlag) resolve(ctx map[string]any, now time.Time) (v *variant, reason slipway.Reason, code slipway.FlagErrorCode, details string) {
	if f.disabled {
		return nil, slipway.ReasonDisabled, "", ""
	}
	if f.rule == nil {
		if f.def == nil {
			return nil, slipway.ReasonDefault, "", ""
		}
		return f.def, slipway.ReasonStatic, "", ""
	}
	res, err := run(f.rule, env{root: ctx, ts: now.Unix(), data: rootRef{}})
	if err != nil {
		if errors.As(err, new(evalError)) {
			return nil, slipway.ReasonError, slipway.FlagParseError, "targeting: " + err.Error()
		}
		return nil, slipway.ReasonError, slipway.FlagGeneral, "internal: " + err.Error()
	}
	if res == nil {
		return f.def, slipway.ReasonDefault, "", ""
	}
	name, ok := res.(string)
	if !ok {
		name = variantName(res)
	}
	if v := f.variants[name]; v != nil {
		return v, slipway.ReasonTargetingMatch, "", ""
	}
	return nil, slipway.ReasonError, slipway.FlagGeneral, fmt.Sprintf("targeting returned %q, which names no variant", name)
}

func (f *compiledFlag) evaluate(ctx map[string]any, now time.Time) slipway.Evaluation {
	v, reason, code, details := f.resolve(ctx, now)
	e := slipway.Evaluation{
		Key:          f.key,
		Reason:       reason,
		ErrorCode:    code,
		ErrorDetails: details,
		Metadata:     f.metadata,
	}
	if v != nil {
		e.Value, e.Variant, e.HasValue = v.value, v.name, true
	}
	return e
}

// run evaluates a rule, turning a failure into an error.
func run(n node, e env) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			if ee, ok := r.(evalError); ok {
				err = ee
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	return n.eval(e), nil
}

// Current holds the Set in force. Readers Load it without locking; a writer compiles a new
// Set and Swaps it in, so an evaluation always sees one whole revision of the flags.
type Current struct {
	p atomic.Pointer[Set]
}

// NewCurrent returns a Current holding s (which may be nil).
func NewCurrent(s *Set) *Current {
	c := &Current{}
	c.p.Store(s)
	return c
}

// Load returns the Set in force, or nil if none was ever stored.
func (c *Current) Load() *Set { return c.p.Load() }

// Swap puts s in force and returns the Set it replaces.
func (c *Current) Swap(s *Set) *Set { return c.p.Swap(s) }
