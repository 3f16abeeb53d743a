// Package flagfile reads flag files in flagd's format
// (https://flagd.dev/schema/v0/flags.json), as JSON or YAML, into a slipway.FlagSet, placing
// every problem at its line and column. Package flags holds the rules (flags.Check) and
// evaluates the sets; keeping the reader apart leaves flags, and the engine above it, free of
// the YAML parser.
//
// Start reading at Parse (this file); ParseNode (node.go) reads a flag set already parsed as
// part of a slipway file (package spec).
package flagfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// Parse reads a flag file in flagd's format (https://flagd.dev/schema/v0/flags.json), as JSON
// or YAML: "$schema", set "metadata", "flags" (an object keyed by flag key, or flagd's array
// of objects with a "key"), and "$evaluators" referenced from targeting as {"$ref": "name"}.
// name is used in error messages and, when metadata.flagSetId is absent, as the set's ID
// (its base name without extension).
//
// It checks everything flags.Compile checks and returns every problem at once as an
// *slipway.Error with code EINVALID whose Details read "name:line:col: path: message". The
// returned FlagSet keeps targeting as written ($refs included); flags.Compile resolves them.
func Parse(name string, data []byte) (slipway.FlagSet, error) {
	p := &parser{name: name}
	fs := p.parse(data)
	if p.root == nil || p.root.Kind != yaml.MappingNode {
		return slipway.FlagSet{}, p.err()
	}
	for _, pr := range flags.Check(fs) {
		p.addAt(p.locate(pr.Path), pr.Path, "%s", pr.Message)
	}
	if len(p.details) > 0 {
		return slipway.FlagSet{}, p.err()
	}
	return fs, nil
}

type detail struct {
	line, col int
	text      string
	// path and msg are the parts of text after the position (for ParseNode).
	path, msg string
}

type parser struct {
	name    string
	root    *yaml.Node
	flags   map[string]*yaml.Node // flag key -> its definition node, for either form
	details []detail
	nodes   int // YAML nodes converted so far, to bound alias expansion
}

// yamlLine splits yaml.v3's "line N: message" errors.
var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// maxNodes bounds how many values a file may expand to (aliases included).
const maxNodes = 1 << 20

func (p *parser) err() error {
	slices.SortStableFunc(p.details, func(a, b detail) int {
		if a.line != b.line {
			return a.line - b.line
		}
		if a.col != b.col {
			return a.col - b.col
		}
		return strings.Compare(a.text, b.text)
	})
	out := make([]string, 0, len(p.details))
	for _, d := range p.details {
		if len(out) > 0 && out[len(out)-1] == d.text {
			continue
		}
		out = append(out, d.text)
	}
	return &slipway.Error{
		Code:    slipway.EINVALID,
		Message: fmt.Sprintf("%s: invalid flag file", p.name),
		Details: out,
	}
}

// addAt records a problem at node n (nil: no position).
func (p *parser) addAt(n *yaml.Node, path []any, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	ps := flags.Problem{Path: path}.Field()
	if ps != "" {
		msg = ps + ": " + msg
	}
	d := detail{text: p.name + ": " + msg, path: ps, msg: fmt.Sprintf(format, args...)}
	if n != nil {
		d.line, d.col = n.Line, n.Column
		d.text = fmt.Sprintf("%s:%d:%d: %s", p.name, n.Line, n.Column, msg)
	}
	p.details = append(p.details, d)
}

func (p *parser) parse(data []byte) slipway.FlagSet {
	fs := slipway.FlagSet{Flags: map[string]slipway.Flag{}}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		p.addAt(nil, nil, "the file is empty; it needs a \"flags\" object")
		return fs
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		// JSON: check the syntax with encoding/json for exact messages; YAML then reads it
		// (JSON is YAML) to give every value a line and column.
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line, col := lineCol(data, se.Offset)
				p.details = append(p.details, detail{line: line, col: col, text: fmt.Sprintf("%s:%d:%d: %v", p.name, line, col, err), msg: err.Error()})
			} else {
				p.addAt(nil, nil, "%v", err)
			}
			return fs
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			p.details = append(p.details, detail{line: line, text: fmt.Sprintf("%s:%d: %s", p.name, line, m[2]), msg: m[2]})
		} else {
			p.addAt(nil, nil, "%s", msg)
		}
		return fs
	}
	if len(doc.Content) == 0 {
		p.addAt(nil, nil, "the file is empty; it needs a \"flags\" object")
		return fs
	}
	return p.parseRoot(resolveAlias(doc.Content[0]))
}

// parseRoot decodes the set from its root node.
func (p *parser) parseRoot(root *yaml.Node) slipway.FlagSet {
	fs := slipway.FlagSet{Flags: map[string]slipway.Flag{}}
	p.root = root
	p.flags = map[string]*yaml.Node{}
	if root.Kind != yaml.MappingNode {
		p.addAt(root, nil, "a flag file is an object with \"flags\", not %s", kindName(root))
		return fs
	}
	seenFlags := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolveAlias(root.Content[i+1])
		switch k.Value {
		case "$schema":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
				p.addAt(v, []any{"$schema"}, "must be a string URL")
			}
		case "metadata":
			fs.Metadata = p.metadata(v, []any{"metadata"})
		case "flags":
			seenFlags = true
			p.parseFlags(v, &fs)
		case "$evaluators":
			fs.Evaluators = p.evaluators(v)
		default:
			p.addAt(k, []any{k.Value}, "unknown field; use $schema, metadata, flags or $evaluators")
		}
	}
	if !seenFlags {
		p.addAt(root, nil, "\"flags\" is required")
	}
	fs.ID = filepath.Base(p.name)
	fs.ID = strings.TrimSuffix(fs.ID, filepath.Ext(fs.ID))
	if id, ok := fs.Metadata["flagSetId"].(string); ok && id != "" {
		fs.ID = id
	}
	return fs
}

func (p *parser) parseFlags(v *yaml.Node, fs *slipway.FlagSet) {
	switch v.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			key := v.Content[i].Value
			def := resolveAlias(v.Content[i+1])
			p.flags[key] = def
			if f, ok := p.flag(key, def, []any{"flags", key}, false); ok {
				fs.Flags[key] = f
			}
		}
	case yaml.SequenceNode:
		for i, el := range v.Content {
			el = resolveAlias(el)
			path := []any{"flags", i}
			if el.Kind != yaml.MappingNode {
				p.addAt(el, path, "a flag is an object, not %s", kindName(el))
				continue
			}
			keyNode := mapValue(el, "key")
			if keyNode == nil || keyNode.Kind != yaml.ScalarNode || keyNode.Value == "" {
				p.addAt(el, path, "a flag in the array form needs a \"key\"")
				continue
			}
			key := keyNode.Value
			if _, dup := p.flags[key]; dup {
				p.addAt(keyNode, path, "flag %q is defined twice", key)
				continue
			}
			p.flags[key] = el
			if f, ok := p.flag(key, el, []any{"flags", key}, true); ok {
				fs.Flags[key] = f
			}
		}
	default:
		p.addAt(v, []any{"flags"}, "must be an object keyed by flag key (or an array of flags), not %s", kindName(v))
	}
}

// flag decodes one flag definition; the semantic rules are checked by compileFlag.
func (p *parser) flag(key string, n *yaml.Node, path []any, arrayForm bool) (slipway.Flag, bool) {
	f := slipway.Flag{Key: key}
	if n.Kind != yaml.MappingNode {
		p.addAt(n, path, "a flag is an object with state, variants and defaultVariant, not %s", kindName(n))
		return f, false
	}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		fp := append(slices.Clone(path), k.Value)
		switch k.Value {
		case "key":
			if !arrayForm {
				p.addAt(k, fp, "unknown field; use state, variants, defaultVariant, targeting or metadata")
			}
		case "state":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
				p.addAt(v, fp, "must be ENABLED or DISABLED")
				ok = false
				continue
			}
			f.State = slipway.FlagState(v.Value)
		case "variants":
			if v.Kind != yaml.MappingNode {
				p.addAt(v, fp, "must be an object of variant name to value, not %s", kindName(v))
				ok = false
				continue
			}
			f.Variants = map[string]json.RawMessage{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				raw, good := p.rawJSON(v.Content[j+1], append(slices.Clone(fp), v.Content[j].Value))
				ok = ok && good
				f.Variants[v.Content[j].Value] = raw
			}
		case "defaultVariant":
			switch {
			case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			case v.Kind == yaml.ScalarNode:
				s := v.Value
				f.DefaultVariant = &s
			default:
				p.addAt(v, fp, "must be a variant name or null, not %s", kindName(v))
				ok = false
			}
		case "targeting":
			raw, good := p.rawJSON(v, fp)
			ok = ok && good
			f.Targeting = raw
		case "metadata":
			f.Metadata = p.metadata(v, fp)
		default:
			// Reported, but the flag is still checked so that every problem shows at once.
			p.addAt(k, fp, "unknown field; use state, variants, defaultVariant, targeting or metadata")
		}
	}
	return f, ok
}

func (p *parser) metadata(n *yaml.Node, path []any) map[string]any {
	if n.Kind != yaml.MappingNode {
		p.addAt(n, path, "must be an object of strings, numbers and booleans, not %s", kindName(n))
		return nil
	}
	// Every value is kept: flags.Check says which are not strings, numbers or booleans.
	m := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, resolveAlias(n.Content[i+1])
		if val, ok := p.value(v, append(slices.Clone(path), k)); ok {
			m[k] = val
		}
	}
	return m
}

func (p *parser) evaluators(n *yaml.Node) map[string]json.RawMessage {
	if n.Kind != yaml.MappingNode {
		p.addAt(n, []any{"$evaluators"}, "must be an object of name to JSON Logic rule, not %s", kindName(n))
		return nil
	}
	out := map[string]json.RawMessage{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		raw, ok := p.rawJSON(n.Content[i+1], []any{"$evaluators", n.Content[i].Value})
		if ok {
			out[n.Content[i].Value] = raw
		}
	}
	return out
}

func (p *parser) rawJSON(n *yaml.Node, path []any) (json.RawMessage, bool) {
	v, ok := p.value(n, path)
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.addAt(n, path, "cannot be written as JSON: %v", err)
		return nil, false
	}
	return b, true
}

// value converts a YAML node to a JSON value (numbers as float64, like encoding/json).
func (p *parser) value(n *yaml.Node, path []any) (any, bool) {
	n = resolveAlias(n)
	p.nodes++
	if p.nodes > maxNodes {
		if p.nodes == maxNodes+1 {
			p.addAt(n, path, "the file expands to more than %d values", maxNodes)
		}
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				p.addAt(k, path, "object keys must be strings")
				ok = false
				continue
			}
			v, good := p.value(n.Content[i+1], append(slices.Clone(path), k.Value))
			ok = ok && good
			m[k.Value] = v
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		ok := true
		for i, el := range n.Content {
			v, good := p.value(el, append(slices.Clone(path), i))
			ok = ok && good
			l[i] = v
		}
		return l, ok
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.addAt(n, path, "%v", err)
				return nil, false
			}
			return b, true
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				p.addAt(n, path, "%v", err)
				return nil, false
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				p.addAt(n, path, "%s is not a JSON number", n.Value)
				return nil, false
			}
			return f, true
		default:
			return n.Value, true
		}
	}
	p.addAt(n, path, "unsupported YAML node")
	return nil, false
}

// locate finds the node a problem path points at, or the deepest node on the way.
func (p *parser) locate(path []any) *yaml.Node {
	n := p.root
	rest := path
	if len(path) >= 2 && path[0] == "flags" {
		if key, ok := path[1].(string); ok {
			if fn := p.flags[key]; fn != nil {
				n, rest = fn, path[2:]
			}
		}
	}
	for _, el := range rest {
		if n == nil {
			return nil
		}
		n = resolveAlias(n)
		var next *yaml.Node
		switch x := el.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				next = mapValue(n, x)
			}
		case int:
			if n.Kind == yaml.SequenceNode && x < len(n.Content) {
				next = n.Content[x]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "an array"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string " + strconv.Quote(n.Value)
	}
	return "an alias"
}

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}
