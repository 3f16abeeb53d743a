package sim

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Kinds of Op.
const (
	// OpStart: an instance was started (Revision, Instance).
	OpStart = "start"
	// OpStop: an instance was stopped by Apply (Revision, Instance).
	OpStop = "stop"
	// OpSplit: the traffic split changed; Detail is SplitString of the new split.
	OpSplit = "split"
	// OpPreview: the preview revision changed; Revision is the new one ("" when cleared).
	OpPreview = "preview"
	// OpRemove: Remove stopped everything of the app; Detail is "instances=<n>".
	OpRemove = "remove"
	// OpKill: Kill removed an instance as if it crashed (Revision, Instance).
	OpKill = "kill"
)

// Op is one change the platform made to the live world, in the order it was made.
type Op struct {
	// Seq orders ops across every app; it starts at 1 and never repeats.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	App  string    `json:"app"`
	// Kind is one of OpStart, OpStop, OpSplit, OpPreview, OpRemove, OpKill.
	Kind     string `json:"kind"`
	Revision string `json:"revision,omitempty"`
	Instance string `json:"instance,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// String formats o on one line, without its time, for logs and test failures.
func (o Op) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(o.Seq, 10))
	b.WriteByte(' ')
	b.WriteString(o.App)
	b.WriteByte(' ')
	b.WriteString(o.Kind)
	for _, s := range []string{o.Revision, o.Instance, o.Detail} {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(s)
		}
	}
	return b.String()
}

// Ops returns the operation log of app name in Seq order; name "" returns the log of every
// app, merged in Seq order. The result is a copy.
func (p *Platform) Ops(name string) []Op {
	if name != "" {
		a := p.lookup(name)
		if a == nil {
			return nil
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		return slices.Clone(a.ops)
	}
	p.mu.RLock()
	apps := make([]*app, 0, len(p.apps))
	for _, a := range p.apps {
		apps = append(apps, a)
	}
	p.mu.RUnlock()
	var all []Op
	for _, a := range apps {
		a.mu.Lock()
		all = append(all, a.ops...)
		a.mu.Unlock()
	}
	slices.SortFunc(all, func(x, y Op) int { return cmp.Compare(x.Seq, y.Seq) })
	return all
}

// record appends an op to a's log. The caller holds a.mu.
func (p *Platform) record(a *app, now time.Time, kind, rev, inst, detail string) {
	a.ops = append(a.ops, Op{
		Seq: p.seq.Add(1), Time: now, App: a.name,
		Kind: kind, Revision: rev, Instance: inst, Detail: detail,
	})
	if p.maxOps > 0 && len(a.ops) >= 2*p.maxOps {
		// Trim in batches so that recording stays O(1) amortized.
		n := copy(a.ops, a.ops[len(a.ops)-p.maxOps:])
		clear(a.ops[n:])
		a.ops = a.ops[:n]
	}
}

// SplitString returns the canonical form of s used in OpSplit details: the non-zero weights
// sorted by revision as "rev=weight" joined by commas, then, when there are routes,
// " routes=" and each route in order as "name->rev" joined by commas, for example
// "abc123=90,def456=10 routes=beta->def456". An empty split is "none".
func SplitString(s slipway.Split) string {
	ws := make([]slipway.Weight, 0, len(s.Weights))
	for _, w := range s.Weights {
		if w.Weight != 0 {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(x, y slipway.Weight) int { return strings.Compare(x.Revision, y.Revision) })
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(w.Revision)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(w.Weight))
	}
	if len(s.Routes) > 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("routes=")
		for i, r := range s.Routes {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r.Name)
			b.WriteString("->")
			b.WriteString(r.Revision)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
