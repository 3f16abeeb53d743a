package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

func TestLoad_FlagRamp(t *testing.T) {
	set, err := Load("../examples/ramp/ramp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.FlagSets) != 1 || len(set.Templates) != 1 {
		t.Fatalf("Load = %+v", set)
	}
	r := set.FlagSets[0].Flags["new-payment"].Ramp
	if r == nil || r.Variant != "on" || len(r.Steps) != 5 || r.Steps[1].Weight != 5 || r.Steps[1].Pause.D().Minutes() != 2 ||
		r.Analysis == nil || r.Analysis.Templates[0] != "variant-errors" {
		t.Fatalf("ramp = %+v", r)
	}
	b := set.Templates[0].Metrics[0].Provider.Builtin
	if b.Metric != slipway.BuiltinOutcomeRate || b.Variant != "{{variant}}" || b.Flag != "{{flag}}" {
		t.Fatalf("builtin = %+v", b)
	}
	if err := validate.Set(set, nil); err != nil {
		t.Fatalf("validate.Set: %v", err)
	}

	t.Run("problems carry file:line", func(t *testing.T) {
		dir := t.TempDir()
		bad := strings.NewReplacer(
			`variant: "on"`+"\n        steps:", `variant: "maybe"`+"\n        steps:",
			"{weight: 5, pause: 2m}", "{weight: 5, pause: 2m, speed: 3}",
			"{weight: 50, pause: 5m}", "{weight: 20, pause: 5m}",
			"templates: [variant-errors]", "templates: [no-such]",
			`outcome: error`, `outcome: Error`,
		).Replace(mustRead(t, "../examples/ramp/ramp.yaml"))
		path := filepath.Join(dir, "ramp.yaml")
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		got := errorText(t, err)
		for _, want := range []string{
			"ramp.yaml:46:18: spec.flags.new-payment.ramp.variant: \"maybe\" is not a variant",
			"spec.flags.new-payment.ramp.steps[1].speed",
			"spec.flags.new-payment.ramp.steps[3].weight: 20 does not increase on 25",
			"spec.flags.new-payment.ramp.analysis",
			"spec.metrics[0].provider.builtin.outcome: \"Error\" is not an outcome name",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("errors lack %q:\n%s", want, got)
			}
		}
	})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
