package spec

import (
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flagfile"
)

// A FlagSet document's spec is a flag set in flagd's flag file format
// (https://flagd.dev/schema/v0/flags.json), read and checked by package flagfile (by package
// flags' rules), so that a flagd file and a FlagSet document obey the same rules. A file that
// is nothing but a flagd flag file (a top-level "flags" and no apiVersion) is read as one
// FlagSet too.

// plainFlagFile reports whether n, the first document of a file, is a plain flagd flag file.
func plainFlagFile(n *yaml.Node) bool {
	root := n
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return false
	}
	hasFlags := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "apiVersion", "kind":
			return false
		case "flags":
			hasFlags = true
		}
	}
	return hasFlags
}

// decodePlainFlagFile reads a plain flagd flag file as one FlagSet named by its
// metadata.flagSetId, or else by the file's base name without extension.
func decodePlainFlagFile(file string, n *yaml.Node) (*document, []issue) {
	root := n
	if root.Kind == yaml.DocumentNode {
		root = root.Content[0]
	}
	id := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	d := &document{kind: slipway.KindFlagSet, name: id, file: file, root: root}
	dec := newDecoder()
	decodeFlagSet(d, dec, root, "")
	for i := range dec.errs {
		dec.errs[i].file = file
	}
	d.decodeErrs = dec.errs
	d.nodes = dec.nodes
	return d, nil
}

// decodeFlagSet reads the flag set body n into d. path is the body's field path ("spec", or
// "" for a plain flagd file); problems are recorded in dec with their positions.
func decodeFlagSet(d *document, dec *decoder, n *yaml.Node, path string) {
	d.flagPath = path
	ramps := takeRamps(dec, n, path)
	fs, problems := flagfile.ParseNode(n, d.name)
	for key, r := range ramps {
		if f, ok := fs.Flags[key]; ok {
			f.Ramp = r
			fs.Flags[key] = f
		}
	}
	for _, p := range problems {
		dec.errs = append(dec.errs, issue{path: joinPath(path, p.Path), line: p.Line, col: p.Column, msg: p.Message})
	}
	if len(problems) > 0 {
		fs = slipway.FlagSet{ID: d.name}
	}
	if fs.ID != d.name && path == "" {
		d.name = fs.ID // a plain file's metadata.flagSetId names the set
	}
	if path != "" {
		// A document's metadata.name names the set, whatever flagSetId says.
		fs.ID = d.name
	}
	d.fset = &fs
	// Remember where each flag key was written, to place problems that span sets.
	root := n
	for root != nil && root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "flags" {
			continue
		}
		fl := root.Content[i+1]
		switch fl.Kind {
		case yaml.MappingNode:
			for j := 0; j+1 < len(fl.Content); j += 2 {
				dec.nodes[join(path, "flags."+fl.Content[j].Value)] = fl.Content[j]
			}
		case yaml.SequenceNode:
			for _, el := range fl.Content {
				if el.Kind != yaml.MappingNode {
					continue
				}
				for j := 0; j+1 < len(el.Content); j += 2 {
					if el.Content[j].Value == "key" {
						dec.nodes[join(path, "flags."+el.Content[j+1].Value)] = el.Content[j+1]
					}
				}
			}
		default:
			// Not a flags object: ParseNode reported it.
		}
	}
}

// joinPath joins two field paths, either of which may be empty.
func joinPath(a, b string) string {
	if b == "" {
		return a
	}
	return join(a, b)
}
