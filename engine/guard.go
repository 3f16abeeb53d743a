package engine

import (
	"fmt"
	"slices"
	"strings"

	"slipway.dev/slipway"
)

// Hold is traffic Guard keeps off revisions that have no ready instance. The zero Hold holds
// nothing.
type Hold struct {
	// Unready lists the revisions the wanted split sends traffic to that have no ready
	// instance, sorted.
	Unready []string
	// Want is the split the engine wants; Serve is the split in force instead, until the
	// revisions of Unready have ready instances.
	Want, Serve slipway.Split
	// Notable says the hold is news, worth an event: it keeps traffic on a revision Want
	// gives none (the move an abort, a rollback or a switch asked for is held back), or off
	// a revision whose instances are not merely starting (they stopped being ready, or
	// failed). A new revision's share waiting for its first instance to start is the
	// rollout's own wait, which the rollout reports.
	Notable bool
}

// Held reports whether h holds any traffic back.
func (h Hold) Held() bool { return len(h.Unready) > 0 }

// Equal reports whether h and o hold the same traffic the same way.
func (h Hold) Equal(o Hold) bool {
	return slices.Equal(h.Unready, o.Unready) && h.Want.Equal(o.Want) && h.Serve.Equal(o.Serve) && h.Notable == o.Notable
}

// Message says what h does, for the event that records it.
func (h Hold) Message() string {
	return fmt.Sprintf("traffic held off %s (no ready instance): serving %s instead of %s",
		strings.Join(h.Unready, ", "), splitString(h.Serve), splitString(h.Want))
}

// Guard makes d's traffic safe for what obs shows, and returns the hold it put in place.
// Traffic never moves onto a revision with no ready instance while another revision has
// ready ones, whatever moves it (a canary step, a promotion, a blue-green switch, an abort or
// a rollback, the end of a rollout):
//
//   - the weight of a revision with no ready instance goes to the revisions of d's split
//     that have ready ones, in proportion to their weights; an experiment's baseline's
//     weight goes to the revision it copies (the stable one), when that one has ready
//     instances;
//   - when none of d's split has a ready instance, traffic stays where it is served now
//     (obs's split, on its revisions with ready instances), or else goes to the revision with
//     the most ready instances; such a revision keeps a placement of its live instances, so
//     that nothing serving is stopped;
//   - when no revision has a ready instance, d is returned as it is: there is nothing
//     better to serve from.
//
// Guard is pure and level-triggered: the engine calls it on every reconcile, so the hold
// ends, and the wanted move completes, on the first reconcile that sees the revisions of
// d's split ready. revs are the app's revisions by ID (a revision kept serving needs one).
func Guard(d slipway.Desired, obs slipway.Observed, revs map[string]slipway.Revision) (slipway.Desired, Hold) {
	ready, live := map[string]int{}, map[string]int{}
	for _, rs := range obs.Revisions {
		live[rs.Revision], ready[rs.Revision] = liveCounts(rs)
	}
	var h Hold
	var serve, back []slipway.Weight
	for _, w := range d.Split.Weights {
		switch {
		case w.Weight <= 0:
		case ready[w.Revision] == 0:
			h.Unready = append(h.Unready, w.Revision)
			// An experiment's baseline is a copy of the stable revision: its share is the
			// stable revision's while it cannot serve, never the canary's (which would then
			// serve more than any step gave it: everything at an experiment weight of 50).
			if of, ok := slipway.BaselineStable(w.Revision); ok && ready[of] > 0 && placedIn(d, of) {
				back = append(back, slipway.Weight{Revision: of, Weight: w.Weight})
			}
		default:
			serve = append(serve, w)
		}
	}
	if len(h.Unready) == 0 {
		return d, Hold{}
	}
	for _, b := range back {
		i := slices.IndexFunc(serve, func(w slipway.Weight) bool { return w.Revision == b.Revision })
		if i < 0 {
			serve = append(serve, b)
			continue
		}
		serve[i].Weight += b.Weight
	}
	g := d
	g.Revisions = slices.Clone(d.Revisions)
	for _, id := range h.Unready {
		h.Notable = h.Notable || !onlyStarting(obs.Revision(id))
	}
	if len(serve) == 0 {
		// Nothing d splits to can serve: keep what serves now, with its live instances.
		h.Notable = true
		if serve = servingNow(obs.Split, ready, revs); len(serve) == 0 {
			serve = mostReady(obs, ready, revs)
		}
		if len(serve) == 0 {
			return d, Hold{}
		}
		for _, w := range serve {
			keep(&g, revs[w.Revision], live[w.Revision])
		}
	}
	slices.Sort(h.Unready)
	g.Split = d.Split.Clone()
	g.Split.Weights = scaleTo100(serve)
	h.Want, h.Serve = d.Split.Clone(), g.Split.Clone()
	return normalize(g), h
}

// onlyStarting reports whether every instance of rs that is not draining is starting (true
// when it has none).
func onlyStarting(rs slipway.RevisionStatus) bool {
	for _, in := range rs.Instances {
		if in.State != slipway.InstanceStarting && in.State != slipway.InstanceDraining {
			return false
		}
	}
	return true
}

// keep places at least n instances of rev in d.
func keep(d *slipway.Desired, rev slipway.Revision, n int) {
	for i := range d.Revisions {
		if d.Revisions[i].Revision.ID == rev.ID {
			d.Revisions[i].Replicas = max(d.Revisions[i].Replicas, n)
			return
		}
	}
	d.Revisions = append(d.Revisions, slipway.Placement{Revision: rev, Replicas: n})
}

// servingNow returns the weights of split on revisions that have ready instances and are
// known (in revs), in split's order.
func servingNow(split slipway.Split, ready map[string]int, revs map[string]slipway.Revision) []slipway.Weight {
	var out []slipway.Weight
	for _, w := range split.Weights {
		if _, ok := revs[w.Revision]; ok && w.Weight > 0 && ready[w.Revision] > 0 {
			out = append(out, w)
		}
	}
	return out
}

// mostReady returns the known revision with the most ready instances (the lowest ID on a
// tie) at weight 100, or nothing when none has one.
func mostReady(obs slipway.Observed, ready map[string]int, revs map[string]slipway.Revision) []slipway.Weight {
	best := ""
	for _, rs := range obs.Revisions {
		id := rs.Revision
		if _, ok := revs[id]; !ok || ready[id] == 0 {
			continue
		}
		if best == "" || ready[id] > ready[best] || (ready[id] == ready[best] && id < best) {
			best = id
		}
	}
	if best == "" {
		return nil
	}
	return []slipway.Weight{{Revision: best, Weight: 100}}
}

// scaleTo100 scales positive weights, in order, to sum to 100; the rounding remainder goes to
// the first.
func scaleTo100(ws []slipway.Weight) []slipway.Weight {
	sum := 0
	for _, w := range ws {
		sum += w.Weight
	}
	out := make([]slipway.Weight, len(ws))
	left := 100
	for i, w := range ws {
		out[i] = slipway.Weight{Revision: w.Revision, Weight: w.Weight * 100 / sum}
		left -= out[i].Weight
	}
	out[0].Weight += left
	return out
}

// placedIn reports whether d places instances of revision id.
func placedIn(d slipway.Desired, id string) bool {
	return slices.ContainsFunc(d.Revisions, func(p slipway.Placement) bool { return p.Revision.ID == id && p.Replicas > 0 })
}
