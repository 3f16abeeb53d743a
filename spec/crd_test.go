package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// crdsFile is the generated file the install manifests ship.
var crdsFile = filepath.Join("..", "deploy", "kubernetes", "crds.yaml")

// TestCRDs_FileIsTheSchema keeps deploy/kubernetes/crds.yaml what CRDs makes of the schema:
// one source of truth. Regenerate with go test ./spec -run TestCRDs_FileIsTheSchema -update.
func TestCRDs_FileIsTheSchema(t *testing.T) {
	got, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(crdsFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crdsFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(crdsFile)
	if err != nil {
		t.Fatalf("read %s (run with -update to create it): %v", crdsFile, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the schema makes; run: go test ./spec -run TestCRDs_FileIsTheSchema -update", crdsFile)
	}
}

// TestCRDs_AreStructural checks the rules Kubernetes holds a CRD's schema to (the real API
// server checks them again in the Kubernetes end-to-end tests): every node has a type, or
// says it keeps unknown fields or is an int-or-string; anyOf, oneOf and allOf hold only
// value constraints; no JSON Schema keyword OpenAPI v3 lacks.
func TestCRDs_AreStructural(t *testing.T) {
	data, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	kinds := 0
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		kinds++
		spec := doc["spec"].(map[string]any)
		v := spec["versions"].([]any)[0].(map[string]any)
		root := v["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
		checkStructural(t, doc["metadata"].(map[string]any)["name"].(string), root, false)
	}
	if kinds != len(CRDKinds) {
		t.Fatalf("%d CRDs, want %d", kinds, len(CRDKinds))
	}
}

func checkStructural(t *testing.T, where string, n map[string]any, inJunctor bool) {
	t.Helper()
	for k := range n {
		switch k {
		case "$ref", "$defs", "$schema", "const", "if", "then", "else", "unevaluatedProperties", "title":
			t.Errorf("%s: keyword %s is not OpenAPI v3", where, k)
		}
	}
	if inJunctor {
		for _, k := range junctorForbidden {
			if _, ok := n[k]; ok {
				t.Errorf("%s: %s inside a junctor", where, k)
			}
		}
	} else if n["type"] == nil && n["x-kubernetes-preserve-unknown-fields"] != true && n["x-kubernetes-int-or-string"] != true {
		t.Errorf("%s: no type", where)
	}
	if _, ok := n["exclusiveMinimum"].(bool); !ok && n["exclusiveMinimum"] != nil {
		t.Errorf("%s: exclusiveMinimum is not a boolean", where)
	}
	if n["properties"] != nil && n["additionalProperties"] != nil {
		t.Errorf("%s: properties and additionalProperties together", where)
	}
	// The API server itself fills a resource's metadata: it is declared as a bare object.
	if n["type"] == "object" && n["properties"] == nil && n["additionalProperties"] == nil && n["x-kubernetes-preserve-unknown-fields"] != true && !strings.HasSuffix(where, ".metadata") {
		t.Errorf("%s: an object with no properties would lose every field", where)
	}
	if p, ok := n["properties"].(map[string]any); ok {
		for name, c := range p {
			checkStructural(t, where+"."+name, c.(map[string]any), false)
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if c, ok := n[k].(map[string]any); ok {
			checkStructural(t, where+"."+k, c, false)
		}
	}
	for _, j := range []string{"anyOf", "oneOf", "allOf"} {
		if bs, ok := n[j].([]any); ok {
			for i, b := range bs {
				checkStructural(t, fmt.Sprintf("%s.%s[%d]", where, j, i), b.(map[string]any), true)
			}
		}
	}
}
