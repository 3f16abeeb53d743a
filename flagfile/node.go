package flagfile

import (
	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// Problem is one problem found in a flag set, with where it was written.
type Problem struct {
	// Line and Column are 1-based; 0 when the problem has no position.
	Line, Column int
	// Path is the field path in flagd's format, like flags.new-ui.defaultVariant ("" for
	// the set as a whole).
	Path    string
	Message string
}

// ParseNode decodes a flag set in flagd's format from a YAML node that was already parsed,
// for example the spec of a FlagSet document in a slipway file, so that positions are those
// of the node's own file. It checks everything Parse checks and returns every problem; the
// FlagSet is meaningful only when there is none. id is the set's ID when metadata.flagSetId
// is absent.
func ParseNode(n *yaml.Node, id string) (slipway.FlagSet, []Problem) {
	p := &parser{name: id}
	root := resolveAlias(n)
	if root != nil && root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = resolveAlias(root.Content[0])
	}
	var fs slipway.FlagSet
	if root == nil {
		p.addAt(nil, nil, "a flag set is an object with \"flags\"")
	} else {
		fs = p.parseRoot(root)
		fs.ID = id
		if fid, ok := fs.Metadata["flagSetId"].(string); ok && fid != "" {
			fs.ID = fid
		}
		if root.Kind == yaml.MappingNode {
			for _, pr := range flags.Check(fs) {
				p.addAt(p.locate(pr.Path), pr.Path, "%s", pr.Message)
			}
		}
	}
	if len(p.details) == 0 {
		return fs, nil
	}
	out := make([]Problem, 0, len(p.details))
	for _, d := range p.details {
		out = append(out, Problem{Line: d.line, Column: d.col, Path: d.path, Message: d.msg})
	}
	return slipway.FlagSet{}, out
}
