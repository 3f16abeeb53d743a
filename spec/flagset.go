package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// A FlagSet document's spec is a flag set in flagd's flag file format
// (https://flagd.dev/schema/v0/flags.json), read and checked by package flags so that a flagd
// file and a FlagSet document obey the same rules. A file that is nothing but a flagd flag
// file (a top-level "flags" and no apiVersion) is read as one FlagSet too.

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
	fs, problems := flags.ParseNode(n, d.name)
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

// flagSetName is what a flag set ID may be: it appears in URLs and in flag metadata.
var flagSetName = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

func checkFlagSetName(p *problems, d *document) {
	at := "metadata.name"
	if d.file != "" && d.flagPath == "" {
		at = "metadata.flagSetId"
	}
	switch {
	case d.name == "":
		p.add(at, "required; name the flag set with letters, digits, '-', '_' and '.', like web-flags")
	case len(d.name) > 253:
		p.add(at, "%q is %d characters long; use at most 253", d.name, len(d.name))
	case !flagSetName.MatchString(d.name):
		p.add(at, "%q is not a valid flag set name; use letters, digits, '-', '_' and '.', starting and ending with a letter or digit", d.name)
	}
}

// checkFlagSet checks a flag set that did not come from a file (Validate) by package flags'
// rules.
func checkFlagSet(p *problems, d *document) {
	_, err := flags.Compile(*d.fset)
	if err == nil {
		return
	}
	var e *slipway.Error
	if !errors.As(err, &e) || len(e.Details) == 0 {
		p.add(d.flagPath, "%v", err)
		return
	}
	for _, det := range e.Details {
		path, msg, found := strings.Cut(det, ": ")
		if !found {
			path, msg = "", det
		}
		p.add(joinPath(d.flagPath, path), "%s", msg)
	}
}

// checkFlagKeys reports a flag key declared by more than one flag set: the flags in force are
// all sets merged, so a key must name one flag.
func checkFlagKeys(docs []*document) {
	first := map[string]*document{}
	for _, d := range docs {
		if d.fset == nil {
			continue
		}
		for _, key := range sortedFlagKeys(d.fset) {
			f, ok := first[key]
			if !ok {
				first[key] = d
				continue
			}
			if f == d {
				continue
			}
			at := ""
			if w := f.where(join(f.flagPath, "flags."+key)); w != "" {
				at = " at " + w
			}
			d.problems = append(d.problems, problem{path: join(d.flagPath, "flags."+key),
				msg: fmt.Sprintf("flag %q is already declared by FlagSet %q%s; declare each flag in one flag set", key, f.name, at)})
		}
	}
}

func sortedFlagKeys(fs *slipway.FlagSet) []string {
	keys := make([]string, 0, len(fs.Flags))
	for k := range fs.Flags {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

func sortStrings(s []string) { sort.Strings(s) }
