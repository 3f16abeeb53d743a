package demo

import (
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/spec"
)

func TestFile_IsAValidCanaryOnTheBuiltinProvider(t *testing.T) {
	data := File("/opt/slip way/slipway", "127.0.0.1:18123", "v3", "0.2", Options{Analysis: AnalysisThreshold})
	set, err := spec.Parse("demo-v3.yaml", data)
	if err != nil {
		t.Fatalf("the demo's file does not parse: %v\n%s", err, data)
	}
	if len(set.Apps) != 1 || len(set.Templates) != 2 {
		t.Fatalf("the demo's file holds %d apps and %d templates, want 1 and 2", len(set.Apps), len(set.Templates))
	}
	a := set.Apps[0]
	wantArgs := []string{"demo-app", "--port", "${PORT}", "--version", "v3", "--error-rate", "0.2"}
	if a.Run.Command != "/opt/slip way/slipway" || strings.Join(a.Run.Args, " ") != strings.Join(wantArgs, " ") ||
		a.Replicas != Replicas || a.Version != "v3" || a.Traffic.Listen != "127.0.0.1:18123" {
		t.Errorf("app = %+v", a)
	}
	if c := a.Strategy.Canary; c == nil || len(c.Steps) != len(Steps(Options{})) {
		t.Errorf("canary steps = %+v, want %d", a.Strategy.Canary, len(Steps(Options{})))
	}
	if a.Analysis == nil || a.Analysis.StartingStep != 1 {
		t.Errorf("background analysis = %+v, want one from step 1", a.Analysis)
	}
	for _, tpl := range set.Templates {
		for _, m := range tpl.Metrics {
			b := m.Provider.Builtin
			if b == nil || b.Metric != slipway.BuiltinErrorRate || b.Revision != "{{canary.revision}}" || m.FailureLimit != 0 || m.SuccessCondition != "result < 0.05" {
				t.Errorf("template %s metric %s = %+v (builtin %+v)", tpl.Name, m.Name, m, b)
			}
		}
	}
}

func TestFile_SequentialAnalysisAtAGivenWeight(t *testing.T) {
	data := File("/opt/slipway", "127.0.0.1:18123", "v3", "0.2", Options{Weight: 10, Analysis: AnalysisSequential})
	set, err := spec.Parse("demo-v3.yaml", data)
	if err != nil {
		t.Fatalf("the demo's file does not parse: %v\n%s", err, data)
	}
	if c := set.Apps[0].Strategy.Canary; c == nil || c.Steps[0].SetWeight == nil || *c.Steps[0].SetWeight != 10 {
		t.Errorf("first step = %+v, want setWeight 10", c.Steps[0])
	}
	if a := set.Apps[0].Analysis; a == nil || a.StartingStep != 0 {
		t.Errorf("background analysis = %+v, want one from the start", a)
	}
	if len(set.Templates) != 2 {
		t.Fatalf("%d templates, want 2", len(set.Templates))
	}
	for _, tpl := range set.Templates {
		for _, m := range tpl.Metrics {
			b := m.Provider.Builtin
			if b == nil || b.Metric != slipway.BuiltinErrorRate || b.Sequential == nil || b.Sequential.Tolerance <= 0 || m.FailureLimit != 0 || m.SuccessCondition != "" {
				t.Errorf("template %s metric %s = %+v (builtin %+v)", tpl.Name, m.Name, m, b)
			}
		}
	}
}
