package validate

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"

	"slipway.dev/slipway"
)

// celEnv is the environment conditions compile in: one dynamic variable, result. It is
// immutable once built, so one is shared.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("result", cel.DynType))
})

// placeholder matches a {{...}} template placeholder.
var placeholder = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

func checkTemplate(p *problems, t *slipway.AnalysisTemplate) {
	declared := map[string]bool{}
	for i, a := range t.Args {
		path := fmt.Sprintf("spec.args[%d].name", i)
		switch {
		case a.Name == "":
			p.add(path, "required; name the argument, like threshold")
		case declared[a.Name]:
			p.add(path, "%q is declared twice; declare each argument once", a.Name)
		}
		declared[a.Name] = true
	}
	if len(t.Metrics) == 0 {
		p.add("spec.metrics", "needs at least one metric; add one, like - name: errors")
	}
	names := map[string]int{}
	for i, m := range t.Metrics {
		path := fmt.Sprintf("spec.metrics[%d]", i)
		if m.Name == "" {
			p.add(path+".name", "required; name the metric, like error-rate")
		} else if j, ok := names[m.Name]; ok {
			p.add(path+".name", "%q is already the name of metrics[%d]; give each metric its own name", m.Name, j)
		} else {
			names[m.Name] = i
		}
		checkMetric(p, path, m, declared)
		checkScored(p, path, m, t.Scoring)
	}
	checkScoring(p, t)
}

// maxScoreWeight bounds a metric's and a group's weight: weights are relative, so a million
// to one is more than any scorecard needs, and sums of weights stay far from overflowing.
const maxScoreWeight = 1_000_000

// checkScoring checks a template's scoring: thresholds 0 <= marginal <= pass <= 100 with pass
// above 0, group weights from 0 to maxScoreWeight that are not all 0, and, when groups are
// weighed, a weight for every group a metric names and no group no metric names.
func checkScoring(p *problems, t *slipway.AnalysisTemplate) {
	sc := t.Scoring
	if sc == nil {
		return
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case !finite(sc.Pass) || sc.Pass <= 0 || sc.Pass > 100:
		p.add("spec.scoring.pass", "%v is not a threshold; use a score above 0 and at most 100, like 90", sc.Pass)
	case !finite(sc.Marginal) || sc.Marginal < 0 || sc.Marginal > sc.Pass:
		p.add("spec.scoring.marginal", "%v is not a threshold; use a score from 0 to pass (%v), like 75", sc.Marginal, sc.Pass)
	}
	if len(sc.Groups) == 0 {
		return
	}
	used := map[string]bool{}
	for i, m := range t.Metrics {
		used[m.Group] = true
		if _, ok := sc.Groups[m.Group]; !ok {
			p.add(fmt.Sprintf("spec.metrics[%d].group", i), "%q has no weight in scoring.groups; add it there, or use one of %s", m.Group, strings.Join(slices.Sorted(maps.Keys(sc.Groups)), ", "))
		}
	}
	total := 0.0
	for _, g := range slices.Sorted(maps.Keys(sc.Groups)) {
		w := sc.Groups[g]
		if !finite(w) || w < 0 || w > maxScoreWeight {
			p.add("spec.scoring.groups."+g, "%v is not a weight; use a number from 0 to %d, like 1", w, maxScoreWeight)
			continue
		}
		total += w
		if !used[g] {
			p.add("spec.scoring.groups."+g, "no metric is in group %q; remove it or put a metric in it", g)
		}
	}
	if total == 0 {
		p.add("spec.scoring.groups", "every group weighs 0; give at least one group a weight above 0")
	}
}

// checkScored checks a metric's place in a scored template: a weight from 0 to
// maxScoreWeight, and group, weight and critical only when the template is scored.
func checkScored(p *problems, path string, m slipway.Metric, sc *slipway.Scoring) {
	if math.IsNaN(m.Weight) || m.Weight < 0 || m.Weight > maxScoreWeight {
		p.add(path+".weight", "%v is not a weight; use a number from 0 to %d (0 means 1), like 2", m.Weight, maxScoreWeight)
	}
	if sc != nil {
		return
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"group", m.Group != ""}, {"weight", m.Weight != 0}, {"critical", m.Critical}} {
		if f.set {
			p.add(path+"."+f.name, "a metric takes %s only in a scored template; add scoring: {marginal: 75, pass: 90} to the template, or remove %s", f.name, f.name)
		}
	}
}

func checkMetric(p *problems, path string, m slipway.Metric, declared map[string]bool) {
	nonNegativeInt(p, path+".count", m.Count)
	nonNegative(p, path+".interval", m.Interval)
	nonNegative(p, path+".initialDelay", m.InitialDelay)
	nonNegativeInt(p, path+".failureLimit", m.FailureLimit)
	nonNegativeInt(p, path+".inconclusiveLimit", m.InconclusiveLimit)
	if m.ConsecutiveErrorLimit != nil {
		nonNegativeInt(p, path+".consecutiveErrorLimit", *m.ConsecutiveErrorLimit)
	}
	nonNegative(p, path+".sampleTimeout", m.SampleTimeout)
	if m.SampleTimeout != 0 && m.Provider.Builtin == nil && (m.Provider.Web != nil || m.Provider.Job != nil || m.Provider.Prometheus != nil) {
		p.add(path+".sampleTimeout", "only builtin metrics wait for a minimum sample; remove sampleTimeout")
	}
	if m.Count > 1 && m.Interval == 0 {
		p.add(path+".interval", "required when count is %d; set the wait between measurements, like 30s", m.Count)
	}
	switch m.NoData {
	case "", slipway.NoDataInconclusive, slipway.NoDataFailure:
	default:
		p.add(path+".noData", "%q is not a policy; use inconclusive or failure", m.NoData)
	}
	checkCondition(p, path+".successCondition", m.SuccessCondition)
	checkCondition(p, path+".failureCondition", m.FailureCondition)
	texts := map[string]string{path + ".successCondition": m.SuccessCondition, path + ".failureCondition": m.FailureCondition}

	pp := path + ".provider"
	kinds := map[string]bool{"web": m.Provider.Web != nil, "job": m.Provider.Job != nil, "builtin": m.Provider.Builtin != nil, "prometheus": m.Provider.Prometheus != nil}
	switch set := setNames(kinds, "builtin", "prometheus", "web", "job"); len(set) {
	case 0:
		p.add(pp, "required; use exactly one of builtin, prometheus, web or job")
	case 1:
	default:
		p.add(pp, "sets %s; use exactly one of builtin, prometheus, web or job", andList(set))
	}
	if pm := m.Provider.Prometheus; pm != nil {
		checkPrometheus(p, path, m, pm, texts)
	}
	if b := m.Provider.Builtin; b != nil {
		checkBuiltin(p, path, m, b, texts)
	}
	if w := m.Provider.Web; w != nil {
		wp := pp + ".web"
		checkURL(p, wp+".url", w.URL)
		switch w.Method {
		case "", "GET", "POST":
		default:
			p.add(wp+".method", "%q is not supported; use GET or POST", w.Method)
		}
		nonNegative(p, wp+".timeout", w.Timeout)
		switch c := w.Compare; {
		case c != nil:
			cp := wp + ".compare"
			checkURL(p, cp+".baseline", c.Baseline)
			checkComparison(p, cp, c.Comparison)
			if w.JSONPath == "" {
				p.add(wp+".jsonPath", "required with compare: the path of the array of numbers to compare, like $.latencies")
			}
			noConditions(p, path, m)
			texts[cp+".baseline"] = c.Baseline
		case m.SuccessCondition == "" && m.FailureCondition == "":
			p.add(path, "a web metric needs a successCondition or a failureCondition (or compare); add one, like successCondition: result < 0.05")
		}
		texts[wp+".url"] = w.URL
		texts[wp+".body"] = w.Body
		texts[wp+".jsonPath"] = w.JSONPath
		for k, v := range w.Headers {
			texts[wp+".headers."+k] = v
		}
	}
	if j := m.Provider.Job; j != nil {
		jp := pp + ".job"
		if strings.TrimSpace(j.Command) == "" {
			p.add(jp+".command", "required; name the program to run, like ./scripts/check.sh")
		}
		nonNegative(p, jp+".timeout", j.Timeout)
		texts[jp+".command"] = j.Command
		for i, a := range j.Args {
			texts[fmt.Sprintf("%s.args[%d]", jp, i)] = a
		}
		for k, v := range j.Env {
			texts[jp+".env."+k] = v
		}
	}
	checkPlaceholders(p, texts, declared)
}

// builtinRevisionID matches a revision ID (slipway.RevisionSpec.Hash).
var builtinRevisionID = regexp.MustCompile(`^[0-9a-f]{12}(` + slipway.BaselineSuffix + `-[0-9]+\.[0-9]+)?$`)

// maxBuiltinWindow is as far back as the proxy keeps per-second counts.
const maxBuiltinWindow = slipway.Duration(10 * time.Minute)

// checkBuiltin checks a builtin metric: a known metric name, a revision that is canary,
// stable, a placeholder or a revision ID, a window of whole seconds the proxy keeps, a
// minimum sample of at least one request, and a condition to judge by.
func checkBuiltin(p *problems, path string, m slipway.Metric, b *slipway.BuiltinMetric, texts map[string]string) {
	bp := path + ".provider.builtin"
	all := append(slipway.BuiltinMetrics(), slipway.BuiltinOutcomeMetrics()...)
	outcome := slices.Contains(slipway.BuiltinOutcomeMetrics(), b.Metric)
	switch {
	case b.Metric == "":
		p.add(bp+".metric", "required; use one of %s", orList(all))
	case strings.Contains(b.Metric, "{{"):
	case !slices.Contains(all, b.Metric):
		p.add(bp+".metric", "%q is not a builtin metric; use one of %s%s", b.Metric, orList(all), didYouMean(b.Metric, all))
	}
	checkOutcomeFields(p, bp, b, outcome)
	texts[bp+".flag"] = b.Flag
	texts[bp+".variant"] = b.Variant
	texts[bp+".outcome"] = b.Outcome
	switch r := b.Revision; {
	case outcome && r != "":
		p.add(bp+".revision", "an outcome metric measures a flag variant, not a revision; remove revision")
	case r == "", r == slipway.BuiltinCanary, r == slipway.BuiltinStable, r == slipway.BuiltinBaseline, strings.Contains(r, "{{"), builtinRevisionID.MatchString(r):
	default:
		p.add(bp+".revision", "%q is not a revision; use canary, stable, baseline, {{canary.revision}} or a revision ID (12 hex digits)", r)
	}
	switch {
	case b.Window == 0:
	case b.Window < slipway.Duration(time.Second):
		p.add(bp+".window", "%s is shorter than 1s; the proxy counts whole seconds, so use 1s or more (default %s)", b.Window, slipway.DefaultBuiltinWindow)
	case b.Window > maxBuiltinWindow:
		p.add(bp+".window", "%s is longer than the %s the proxy keeps; use %s or less", b.Window, maxBuiltinWindow, maxBuiltinWindow)
	}
	if b.MinRequests < 0 {
		p.add(bp+".minRequests", "%d is out of range; use 1 or more, or omit it for the default %d", b.MinRequests, slipway.DefaultMinRequests)
	}
	if b.App != "" && !strings.Contains(b.App, "{{") && (len(b.App) > 63 || !dnsLabel.MatchString(b.App)) {
		p.add(bp+".app", "%q is not an app name; use lowercase letters, digits and '-', or omit it for the rollout's app", b.App)
	}
	checkSlowRate(p, bp, b)
	switch c := b.Compare; {
	case b.Sequential != nil && c != nil:
		p.add(bp+".compare", "a metric is judged one way; use sequential or compare, not both")
	case b.Sequential != nil:
		checkSequential(p, path, m, b, texts)
	case c != nil:
		cp := bp + ".compare"
		if !slices.Contains([]string{slipway.BuiltinLatencyP50, slipway.BuiltinLatencyP95, slipway.BuiltinLatencyP99}, b.Metric) {
			p.add(bp+".metric", "compare judges latency distributions; use latency_p95 (or p50, p99: all compare every request), or a sequential test for error_rate and slow_rate")
		}
		switch r := c.Baseline; {
		case r == "", r == slipway.BuiltinBaseline, r == slipway.BuiltinStable, strings.Contains(r, "{{"), builtinRevisionID.MatchString(r):
		default:
			p.add(cp+".baseline", "%q is not a revision; use baseline (the default: an experiment's fresh baseline, else stable), stable, {{baseline.revision}} or a revision ID (12 hex digits)", r)
		}
		texts[cp+".baseline"] = c.Baseline
		checkComparison(p, cp, c.Comparison)
		noConditions(p, path, m)
	case m.SuccessCondition == "" && m.FailureCondition == "":
		p.add(path, "a builtin metric needs a successCondition or a failureCondition (or a sequential test, or compare); add one, like successCondition: result < 0.05")
	}
	texts[bp+".metric"] = b.Metric
	texts[bp+".revision"] = b.Revision
	texts[bp+".app"] = b.App
}

// checkSlowRate checks that slow_rate, and only slow_rate, sets a latency limit.
func checkSlowRate(p *problems, bp string, b *slipway.BuiltinMetric) {
	switch {
	case b.Metric == slipway.BuiltinSlowRate && b.SlowerThan <= 0:
		p.add(bp+".slowerThan", "required for slow_rate: the latency above which a request counts as slow, like 250ms")
	case b.Metric != slipway.BuiltinSlowRate && b.SlowerThan != 0 && !strings.Contains(b.Metric, "{{"):
		p.add(bp+".slowerThan", "only slow_rate counts slow requests; remove slowerThan, or use metric: slow_rate")
	}
}

// checkSequential checks a builtin metric judged by a sequential test: a metric that counts
// failures (error_rate or slow_rate), a tolerance and error bounds in range, a baseline that
// is a revision, no start (the run sets it), and none of what the test replaces: conditions
// (it judges), window (it counts from the run's start) and minRequests outside it.
func checkSequential(p *problems, path string, m slipway.Metric, b *slipway.BuiltinMetric, texts map[string]string) {
	bp := path + ".provider.builtin"
	sp := bp + ".sequential"
	s := b.Sequential
	if b.Metric != slipway.BuiltinErrorRate && b.Metric != slipway.BuiltinSlowRate && !strings.Contains(b.Metric, "{{") {
		p.add(bp+".metric", "%q counts no failures; a sequential test judges error_rate or slow_rate", b.Metric)
	}
	if !(s.Tolerance >= 0 && s.Tolerance < 1) {
		p.add(sp+".tolerance", "%v is out of range; use a share of requests from 0 up to 1, like 0.01 (one point more failures than the baseline)", s.Tolerance)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"alpha", s.Alpha}, {"beta", s.Beta}} {
		if f.v != 0 && !(f.v > 0 && f.v < 1) {
			p.add(sp+"."+f.name, "%v is out of range; use a probability between 0 and 1, like 0.05, or omit it (alpha: 0.05, beta: alpha)", f.v)
		}
	}
	if !(s.Scale >= 0 && s.Scale <= 1) {
		p.add(sp+".scale", "%v is out of range; use a difference of rates from 0 to 1, like 0.1, or omit it for the tolerance", s.Scale)
	}
	if s.MinRequests < 0 {
		p.add(sp+".minRequests", "%d is out of range; use 1 or more, or omit it for the default %d", s.MinRequests, slipway.DefaultSequentialMinRequests)
	}
	switch r := s.Baseline; {
	case r == "", r == slipway.BuiltinBaseline, r == slipway.BuiltinStable, strings.Contains(r, "{{"), builtinRevisionID.MatchString(r):
	default:
		p.add(sp+".baseline", "%q is not a revision; use baseline (the default: an experiment's fresh baseline, else stable), stable, {{baseline.revision}} or a revision ID (12 hex digits)", r)
	}
	texts[sp+".baseline"] = s.Baseline
	if s.Since != nil {
		p.add(sp+".since", "is set by each analysis run to its start; remove since")
	}
	if m.SuccessCondition != "" || m.FailureCondition != "" {
		p.add(path, "a sequential test judges the metric itself; remove successCondition and failureCondition")
	}
	if b.Window != 0 {
		p.add(bp+".window", "a sequential test counts every request since its analysis run began; remove window")
	}
	if b.MinRequests != 0 {
		p.add(bp+".minRequests", "a sequential test waits for its own minimum; move it to sequential.minRequests")
	}
}

// outcomeName is what a reported outcome may be called (flags.CheckOutcome).
var outcomeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.\-]{0,62}$`)

// checkOutcomeFields checks the fields of an outcome metric (flag, variant, outcome) and
// that other builtin metrics set none of them.
func checkOutcomeFields(p *problems, bp string, b *slipway.BuiltinMetric, outcome bool) {
	if !outcome {
		for _, f := range []struct{ name, v string }{{"flag", b.Flag}, {"variant", b.Variant}, {"outcome", b.Outcome}} {
			if f.v != "" && !strings.Contains(b.Metric, "{{") {
				p.add(bp+"."+f.name, "only outcome metrics (%s) read a flag variant; remove %s", orList(slipway.BuiltinOutcomeMetrics()), f.name)
			}
		}
		return
	}
	if b.Flag == "" {
		p.add(bp+".flag", "required; use {{flag}} (the ramped flag) or a flag key")
	}
	if b.Variant == "" {
		p.add(bp+".variant", "required; use {{variant}} (the ramped variant) or a variant name")
	}
	if o := b.Outcome; o != "" && !strings.Contains(o, "{{") && !outcomeName.MatchString(o) {
		p.add(bp+".outcome", "%q is not an outcome name; use lower-case letters, digits, '_', '-' and '.', like error (the default)", o)
	}
}

// checkCondition compiles a CEL condition over result; {{...}} placeholders are replaced by
// a literal first, since their values are known only when the run starts.
func checkCondition(p *problems, path, expr string) {
	if strings.TrimSpace(expr) == "" {
		return
	}
	env, err := celEnv()
	if err != nil {
		p.add(path, "cannot be checked: %s", err.Error())
		return
	}
	ast, iss := env.Compile(placeholder.ReplaceAllString(expr, "0"))
	if iss.Err() != nil {
		msg, _, _ := strings.Cut(iss.Err().Error(), "\n")
		msg = strings.TrimPrefix(msg, "ERROR: <input>:")
		msg = strings.TrimPrefix(msg, "-1:0: ") // no position: a limit of the whole expression
		msg, _, _ = strings.Cut(msg, " expecting ")
		p.add(path, "does not compile: %s; write a CEL expression over result, like result < 0.05", msg)
		return
	}
	if t := ast.OutputType(); !t.IsAssignableType(cel.BoolType) {
		p.add(path, "is %s, not true or false; compare result with something, like result < 0.05", t)
	}
}

// checkURL checks a web metric's URL: absolute http or https, unless a placeholder makes it
// known only when the run starts.
func checkURL(p *problems, path, raw string) {
	if raw == "" {
		p.add(path, "required; give the URL to query, like http://127.0.0.1:9090/metrics")
		return
	}
	if strings.Contains(raw, "{{") {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path, "%q is not an http or https URL; use one like http://127.0.0.1:9090/metrics", raw)
	}
}

// checkPlaceholders checks that every {{args.NAME}} names an argument the template declares
// and that any other placeholder is one of slipway.TemplateVars.
func checkPlaceholders(p *problems, texts map[string]string, declared map[string]bool) {
	paths := make([]string, 0, len(texts))
	for k := range texts {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for _, m := range placeholder.FindAllStringSubmatch(texts[path], -1) {
			name, ok := strings.CutPrefix(m[1], "args.")
			switch {
			case !ok && slices.Contains(slipway.TemplateVars(), m[1]):
			case !ok && slices.Contains(slipway.FlagTemplateVars(), m[1]):
			case !ok:
				vars := append(slipway.TemplateVars(), slipway.FlagTemplateVars()...)
				p.add(path, "%s is not a placeholder; use {{args.NAME}} with an argument from spec.args, or one of {{%s}} (the last two in flag ramps)", m[0], strings.Join(vars, "}}, {{"))
			case !declared[name]:
				p.add(path, "%s uses argument %q, which the template does not declare; add it to spec.args", m[0], name)
			}
		}
	}
}

// resolver checks an App's analysis references against the templates of the set and, for
// names not in the set, templateKnown.
type resolver struct {
	templates map[string]*slipway.AnalysisTemplate
	names     []string
	known     func(string) bool
	// container is set while checking an app that runs as a container (the kubernetes
	// target), where slipway's proxy is not in the request path.
	container bool
}

func (r resolver) checkApp(p *problems, a *slipway.App) {
	r.container = a.Container != nil
	var bgArgs []slipway.Arg
	if a.Analysis != nil {
		bgArgs = a.Analysis.Args
		r.checkRef(p, "spec.analysis", a.Analysis.AnalysisRef, nil)
	}
	if c := a.Strategy.Canary; c != nil {
		for i, st := range c.Steps {
			if e := st.Experiment; e != nil && e.Analysis != nil {
				r.checkRef(p, fmt.Sprintf("spec.strategy.canary.steps[%d].experiment.analysis", i), *e.Analysis, bgArgs)
			}
			if st.Analysis != nil {
				r.checkRef(p, fmt.Sprintf("spec.strategy.canary.steps[%d].analysis", i), *st.Analysis, bgArgs)
			}
		}
	}
	if b := a.Strategy.BlueGreen; b != nil {
		if b.PrePromotionAnalysis != nil {
			r.checkRef(p, "spec.strategy.blueGreen.prePromotionAnalysis", *b.PrePromotionAnalysis, bgArgs)
		}
		if b.PostPromotionAnalysis != nil {
			r.checkRef(p, "spec.strategy.blueGreen.postPromotionAnalysis", *b.PostPromotionAnalysis, bgArgs)
		}
	}
}

// checkRef checks one reference: it names templates that exist, and gives every argument
// they require (here or in the App's background analysis args, extra).
func (r resolver) checkRef(p *problems, path string, ref slipway.AnalysisRef, extra []slipway.Arg) {
	if len(ref.Templates) == 0 {
		p.add(path+".templates", "needs at least one AnalysisTemplate; name one, like [error-rate]")
	}
	given := map[string]bool{}
	for i, a := range ref.Args {
		ap := fmt.Sprintf("%s.args[%d].name", path, i)
		switch {
		case a.Name == "":
			p.add(ap, "required; name the template argument this value is for")
		case given[a.Name]:
			p.add(ap, "%q is given twice; give each argument once", a.Name)
		}
		given[a.Name] = true
	}
	for _, a := range extra {
		given[a.Name] = true
	}
	var missing []string
	r.checkScoredTogether(p, path, ref)
	for i, name := range ref.Templates {
		tp := fmt.Sprintf("%s.templates[%d]", path, i)
		t, ok := r.templates[name]
		switch {
		case name == "":
			p.add(tp, "is empty; name an AnalysisTemplate")
			continue
		case !ok && r.known != nil && r.known(name):
			continue
		case !ok:
			p.add(tp, "AnalysisTemplate %q is not defined; add one named %q%s", name, name, didYouMean(name, r.names))
			continue
		}
		if r.container {
			for _, m := range t.Metrics {
				if b := m.Provider.Builtin; b != nil && !slices.Contains(slipway.BuiltinOutcomeMetrics(), b.Metric) {
					p.add(tp, "template %q measures %s with builtin metric %s, which counts what slipway's own proxy serves; an app that runs as a container (Kubernetes) is not behind that proxy, so use a prometheus metric instead (docs/kubernetes.md shows the equivalent)", name, m.Name, b.Metric)
					break
				}
			}
		}
		for _, a := range t.Args {
			if a.Value == nil && !given[a.Name] && !slices.Contains(missing, a.Name) {
				missing = append(missing, a.Name)
				p.add(path+".args", "template %q needs argument %q; add {name: %s, value: ...}", name, a.Name, a.Name)
			}
		}
	}
}

// checkScoredTogether checks that the templates of ref the set defines are all scored, with
// the same scoring, or none is: a run of them is refused otherwise (analysis.NewRun), which
// would abort the rollout at that step. Templates only the server knows are checked when
// the run starts.
func (r resolver) checkScoredTogether(p *problems, path string, ref slipway.AnalysisRef) {
	var scoredBy, unscored string
	var scoring *slipway.Scoring
	for i, name := range ref.Templates {
		t, ok := r.templates[name]
		if !ok {
			continue
		}
		tp := fmt.Sprintf("%s.templates[%d]", path, i)
		switch {
		case t.Scoring == nil && scoring != nil:
			p.add(tp, "template %s is not scored and %s is; templates run together are all scored, with the same scoring, or none is", name, scoredBy)
		case t.Scoring == nil:
			if unscored == "" {
				unscored = name
			}
		case scoring == nil:
			scoring, scoredBy = t.Scoring, name
			if unscored != "" {
				p.add(tp, "template %s is scored and %s is not; templates run together are all scored, with the same scoring, or none is", name, unscored)
			}
		case !reflect.DeepEqual(*scoring, *t.Scoring):
			p.add(tp, "template %s scores differently from %s; templates run together need the same scoring", name, scoredBy)
		}
	}
}
