package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// A flag set obeys flagd's rules, which package flags holds (flags.Compile), and slipway's:
// a name fit for URLs, each flag key in one flag set only, and ramps (flags.CheckRamp) whose
// analysis names templates that exist.

// flagSetName is what a flag set ID may be: it appears in URLs and in flag metadata.
var flagSetName = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

func checkFlagSetName(p *problems, d *Document) {
	at := "metadata.name"
	if d.FlagPath == "" {
		at = "metadata.flagSetId"
	}
	switch name := d.FlagSet.ID; {
	case name == "":
		p.add(at, "required; name the flag set with letters, digits, '-', '_' and '.', like web-flags")
	case len(name) > 253:
		p.add(at, "%q is %d characters long; use at most 253", name, len(name))
	case !flagSetName.MatchString(name):
		p.add(at, "%q is not a valid flag set name; use letters, digits, '-', '_' and '.', starting and ending with a letter or digit", name)
	}
}

// checkFlagSet checks a flag set by flagd's rules (flags.Check), placing each problem under
// the flag set's body, in the order flags.Compile lists them.
func checkFlagSet(p *problems, d *Document) {
	found := flags.Check(*d.FlagSet)
	slices.SortFunc(found, func(a, b flags.Problem) int {
		return strings.Compare(a.Field()+": "+a.Message, b.Field()+": "+b.Message)
	})
	for _, pr := range found {
		p.add(joinPath(d.FlagPath, pr.Field()), "%s", pr.Message)
	}
}

// checkFlagKeys reports a flag key declared by more than one flag set: the flags in force are
// all sets merged, so a key must name one flag.
func checkFlagKeys(docs []Document, found []problems) {
	first := map[string]int{}
	for i := range docs {
		d := &docs[i]
		if d.FlagSet == nil {
			continue
		}
		for _, key := range sortedFlagKeys(d.FlagSet) {
			f, ok := first[key]
			if !ok {
				first[key] = i
				continue
			}
			if f == i {
				continue
			}
			at := ""
			if w := docs[f].where(join(docs[f].FlagPath, "flags."+key)); w != "" {
				at = " at " + w
			}
			found[i] = append(found[i], problem{path: join(d.FlagPath, "flags."+key),
				msg: fmt.Sprintf("flag %q is already declared by FlagSet %q%s; declare each flag in one flag set", key, docs[f].Name(), at)})
		}
	}
}

// checkRamps checks the ramp of every flag of d (flags.CheckRamp) and that its analysis
// names templates that exist.
func (r resolver) checkRamps(p *problems, d *Document) {
	for _, key := range sortedFlagKeys(d.FlagSet) {
		f := d.FlagSet.Flags[key]
		if f.Ramp == nil {
			continue
		}
		at := join(d.FlagPath, "flags."+key+".ramp")
		for _, pr := range flags.CheckRamp(f) {
			sub, msg, _ := strings.Cut(pr, ": ")
			path := join(at, sub)
			if sub == "targeting" {
				path = join(d.FlagPath, "flags."+key+".targeting")
			}
			p.add(path, "%s", msg)
		}
		if a := f.Ramp.Analysis; a != nil && len(a.Templates) > 0 {
			r.checkRef(p, join(at, "analysis"), *a, nil)
		}
	}
}

func sortedFlagKeys(fs *slipway.FlagSet) []string {
	keys := make([]string, 0, len(fs.Flags))
	for k := range fs.Flags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
