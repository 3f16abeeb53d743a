package analysis

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Vars returns the values every template may use, from the rollout and the environment its
// app runs in (slipway.DefaultEnvironment when env is ""): {{app}}, {{environment}},
// {{stable.revision}}, {{stable.version}}, {{canary.revision}}, {{canary.version}},
// {{baseline.revision}} and {{baseline.version}}, as a step's run has them. Arguments
// ({{args.NAME}}) are added per template by NewRun.
func Vars(r slipway.Rollout, env string) map[string]string {
	return runVars(r, env, slipway.AnalysisStep)
}

// runVars is Vars for a run of kind.
func runVars(r slipway.Rollout, env string, kind slipway.AnalysisKind) map[string]string {
	if env == "" {
		env = slipway.DefaultEnvironment
	}
	return map[string]string{
		"app":               r.App,
		"environment":       env,
		"stable.revision":   r.From,
		"stable.version":    r.FromVersion,
		"canary.revision":   r.To,
		"canary.version":    r.ToVersion,
		"baseline.revision": baselineOf(r, kind),
		"baseline.version":  r.FromVersion,
	}
}

// baselineOf is the revision a run of kind compares a canary with: for the run of an
// experiment step (slipway.Experiment), the fresh baseline it runs; otherwise the stable
// revision. A background run started during an experiment outlives the step and its
// baseline, so it compares with stable.
func baselineOf(r slipway.Rollout, kind slipway.AnalysisKind) string {
	if _, base, ok := r.Experiment(); ok && kind == slipway.AnalysisStep {
		return base
	}
	return r.From
}

// placeholder matches {{name}}, with optional spaces inside the braces.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}`)

// expander replaces placeholders in strings and remembers the names it did not know.
type expander struct {
	vars    map[string]string
	unknown map[string]bool
}

func (e *expander) expand(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := e.vars[name]
		if !ok {
			e.unknown[name] = true
			return m
		}
		return v
	})
}

// NewRun builds a run of ref's templates for rollout r of an app in environment env. It resolves each template from
// templates, gives every argument its value (ref's args override template defaults), expands
// {{...}} in every string of each metric (the provider's fields and both conditions), checks
// the conditions compile, and returns a Running run with one MetricResult per metric,
// StartedAt now. It is pure.
//
// It returns EINVALID when ref names no template, a required argument has no value, ref gives
// an argument no template declares, a string uses an unknown name, two metrics share a name
// or a condition does not compile; ENOTFOUND when a template does not exist.
func NewRun(id string, kind slipway.AnalysisKind, step int, r slipway.Rollout, env string, ref slipway.AnalysisRef, templates map[string]slipway.AnalysisTemplate, now time.Time) (slipway.AnalysisRun, error) {
	return newRun(id, kind, step, r, runVars(r, env, kind), ref, templates, now)
}

// FlagVars returns the values a template may use when it analyses a flag ramp: {{flag}} and
// {{variant}}.
func FlagVars(flag, variant string) map[string]string {
	return map[string]string{"flag": flag, "variant": variant}
}

// NewFlagRun builds a run of ref's templates for step of the ramp of flag's variant, like
// NewRun but with FlagVars for variables. The run belongs to no app or rollout; a builtin
// metric of the proxy must then name its app and revision itself. It is pure.
func NewFlagRun(id string, step int, flag, variant string, ref slipway.AnalysisRef, templates map[string]slipway.AnalysisTemplate, now time.Time) (slipway.AnalysisRun, error) {
	run, err := newRun(id, slipway.AnalysisRamp, step, slipway.Rollout{}, FlagVars(flag, variant), ref, templates, now)
	run.Flag = flag
	return run, err
}

func newRun(id string, kind slipway.AnalysisKind, step int, r slipway.Rollout, base map[string]string, ref slipway.AnalysisRef, templates map[string]slipway.AnalysisTemplate, now time.Time) (slipway.AnalysisRun, error) {
	if len(ref.Templates) == 0 {
		return slipway.AnalysisRun{}, slipway.Errorf(slipway.EINVALID, "analysis names no template")
	}
	refArgs := map[string]string{}
	for _, a := range ref.Args {
		refArgs[a.Name] = a.Value
	}
	declared := map[string]bool{}
	var problems []string
	var metrics []slipway.Metric
	seen := map[string]string{}
	var scoring *slipway.Scoring
	scoredBy, unscored := "", ""
	for _, name := range ref.Templates {
		t, ok := templates[name]
		if !ok {
			return slipway.AnalysisRun{}, slipway.Errorf(slipway.ENOTFOUND, "analysis template %q not found", name)
		}
		switch {
		case t.Scoring == nil:
			unscored = name
		case scoring == nil:
			sc := *t.Scoring
			sc.Groups = maps.Clone(t.Scoring.Groups)
			scoring, scoredBy = &sc, name
		case !reflect.DeepEqual(*scoring, *t.Scoring):
			problems = append(problems, fmt.Sprintf("templates %s and %s score differently; templates scored together need the same scoring", scoredBy, name))
		}
		vars := maps.Clone(base)
		argExp := &expander{vars: base, unknown: map[string]bool{}}
		for _, a := range t.Args {
			declared[a.Name] = true
			v, given := refArgs[a.Name]
			switch {
			case given:
			case a.Value != nil:
				v = *a.Value
			default:
				problems = append(problems, fmt.Sprintf("template %s: argument %q is required", name, a.Name))
				continue
			}
			vars["args."+a.Name] = argExp.expand(v)
		}
		for _, u := range sortedKeys(argExp.unknown) {
			problems = append(problems, fmt.Sprintf("template %s: an argument uses unknown name {{%s}}", name, u))
		}
		for _, m := range t.Metrics {
			if other, dup := seen[m.Name]; dup {
				problems = append(problems, fmt.Sprintf("template %s: metric %q is also in template %s", name, m.Name, other))
				continue
			}
			seen[m.Name] = name
			e := &expander{vars: vars, unknown: map[string]bool{}}
			em := expandMetric(m, e)
			boundSample(&em, r)
			startSequential(&em, now)
			if p := resolveBuiltin(&em, r, kind); p != "" {
				problems = append(problems, fmt.Sprintf("template %s: metric %s %s", name, m.Name, p))
			} else if p := comparesItself(em); p != "" {
				problems = append(problems, fmt.Sprintf("template %s: metric %s %s", name, m.Name, p))
			}
			metrics = append(metrics, em)
			for _, u := range sortedKeys(e.unknown) {
				problems = append(problems, fmt.Sprintf("template %s: metric %s uses unknown name {{%s}}", name, m.Name, u))
			}
		}
	}
	for _, a := range ref.Args {
		if !declared[a.Name] {
			problems = append(problems, fmt.Sprintf("argument %q is declared by no template of %s", a.Name, strings.Join(ref.Templates, ", ")))
		}
	}
	if scoring != nil && unscored != "" {
		problems = append(problems, fmt.Sprintf("template %s is scored and %s is not; give %s the same scoring, or run it in a step of its own", scoredBy, unscored, unscored))
	}
	if len(metrics) == 0 && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("templates %s have no metrics", strings.Join(ref.Templates, ", ")))
	}
	if len(problems) == 0 {
		problems = checkConditions(metrics)
	}
	if len(problems) > 0 {
		e := slipway.Errorf(slipway.EINVALID, "analysis %s: %d problem(s)", strings.Join(ref.Templates, ", "), len(problems))
		e.Details = problems
		return slipway.AnalysisRun{}, e
	}
	run := slipway.AnalysisRun{
		ID:        id,
		App:       r.App,
		Rollout:   r.ID,
		Kind:      kind,
		Step:      step,
		Templates: slices.Clone(ref.Templates),
		Metrics:   metrics,
		Results:   make([]slipway.MetricResult, len(metrics)),
		Phase:     slipway.VerdictRunning,
		StartedAt: now,
		Scoring:   scoring,
	}
	for i, m := range metrics {
		run.Results[i] = slipway.MetricResult{Name: m.Name, Phase: slipway.VerdictRunning, DryRun: m.DryRun}
	}
	return run, nil
}

// expandMetric returns a copy of m, sharing no map or slice with it, with every placeholder
// expanded.
func expandMetric(m slipway.Metric, e *expander) slipway.Metric {
	out := m
	out.SuccessCondition = e.expand(m.SuccessCondition)
	out.FailureCondition = e.expand(m.FailureCondition)
	if m.ConsecutiveErrorLimit != nil {
		n := *m.ConsecutiveErrorLimit
		out.ConsecutiveErrorLimit = &n
	}
	if w := m.Provider.Web; w != nil {
		c := *w
		c.URL = e.expand(w.URL)
		c.Method = e.expand(w.Method)
		c.Body = e.expand(w.Body)
		c.JSONPath = e.expand(w.JSONPath)
		c.Headers = expandMap(w.Headers, e)
		if w.Compare != nil {
			cmp := *w.Compare
			cmp.Baseline = e.expand(cmp.Baseline)
			c.Compare = &cmp
		}
		out.Provider.Web = &c
	}
	if b := m.Provider.Builtin; b != nil {
		c := *b
		c.Metric = e.expand(b.Metric)
		c.Revision = e.expand(b.Revision)
		c.App = e.expand(b.App)
		c.Flag = e.expand(b.Flag)
		c.Variant = e.expand(b.Variant)
		c.Outcome = e.expand(b.Outcome)
		if b.Sequential != nil {
			sq := *b.Sequential
			sq.Baseline = e.expand(sq.Baseline)
			c.Sequential = &sq
		}
		if b.Compare != nil {
			cmp := *b.Compare
			cmp.Baseline = e.expand(cmp.Baseline)
			c.Compare = &cmp
		}
		out.Provider.Builtin = &c
	}
	if p := m.Provider.Prometheus; p != nil {
		c := *p
		c.Address = e.expand(p.Address)
		c.Query = e.expand(p.Query)
		c.Reduce = e.expand(p.Reduce)
		c.Headers = expandMap(p.Headers, e)
		// HeadersFrom name where a credential is; they are not expanded, so that a template
		// argument cannot point one at another variable or file.
		c.HeadersFrom = maps.Clone(p.HeadersFrom)
		if p.Range != nil {
			rg := *p.Range
			c.Range = &rg
		}
		if p.Compare != nil {
			cmp := *p.Compare
			cmp.Baseline = e.expand(cmp.Baseline)
			c.Compare = &cmp
		}
		out.Provider.Prometheus = &c
	}
	if j := m.Provider.Job; j != nil {
		c := *j
		c.Command = e.expand(j.Command)
		c.Args = nil
		for _, a := range j.Args {
			c.Args = append(c.Args, e.expand(a))
		}
		c.Env = expandMap(j.Env, e)
		out.Provider.Job = &c
	}
	return out
}

// resolveBuiltin gives a builtin metric the rollout's app when it names none, and turns
// "canary" (the default) and "stable" into the rollout's revision IDs, since the provider
// sees only the metric. It returns a problem when the metric measures a stable revision the
// rollout does not have, or, in a flag run (no rollout), names no app and revision ID.
// Outcome metrics name a flag variant instead and are left alone.
func resolveBuiltin(m *slipway.Metric, r slipway.Rollout, kind slipway.AnalysisKind) string {
	b := m.Provider.Builtin
	if b == nil || slices.Contains(slipway.BuiltinOutcomeMetrics(), b.Metric) {
		return ""
	}
	if r.ID == "" {
		// A flag run: nothing to resolve from.
		if b.App == "" || b.Revision == "" || b.Revision == slipway.BuiltinCanary || b.Revision == slipway.BuiltinStable || b.Revision == slipway.BuiltinBaseline {
			return "measures an app's revision; outside a rollout name the app and a revision ID"
		}
		if s := b.Sequential; s != nil && isSelector(s.Baseline) {
			return "compares revisions; outside a rollout name the baseline's revision ID"
		}
		if c := b.Compare; c != nil && isSelector(c.Baseline) {
			return "compares revisions; outside a rollout name the baseline's revision ID"
		}
		return ""
	}
	if b.App == "" {
		b.App = r.App
	}
	switch b.Revision {
	case "", slipway.BuiltinCanary:
		b.Revision = r.To
	case slipway.BuiltinStable:
		if r.From == "" {
			return "measures the stable revision, but the rollout has none"
		}
		b.Revision = r.From
	case slipway.BuiltinBaseline:
		if r.From == "" {
			return "measures the baseline, but the rollout has no stable revision"
		}
		b.Revision = baselineOf(r, kind)
	}
	var base *string
	switch {
	case b.Sequential != nil:
		base = &b.Sequential.Baseline
	case b.Compare != nil:
		base = &b.Compare.Baseline
	default:
		return ""
	}
	switch *base {
	case "", slipway.BuiltinBaseline, slipway.BuiltinStable:
		if r.From == "" {
			return "compares the canary with the stable revision, but the rollout has none"
		}
		if *base == slipway.BuiltinStable {
			*base = r.From
		} else {
			*base = baselineOf(r, kind)
		}
	case slipway.BuiltinCanary:
		*base = r.To
	}
	return ""
}

// comparesItself returns a problem when m, expanded and resolved, compares a sample with
// itself (a baseline that is the canary's own revision, URL or query): such a comparison
// can only ever pass.
func comparesItself(m slipway.Metric) string {
	switch p := m.Provider; {
	case p.Builtin != nil && p.Builtin.Sequential != nil && p.Builtin.Revision != "" && p.Builtin.Sequential.Baseline == p.Builtin.Revision:
		return fmt.Sprintf("compares revision %s with itself; its sequential test's baseline must be another revision (baseline, stable or a revision ID)", p.Builtin.Revision)
	case p.Builtin != nil && p.Builtin.Compare != nil && p.Builtin.Revision != "" && p.Builtin.Compare.Baseline == p.Builtin.Revision:
		return fmt.Sprintf("compares revision %s with itself; its compare baseline must be another revision (baseline, stable or a revision ID)", p.Builtin.Revision)
	case p.Web != nil && p.Web.Compare != nil && p.Web.Compare.Baseline == p.Web.URL:
		return fmt.Sprintf("compares the answer of %s with itself; its compare baseline must be the baseline's URL, like one with {{baseline.revision}}", p.Web.URL)
	case p.Prometheus != nil && p.Prometheus.Compare != nil && strings.TrimSpace(p.Prometheus.Compare.Baseline) == strings.TrimSpace(p.Prometheus.Query):
		return "compares its query with itself; its compare baseline must query the baseline, like with {{baseline.revision}}"
	}
	return ""
}

// isSelector reports whether a builtin revision is a name a rollout resolves ("" included),
// not a revision ID.
func isSelector(rev string) bool {
	switch rev {
	case "", slipway.BuiltinCanary, slipway.BuiltinStable, slipway.BuiltinBaseline:
		return true
	}
	return false
}

// startSequential sets the start of a sequential test to the run's start: both revisions'
// requests are counted from then on.
func startSequential(m *slipway.Metric, now time.Time) {
	if b := m.Provider.Builtin; b != nil && b.Sequential != nil {
		t := now
		b.Sequential.Since = &t
	}
}

// boundSample gives a builtin metric of a rollout's run that sets no sampleTimeout the
// rollout's progress deadline: how long it may wait for its minimum sample. Outside a
// rollout (a flag ramp) the metric keeps slipway.DefaultSampleTimeout.
func boundSample(m *slipway.Metric, r slipway.Rollout) {
	if m.Provider.Builtin != nil && m.SampleTimeout == 0 && r.ID != "" {
		m.SampleTimeout = r.Spec.ProgressDeadline()
	}
}

func expandMap(in map[string]string, e *expander) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[e.expand(k)] = e.expand(v)
	}
	return out
}

// checkConditions compiles every condition once, so that a run never starts with a condition
// that could only ever make errors.
func checkConditions(metrics []slipway.Metric) []string {
	t := &threshold{}
	var problems []string
	for _, m := range metrics {
		for _, c := range []struct{ field, expr string }{
			{"successCondition", m.SuccessCondition},
			{"failureCondition", m.FailureCondition},
		} {
			if c.expr == "" {
				continue
			}
			if _, err := t.compile(c.expr); err != nil {
				problems = append(problems, fmt.Sprintf("metric %s: %s %q: %v", m.Name, c.field, c.expr, err))
			}
		}
	}
	return problems
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
