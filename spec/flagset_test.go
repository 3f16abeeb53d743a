package spec

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

func TestLoad_FlagSetDocument(t *testing.T) {
	set, err := Load("../examples/flags.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.FlagSets) != 1 || len(set.Apps)+len(set.Templates) != 0 {
		t.Fatalf("Load = %+v, want one flag set", set)
	}
	fs := set.FlagSets[0]
	if fs.ID != "shop" || len(fs.Flags) != 3 || fs.Metadata["team"] != "checkout" || len(fs.Evaluators) != 1 {
		t.Errorf("flag set = %+v", fs)
	}
	f := fs.Flags["new-checkout"]
	if f.State != slipway.FlagEnabled || f.DefaultVariant == nil || *f.DefaultVariant != "off" ||
		!strings.Contains(string(f.Targeting), `"$ref":"staff"`) || f.Metadata["owner"] != "ann" {
		t.Errorf("new-checkout = %+v (targeting %s)", f, f.Targeting)
	}
	if err := validate.Set(set, nil); err != nil {
		t.Errorf("validate.Set of a loaded set: %v", err)
	}
}

func TestLoad_PlainFlagdFiles(t *testing.T) {
	set, err := Load("testdata/flagd/web.flagd.json", "testdata/flagd/plain.yaml", "../examples/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.FlagSets) != 2 || len(set.Apps) != 1 {
		t.Fatalf("Load = %d flag sets, %d apps; want 2 and 1", len(set.FlagSets), len(set.Apps))
	}
	ids := []string{set.FlagSets[0].ID, set.FlagSets[1].ID}
	if ids[0] != "web-flags" || ids[1] != "plain" {
		t.Errorf("flag set IDs = %v, want [web-flags plain] (metadata.flagSetId, then the file name)", ids)
	}
	t.Run("errors carry file:line:col", func(t *testing.T) {
		_, err := Load("testdata/flagd/bad.flagd.json")
		got := errorText(t, err)
		want := "3 errors in testdata/flagd/bad.flagd.json\n" +
			"testdata/flagd/bad.flagd.json:4:16: flags.dark-mode.state: \"ON\" is not a state; use ENABLED or DISABLED\n" +
			"testdata/flagd/bad.flagd.json:5:26: flags.dark-mode.variants.on: is a boolean, but variant \"off\" is a string; all variants must have one type\n" +
			"testdata/flagd/bad.flagd.json:6:25: flags.dark-mode.defaultVariant: \"maybe\" names no variant; use one of off, on\n"
		if got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("a flag in two files", func(t *testing.T) {
		_, err := Load("testdata/flagd/plain.yaml", "testdata/flagd/plain.yaml")
		got := errorText(t, err)
		if !strings.Contains(got, `flags.greeting: flag "greeting" is already declared by FlagSet "plain" at testdata/flagd/plain.yaml:2:3`) {
			t.Errorf("got:\n%s", got)
		}
	})
}

func TestSchema_FlagSet(t *testing.T) {
	sch := compileSchema(t)
	doc := func(name, spec string) string {
		return envelope + "kind: FlagSet\nmetadata: {name: " + name + "}\nspec:\n" + spec
	}
	good := doc("Web.flags_1", "  flags:\n    x: {state: ENABLED, variants: {a: 1, b: 2}, defaultVariant: a, targeting: {if: [true, b]}}\n")
	if err := sch.Validate(yamlDocs(t, []byte(good))[0]); err != nil {
		t.Errorf("schema rejects a good flag set: %v", err)
	}
	if _, err := Parse("x.yaml", []byte(good)); err != nil {
		t.Errorf("Parse rejects a good flag set: %v", err)
	}
	tests := map[string]string{
		"bad name":        doc("a/b", "  flags: {}\n"),
		"no flags":        doc("w", "  metadata: {team: web}\n"),
		"unknown field":   doc("w", "  flags: {}\n  extra: 1\n"),
		"bad state":       doc("w", "  flags:\n    x: {state: ON, variants: {a: 1}}\n"),
		"mixed variants":  doc("w", "  flags:\n    x: {state: ENABLED, variants: {a: 1, b: x}}\n"),
		"no variants":     doc("w", "  flags:\n    x: {state: ENABLED, variants: {}}\n"),
		"unknown in flag": doc("w", "  flags:\n    x: {state: ENABLED, variants: {a: 1}, colour: red}\n"),
		"object metadata": doc("w", "  metadata: {owner: {name: ann}}\n  flags: {}\n"),
	}
	for name, d := range tests {
		t.Run(name, func(t *testing.T) {
			if err := sch.Validate(yamlDocs(t, []byte(d))[0]); err == nil {
				t.Error("the schema accepted the document")
			}
			if _, err := Parse("x.yaml", []byte(d)); err == nil {
				t.Error("Parse accepted the document")
			}
		})
	}
	// The flag schema names exactly the fields of slipway.Flag.
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	props := root["$defs"].(map[string]any)["flag"].(map[string]any)["properties"].(map[string]any)
	var want []string
	for _, f := range fieldsOf(reflect.TypeFor[slipway.Flag]()) {
		want = append(want, f.name)
	}
	got := slices.Sorted(maps.Keys(props))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("flag schema properties %v, slipway.Flag fields %v", got, want)
	}
}
