package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

// errorText returns an EINVALID *slipway.Error as its message and details, one a line.
func errorText(tb testing.TB, err error) string {
	tb.Helper()
	var e *slipway.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error is %T (%v), want *slipway.Error", err, err)
	}
	if e.Code != slipway.EINVALID {
		tb.Fatalf("error code = %q, want %q", e.Code, slipway.EINVALID)
	}
	if len(e.Details) == 0 {
		tb.Fatalf("error %q has no details", e.Message)
	}
	return e.Message + "\n" + strings.Join(e.Details, "\n") + "\n"
}

func TestSet(t *testing.T) {
	// A set as the API receives it: JSON, with no positions.
	const body = `{
	  "apps": [
	    {"name": "web", "replicas": 2, "run": {"command": "./web"},
	     "strategy": {"canary": {"steps": [{"setWeight": 10}, {"analysis": {"templates": ["errors"]}}, {"setWeight": 150}]}}},
	    {"name": "", "run": {"command": "./x"}, "strategy": {"rolling": {"maxSurge": "25%"}}},
	    {"name": "web", "run": {"command": "./y"}, "strategy": {"blueGreen": {}}}
	  ],
	  "templates": [
	    {"name": "errors", "args": [{"name": "limit"}],
	     "metrics": [{"name": "e", "successCondition": "result <", "provider": {"web": {"url": "http://x/{{args.limit}}"}}}]}
	  ]
	}`
	var s slipway.Set
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	err := Set(s, nil)
	want := "5 errors in the set\n" +
		"App/web: spec.strategy.canary.steps[2].setWeight: 150 is out of range; use 0 to 100\n" +
		"App/web: spec.strategy.canary.steps[1].analysis.args: template \"errors\" needs argument \"limit\"; add {name: limit, value: ...}\n" +
		"App[1]: metadata.name: required; use lowercase letters, digits and '-', like web\n" +
		"App/web: metadata.name: App \"web\" is already defined; give each App its own name\n" +
		"AnalysisTemplate/errors: spec.metrics[0].successCondition: does not compile: 1:9: Syntax error: mismatched input '<EOF>'; write a CEL expression over result, like result < 0.05\n"
	got := errorText(t, err)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	t.Run("templateKnown resolves names outside the set", func(t *testing.T) {
		s := slipway.Set{Apps: []slipway.App{{Name: "web", Run: slipway.RunSpec{Command: "./web"},
			Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{
				{Analysis: &slipway.AnalysisRef{Templates: []string{"stored"}}}}}}}}}
		err := Set(s, nil)
		if got := errorText(t, err); !strings.Contains(got, `AnalysisTemplate "stored" is not defined`) {
			t.Errorf("without templateKnown: %s", got)
		}
		var asked []string
		known := func(name string) bool { asked = append(asked, name); return name == "stored" }
		if err := Set(s, known); err != nil {
			t.Errorf("with templateKnown: %v", err)
		}
		if len(asked) != 1 || asked[0] != "stored" {
			t.Errorf("templateKnown asked %v, want [stored]", asked)
		}
	})
}

// TestSet_Limits: replicas past any server's maximum and a version that is too long
// or holds control characters are refused offline, before a server is asked.
func TestSet_Limits(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		version  string
		want     string
	}{
		{1000000000, "v1", "spec.replicas: 1000000000 is more than slipway runs for one app; use at most 10000"},
		{1, strings.Repeat("v", 7<<20), "spec.version: version is 7340032 bytes long; use at most 128"},
		{1, "v1\x1b[2J", "spec.version: version has the control character U+001B"},
		{1, "v1\u202e", "spec.version: version has the control character U+202E"},
	} {
		s := slipway.Set{Apps: []slipway.App{{Name: "web", Replicas: tc.replicas, Version: tc.version, Run: slipway.RunSpec{Command: "./web"},
			Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}}}
		err := Set(s, nil)
		if got := errorText(t, err); !strings.Contains(got, tc.want) || len(got) > 1000 {
			t.Errorf("replicas %d, version %.10q: %.300s; want %q", tc.replicas, tc.version, got, tc.want)
		}
	}
}

func TestSet_FlagSets(t *testing.T) {
	good := slipway.FlagSet{ID: "a", Flags: map[string]slipway.Flag{"x": {State: slipway.FlagEnabled,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true")}}}}
	bad := slipway.FlagSet{ID: "b", Flags: map[string]slipway.Flag{
		"x": {State: slipway.FlagEnabled, Variants: map[string]json.RawMessage{"on": json.RawMessage("true")}},
		"y": {State: "MAYBE", Variants: map[string]json.RawMessage{"on": json.RawMessage("true")}},
	}}
	if err := Set(slipway.Set{FlagSets: []slipway.FlagSet{good}}, nil); err != nil {
		t.Fatalf("Set(good) = %v", err)
	}
	err := Set(slipway.Set{FlagSets: []slipway.FlagSet{good, bad, {ID: "no/slash", Flags: map[string]slipway.Flag{}}}}, nil)
	got := errorText(t, err)
	for _, want := range []string{
		`FlagSet/b: spec.flags.x: flag "x" is already declared by FlagSet "a"; declare each flag in one flag set`,
		`FlagSet/b: spec.flags.y.state: "MAYBE" is not a state; use ENABLED or DISABLED`,
		`FlagSet/no/slash: metadata.name: "no/slash" is not a valid flag set name`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

// TestDocuments_PlacesProblemsByDocument: problems name their document by index (two
// documents may share kind and name), point at another document through its Where, and
// leave flagd's rules to the reader that already checked them.
func TestDocuments_PlacesProblemsByDocument(t *testing.T) {
	app := func(name string) *slipway.App {
		return &slipway.App{Name: name, Run: slipway.RunSpec{Command: "./web"},
			Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}
	}
	badState := map[string]slipway.Flag{"x": {State: "MAYBE", Variants: map[string]json.RawMessage{"on": json.RawMessage("true")}}}
	where := func(file string) func(string) string {
		return func(path string) string { return file + ":" + path }
	}
	docs := []Document{
		{App: app("web"), Where: where("a.yaml")},
		{App: app("web"), Where: where("b.yaml")},
		{FlagSet: &slipway.FlagSet{ID: "plain", Flags: badState}, FlagRulesChecked: true, Where: where("plain.yaml")},
		{FlagSet: &slipway.FlagSet{ID: "bad/id", Flags: badState}, FlagPath: "spec"},
		{},
	}
	var got []string
	for _, p := range Documents(docs, nil) {
		got = append(got, fmt.Sprintf("%d %s/%s %s: %s", p.Doc, p.Kind, p.Name, p.Path, p.Message))
	}
	want := []string{
		`1 App/web metadata.name: App "web" is already defined at a.yaml:metadata.name; give each App its own name`,
		`3 FlagSet/bad/id metadata.name: "bad/id" is not a valid flag set name; use letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
		`3 FlagSet/bad/id spec.flags.x.state: "MAYBE" is not a state; use ENABLED or DISABLED`,
		`3 FlagSet/bad/id spec.flags.x: flag "x" is already declared by FlagSet "plain" at plain.yaml:flags.x; declare each flag in one flag set`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDocuments_FlagProblemPathsAreStructured: a flag set's problems keep package flags'
// field paths whole, even a name with ": " in it.
func TestDocuments_FlagProblemPathsAreStructured(t *testing.T) {
	fs := &slipway.FlagSet{ID: "s", Flags: map[string]slipway.Flag{},
		Evaluators: map[string]json.RawMessage{"a: b": json.RawMessage("{")}}
	found := Documents([]Document{{FlagSet: fs, FlagPath: "spec"}}, nil)
	if len(found) != 1 || found[0].Path != "spec.$evaluators.a: b" || !strings.HasPrefix(found[0].Message, "not valid JSON") {
		t.Errorf("problems = %+v, want one at spec.$evaluators.a: b", found)
	}
}
