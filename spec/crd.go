package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// CRDGroup and CRDVersion are the API group and version of slipway's custom resources; the
// documents of a file carry the same pair as their apiVersion.
const (
	CRDGroup   = "slipway.dev"
	CRDVersion = "v1alpha1"
)

// CRDKind is one kind of document served as a Kubernetes custom resource.
type CRDKind struct {
	Kind, Plural, Singular string
	// Def is the kind's spec in the schema's $defs.
	Def string
	// Short are kubectl's short names.
	Short []string
}

// CRDKinds are the kinds slipway serves as custom resources, in the order CRDs writes them.
var CRDKinds = []CRDKind{
	{Kind: "App", Plural: "apps", Singular: "app", Def: "app", Short: []string{"sapp"}},
	{Kind: "AnalysisTemplate", Plural: "analysistemplates", Singular: "analysistemplate", Def: "analysisTemplate", Short: []string{"sat"}},
	{Kind: "FlagSet", Plural: "flagsets", Singular: "flagset", Def: "flagSet", Short: []string{"sfs"}},
	{Kind: "Environment", Plural: "environments", Singular: "environment", Def: "environment", Short: []string{"senv"}},
}

// CRDs returns the CustomResourceDefinitions of CRDKinds as one YAML stream, made from
// Schema (one source of truth): each kind's spec is its schema translated into the
// structural OpenAPI v3 that Kubernetes accepts. Rules a structural schema cannot say
// (if/then, a value that may be a number or a string, types that differ between anyOf
// branches) are left to slipway's own validation, which judges every resource as it judges
// a file and reports a problem in the resource's status. An App has a status subresource and
// printer columns, so `kubectl get apps.slipway.dev` shows its rollout and `kubectl wait`
// works on its conditions.
func CRDs() ([]byte, error) {
	var root map[string]any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, fmt.Errorf("spec: schema: %w", err)
	}
	defs, _ := root["$defs"].(map[string]any)
	c := converter{defs: defs}
	var out bytes.Buffer
	for i, k := range CRDKinds {
		def, ok := defs[k.Def]
		if !ok {
			return nil, fmt.Errorf("spec: schema has no $defs/%s for %s", k.Def, k.Kind)
		}
		specSchema, err := c.convert(def, "#/$defs/"+k.Def, 0)
		if err != nil {
			return nil, fmt.Errorf("spec: %s: %w", k.Kind, err)
		}
		doc := crd(k, specSchema)
		if i > 0 {
			out.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// crd wraps a kind's spec schema in its CustomResourceDefinition.
func crd(k CRDKind, specSchema map[string]any) map[string]any {
	props := map[string]any{
		"apiVersion": map[string]any{"type": "string"},
		"kind":       map[string]any{"type": "string"},
		"metadata":   map[string]any{"type": "object"},
		"spec":       specSchema,
	}
	version := map[string]any{
		"name":    CRDVersion,
		"served":  true,
		"storage": true,
	}
	if k.Kind == "App" {
		props["status"] = appStatusSchema()
		version["subresources"] = map[string]any{"status": map[string]any{}}
		version["additionalPrinterColumns"] = []any{
			column("Phase", "string", ".status.phase"),
			column("Step", "string", ".status.stepText"),
			column("Weight", "integer", ".status.weight"),
			column("Stable", "string", ".status.stableVersion"),
			column("Canary", "string", ".status.canaryVersion"),
			column("Age", "date", ".metadata.creationTimestamp"),
		}
	}
	version["schema"] = map[string]any{"openAPIV3Schema": map[string]any{
		"description": fmt.Sprintf("A slipway %s; its spec is the spec of a slipway file's %s document.", k.Kind, k.Kind),
		"type":        "object",
		"required":    []any{"spec"},
		"properties":  props,
	}}
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata": map[string]any{
			"name":   k.Plural + "." + CRDGroup,
			"labels": map[string]any{"app.kubernetes.io/part-of": "slipway"},
		},
		"spec": map[string]any{
			"group": CRDGroup,
			"scope": "Namespaced",
			"names": map[string]any{
				"kind":       k.Kind,
				"listKind":   k.Kind + "List",
				"plural":     k.Plural,
				"singular":   k.Singular,
				"shortNames": toAny(k.Short),
				"categories": []any{"slipway"},
			},
			"versions": []any{version},
		},
	}
}

func column(name, typ, path string) map[string]any {
	return map[string]any{"name": name, "type": typ, "jsonPath": path}
}

// appStatusSchema is what slipway writes to an App's status subresource.
func appStatusSchema() map[string]any {
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"observedGeneration": integer,
			"phase":              str,
			"rollout":            str,
			"step":               integer,
			"steps":              integer,
			"stepText":           str,
			"weight":             integer,
			"weightApproximate":  map[string]any{"type": "boolean"},
			"stableRevision":     str,
			"stableVersion":      str,
			"canaryRevision":     str,
			"canaryVersion":      str,
			"reason":             str,
			"conditions": map[string]any{
				"type": "array",
				"items": map[string]any{
					"type":     "object",
					"required": []any{"type", "status"},
					"properties": map[string]any{
						"type":               str,
						"status":             str,
						"reason":             str,
						"message":            str,
						"lastTransitionTime": map[string]any{"type": "string", "format": "date-time"},
						"observedGeneration": integer,
					},
				},
				"x-kubernetes-list-type":     "map",
				"x-kubernetes-list-map-keys": []any{"type"},
			},
		},
	}
}

// converter translates JSON Schema 2020-12 nodes of the schema into structural OpenAPI v3.
type converter struct {
	defs map[string]any
}

// maxDepth bounds $ref expansion: the schema is not recursive, but a mistake must not loop.
const maxDepth = 64

// junctorForbidden are the keys a structural schema forbids inside anyOf, oneOf, allOf and
// not: they belong to the node itself.
var junctorForbidden = []string{"type", "description", "additionalProperties", "default", "nullable",
	"x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "items", "properties", "title"}

func (c converter) convert(v any, where string, depth int) (map[string]any, error) {
	out, err := c.node(v, where, depth)
	if err != nil {
		return nil, err
	}
	c.settleType(out)
	return out, nil
}

// node translates one node's keywords, resolving a $ref; convert then settles its type.
func (c converter) node(v any, where string, depth int) (map[string]any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: $ref nested deeper than %d", where, maxDepth)
	}
	in, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a schema node is %T, not an object", where, v)
	}
	n := maps.Clone(in)
	if ref, ok := n["$ref"].(string); ok {
		name, found := strings.CutPrefix(ref, "#/$defs/")
		def, ok := c.defs[name]
		if !found || !ok {
			return nil, fmt.Errorf("%s: unknown $ref %q", where, ref)
		}
		base, err := c.convert(def, "#/$defs/"+name, depth+1)
		if err != nil {
			return nil, err
		}
		delete(n, "$ref")
		sib, err := c.node(n, where, depth+1)
		if err != nil {
			return nil, err
		}
		maps.Copy(base, sib) // the referring node's own keywords (a description) win
		return base, nil
	}
	out := map[string]any{}
	for k, v := range n {
		switch k {
		case "$schema", "$id", "$defs", "title", "if", "then", "else", "unevaluatedProperties", "default", "format", "$comment":
		case "const":
			out["enum"] = []any{v}
		case "exclusiveMinimum", "exclusiveMaximum":
			f, ok := v.(float64)
			if !ok {
				return nil, fmt.Errorf("%s: %s is %T, not a number", where, k, v)
			}
			bound := map[string]string{"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}[k]
			out[bound] = f
			out[k] = true
		case "properties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				cp, err := c.convert(p, where+"/properties/"+name, depth+1)
				if err != nil {
					return nil, err
				}
				props[name] = cp
			}
			out[k] = props
		case "items":
			ci, err := c.convert(v, where+"/items", depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = ci
		case "additionalProperties":
			if b, ok := v.(bool); ok {
				if !b {
					continue // unknown fields: slipway's validation names them
				}
				out["x-kubernetes-preserve-unknown-fields"] = true
				continue
			}
			ca, err := c.convert(v, where+"/additionalProperties", depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = ca
		case "anyOf", "oneOf", "allOf":
			// handled below
		default:
			out[k] = v
		}
	}
	if t, ok := out["type"].([]any); ok {
		var types []string
		for _, x := range t {
			if s, _ := x.(string); s != "null" {
				types = append(types, s)
			} else {
				out["nullable"] = true
			}
		}
		if len(types) == 1 {
			out["type"] = types[0]
		} else {
			// A value of several types: any value, for slipway's validation to judge.
			delete(out, "type")
			delete(out, "nullable")
			out["x-kubernetes-preserve-unknown-fields"] = true
		}
	}
	for _, j := range []string{"anyOf", "oneOf", "allOf"} {
		branches, ok := n[j].([]any)
		if !ok {
			continue
		}
		if err := c.junctor(out, j, branches, where, depth); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// junctor translates anyOf, oneOf or allOf. Branches of one type keep their constraints
// (the type moves up to the node); branches of an integer and a string become
// x-kubernetes-int-or-string; branches of other differing types make the node accept any
// value, for slipway's validation to judge.
func (c converter) junctor(out map[string]any, j string, branches []any, where string, depth int) error {
	types := map[string]bool{}
	var kept []any
	for i, b := range branches {
		cb, err := c.convert(b, fmt.Sprintf("%s/%s/%d", where, j, i), depth+1)
		if err != nil {
			return err
		}
		if t, ok := cb["type"].(string); ok {
			types[t] = true
		}
		for _, k := range junctorForbidden {
			delete(cb, k)
		}
		if len(cb) > 0 {
			kept = append(kept, cb)
		}
	}
	own, _ := out["type"].(string)
	switch {
	case len(types) == 0 || (len(types) == 1 && (own == "" || types[own])):
		if own == "" && len(types) == 1 {
			out["type"] = slices.Collect(maps.Keys(types))[0]
		}
		if len(kept) > 0 {
			out[j] = kept
		}
	case len(types) == 2 && types["string"] && (types["integer"] || types["number"]):
		// A count or a percent, a duration as text or seconds: Kubernetes' int-or-string
		// (a duration's fraction of a second must then be written as text).
		delete(out, "type")
		out["x-kubernetes-int-or-string"] = true
	default:
		for _, k := range []string{"type", "properties", "items", "additionalProperties", "enum", "pattern"} {
			delete(out, k)
		}
		out["x-kubernetes-preserve-unknown-fields"] = true
	}
	return nil
}

// settleType gives a node the type a structural schema needs: from its enum's values, or
// object for properties, array for items; an object that lists no properties keeps every
// field (a map, JSON Logic), and a node with no type at all accepts any value.
func (c converter) settleType(out map[string]any) {
	if _, ok := out["type"]; ok || out["x-kubernetes-int-or-string"] == true {
		if out["type"] == "object" && out["properties"] == nil && out["additionalProperties"] == nil {
			out["x-kubernetes-preserve-unknown-fields"] = true
		}
		if out["properties"] != nil {
			delete(out, "additionalProperties")
		}
		return
	}
	switch {
	case out["properties"] != nil:
		out["type"] = "object"
		delete(out, "additionalProperties")
	case out["additionalProperties"] != nil:
		out["type"] = "object"
	case out["items"] != nil:
		out["type"] = "array"
	case out["enum"] != nil:
		if t := enumType(out["enum"].([]any)); t != "" {
			out["type"] = t
		}
	}
	if _, ok := out["type"]; !ok && out["x-kubernetes-int-or-string"] != true {
		out["x-kubernetes-preserve-unknown-fields"] = true
	}
}

// enumType is the one JSON type every value of an enum has ("" when they differ).
func enumType(values []any) string {
	t := ""
	for _, v := range values {
		var vt string
		switch x := v.(type) {
		case string:
			vt = "string"
		case bool:
			vt = "boolean"
		case float64:
			vt = "number"
			if x == float64(int64(x)) {
				vt = "integer"
			}
		default:
			return ""
		}
		if t != "" && t != vt {
			return ""
		}
		t = vt
	}
	return t
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
