package analysis

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func testRollout() slipway.Rollout {
	return slipway.Rollout{ID: "api-7", App: "api", From: "aaa111", FromVersion: "v1", To: "bbb222", ToVersion: "v2"}
}

func testTemplates() map[string]slipway.AnalysisTemplate {
	return map[string]slipway.AnalysisTemplate{
		"http": {
			Name: "http",
			Args: []slipway.TemplateArg{{Name: "host"}, {Name: "limit", Value: ptr("0.05")}},
			Metrics: []slipway.Metric{{
				Name:  "errors",
				Count: 3, Interval: slipway.Duration(1e9),
				Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{
					URL:      "http://{{args.host}}/stats?app={{app}}&rev={{ canary.revision }}",
					Method:   "POST",
					Headers:  map[string]string{"X-Stable": "{{stable.revision}}@{{stable.version}}"},
					Body:     `{"version":"{{canary.version}}"}`,
					JSONPath: "$.{{app}}.rate",
				}},
				SuccessCondition:      "result < {{args.limit}}",
				FailureCondition:      "result > 2.0 * {{args.limit}}",
				ConsecutiveErrorLimit: ptr(2),
			}},
		},
		"smoke": {
			Name: "smoke",
			Args: []slipway.TemplateArg{{Name: "suite", Value: ptr("{{app}}-smoke")}},
			Metrics: []slipway.Metric{{
				Name: "smoke",
				Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{
					Command: "/bin/{{args.suite}}",
					Args:    []string{"--target", "{{canary.revision}}"},
					Env:     map[string]string{"STABLE": "{{stable.version}}"},
				}},
				DryRun: true,
			}},
		},
	}
}

func TestNewRun_ExpandsArguments(t *testing.T) {
	templates := testTemplates()
	ref := slipway.AnalysisRef{Templates: []string{"http", "smoke"}, Args: []slipway.Arg{{Name: "host", Value: "127.0.0.1:9"}}}
	run, err := NewRun("api-7-step-2", slipway.AnalysisStep, 2, testRollout(), "", ref, templates, t0)
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != "api-7-step-2" || run.App != "api" || run.Rollout != "api-7" || run.Kind != slipway.AnalysisStep ||
		run.Step != 2 || run.Phase != slipway.VerdictRunning || !run.StartedAt.Equal(t0) || run.FinishedAt != nil {
		t.Errorf("run header = %+v", run)
	}
	if !reflect.DeepEqual(run.Templates, []string{"http", "smoke"}) {
		t.Errorf("templates = %v", run.Templates)
	}
	if len(run.Metrics) != 2 || len(run.Results) != 2 {
		t.Fatalf("metrics %d results %d, want 2 and 2", len(run.Metrics), len(run.Results))
	}
	w := run.Metrics[0].Provider.Web
	wantWeb := slipway.WebMetric{
		URL:      "http://127.0.0.1:9/stats?app=api&rev=bbb222",
		Method:   "POST",
		Headers:  map[string]string{"X-Stable": "aaa111@v1"},
		Body:     `{"version":"v2"}`,
		JSONPath: "$.api.rate",
	}
	if !reflect.DeepEqual(*w, wantWeb) {
		t.Errorf("web = %+v\nwant %+v", *w, wantWeb)
	}
	if m := run.Metrics[0]; m.SuccessCondition != "result < 0.05" || m.FailureCondition != "result > 2.0 * 0.05" || m.ErrorLimit() != 2 {
		t.Errorf("conditions = %q / %q, error limit %d", m.SuccessCondition, m.FailureCondition, m.ErrorLimit())
	}
	j := run.Metrics[1].Provider.Job
	if j.Command != "/bin/api-smoke" || !reflect.DeepEqual(j.Args, []string{"--target", "bbb222"}) || j.Env["STABLE"] != "v1" {
		t.Errorf("job = %+v", *j)
	}
	wantResults := []slipway.MetricResult{
		{Name: "errors", Phase: slipway.VerdictRunning},
		{Name: "smoke", Phase: slipway.VerdictRunning, DryRun: true},
	}
	if !reflect.DeepEqual(run.Results, wantResults) {
		t.Errorf("results = %+v", run.Results)
	}
	if !reflect.DeepEqual(templates, testTemplates()) {
		t.Error("NewRun changed the templates it was given")
	}
}

func TestNewRun_RefArgOverridesDefault(t *testing.T) {
	ref := slipway.AnalysisRef{Templates: []string{"http"}, Args: []slipway.Arg{{Name: "host", Value: "h"}, {Name: "limit", Value: "0.5"}}}
	run, err := NewRun("r", slipway.AnalysisBackground, 0, testRollout(), "", ref, testTemplates(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := run.Metrics[0].SuccessCondition; got != "result < 0.5" {
		t.Errorf("successCondition = %q, want the ref's limit", got)
	}
}

func TestNewRun_Errors(t *testing.T) {
	bad := testTemplates()
	tpl := bad["http"]
	tpl.Metrics = append([]slipway.Metric(nil), tpl.Metrics...)
	tpl.Metrics[0].SuccessCondition = "result <"
	bad["badcel"] = slipway.AnalysisTemplate{Name: "badcel", Args: tpl.Args, Metrics: tpl.Metrics}
	unknown := testTemplates()
	unknown["typo"] = slipway.AnalysisTemplate{Name: "typo", Metrics: []slipway.Metric{{
		Name: "t", Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://{{args.nope}}/{{canary.sha}}"}},
	}}}
	unknown["empty"] = slipway.AnalysisTemplate{Name: "empty"}
	unknown["notbool"] = slipway.AnalysisTemplate{Name: "notbool", Metrics: []slipway.Metric{{
		Name: "n", Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://x"}}, SuccessCondition: "1 + 2",
	}}}
	host := []slipway.Arg{{Name: "host", Value: "h"}}
	tests := []struct {
		name      string
		templates map[string]slipway.AnalysisTemplate
		ref       slipway.AnalysisRef
		code      string
		detail    string
	}{
		{"no template named", unknown, slipway.AnalysisRef{}, slipway.EINVALID, ""},
		{"unknown template", unknown, slipway.AnalysisRef{Templates: []string{"http", "nope"}, Args: host}, slipway.ENOTFOUND, ""},
		{"missing required argument", unknown, slipway.AnalysisRef{Templates: []string{"http"}}, slipway.EINVALID, `argument "host" is required`},
		{"argument no template declares", unknown, slipway.AnalysisRef{Templates: []string{"http"}, Args: append(host, slipway.Arg{Name: "hots", Value: "x"})}, slipway.EINVALID, `argument "hots" is declared by no template`},
		{"unknown argument in a metric", unknown, slipway.AnalysisRef{Templates: []string{"typo"}}, slipway.EINVALID, "unknown name {{args.nope}}"},
		{"unknown variable in a metric", unknown, slipway.AnalysisRef{Templates: []string{"typo"}}, slipway.EINVALID, "unknown name {{canary.sha}}"},
		{"duplicate metric name", unknown, slipway.AnalysisRef{Templates: []string{"http", "http"}, Args: host}, slipway.EINVALID, `metric "errors" is also in template http`},
		{"no metrics", unknown, slipway.AnalysisRef{Templates: []string{"empty"}}, slipway.EINVALID, "have no metrics"},
		{"condition does not compile", bad, slipway.AnalysisRef{Templates: []string{"badcel"}, Args: host}, slipway.EINVALID, "successCondition"},
		{"condition is not boolean", unknown, slipway.AnalysisRef{Templates: []string{"notbool"}}, slipway.EINVALID, "not bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRun("r", slipway.AnalysisStep, 0, testRollout(), "", tt.ref, tt.templates, t0)
			if code := slipway.ErrorCode(err); code != tt.code {
				t.Fatalf("error %v has code %q, want %q", err, code, tt.code)
			}
			if tt.detail != "" && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
		})
	}
}

func TestNewRun_ResolvesBuiltinMetrics(t *testing.T) {
	builtin := func(name, rev, app string) slipway.Metric {
		return slipway.Metric{Name: name, SuccessCondition: "result < 0.05", Provider: slipway.ProviderSpec{
			Builtin: &slipway.BuiltinMetric{Metric: "error_rate", Revision: rev, App: app, Window: slipway.Duration(2e9)},
		}}
	}
	templates := map[string]slipway.AnalysisTemplate{
		"proxy": {Name: "proxy", Metrics: []slipway.Metric{
			builtin("default", "", ""),
			builtin("canary", "canary", ""),
			builtin("stable", "stable", ""),
			builtin("placeholder", "{{stable.revision}}", "{{app}}"),
			builtin("explicit", "ccc333", "other"),
		}},
	}
	run, err := NewRun("r", slipway.AnalysisBackground, 0, testRollout(), "", slipway.AnalysisRef{Templates: []string{"proxy"}}, templates, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{ // metric: app, revision
		"default": {"api", "bbb222"}, "canary": {"api", "bbb222"}, "stable": {"api", "aaa111"},
		"placeholder": {"api", "aaa111"}, "explicit": {"other", "ccc333"},
	}
	for _, m := range run.Metrics {
		b := m.Provider.Builtin
		if got := [2]string{b.App, b.Revision}; got != want[m.Name] || b.Metric != "error_rate" || b.Window != slipway.Duration(2e9) {
			t.Errorf("metric %s: %+v, want app and revision %v", m.Name, *b, want[m.Name])
		}
	}
	if b := templates["proxy"].Metrics[0].Provider.Builtin; b.App != "" || b.Revision != "" {
		t.Errorf("NewRun changed the template it was given: %+v", *b)
	}

	// A first rollout has no stable revision to measure.
	first := testRollout()
	first.From, first.FromVersion = "", ""
	_, err = NewRun("r", slipway.AnalysisBackground, 0, first, "", slipway.AnalysisRef{Templates: []string{"proxy"}}, templates, t0)
	var se *slipway.Error
	if !errors.As(err, &se) || se.Code != slipway.EINVALID || !strings.Contains(strings.Join(se.Details, "\n"), "metric stable measures the stable revision, but the rollout has none") {
		t.Errorf("NewRun without a stable revision: %v (%+v)", err, se)
	}
}

// TestNewRun_ExpandsPrometheus gives a Prometheus query every template variable, the
// environment's among them, and leaves the sources of secret headers as they were written.
func TestNewRun_ExpandsPrometheus(t *testing.T) {
	templates := map[string]slipway.AnalysisTemplate{"prom": {
		Name: "prom",
		Args: []slipway.TemplateArg{{Name: "job", Value: ptr("{{app}}-job")}},
		Metrics: []slipway.Metric{{
			Name:             "canary-errors",
			SuccessCondition: "result < 0.05",
			Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{
				Address: "http://prom.{{environment}}:9090",
				Query: `sum(rate(http_requests_total{job="{{args.job}}",env="{{environment}}",app="{{app}}",` +
					`version="{{canary.version}}",revision="{{canary.revision}}",stable="{{stable.revision}}@{{stable.version}}"}[1m]))`,
				Reduce:      "sum",
				Range:       &slipway.PrometheusRange{Duration: slipway.Duration(time.Minute), Step: slipway.Duration(10 * time.Second)},
				Headers:     map[string]string{"X-Scope-OrgID": "{{environment}}"},
				HeadersFrom: map[string]slipway.HeaderSource{"Authorization": {Env: "TOKEN_{{app}}", Prefix: "Bearer "}},
			}},
		}},
	}}
	for _, tt := range []struct{ env, want string }{{"staging", "staging"}, {"", slipway.DefaultEnvironment}} {
		run, err := NewRun("r", slipway.AnalysisStep, 0, testRollout(), tt.env, slipway.AnalysisRef{Templates: []string{"prom"}}, templates, t0)
		if err != nil {
			t.Fatal(err)
		}
		p := run.Metrics[0].Provider.Prometheus
		wantQuery := `sum(rate(http_requests_total{job="api-job",env="` + tt.want + `",app="api",version="v2",revision="bbb222",stable="aaa111@v1"}[1m]))`
		if p.Query != wantQuery || p.Address != "http://prom."+tt.want+":9090" || p.Headers["X-Scope-OrgID"] != tt.want {
			t.Errorf("env %q: prometheus = %+v\nwant query %s", tt.env, *p, wantQuery)
		}
		if got := p.HeadersFrom["Authorization"]; got.Env != "TOKEN_{{app}}" {
			t.Errorf("headersFrom = %+v; want the source as written", got)
		}
		if p.Range == templates["prom"].Metrics[0].Provider.Prometheus.Range {
			t.Error("the run shares its range with the template")
		}
	}
}

// TestNewRun_RefusesComparingARevisionWithItself: a comparison or sequential test whose two
// sides are the same (the baseline written as {{canary.revision}}, the web baseline URL or
// the PromQL baseline the canary's own) can only ever pass; the run is refused, naming the
// metric, instead of promoting on a comparison that compares nothing.
func TestNewRun_RefusesComparingARevisionWithItself(t *testing.T) {
	cmp := slipway.Comparison{Direction: "increase"}
	for name, m := range map[string]slipway.Metric{
		"builtin compare with {{canary.revision}}": {Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinLatencyP95,
			Compare: &slipway.BuiltinCompare{Baseline: "{{canary.revision}}", Comparison: cmp}}}},
		"sequential test with {{canary.revision}}": {Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate,
			Sequential: &slipway.SequentialTest{Tolerance: 0.01, Baseline: "{{canary.revision}}"}}}},
		"sequential test of stable against stable": {Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate,
			Revision: slipway.BuiltinStable, Sequential: &slipway.SequentialTest{Tolerance: 0.01}}}},
		"web compare of one URL": {Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://lt/r?rev={{canary.revision}}", JSONPath: "$.l",
			Compare: &slipway.WebCompare{Baseline: "http://lt/r?rev={{ canary.revision }}", Comparison: cmp}}}},
		"prometheus compare of one query": {Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{Address: "http://p:9090",
			Query: `q{rev="{{canary.revision}}"}`, Range: &slipway.PrometheusRange{Duration: slipway.Duration(time.Minute), Step: slipway.Duration(time.Second)},
			Compare: &slipway.PrometheusCompare{Baseline: `q{rev="{{canary.revision}}"}`, Comparison: cmp}}}},
	} {
		m.Name, m.Count = "cmp", 1
		templates := map[string]slipway.AnalysisTemplate{"t": {Name: "t", Metrics: []slipway.Metric{m}}}
		_, err := NewRun("r", slipway.AnalysisStep, 0, testRollout(), "", slipway.AnalysisRef{Templates: []string{"t"}}, templates, t0)
		if slipway.ErrorCode(err) != slipway.EINVALID || !strings.Contains(err.Error(), "metric cmp compares") {
			t.Errorf("%s: %v; want EINVALID naming metric cmp and what it compares", name, err)
		}
	}
}

// TestNewRun_ExpandsThePrometheusBaselineQuery: a comparison's baseline PromQL takes the
// same placeholders as its query ({{baseline.revision}}, as docs/analysis.md writes it);
// left unexpanded, it matched no series and the metric could never measure.
func TestNewRun_ExpandsThePrometheusBaselineQuery(t *testing.T) {
	r := testRollout()
	r.Spec.Canary = &slipway.CanaryStrategy{Steps: []slipway.Step{{Experiment: &slipway.Experiment{Weight: 10, Duration: slipway.Duration(time.Minute)}}}}
	templates := map[string]slipway.AnalysisTemplate{"prom": {Name: "prom", Metrics: []slipway.Metric{{
		Name: "p95",
		Provider: slipway.ProviderSpec{Prometheus: &slipway.PrometheusMetric{
			Address: "http://prom:9090",
			Query:   `p95{app="{{app}}",revision="{{canary.revision}}"}`,
			Range:   &slipway.PrometheusRange{Duration: slipway.Duration(time.Minute), Step: slipway.Duration(time.Second)},
			Compare: &slipway.PrometheusCompare{Baseline: `p95{app="{{app}}",revision="{{ baseline.revision }}",stable="{{stable.revision}}"}`,
				Comparison: slipway.Comparison{Direction: "increase"}},
		}},
	}}}}
	run, err := NewRun("r", slipway.AnalysisStep, 0, r, "", slipway.AnalysisRef{Templates: []string{"prom"}}, templates, t0)
	if err != nil {
		t.Fatal(err)
	}
	c := run.Metrics[0].Provider.Prometheus.Compare
	if want := `p95{app="api",revision="aaa111-baseline-0.0",stable="aaa111"}`; c.Baseline != want {
		t.Errorf("baseline query %s, want %s", c.Baseline, want)
	}
	if c == templates["prom"].Metrics[0].Provider.Prometheus.Compare {
		t.Error("the run shares its comparison with the template")
	}
}
