package analysis

import (
	"testing"
	"time"

	"slipway.dev/slipway"
)

func TestNewFlagRun(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	tpl := slipway.AnalysisTemplate{
		Name: "variant-errors",
		Args: []slipway.TemplateArg{{Name: "max"}},
		Metrics: []slipway.Metric{{
			Name: "errors", SuccessCondition: "result < {{args.max}}",
			Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
				Metric: slipway.BuiltinOutcomeRate, Flag: "{{flag}}", Variant: "{{variant}}",
			}},
		}, {
			Name: "web", SuccessCondition: "result == 1",
			Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://127.0.0.1:1/check?flag={{flag}}&v={{variant}}"}},
		}},
	}
	templates := map[string]slipway.AnalysisTemplate{tpl.Name: tpl}
	ref := slipway.AnalysisRef{Templates: []string{"variant-errors"}, Args: []slipway.Arg{{Name: "max", Value: "0.05"}}}

	run, err := NewFlagRun("r1", 2, "checkout", "on", ref, templates, now)
	if err != nil {
		t.Fatal(err)
	}
	b := run.Metrics[0].Provider.Builtin
	if run.Kind != slipway.AnalysisRamp || run.Step != 2 || run.App != "" || run.Rollout != "" {
		t.Fatalf("run = %+v", run)
	}
	if b.Flag != "checkout" || b.Variant != "on" || b.App != "" || b.Revision != "" {
		t.Fatalf("builtin = %+v; want flag checkout, variant on, no app or revision", b)
	}
	if got := run.Metrics[1].Provider.Web.URL; got != "http://127.0.0.1:1/check?flag=checkout&v=on" {
		t.Fatalf("url = %q", got)
	}
	if run.Metrics[0].SuccessCondition != "result < 0.05" {
		t.Fatalf("condition = %q", run.Metrics[0].SuccessCondition)
	}

	t.Run("a proxy metric needs its app and revision outside a rollout", func(t *testing.T) {
		bad := slipway.AnalysisTemplate{Name: "proxy", Metrics: []slipway.Metric{{
			Name: "err", SuccessCondition: "result < 0.1",
			Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate}},
		}}}
		_, err := NewFlagRun("r2", 0, "checkout", "on", slipway.AnalysisRef{Templates: []string{"proxy"}},
			map[string]slipway.AnalysisTemplate{"proxy": bad}, now)
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("err = %v; want EINVALID", err)
		}
	})
	t.Run("rollout runs do not know flag variables", func(t *testing.T) {
		_, err := NewRun("r3", slipway.AnalysisStep, 0, slipway.Rollout{ID: "web-1", App: "web", To: "abc"}, "", ref, templates, now)
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("err = %v; want EINVALID ({{variant}} is unknown to a rollout)", err)
		}
	})
}
