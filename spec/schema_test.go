package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
)

// compileSchema compiles Schema() with a real JSON Schema validator.
func compileSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		tb.Fatalf("Schema() is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("slipway.json", doc); err != nil {
		tb.Fatal(err)
	}
	sch, err := c.Compile("slipway.json")
	if err != nil {
		tb.Fatalf("Schema() does not compile: %v", err)
	}
	return sch
}

// yamlDocs returns each non-empty document of a YAML stream as a JSON value the validator
// takes.
func yamlDocs(tb testing.TB, data []byte) []any {
	tb.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		j, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, j)
	}
}

// validFiles lists every YAML file of examples/ and testdata/valid/.
func validFiles(tb testing.TB) []string {
	tb.Helper()
	var files []string
	for _, root := range []string{"../examples", "testdata/valid"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if ext := filepath.Ext(p); err == nil && !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if len(files) < 8 {
		tb.Fatalf("found only %d valid files", len(files))
	}
	return files
}

func TestExamplesAndValid_LoadAndMatchSchema(t *testing.T) {
	sch := compileSchema(t)
	for _, f := range validFiles(t) {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range yamlDocs(t, data) {
				if err := sch.Validate(doc); err != nil {
					t.Errorf("document %d does not match the schema: %v", i, err)
				}
			}
		})
	}
	// Each example and each top-level entry of testdata/valid loads on its own.
	for _, p := range []string{"../examples/canary.yaml", "../examples/bluegreen.yaml", "../examples/rolling.yaml", "../examples"} {
		if _, err := Load(p); err != nil {
			t.Errorf("Load(%s): %v", p, err)
		}
	}
	entries, err := os.ReadDir("testdata/valid")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join("testdata/valid", e.Name())
		if _, err := Load(p); err != nil {
			t.Errorf("Load(%s): %v", p, err)
		}
	}
	set, err := Load("testdata/valid")
	if err != nil {
		t.Fatalf("Load(testdata/valid): %v", err)
	}
	if len(set.Apps) != 10 || len(set.Templates) != 9 {
		t.Errorf("testdata/valid holds %d apps and %d templates, want 10 and 9", len(set.Apps), len(set.Templates))
	}
}

func TestSchema_RejectsInvalidDocuments(t *testing.T) {
	sch := compileSchema(t)
	app := func(spec string) string {
		return envelope + "kind: App\nmetadata: {name: web}\nspec:\n" + spec
	}
	tests := map[string]string{
		"unknown kind":        envelope + "kind: Deployment\nmetadata: {name: web}\nspec: {}\n",
		"bad name":            envelope + "kind: App\nmetadata: {name: Web_1}\nspec: {run: {command: x}, strategy: {rolling: {}}}\n",
		"unknown field":       app("  replica: 3\n  run: {command: x}\n  strategy: {rolling: {}}\n"),
		"two strategies":      app("  run: {command: x}\n  strategy: {rolling: {}, canary: {steps: [{setWeight: 1}]}}\n"),
		"weight out of range": app("  run: {command: x}\n  strategy: {canary: {steps: [{setWeight: 150}]}}\n"),
		"step of two kinds":   app("  run: {command: x}\n  strategy: {canary: {steps: [{setWeight: 1, pause: {}}]}}\n"),
		"no run command":      app("  run: {args: [x]}\n  strategy: {rolling: {}}\n"),
		"string replicas":     app("  replicas: three\n  run: {command: x}\n  strategy: {rolling: {}}\n"),
		"bad duration":        app("  run: {command: x}\n  strategy: {rolling: {minReady: soon}}\n"),
		"probe of two kinds":  app("  run: {command: x}\n  health: {readiness: {http: {path: /}, tcp: {}}}\n  strategy: {rolling: {}}\n"),
		"bad noData": envelope + "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n" +
			"  metrics: [{name: m, noData: ignore, provider: {job: {command: x}}}]\n",
		"metric without provider": envelope + "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  metrics: [{name: m}]\n",
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			docs := yamlDocs(t, []byte(doc))
			if err := sch.Validate(docs[0]); err == nil {
				t.Error("the schema accepted the document")
			}
			if _, err := Parse("x.yaml", []byte(doc)); err == nil {
				t.Error("Parse accepted the document")
			}
		})
	}
}

// TestSchema_CoversEveryField walks the domain types beside the schema, so that a field
// added to App or AnalysisTemplate without a schema entry (or the reverse) fails here.
func TestSchema_CoversEveryField(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	defs := root["$defs"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		for {
			ref, ok := s["$ref"].(string)
			if !ok {
				return s
			}
			s = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
	}
	var walk func(path string, t reflect.Type, s map[string]any, skip string)
	walk = func(path string, typ reflect.Type, s map[string]any, skip string) {
		s = resolve(s)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch {
		case typ == reflect.TypeFor[time.Time]():
			if s["format"] != "date-time" {
				t.Errorf("%s: schema for a time has no format date-time", path)
			}
			return
		case typ == durationType || typ == intOrPercentType || typ == quantityType:
			if _, ok := s["anyOf"]; !ok {
				t.Errorf("%s: schema for %s has no anyOf", path, typ)
			}
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			props, _ := s["properties"].(map[string]any)
			var want, got []string
			for _, f := range fieldsOf(typ) {
				if !slices.Contains(strings.Split(skip, ","), f.name) {
					want = append(want, f.name)
				}
			}
			for k := range props {
				got = append(got, k)
			}
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s: schema properties %v, struct %s fields %v", path, got, typ, want)
				return
			}
			if s["additionalProperties"] != false {
				t.Errorf("%s: schema allows unknown fields", path)
			}
			for _, f := range fieldsOf(typ) {
				if !slices.Contains(strings.Split(skip, ","), f.name) {
					walk(path+"."+f.name, typ.FieldByIndex(f.index).Type, props[f.name].(map[string]any), "")
				}
			}
		case reflect.Slice:
			walk(path+"[]", typ.Elem(), s["items"].(map[string]any), "")
		case reflect.Map:
			walk(path+"{}", typ.Elem(), s["additionalProperties"].(map[string]any), "")
		case reflect.String:
			if s["type"] != "string" && s["enum"] == nil {
				t.Errorf("%s: schema type %v, want string", path, s["type"])
			}
		case reflect.Int:
			if s["type"] != "integer" {
				t.Errorf("%s: schema type %v, want integer", path, s["type"])
			}
		case reflect.Float64:
			if s["type"] != "number" {
				t.Errorf("%s: schema type %v, want number", path, s["type"])
			}
		case reflect.Bool:
			if s["type"] != "boolean" {
				t.Errorf("%s: schema type %v, want boolean", path, s["type"])
			}
		default:
			t.Errorf("%s: unexpected kind %s", path, typ.Kind())
		}
	}
	walk("Environment", reflect.TypeFor[slipway.Environment](), defs["environment"].(map[string]any), "name,labels")
	walk("App", reflect.TypeFor[slipway.App](), defs["app"].(map[string]any), "name,environment")
	walk("AnalysisTemplate", reflect.TypeFor[slipway.AnalysisTemplate](), defs["analysisTemplate"].(map[string]any), "name")
}
