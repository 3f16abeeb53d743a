// Package spec reads the YAML files a user writes (App, AnalysisTemplate and FlagSet
// documents, and plain flagd flag files) into a slipway.Set, and publishes their JSON Schema.
// It only decodes: the rules of a set live in package validate, which knows nothing of files.
//
// Every problem in every file is reported at once, each as
// "file:line:col: field.path: what is wrong; what would be valid", and a set with any problem
// is rejected whole. Start reading at Load (this file); decode.go turns YAML nodes into domain
// values while remembering the node of every field path, which is how a problem package
// validate reports by field path is placed in its file (document.issues).
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

// issue is one problem found in a file, with its position.
type issue struct {
	file      string
	path      string
	line, col int
	msg       string
	// unknown marks an unknown field; suggest is the path of the field it was probably
	// meant to be.
	unknown bool
	suggest string
}

func (is issue) String() string {
	var b strings.Builder
	b.WriteString(is.file)
	if is.line > 0 {
		b.WriteString(":" + strconv.Itoa(is.line))
		if is.col > 0 {
			b.WriteString(":" + strconv.Itoa(is.col))
		}
	}
	b.WriteString(": ")
	if is.path != "" {
		b.WriteString(is.path + ": ")
	}
	b.WriteString(is.msg)
	return b.String()
}

// document is one App, AnalysisTemplate or FlagSet with what is known of where it came from.
type document struct {
	kind string
	name string
	env  *slipway.Environment
	pipe *slipway.Pipeline
	note *slipway.Notification
	app  *slipway.App
	tmpl *slipway.AnalysisTemplate
	fset *slipway.FlagSet
	// flagPath is the field path of the flag set's body: "spec", or "" for a plain flagd
	// file.
	flagPath string

	// file, root and nodes are set for documents read from a file.
	file  string
	root  *yaml.Node
	nodes map[string]*yaml.Node
	// decodeErrs are the type errors and unknown fields found while decoding.
	decodeErrs []issue
	// problems are the rule violations found in the envelope and by package validate.
	problems []problem
}

// problem is one rule violation: the document field path and what is wrong with it.
type problem struct {
	path string
	msg  string
}

// problems collects rule violations.
type problems []problem

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, problem{path: path, msg: fmt.Sprintf(format, args...)})
}

// where returns "file:line:col" of path in d, or "" when d did not come from a file.
func (d *document) where(path string) string {
	if d.file == "" {
		return ""
	}
	n := d.locate(path)
	return fmt.Sprintf("%s:%d:%d", d.file, n.Line, n.Column)
}

// locate returns the node of the most specific prefix of path that was written.
func (d *document) locate(path string) *yaml.Node {
	for path != "" {
		if n, ok := d.nodes[path]; ok {
			return n
		}
		path = parent(path)
	}
	return d.root
}

// parent drops the last segment of a field path ("a.b[2]" -> "a.b", "a.b" -> "a").
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// within reports whether path is anc or lies under it.
func within(path, anc string) bool {
	if anc == "" || path == anc {
		return true
	}
	return strings.HasPrefix(path, anc) && (path[len(anc)] == '.' || path[len(anc)] == '[')
}

// issues returns d's problems placed in its file. A rule violation explained by a decode
// error is left out: a field of the wrong type is not also reported as missing, and a
// misspelt field does not also leave its mapping "incomplete".
func (d *document) issues() []issue {
	out := append([]issue(nil), d.decodeErrs...)
	for _, p := range d.problems {
		if d.explained(p.path) {
			continue
		}
		n := d.locate(p.path)
		out = append(out, issue{file: d.file, path: p.path, line: n.Line, col: n.Column, msg: p.msg})
	}
	return out
}

func (d *document) explained(path string) bool {
	for _, e := range d.decodeErrs {
		if within(path, e.path) && !e.unknown {
			return true
		}
		if e.unknown && (path == parent(e.path) || (e.suggest != "" && within(path, e.suggest))) {
			return true
		}
	}
	return false
}

// header is the envelope of every document.
type header struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   metadata   `json:"metadata"`
	Spec       *yaml.Node `json:"spec"`
}

type metadata struct {
	Name string `json:"name"`
	// Environment is the environment of an App (the server's default when empty).
	Environment string `json:"environment"`
	// Labels describe an Environment.
	Labels map[string]string `json:"labels"`
}

var kinds = []string{slipway.KindEnvironment, slipway.KindPipeline, slipway.KindNotification, slipway.KindApp, slipway.KindAnalysisTemplate, slipway.KindFlagSet}

// Load reads files or directories (recursively, every *.yaml and *.yml in lexical order) as
// one set and checks it. Invalid input returns an *slipway.Error with Code EINVALID, Message
// "N errors in <paths>" and one line per problem in Details; an unreadable path returns an
// EINVALID error that also wraps the I/O error.
func Load(paths ...string) (slipway.Set, error) {
	return LoadWith(nil, paths...)
}

// LoadWith is Load where templateKnown reports whether an AnalysisTemplate not in the files
// exists elsewhere (for example in the server's store); nil means only the files count.
func LoadWith(templateKnown func(name string) bool, paths ...string) (slipway.Set, error) {
	if len(paths) == 0 {
		return slipway.Set{}, slipway.Errorf(slipway.EINVALID, "no files given; name a file or a directory of .yaml files")
	}
	var docs []*document
	var errs []issue
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return slipway.Set{}, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return slipway.Set{}, fmt.Errorf("%w: %w", slipway.Errorf(slipway.EINVALID, "cannot read %s", f), err)
			}
			d, e := parseFile(f, data)
			docs = append(docs, d...)
			errs = append(errs, e...)
		}
	}
	return finish(docs, errs, templateKnown, strings.Join(paths, ", "))
}

// expand lists the files p names: p itself, or the YAML files under the directory p.
func expand(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", slipway.Errorf(slipway.EINVALID, "cannot read %s", p), err)
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", slipway.Errorf(slipway.EINVALID, "cannot read %s", p), err)
	}
	if len(files) == 0 {
		return nil, slipway.Errorf(slipway.EINVALID, "%s holds no .yaml or .yml files", p)
	}
	sort.Strings(files)
	return files, nil
}

// File is one file's name (used in messages only) and content.
type File struct {
	Name string
	Data []byte
}

// ParseFiles reads files as one set and checks it, as Load does with the files of a
// directory; what names them in the message of an error ("deploy/ at commit 1a2b3c").
// Errors are as for Load. It reads files from elsewhere than the disk (a git tree).
func ParseFiles(templateKnown func(name string) bool, what string, files ...File) (slipway.Set, error) {
	var docs []*document
	var errs []issue
	for _, f := range files {
		d, e := parseFile(f.Name, f.Data)
		docs = append(docs, d...)
		errs = append(errs, e...)
	}
	return finish(docs, errs, templateKnown, what)
}

// Parse reads one file's bytes as a set and checks it; filename is used in messages only.
// Errors are as for Load.
func Parse(filename string, data []byte) (slipway.Set, error) {
	docs, errs := parseFile(filename, data)
	return finish(docs, errs, nil, filename)
}

// finish checks the documents as one set and returns the set or every problem found.
func finish(docs []*document, errs []issue, templateKnown func(string) bool, what string) (slipway.Set, error) {
	check(docs, templateKnown)
	for _, d := range docs {
		errs = append(errs, d.issues()...)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			a, b := errs[i], errs[j]
			if a.file != b.file {
				return a.file < b.file
			}
			if a.line != b.line {
				return a.line < b.line
			}
			if a.col != b.col {
				return a.col < b.col
			}
			if a.path != b.path {
				return a.path < b.path
			}
			return a.msg < b.msg
		})
		// An aliased node with a problem is reported once, however often it is used.
		errs = slices.CompactFunc(errs, func(a, b issue) bool { return a.String() == b.String() })
		details := make([]string, len(errs))
		for i, e := range errs {
			details[i] = e.String()
		}
		return slipway.Set{}, &slipway.Error{Code: slipway.EINVALID, Message: plural(len(errs), "error") + " in " + what, Details: details}
	}
	var s slipway.Set
	for _, d := range docs {
		switch {
		case d.env != nil:
			s.Environments = append(s.Environments, *d.env)
		case d.pipe != nil:
			s.Pipelines = append(s.Pipelines, *d.pipe)
		case d.note != nil:
			s.Notifications = append(s.Notifications, *d.note)
		case d.app != nil:
			s.Apps = append(s.Apps, *d.app)
		case d.tmpl != nil:
			s.Templates = append(s.Templates, *d.tmpl)
		case d.fset != nil:
			s.FlagSets = append(s.FlagSets, *d.fset)
		}
	}
	if len(s.Environments)+len(s.Pipelines)+len(s.Notifications)+len(s.Apps)+len(s.Templates)+len(s.FlagSets) == 0 {
		return slipway.Set{}, &slipway.Error{Code: slipway.EINVALID, Message: "1 error in " + what,
			Details: []string{what + ": no documents; write at least one Environment, Pipeline, Notification, App, AnalysisTemplate or FlagSet"}}
	}
	return s, nil
}

// check checks the documents as one set by package validate's rules and stores each
// problem in its document, where issues places it in the file.
func check(docs []*document, templateKnown func(string) bool) {
	vds := make([]validate.Document, len(docs))
	for i, d := range docs {
		// flagd's rules were checked as each flag set was decoded (flagfile.ParseNode), with
		// their problems placed in the file.
		vds[i] = validate.Document{Environment: d.env, Pipeline: d.pipe, Notify: d.note, App: d.app, Template: d.tmpl, FlagSet: d.fset, FlagPath: d.flagPath,
			FlagRulesChecked: true, Where: d.where}
	}
	for _, p := range validate.Documents(vds, templateKnown) {
		d := docs[p.Doc]
		d.problems = append(d.problems, problem{path: p.Path, msg: p.Message})
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile splits data into documents and decodes each. A YAML syntax error ends the file:
// the documents before it are still decoded and checked. A file whose only document is a
// plain flagd flag file (see plainFlagFile) is one FlagSet.
func parseFile(file string, data []byte) (docs []*document, errs []issue) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for first := true; ; first = false {
		var n yaml.Node
		err := decodeNode(dec, &n)
		if errors.Is(err, io.EOF) {
			return docs, errs
		}
		if err != nil {
			is := issue{file: file, msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				is.line, _ = strconv.Atoi(m[1])
				is.msg = "invalid YAML: " + m[2]
			}
			return docs, append(errs, is)
		}
		if first && plainFlagFile(&n) {
			var rest yaml.Node
			if err := decodeNode(dec, &rest); errors.Is(err, io.EOF) {
				d, e := decodePlainFlagFile(file, &n)
				return []*document{d}, e
			}
		}
		d, e := decodeDocument(file, &n)
		if d != nil {
			docs = append(docs, d)
		}
		errs = append(errs, e...)
	}
}

// decodeNode reads the next document, turning a panic inside the YAML library into an error
// so that no input can crash the caller.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// decodeDocument decodes one YAML document. It returns a nil document for an empty one, or
// when the document is not even a mapping.
func decodeDocument(file string, n *yaml.Node) (*document, []issue) {
	root := n
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		root = n.Content[0]
	}
	for root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, []issue{{file: file, line: root.Line, col: root.Column,
			msg: "a document must be a mapping with apiVersion, kind, metadata and spec, not " + describe(root)}}
	}
	dec := newDecoder()
	var h header
	dec.decode(root, reflect.ValueOf(&h).Elem(), "", "")
	d := &document{file: file, root: root, nodes: dec.nodes, name: h.Metadata.Name}
	var probs problems
	switch {
	case h.APIVersion == "":
		probs.add("apiVersion", "required; use %s", slipway.APIVersion)
	case h.APIVersion != slipway.APIVersion:
		probs.add("apiVersion", "%q is not supported; use %s", h.APIVersion, slipway.APIVersion)
	}
	if h.Kind == "" {
		probs.add("kind", "required; use Environment, Pipeline, Notification, App, AnalysisTemplate or FlagSet")
	} else if !slices.Contains(kinds, h.Kind) {
		probs.add("kind", "%q is not a kind of document; use Environment, Pipeline, Notification, App, AnalysisTemplate or FlagSet%s", h.Kind, didYouMean(h.Kind, kinds))
	}
	if h.Metadata.Environment != "" && h.Kind != slipway.KindApp {
		probs.add("metadata.environment", "only an App names its environment; documents of kind %s belong to the environment they are applied to (slipway -e ENV apply)", h.Kind)
	}
	if len(h.Metadata.Labels) > 0 && h.Kind != slipway.KindEnvironment {
		probs.add("metadata.labels", "only an Environment has labels")
	}
	spec := h.Spec
	if slices.Contains(kinds, h.Kind) {
		d.kind = h.Kind
		if spec == nil || isNull(spec) {
			// A decode error, so that it explains every missing field under spec.
			at := root
			if spec != nil {
				at = spec
			}
			dec.fail(at, "spec", "required; describe the %s under spec", h.Kind)
			spec = nil
		}
	}
	switch d.kind {
	case slipway.KindEnvironment:
		e := &slipway.Environment{Name: h.Metadata.Name, Labels: h.Metadata.Labels}
		if spec != nil {
			dec.decode(spec, reflect.ValueOf(e).Elem(), "spec", "name,labels")
		}
		d.env = e
	case slipway.KindPipeline:
		pl := &slipway.Pipeline{Name: h.Metadata.Name}
		if spec != nil {
			dec.decode(spec, reflect.ValueOf(pl).Elem(), "spec", "name")
		}
		d.pipe = pl
	case slipway.KindNotification:
		nt := &slipway.Notification{Name: h.Metadata.Name}
		if spec != nil {
			dec.decode(spec, reflect.ValueOf(nt).Elem(), "spec", "name")
		}
		d.note = nt
	case slipway.KindApp:
		a := &slipway.App{Name: h.Metadata.Name, Environment: h.Metadata.Environment}
		if spec != nil {
			dec.decode(spec, reflect.ValueOf(a).Elem(), "spec", "name,environment")
		}
		if r, ok := dec.nodes["spec.replicas"]; !ok || isNull(r) {
			a.Replicas = 1
		}
		d.app = a
	case slipway.KindAnalysisTemplate:
		t := &slipway.AnalysisTemplate{Name: h.Metadata.Name}
		if spec != nil {
			dec.decode(spec, reflect.ValueOf(t).Elem(), "spec", "name")
		}
		d.tmpl = t
	case slipway.KindFlagSet:
		if spec != nil {
			decodeFlagSet(d, dec, spec, "spec")
		} else {
			d.fset = &slipway.FlagSet{ID: h.Metadata.Name}
		}
	}
	d.problems = probs
	for i := range dec.errs {
		dec.errs[i].file = file
	}
	d.decodeErrs = dec.errs
	if d.kind == "" {
		// Without a kind nothing else can be checked; report the envelope only.
		return nil, d.issues()
	}
	return d, nil
}

// didYouMean returns " (did you mean "x"?)" for the closest of valid, or "".
func didYouMean(s string, valid []string) string {
	if best := validate.Suggest(s, valid); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
