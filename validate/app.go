package validate

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"slipway.dev/slipway"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checkName checks a document name: a DNS label, since it names processes, routes and
// Kubernetes objects.
func checkName(p *problems, name string) {
	switch {
	case name == "":
		p.add("metadata.name", "required; use lowercase letters, digits and '-', like web")
	case len(name) > 63:
		p.add("metadata.name", "%q is %d characters long; use at most 63", name, len(name))
	case !dnsLabel.MatchString(name):
		p.add("metadata.name", "%q is not a valid name; use lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
}

func checkApp(p *problems, a *slipway.App) {
	switch {
	case a.Replicas < 0:
		p.add("spec.replicas", "%d is negative; use 0 or more", a.Replicas)
	case a.Replicas > slipway.MaxReplicas:
		p.add("spec.replicas", "%d is more than slipway runs for one app; use at most %d (a server may set a lower maximum)", a.Replicas, slipway.MaxReplicas)
	}
	if err := slipway.ValidLabel("version", a.Version, slipway.MaxVersionLen); err != nil {
		p.add("spec.version", "%s", slipway.ErrorMessage(err))
	}
	if a.RevisionHistoryLimit < 0 {
		p.add("spec.revisionHistoryLimit", "%d is negative; use 1 or more, or omit it for %d", a.RevisionHistoryLimit, slipway.DefaultRevisionHistoryLimit)
	}
	if a.Environment != "" {
		if err := slipway.ValidEnvironmentName(a.Environment); err != nil {
			p.add("metadata.environment", "%s", slipway.ErrorMessage(err))
		}
	}
	switch c := a.Container; {
	case c == nil && strings.TrimSpace(a.Run.Command) == "":
		p.add("spec.run.command", "required; name the program to run, like ./bin/server")
	case c == nil:
	case a.Run.Command != "" || len(a.Run.Args) > 0 || len(a.Run.Env) > 0 || a.Run.Dir != "":
		p.add("spec.container", "an app runs as a process (spec.run) or as a container (spec.container), not both; keep the one its environment's target runs")
	default:
		checkOnKubernetes(p, a)
	}
	if a.Container == nil && len(a.Sidecars) > 0 {
		p.add("spec.sidecars", "sidecars run beside the app's container on kubernetes; an app that runs a process (spec.run) has none, so remove sidecars")
	}
	if a.Container == nil && a.Traffic.Route != nil {
		p.add("spec.traffic.route", "only an app on kubernetes (spec.container) splits its traffic with an HTTPRoute; slipway's own proxy splits it on local and sim, so remove route")
	}
	checkProbe(p, "spec.health.readiness", a.Health.Readiness)
	checkProbe(p, "spec.health.liveness", a.Health.Liveness)
	checkTraffic(p, a.Traffic)
	checkStrategy(p, a)
	if a.Analysis != nil {
		bg := "spec.analysis"
		switch k := a.Strategy.Kind(); {
		case k == slipway.StrategyCanary:
			if n := len(a.Strategy.Canary.Steps); n > 0 && (a.Analysis.StartingStep < 0 || a.Analysis.StartingStep >= n) {
				p.add(bg+".startingStep", "%d is out of range; use 0 to %d (the canary has %s)", a.Analysis.StartingStep, n-1, plural(n, "step"))
			}
		case k != "":
			alt := "run analysis as a canary step"
			if k == slipway.StrategyBlueGreen {
				alt = "use blueGreen.prePromotionAnalysis or postPromotionAnalysis"
			}
			p.add(bg, "background analysis runs only during a canary rollout, not %s; %s", k, alt)
		}
	}
}

func checkProbe(p *problems, path string, pr *slipway.Probe) {
	if pr == nil {
		return
	}
	switch set := setNames(map[string]bool{"http": pr.HTTP != nil, "tcp": pr.TCP != nil, "exec": pr.Exec != nil}, "http", "tcp", "exec"); len(set) {
	case 0:
		p.add(path, "needs a check; use exactly one of http, tcp or exec")
	case 1:
	default:
		p.add(path, "sets %s; use exactly one of http, tcp or exec", andList(set))
	}
	if pr.HTTP != nil && pr.HTTP.Path != "" && !strings.HasPrefix(pr.HTTP.Path, "/") {
		p.add(path+".http.path", "%q must start with /; like /healthz", pr.HTTP.Path)
	}
	if pr.Exec != nil && len(pr.Exec.Command) == 0 {
		p.add(path+".exec.command", "required; give the command and its arguments, like [./check, --ready]")
	}
	atLeastOne(p, path+".successThreshold", pr.SuccessThreshold)
	atLeastOne(p, path+".failureThreshold", pr.FailureThreshold)
	nonNegative(p, path+".period", pr.Period)
	nonNegative(p, path+".timeout", pr.Timeout)
	nonNegative(p, path+".initialDelay", pr.InitialDelay)
}

func checkTraffic(p *problems, t slipway.Traffic) {
	checkAddr(p, "spec.traffic.listen", t.Listen)
	checkAddr(p, "spec.traffic.preview", t.Preview)
	if t.Listen != "" && t.Listen == t.Preview {
		p.add("spec.traffic.preview", "%s is also the listen address; use another port for the preview", t.Preview)
	}
	if s := t.Stickiness; s != nil && s.Header != "" && s.Cookie != "" {
		p.add("spec.traffic.stickiness", "sets both header and cookie; use one of them, or neither for a cookie slipway sets")
	}
}

// checkAddr checks a listen address: host:port, with a numeric port.
func checkAddr(p *problems, path, addr string) {
	if addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(path, "%q is not an address; use host:port, like 127.0.0.1:8080 or :8080", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(path, "%q has no valid port; use a port number from 0 to 65535, like 127.0.0.1:8080", addr)
	}
}

func checkStrategy(p *problems, a *slipway.App) {
	s := a.Strategy
	set := setNames(map[string]bool{"rolling": s.Rolling != nil, "blueGreen": s.BlueGreen != nil, "canary": s.Canary != nil}, "rolling", "blueGreen", "canary")
	switch len(set) {
	case 0:
		p.add("spec.strategy", "required; use exactly one of rolling, blueGreen or canary")
	case 1:
	default:
		p.add("spec.strategy", "sets %s; use exactly one of rolling, blueGreen or canary", andList(set))
	}
	if r := s.Rolling; r != nil {
		path := "spec.strategy.rolling"
		checkIntOrPercent(p, path+".maxSurge", r.MaxSurge)
		checkIntOrPercent(p, path+".maxUnavailable", r.MaxUnavailable)
		if r.MaxSurge != nil && r.MaxUnavailable != nil && r.MaxSurge.Value == 0 && r.MaxUnavailable.Value == 0 {
			p.add(path+".maxUnavailable", "maxSurge and maxUnavailable are both 0, so no instance could be replaced; raise one of them")
		}
		nonNegative(p, path+".minReady", r.MinReady)
		nonNegative(p, path+".progressDeadline", r.ProgressDeadline)
	}
	if b := s.BlueGreen; b != nil {
		path := "spec.strategy.blueGreen"
		nonNegative(p, path+".autoPromoteAfter", b.AutoPromoteAfter)
		nonNegative(p, path+".scaleDownDelay", b.ScaleDownDelay)
		nonNegative(p, path+".progressDeadline", b.ProgressDeadline)
		if !b.AutoPromotes() && b.AutoPromoteAfter > 0 {
			p.add(path+".autoPromoteAfter", "has no effect when autoPromote is false; remove it, or set autoPromote: true")
		}
		if b.PreviewReplicas != nil && *b.PreviewReplicas < 1 {
			p.add(path+".previewReplicas", "%d is out of range; use 1 or more, or omit it to preview at full scale", *b.PreviewReplicas)
		}
	}
	if c := s.Canary; c != nil {
		path := "spec.strategy.canary"
		nonNegative(p, path+".progressDeadline", c.ProgressDeadline)
		if len(c.Steps) == 0 {
			p.add(path+".steps", "needs at least one step; add one, like - setWeight: 20")
		}
		for i, st := range c.Steps {
			checkStep(p, fmt.Sprintf("%s.steps[%d]", path, i), st)
		}
	}
}

var stepKinds = []string{"setWeight", "pause", "analysis", "setCanaryScale", "setHeaderRoute", "experiment"}

func checkStep(p *problems, path string, st slipway.Step) {
	set := setNames(map[string]bool{
		"setWeight": st.SetWeight != nil, "pause": st.Pause != nil, "analysis": st.Analysis != nil,
		"setCanaryScale": st.SetCanaryScale != nil, "setHeaderRoute": st.SetHeaderRoute != nil,
		"experiment": st.Experiment != nil,
	}, stepKinds...)
	switch len(set) {
	case 0:
		p.add(path, "does nothing; use exactly one of %s", orList(stepKinds))
	case 1:
	default:
		p.add(path, "sets %s; a step does one thing, so split it into %d steps", andList(set), len(set))
	}
	if st.SetWeight != nil {
		percent(p, path+".setWeight", *st.SetWeight)
	}
	if st.Pause != nil {
		nonNegative(p, path+".pause.duration", st.Pause.Duration)
	}
	if sc := st.SetCanaryScale; sc != nil {
		sp := path + ".setCanaryScale"
		opts := setNames(map[string]bool{"replicas": sc.Replicas != nil, "weight": sc.Weight != nil, "matchTrafficWeight": sc.MatchTrafficWeight}, "replicas", "weight", "matchTrafficWeight")
		switch len(opts) {
		case 0:
			p.add(sp, "needs a scale; use exactly one of replicas, weight or matchTrafficWeight: true")
		case 1:
		default:
			p.add(sp, "sets %s; use exactly one of replicas, weight or matchTrafficWeight", andList(opts))
		}
		if sc.Replicas != nil && *sc.Replicas < 0 {
			p.add(sp+".replicas", "%d is negative; use 0 or more", *sc.Replicas)
		}
		if sc.Weight != nil {
			percent(p, sp+".weight", *sc.Weight)
		}
	}
	if e := st.Experiment; e != nil {
		ep := path + ".experiment"
		if e.Weight < 1 || e.Weight > 50 {
			p.add(ep+".weight", "%d is out of range; each of the canary and the baseline takes this share, so use 1 to 50, like 10", e.Weight)
		}
		if e.Replicas != nil && *e.Replicas < 1 {
			p.add(ep+".replicas", "%d is out of range; use 1 or more, or omit it for the weight's share of replicas", *e.Replicas)
		}
		nonNegative(p, ep+".duration", e.Duration)
		if e.Duration == 0 && e.Analysis == nil {
			p.add(ep, "compares nothing and ends at once; add an analysis (templates comparing the canary with {{baseline.revision}}), a duration, or both")
		}
	}
	if hr := st.SetHeaderRoute; hr != nil {
		hp := path + ".setHeaderRoute"
		if hr.Name == "" {
			p.add(hp+".name", "required; name the route, so a later step can remove it")
		}
		for i, m := range hr.Match {
			checkHeaderMatch(p, fmt.Sprintf("%s.match[%d]", hp, i), m)
		}
	}
}

func checkHeaderMatch(p *problems, path string, m slipway.HeaderMatch) {
	switch {
	case m.Header == "" && m.Cookie == "":
		p.add(path, "needs header or cookie; name what to match, like header: X-Canary")
	case m.Header != "" && m.Cookie != "":
		p.add(path, "sets both header and cookie; use one per match entry")
	}
	set := setNames(map[string]bool{"exact": m.Exact != "", "prefix": m.Prefix != "", "regex": m.Regex != ""}, "exact", "prefix", "regex")
	switch len(set) {
	case 0:
		p.add(path, "needs a value to match; use exactly one of exact, prefix or regex")
	case 1:
	default:
		p.add(path, "sets %s; use exactly one of exact, prefix or regex", andList(set))
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
			p.add(path+".regex", "does not compile: %s; use Go regexp syntax", msg)
		}
	}
}

func checkIntOrPercent(p *problems, path string, v *slipway.IntOrPercent) {
	switch {
	case v == nil:
	case v.Value < 0:
		p.add(path, "%s is negative; use 0 or more", v)
	case v.Percent && v.Value > 100:
		p.add(path, "%s is out of range; use 0%% to 100%%", v)
	}
}

func percent(p *problems, path string, v int) {
	if v < 0 || v > 100 {
		p.add(path, "%d is out of range; use 0 to 100", v)
	}
}

func nonNegative(p *problems, path string, d slipway.Duration) {
	if d < 0 {
		p.add(path, "%s is negative; use 0s or more", d)
	}
}

// atLeastOne checks a threshold, where 0 means unset.
func atLeastOne(p *problems, path string, v int) {
	if v < 0 {
		p.add(path, "%d is out of range; use 1 or more, or omit it for the default", v)
	}
}

func nonNegativeInt(p *problems, path string, v int) {
	if v < 0 {
		p.add(path, "%d is negative; use 0 or more", v)
	}
}

// setNames returns the names, in order, whose flag is set.
func setNames(flags map[string]bool, order ...string) []string {
	var out []string
	for _, n := range order {
		if flags[n] {
			out = append(out, n)
		}
	}
	return out
}

// andList writes "a and b" or "a, b and c".
func andList(s []string) string { return list(s, "and") }

// orList writes "a or b" or "a, b or c".
func orList(s []string) string { return list(s, "or") }

func list(s []string, conj string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " " + conj + " " + s[len(s)-1]
}
