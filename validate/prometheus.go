package validate

import (
	"maps"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// headerName matches an HTTP header name (a token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// envName matches an environment variable's name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkPrometheus checks a Prometheus metric: an http or https address, a query that is not
// too long, a known reduction, a range the server will answer (which then needs a
// reduction), headers that are valid and that the query does not set itself, sources of
// header values that name exactly one variable or absolute file, and a condition.
func checkPrometheus(p *problems, path string, m slipway.Metric, pm *slipway.PrometheusMetric, texts map[string]string) {
	pp := path + ".provider.prometheus"
	checkPromAddress(p, pp+".address", pm.Address)
	switch q := pm.Query; {
	case strings.TrimSpace(q) == "":
		p.add(pp+".query", `required; write the PromQL to measure, like sum(rate(http_requests_total{code=~"5.."}[1m]))`)
	case len(q) > slipway.MaxPrometheusQuery:
		p.add(pp+".query", "is %d bytes, longer than the %d a query may be; record a rule in Prometheus and query it", len(q), slipway.MaxPrometheusQuery)
	}
	reductions := slipway.Reductions()
	if r := pm.Reduce; r != "" && !strings.Contains(r, "{{") && !slices.Contains(reductions, r) {
		p.add(pp+".reduce", "%q is not a reduction; use one of %s%s", r, orList(reductions), didYouMean(r, reductions))
	}
	if r := pm.Range; r != nil {
		rp := pp + ".range"
		switch {
		case r.Duration <= 0:
			p.add(rp+".duration", "%s is not a window; give how far back the range query looks, like 10m", r.Duration)
		case r.Step <= 0:
			p.add(rp+".step", "%s is not a step; give the time between the range query's points, like 30s", r.Step)
		case r.Step > r.Duration:
			p.add(rp+".step", "%s is longer than the range's duration %s; use a step of %s or less", r.Step, r.Duration, r.Duration)
		case r.Duration/r.Step > slipway.MaxPrometheusPoints:
			least := (r.Duration.D() + slipway.MaxPrometheusPoints - 1) / slipway.MaxPrometheusPoints
			if rem := least % time.Second; rem != 0 {
				least += time.Second - rem
			}
			p.add(rp+".step", "%s over %s is %d points, more than the %d Prometheus answers; use a step of %s or more",
				r.Step, r.Duration, r.Duration/r.Step, slipway.MaxPrometheusPoints, least)
		}
		if pm.Reduce == "" && pm.Compare == nil {
			p.add(pp+".reduce", "required with a range: a range query answers many points; use one of %s, like reduce: max", orList(reductions))
		}
	}
	checkPromCompare(p, pp, pm)
	if pm.Compare != nil {
		noConditions(p, path, m)
	}
	checkPromHeaders(p, pp, pm)
	nonNegative(p, pp+".timeout", pm.Timeout)
	if m.SuccessCondition == "" && m.FailureCondition == "" && pm.Compare == nil {
		p.add(path, "a prometheus metric needs a successCondition or a failureCondition (or compare); add one, like successCondition: result < 0.05")
	}
	texts[pp+".address"] = pm.Address
	texts[pp+".query"] = pm.Query
	if pm.Compare != nil {
		texts[pp+".compare.baseline"] = pm.Compare.Baseline
	}
	texts[pp+".reduce"] = pm.Reduce
	for k, v := range pm.Headers {
		texts[pp+".headers."+k] = v
	}
}

// checkPromAddress checks a Prometheus server's base URL: absolute http or https, without a
// query or fragment, unless a placeholder makes it known only when the run starts.
func checkPromAddress(p *problems, path, raw string) {
	switch {
	case raw == "":
		p.add(path, "required; give the server's base URL, like http://127.0.0.1:9090")
		return
	case strings.Contains(raw, "{{"):
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.add(path, "%q is not an http or https URL; use the server's base URL, like http://127.0.0.1:9090", raw)
	case u.RawQuery != "" || u.Fragment != "":
		p.add(path, "%q has a query or fragment; use the server's base URL, like http://127.0.0.1:9090 (the query goes in query)", raw)
	}
}

// checkPromHeaders checks the headers and the sources of header values of a Prometheus
// metric. Messages never quote a header's value, which may be a credential.
func checkPromHeaders(p *problems, pp string, pm *slipway.PrometheusMetric) {
	check := func(path, name string) {
		switch {
		case !headerName.MatchString(name):
			p.add(path, "%q is not a header name; use letters, digits and '-', like X-Scope-OrgID", name)
		case http.CanonicalHeaderKey(name) == "Content-Type" || http.CanonicalHeaderKey(name) == "Content-Length":
			p.add(path, "the query sets %s itself; remove it", name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(pm.Headers)) {
		path := pp + ".headers." + k
		check(path, k)
		if strings.ContainsAny(pm.Headers[k], "\r\n\x00") {
			p.add(path, "the value holds a line break or NUL; write it on one line")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(pm.HeadersFrom)) {
		path := pp + ".headersFrom." + k
		check(path, k)
		for h := range pm.Headers {
			if http.CanonicalHeaderKey(h) == http.CanonicalHeaderKey(k) {
				p.add(path, "%s is also in headers; set it in one of them", k)
			}
		}
		src := pm.HeadersFrom[k]
		switch {
		case src.Env == "" && src.File == "":
			p.add(path, "names no source; give env (a variable of the server) or file (an absolute path)")
		case src.Env != "" && src.File != "":
			p.add(path, "names both env and file; give one")
		case src.Env != "" && !envName.MatchString(src.Env):
			p.add(path+".env", "%q is not a variable name; use letters, digits and '_', like PROMETHEUS_TOKEN (placeholders are not expanded here)", src.Env)
		case src.File != "" && (!filepath.IsAbs(src.File) || strings.Contains(src.File, "{{")):
			p.add(path+".file", "%q is not an absolute path; give one, like /etc/slipway/prometheus-token (placeholders are not expanded here)", src.File)
		}
		if strings.ContainsAny(src.Prefix, "\r\n\x00") {
			p.add(path+".prefix", "holds a line break or NUL; write it on one line, like \"Bearer \"")
		}
	}
}

// checkPromCompare checks a comparison of the canary with a baseline: a range to sample
// both over, a baseline query, no reduce and no conditions (the comparison judges), a known
// direction, and figures in range.
func checkPromCompare(p *problems, pp string, pm *slipway.PrometheusMetric) {
	c := pm.Compare
	if c == nil {
		return
	}
	cp := pp + ".compare"
	if pm.Range == nil {
		p.add(cp, "needs a range: the samples compared are the range query's points, like range: {duration: 10m, step: 15s}")
	}
	if pm.Reduce != "" {
		p.add(pp+".reduce", "not with compare: every sample counts; remove reduce")
	}
	switch b := c.Baseline; {
	case strings.TrimSpace(b) == "":
		p.add(cp+".baseline", "required; the PromQL of the baseline's samples, like the query with the stable revision's labels")
	case len(b) > slipway.MaxPrometheusQuery:
		p.add(cp+".baseline", "is %d bytes, longer than the %d a query may be", len(b), slipway.MaxPrometheusQuery)
	}
	checkComparison(p, cp, c.Comparison)
}

// checkComparison checks a comparative judge's parameters (slipway.Comparison).
func checkComparison(p *problems, cp string, c slipway.Comparison) {
	if dirs := slipway.CompareDirections(); !slices.Contains(dirs, c.Direction) {
		p.add(cp+".direction", "%q is not a direction; use one of %s: the way the metric gets worse", c.Direction, orList(dirs))
	}
	if c.Confidence != 0 && !(c.Confidence >= 0.5 && c.Confidence < 1) {
		p.add(cp+".confidence", "%v is out of range; use 0.5 to below 1, like 0.95 (the default)", c.Confidence)
	}
	if !(c.Tolerance >= 0) || !(c.Margin >= 0) || math.IsInf(c.Tolerance, 0) || math.IsInf(c.Margin, 0) {
		p.add(cp, "tolerance and margin must be finite numbers at least 0")
	}
	if c.MinSamples != 0 && c.MinSamples < 3 {
		p.add(cp+".minSamples", "%d is too few to judge; use 3 or more (10 by default)", c.MinSamples)
	}
}

// noConditions refuses conditions on a metric a comparison judges.
func noConditions(p *problems, path string, m slipway.Metric) {
	if m.SuccessCondition != "" || m.FailureCondition != "" {
		p.add(path, "a metric with compare takes no successCondition or failureCondition: the comparison judges it")
	}
}
