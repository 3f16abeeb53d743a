package slipway

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Platform is the driver for a target: it makes the live world match what the engine wants.
// Implementations: platform/local, platform/sim (and platform/kubernetes).
//
// Apply is level-triggered and idempotent: applying the same Desired twice does nothing the
// second time. It returns once the change is under way, not when it has converged; Observe
// tells how far the world has got.
type Platform interface {
	// Apply converges app d.App toward d. It returns EINVALID for a Desired it cannot run.
	Apply(ctx context.Context, d Desired) error
	// Observe reports the live state of an app; an app the platform does not know is reported
	// with no revisions (not an error).
	Observe(ctx context.Context, app string) (Observed, error)
	// Remove stops everything of an app: traffic first, then instances.
	Remove(ctx context.Context, app string) error
}

// Desired is the state the engine wants for one app.
type Desired struct {
	App     string  `json:"app"`
	Traffic Traffic `json:"traffic"`
	// Revisions lists every revision that should have instances; any other revision's
	// instances are drained and stopped.
	Revisions []Placement `json:"revisions"`
	// Split is the traffic split on the main listener.
	Split Split `json:"split"`
	// Preview is the revision behind the preview listener ("" for none).
	Preview string `json:"preview,omitempty"`
}

// Placement asks for Replicas instances of Revision.
type Placement struct {
	Revision Revision `json:"revision"`
	Replicas int      `json:"replicas"`
}

// Split is how the main listener shares traffic between revisions.
type Split struct {
	// Weights are percentages that sum to 100 (empty when nothing serves traffic). Their
	// order matters to sticky routing: a user's bucket (0-99) falls into the first weight's
	// range first, and the engine lists the new revision first, so raising its weight only
	// ever moves users onto it, never back.
	Weights []Weight `json:"weights,omitempty"`
	// Routes send matching requests to a revision whatever the weights; first match wins.
	Routes []Route `json:"routes,omitempty"`
	// Approximate, in an observed split, says that the weights are met only roughly: the
	// platform shares traffic by the number of instances that serve each revision (the
	// kubernetes platform without an HTTPRoute), so a revision's share is the closest
	// ratio its instances allow. Equal ignores it.
	Approximate bool `json:"approximate,omitempty"`
}

// Weight is one revision's share of traffic in percent.
type Weight struct {
	Revision string `json:"revision"`
	Weight   int    `json:"weight"`
}

// Route sends requests that match every entry of Match to Revision.
type Route struct {
	Name     string        `json:"name"`
	Match    []HeaderMatch `json:"match"`
	Revision string        `json:"revision"`
}

// WeightOf returns the weight of revision rev in s (0 when absent).
func (s Split) WeightOf(rev string) int {
	for _, w := range s.Weights {
		if w.Revision == rev {
			return w.Weight
		}
	}
	return 0
}

// Equal reports whether s and o route traffic the same way. Zero weights are ignored.
func (s Split) Equal(o Split) bool {
	nz := func(ws []Weight) map[string]int {
		m := map[string]int{}
		for _, w := range ws {
			if w.Weight != 0 {
				m[w.Revision] = w.Weight
			}
		}
		return m
	}
	a, b := nz(s.Weights), nz(o.Weights)
	if len(a) != len(b) || len(s.Routes) != len(o.Routes) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for i := range s.Routes {
		x, y := s.Routes[i], o.Routes[i]
		if x.Name != y.Name || x.Revision != y.Revision || len(x.Match) != len(y.Match) {
			return false
		}
		for j := range x.Match {
			if x.Match[j] != y.Match[j] {
				return false
			}
		}
	}
	return true
}

// Observed is the live state of one app.
type Observed struct {
	App       string           `json:"app"`
	Revisions []RevisionStatus `json:"revisions"`
	// Split is the split the data plane has confirmed in effect (not merely requested).
	Split   Split  `json:"split"`
	Preview string `json:"preview,omitempty"`
}

// RevisionStatus is the live state of one revision's instances.
type RevisionStatus struct {
	Revision  string     `json:"revision"`
	Instances []Instance `json:"instances"`
}

// Revision returns the status of revision rev (zero when absent).
func (o Observed) Revision(rev string) RevisionStatus {
	for _, r := range o.Revisions {
		if r.Revision == rev {
			return r
		}
	}
	return RevisionStatus{Revision: rev}
}

// Ready counts the instances that passed readiness.
func (s RevisionStatus) Ready() int {
	n := 0
	for _, in := range s.Instances {
		if in.Ready {
			n++
		}
	}
	return n
}

// Available counts the instances that have been ready for at least minReady at now.
func (s RevisionStatus) Available(minReady time.Duration, now time.Time) int {
	n := 0
	for _, in := range s.Instances {
		if in.Ready && in.ReadySince != nil && !in.ReadySince.Add(minReady).After(now) {
			n++
		}
	}
	return n
}

// InstanceState is an instance's lifecycle state.
type InstanceState string

// Instance states.
const (
	InstanceStarting InstanceState = "Starting"
	InstanceRunning  InstanceState = "Running"
	InstanceDraining InstanceState = "Draining"
	InstanceFailed   InstanceState = "Failed"
)

// Instance is one running copy of a revision.
type Instance struct {
	ID         string        `json:"id"`
	State      InstanceState `json:"state"`
	Ready      bool          `json:"ready"`
	ReadySince *time.Time    `json:"readySince,omitempty"`
	Address    string        `json:"address,omitempty"`
	Restarts   int           `json:"restarts"`
	Message    string        `json:"message,omitempty"`
}

// Places reports whether d has a placement for revision id.
func (d Desired) Places(id string) bool {
	for _, pl := range d.Revisions {
		if pl.Revision.ID == id {
			return true
		}
	}
	return false
}

// Problems lists what makes d impossible for any platform to run (nil when nothing does):
// an empty app name or revision ID, a revision placed twice or belonging to another app,
// negative replicas or weights, weights that do not sum to 100, and weights, routes or a
// preview naming a revision without a placement. Platforms add their own checks.
func (d Desired) Problems() []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if d.App == "" {
		bad("app: empty name")
	}
	for i, pl := range d.Revisions {
		id := pl.Revision.ID
		switch {
		case id == "":
			bad("revisions[%d]: empty revision ID", i)
		case slices.ContainsFunc(d.Revisions[:i], func(x Placement) bool { return x.Revision.ID == id }):
			bad("revisions[%d]: revision %s placed twice", i, id)
		}
		if pl.Revision.App != "" && pl.Revision.App != d.App {
			bad("revisions[%d]: revision %s belongs to app %s", i, id, pl.Revision.App)
		}
		if pl.Replicas < 0 {
			bad("revisions[%d]: replicas %d is negative", i, pl.Replicas)
		}
	}
	sum := 0
	for i, w := range d.Split.Weights {
		if w.Weight < 0 {
			bad("split.weights[%d]: weight %d of %s is negative", i, w.Weight, w.Revision)
		}
		if !d.Places(w.Revision) {
			bad("split.weights[%d]: revision %q has no placement", i, w.Revision)
		}
		if slices.ContainsFunc(d.Split.Weights[:i], func(x Weight) bool { return x.Revision == w.Revision }) {
			bad("split.weights[%d]: revision %s weighted twice", i, w.Revision)
		}
		sum += w.Weight
	}
	if len(d.Split.Weights) > 0 && sum != 100 {
		bad("split.weights: weights sum to %d, not 100", sum)
	}
	for i, rt := range d.Split.Routes {
		if !d.Places(rt.Revision) {
			bad("split.routes[%d] (%s): revision %q has no placement", i, rt.Name, rt.Revision)
		}
	}
	if d.Preview != "" && !d.Places(d.Preview) {
		bad("preview: revision %q has no placement", d.Preview)
	}
	return problems
}

// Clone returns a deep copy of s.
func (s Split) Clone() Split {
	out := Split{Weights: slices.Clone(s.Weights), Approximate: s.Approximate}
	if s.Routes != nil {
		out.Routes = make([]Route, len(s.Routes))
		for i, r := range s.Routes {
			r.Match = slices.Clone(r.Match)
			out.Routes[i] = r
		}
	}
	return out
}
