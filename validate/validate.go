// Package validate holds the rules of a set (slipway.Set): names, apps, probes, traffic,
// strategies and their steps, analysis templates and the references to them, flag sets, flag
// keys and ramps, and the rules that span documents (unique names, one flag set per flag key,
// one App per listen address). It works on domain values only and knows nothing of files, so
// that a set read from YAML (package spec) and a set received as JSON by the API (the engine)
// obey the same rules.
//
// Each problem names its document and a field path as the user writes it, like
// spec.strategy.canary.steps[2].setWeight, and says what would be valid; package spec turns
// the path into a file:line:col. Start reading at Documents (this file); app.go holds the
// rules of an App, analysis.go those of an AnalysisTemplate and of the references to
// templates, flagset.go those of flag sets and ramps.
package validate

import (
	"fmt"
	"strconv"
	"strings"

	"slipway.dev/slipway"
)

// Document is one App, AnalysisTemplate or FlagSet of a set: exactly one of App, Template
// and FlagSet is set.
type Document struct {
	Environment *slipway.Environment
	Pipeline    *slipway.Pipeline
	Notify      *slipway.Notification
	App         *slipway.App
	Template    *slipway.AnalysisTemplate
	FlagSet     *slipway.FlagSet
	// FlagPath is the field path of a flag set's body: "spec" for a FlagSet document, "" for
	// a plain flagd flag file (whose set is then named by metadata.flagSetId).
	FlagPath string
	// FlagRulesChecked says that flagd's own rules of the flag set (package flags) were
	// checked when it was read, with positions, so that they are not reported twice.
	FlagRulesChecked bool
	// Where returns where a field path of this document was written, like web.yaml:4:9, or
	// "" when it is not known. A problem that points at another document (a name defined
	// twice, a flag key declared twice) names that place. Nil means nowhere is known.
	Where func(path string) string
}

// Kind returns the document's kind: slipway.KindApp, KindAnalysisTemplate or KindFlagSet,
// or "" when none of App, Template and FlagSet is set.
func (d *Document) Kind() string {
	switch {
	case d.Environment != nil:
		return slipway.KindEnvironment
	case d.Pipeline != nil:
		return slipway.KindPipeline
	case d.Notify != nil:
		return slipway.KindNotification
	case d.App != nil:
		return slipway.KindApp
	case d.Template != nil:
		return slipway.KindAnalysisTemplate
	case d.FlagSet != nil:
		return slipway.KindFlagSet
	}
	return ""
}

// Name returns the document's name: the App's or template's name, or the flag set's ID.
func (d *Document) Name() string {
	switch {
	case d.Environment != nil:
		return d.Environment.Name
	case d.Pipeline != nil:
		return d.Pipeline.Name
	case d.Notify != nil:
		return d.Notify.Name
	case d.App != nil:
		return d.App.Name
	case d.Template != nil:
		return d.Template.Name
	case d.FlagSet != nil:
		return d.FlagSet.ID
	}
	return ""
}

// where is d.Where(path), or "" without one.
func (d *Document) where(path string) string {
	if d.Where == nil {
		return ""
	}
	return d.Where(path)
}

// Problem is one rule a document breaks.
type Problem struct {
	// Doc is the index of the document in the slice given to Documents.
	Doc int
	// Kind and Name are the document's (Document.Kind, Document.Name).
	Kind, Name string
	// Path is the field path as the user writes it, like
	// spec.strategy.canary.steps[2].setWeight or metadata.name.
	Path string
	// Message says what is wrong and what would be valid.
	Message string
}

// problem is one rule violation of a document being checked.
type problem struct {
	path string
	msg  string
}

// problems collects rule violations.
type problems []problem

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, problem{path: path, msg: fmt.Sprintf(format, args...)})
}

// Documents checks every document, then the rules that span documents: unique names, template
// references, flag keys and listen addresses. templateKnown reports whether an
// AnalysisTemplate not among the documents exists elsewhere (for example in the server's
// store); nil means only the documents count. Problems come document by document, in the
// order of docs; a document without App, Template or FlagSet is skipped.
func Documents(docs []Document, templateKnown func(name string) bool) []Problem {
	found := make([]problems, len(docs))
	templates := map[string]*slipway.AnalysisTemplate{}
	var templateNames []string
	first := map[string]int{}
	listens := map[string]int{}
	for i := range docs {
		d, p := &docs[i], &found[i]
		kind, name := d.Kind(), d.Name()
		if kind == "" {
			continue
		}
		switch {
		case d.FlagSet != nil:
			checkFlagSetName(p, d)
		case d.Environment != nil:
			checkEnvironmentName(p, name)
		default:
			checkName(p, name)
		}
		switch {
		case d.Environment != nil:
			checkEnvironment(p, d.Environment)
		case d.Pipeline != nil:
			checkPipeline(p, d.Pipeline)
		case d.Notify != nil:
			checkNotification(p, d.Notify)
		case d.FlagSet != nil && !d.FlagRulesChecked:
			checkFlagSet(p, d)
		case d.App != nil:
			checkApp(p, d.App)
		case d.Template != nil:
			checkTemplate(p, d.Template)
		}
		if name != "" {
			key := kind + "/" + name
			if d.App != nil { // the same name in two environments is two apps
				key = kind + "/" + d.App.EnvironmentName() + "/" + name
			}
			if f, ok := first[key]; ok {
				at := ""
				if w := docs[f].where("metadata.name"); w != "" {
					at = " at " + w
				}
				p.add("metadata.name", "%s %q is already defined%s; give each %s its own name", kind, name, at, kind)
			} else {
				first[key] = i
				if d.Template != nil {
					templates[name] = d.Template
					templateNames = append(templateNames, name)
				}
			}
		}
		if d.App != nil && d.App.Traffic.Listen != "" {
			if f, ok := listens[d.App.Traffic.Listen]; ok && docs[f].Name() != name {
				p.add("spec.traffic.listen", "%s is already the listen address of App %q; give each App its own address", d.App.Traffic.Listen, docs[f].Name())
			} else {
				listens[d.App.Traffic.Listen] = i
			}
		}
	}
	checkFlagKeys(docs, found)
	checkRunForms(docs, found)
	checkPipelineApps(docs, found)
	r := resolver{templates: templates, names: templateNames, known: templateKnown}
	for i := range docs {
		d := &docs[i]
		if d.App != nil {
			r.checkApp(&found[i], d.App)
		}
		if d.FlagSet != nil {
			r.checkRamps(&found[i], d)
		}
	}
	var out []Problem
	for i := range docs {
		d := &docs[i]
		for _, p := range found[i] {
			out = append(out, Problem{Doc: i, Kind: d.Kind(), Name: d.Name(), Path: p.path, Message: p.msg})
		}
	}
	return out
}

// Set checks a set that arrived without positions (for example JSON received by the API).
// templateKnown is as for Documents. It returns nil or an *slipway.Error with Code EINVALID,
// Message "N errors in the set" and one line per problem in Details, like
// "App/web: spec.strategy.canary.steps[2].setWeight: 150 is out of range; use 0 to 100"; a
// document without a name is called by its kind and index among its kind, like App[1].
func Set(s slipway.Set, templateKnown func(name string) bool) error {
	docs := make([]Document, 0, len(s.Environments)+len(s.Pipelines)+len(s.Apps)+len(s.Templates)+len(s.FlagSets))
	for i := range s.Environments {
		docs = append(docs, Document{Environment: &s.Environments[i]})
	}
	for i := range s.Pipelines {
		docs = append(docs, Document{Pipeline: &s.Pipelines[i]})
	}
	for i := range s.Notifications {
		docs = append(docs, Document{Notify: &s.Notifications[i]})
	}
	for i := range s.Apps {
		docs = append(docs, Document{App: &s.Apps[i]})
	}
	for i := range s.Templates {
		docs = append(docs, Document{Template: &s.Templates[i]})
	}
	for i := range s.FlagSets {
		docs = append(docs, Document{FlagSet: &s.FlagSets[i], FlagPath: "spec"})
	}
	labels := make([]string, len(docs))
	count := map[string]int{}
	for i := range docs {
		kind, name := docs[i].Kind(), docs[i].Name()
		labels[i] = kind + "/" + name
		if name == "" {
			labels[i] = fmt.Sprintf("%s[%d]", kind, count[kind])
		}
		count[kind]++
	}
	found := Documents(docs, templateKnown)
	if len(found) == 0 {
		return nil
	}
	details := make([]string, len(found))
	for i, p := range found {
		details[i] = labels[p.Doc] + ": " + p.Path + ": " + p.Message
	}
	return &slipway.Error{Code: slipway.EINVALID, Message: plural(len(details), "error") + " in the set", Details: details}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// joinPath joins two field paths, either of which may be empty.
func joinPath(a, b string) string {
	if b == "" {
		return a
	}
	return join(a, b)
}

// didYouMean returns " (did you mean "x"?)" for the name in valid nearest to s, or "".
func didYouMean(s string, valid []string) string {
	if best := Suggest(s, valid); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// Suggest returns the name in valid nearest to s, or "" when none is near enough to be a
// likely typo. Package spec suggests field names with it, so that every "did you mean"
// obeys one measure.
func Suggest(s string, valid []string) string {
	best, bestDist := "", 0
	for _, v := range valid {
		dist := levenshtein(strings.ToLower(s), strings.ToLower(v))
		if best == "" || dist < bestDist {
			best, bestDist = v, dist
		}
	}
	limit := max(2, len(s)/3)
	if best == "" || bestDist > limit || bestDist >= len(s) {
		return ""
	}
	return best
}

// levenshtein is the edit distance between a and b, by bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
