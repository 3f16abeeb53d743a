package spec

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

// maxNodes bounds the nodes one document may make the decoder visit, counting every use of an
// alias anew, so that a small file of nested aliases cannot make Parse run for ever.
const maxNodes = 100_000

// decoder turns one document's yaml.Node tree into a domain value, recording the node of
// every field path it visits and every type error and unknown field with its position.
type decoder struct {
	nodes  map[string]*yaml.Node
	errs   []issue
	budget int
}

func newDecoder() *decoder {
	return &decoder{nodes: map[string]*yaml.Node{}, budget: maxNodes}
}

// fail records a problem at n's position.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, issue{path: path, line: n.Line, col: n.Column, msg: fmt.Sprintf(format, args...)})
}

// field is one decodable field of a struct: its json name and reflect index path.
type field struct {
	name  string
	index []int
}

// fieldsOf lists t's fields by json name, flattening embedded structs without a tag as
// encoding/json does.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for _, sub := range fieldsOf(f.Type) {
				out = append(out, field{name: sub.name, index: append([]int{i}, sub.index...)})
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, field{name: name, index: []int{i}})
	}
	return out
}

var (
	durationType     = reflect.TypeFor[slipway.Duration]()
	intOrPercentType = reflect.TypeFor[slipway.IntOrPercent]()
	timeType         = reflect.TypeFor[time.Time]()
	nodeType         = reflect.TypeFor[*yaml.Node]()
	quantityType     = reflect.TypeFor[slipway.Quantity]()
)

// resolve follows aliases and charges the visit to the budget; it returns nil when the
// budget is spent (the error is recorded once).
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	d.budget--
	if d.budget == 0 {
		// Reported without a path so that it stands in for every check of the (partly
		// read) document.
		d.fail(n, "", "the document is too large or expands aliases too often; split it or use fewer aliases")
	}
	if d.budget <= 0 {
		return nil
	}
	return n
}

// decode fills v from n. skip names a struct field not accepted at this level (the name of
// an App or AnalysisTemplate, which lives in metadata).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path, skip string) {
	n = d.resolve(n, path)
	if n == nil {
		return
	}
	d.nodes[path] = n
	null := isNull(n)
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(n))
		return
	case t == durationType:
		if null {
			return
		}
		if n.Kind != yaml.ScalarNode || !slices.Contains([]string{"!!str", "!!int", "!!float"}, n.ShortTag()) {
			d.fail(n, path, "must be a duration like 30s, not %s", describe(n))
			return
		}
		dur, err := slipway.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%s", err.Error())
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	case t == timeType:
		if null {
			return
		}
		// YAML's own timestamps (2026-12-20T00:00:00Z unquoted) and quoted strings alike.
		if n.Kind != yaml.ScalarNode || !slices.Contains([]string{"!!str", "!!timestamp"}, n.ShortTag()) {
			d.fail(n, path, "must be a time like 2026-12-20T00:00:00Z, not %s", describe(n))
			return
		}
		at, err := time.Parse(time.RFC3339, n.Value)
		if err != nil {
			d.fail(n, path, "%q is not an RFC 3339 time; write it like 2026-12-20T00:00:00Z or 2026-12-20T00:00:00+01:00", n.Value)
			return
		}
		v.Set(reflect.ValueOf(at))
		return
	case t == quantityType:
		// A quantity is a string to Kubernetes, but cpu: 1 or memory: 1e9 are natural
		// to write; package validate checks the value.
		if null {
			return
		}
		if n.Kind != yaml.ScalarNode || !slices.Contains([]string{"!!str", "!!int", "!!float"}, n.ShortTag()) {
			d.fail(n, path, "must be a quantity like 250m, 1 or 512Mi, not %s", describe(n))
			return
		}
		v.SetString(n.Value)
		return
	case t == intOrPercentType:
		var p slipway.IntOrPercent
		var err error
		switch {
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
			p.Value, err = strconv.Atoi(n.Value)
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
			p, err = slipway.ParseIntOrPercent(n.Value)
		default:
			err = fmt.Errorf("must be a count like 1 or a percent like \"25%%\", not %s", describe(n))
		}
		if err != nil {
			if n.ShortTag() == "!!int" {
				err = fmt.Errorf("%s is too large", n.Value)
			}
			d.fail(n, path, "%s", err.Error())
			return
		}
		v.Set(reflect.ValueOf(p))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		v.Set(p)
		if null && (t.Elem().Kind() != reflect.Struct || t.Elem() == intOrPercentType) {
			// The field is there but empty: keep it set (so a step still has its kind)
			// and report it.
			d.fail(n, path, "needs a value; write %s", wanted(t.Elem()))
			return
		}
		if !null {
			d.decode(n, p.Elem(), path, skip)
		}
	case reflect.Struct:
		if null {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "must be a mapping of fields, not %s", describe(n))
			return
		}
		d.decodeStruct(n, v, path, skip)
	case reflect.Slice:
		if null {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list, not %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), "")
		}
		v.Set(s)
	case reflect.Map:
		if null {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "must be a mapping of names to values, not %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := d.resolve(n.Content[i], path)
			if k == nil {
				return
			}
			if k.Kind != yaml.ScalarNode || isNull(k) {
				d.fail(k, path, "keys must be names, not %s", describe(k))
				continue
			}
			kp := path + "." + k.Value
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.fail(k, kp, "%q is set twice; keep one", k.Value)
				continue
			}
			ev := reflect.New(t.Elem()).Elem()
			d.decode(n.Content[i+1], ev, kp, "")
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.String:
		if null {
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			if n.Kind == yaml.ScalarNode {
				d.fail(n, path, "must be a string, not %s; quote it: \"%s\"", describe(n), n.Value)
			} else {
				d.fail(n, path, "must be a string, not %s", describe(n))
			}
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if null {
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(n, path, "must be an integer, not %s", describe(n))
			return
		}
		var i int
		if err := n.Decode(&i); err != nil {
			d.fail(n, path, "%s is too large; use a smaller integer", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		if null {
			return
		}
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
			d.fail(n, path, "must be a number, not %s", describe(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "%s is not a finite number", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if null {
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, "must be true or false, not %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, "must be true or false, not %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		panic("spec: cannot decode into " + t.String())
	}
}

// decodeStruct fills the struct v from the mapping n, reporting unknown and repeated keys.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path, skip string) {
	fields := fieldsOf(v.Type())
	skipped := func(name string) bool { return skip != "" && slices.Contains(strings.Split(skip, ","), name) }
	var names []string
	for _, f := range fields {
		if !skipped(f.name) {
			names = append(names, f.name)
		}
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i], path)
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.fail(k, path, "field names must be plain words, not %s", describe(k))
			continue
		}
		kp := join(path, k.Value)
		if prev, ok := seen[k.Value]; ok {
			d.fail(k, kp, "is set twice (first at line %d); keep one", prev.Line)
			continue
		}
		seen[k.Value] = k
		idx := slices.IndexFunc(fields, func(f field) bool { return f.name == k.Value && !skipped(f.name) })
		if idx < 0 {
			d.errs = append(d.errs, unknownField(k, path, k.Value, names, skip))
			continue
		}
		d.decode(n.Content[i+1], v.FieldByIndex(fields[idx].index), kp, "")
	}
}

// unknownField reports key at path, suggesting the closest valid name.
func unknownField(k *yaml.Node, path, key string, valid []string, skip string) issue {
	is := issue{path: join(path, key), line: k.Line, col: k.Column, unknown: true}
	switch best := validate.Suggest(key, valid); {
	case skip != "" && slices.Contains(strings.Split(skip, ","), key):
		is.msg = fmt.Sprintf("unknown field %q; the %s goes in metadata.%s", key, key, key)
	case best != "":
		is.suggest = join(path, best)
		is.msg = fmt.Sprintf("unknown field %q; did you mean %q?", key, best)
	default:
		is.msg = fmt.Sprintf("unknown field %q; valid fields are %s", key, strings.Join(valid, ", "))
	}
	return is
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what the user wrote, for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return v
	case "!!int", "!!float":
		return "the number " + v
	case "!!str":
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), v)
}

// wanted names a value of type t for "needs a value; write X".
func wanted(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int:
		return "an integer"
	case reflect.Struct:
		if t == intOrPercentType {
			return "a count like 1 or a percent like \"25%\""
		}
	case reflect.Bool:
		return "true or false"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a value"
}
