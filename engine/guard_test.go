package engine

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

// observedLive is an observation with split in effect and the given revisions' instances.
func observedLive(split slipway.Split, revs ...slipway.RevisionStatus) slipway.Observed {
	return slipway.Observed{App: "web", Split: split, Revisions: revs}
}

// live is revision id with running instances, ready of them ready (the others stopped
// being ready), and draining more on their way out (ready, as draining ones are until they
// stop).
func live(id string, ready, running, draining int) slipway.RevisionStatus {
	rs := slipway.RevisionStatus{Revision: id}
	for i := range running + draining {
		in := slipway.Instance{ID: fmt.Sprintf("%s-%d", id, i), State: slipway.InstanceRunning, Ready: i < ready}
		if i >= running {
			in.State, in.Ready = slipway.InstanceDraining, true
		}
		rs.Instances = append(rs.Instances, in)
	}
	return rs
}

// starting is revision id with n instances starting, none ready yet.
func starting(id string, n int) slipway.RevisionStatus {
	rs := slipway.RevisionStatus{Revision: id}
	for i := range n {
		rs.Instances = append(rs.Instances, slipway.Instance{ID: fmt.Sprintf("%s-%d", id, i), State: slipway.InstanceStarting})
	}
	return rs
}

func TestGuard(t *testing.T) {
	revs := testRevs("v1", "v2", "v3")
	idle := func(stable string) slipway.Desired {
		return Desired(slipway.AppState{Spec: slipway.App{Name: "web", Replicas: 4}, Stable: stable}, nil, revs)
	}
	canaryAt := func(w int) slipway.Desired {
		return slipway.Desired{App: "web", Revisions: []slipway.Placement{{Revision: revs["v1"], Replicas: 4}, {Revision: revs["v2"], Replicas: 2}},
			Split: weights("v2", w, "v1", 100-w)}
	}
	switched := slipway.Desired{App: "web", Revisions: []slipway.Placement{{Revision: revs["v1"], Replicas: 4}, {Revision: revs["v2"], Replicas: 4}},
		Split: weights("v2", 100)}
	for _, tc := range []struct {
		name    string
		want    slipway.Desired
		obs     slipway.Observed
		place   []string      // placements of the guarded state
		split   slipway.Split // its split
		unready []string      // the hold's revisions (nil: no hold)
		notable bool          // whether the hold is worth an event
	}{
		{name: "every weighted revision ready: nothing held", want: canaryAt(50),
			obs:   observedLive(weights("v2", 50, "v1", 50), live("v1", 4, 4, 0), live("v2", 2, 2, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v2", 50, "v1", 50)},
		{name: "abort while stable has no ready instance keeps the ready canary serving", want: idle("v1"),
			obs:   observedLive(weights("v2", 50, "v1", 50), live("v1", 0, 4, 0), live("v2", 2, 2, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v2", 100), unready: []string{"v1"}, notable: true},
		{name: "the hold is level-triggered: what is served now stays served", want: idle("v1"),
			obs:   observedLive(weights("v2", 100), live("v1", 0, 4, 0), live("v2", 1, 2, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v2", 100), unready: []string{"v1"}, notable: true},
		{name: "the move completes once stable has one ready instance", want: idle("v1"),
			obs:   observedLive(weights("v2", 100), live("v1", 1, 4, 0), live("v2", 2, 2, 0)),
			place: []string{"v1=4"}, split: weights("v1", 100)},
		{name: "a canary step's weight waits quietly for the canary's first instance", want: canaryAt(20),
			obs:   observedLive(weights("v1", 100), live("v1", 4, 4, 0), starting("v2", 1)),
			place: []string{"v1=4", "v2=2"}, split: weights("v1", 100), unready: []string{"v2"}},
		{name: "a canary step's weight waits quietly before the canary has instances", want: canaryAt(20),
			obs:   observedLive(weights("v1", 100), live("v1", 4, 4, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v1", 100), unready: []string{"v2"}},
		{name: "a canary whose instances stopped being ready is held off, notably", want: canaryAt(20),
			obs:   observedLive(weights("v2", 20, "v1", 80), live("v1", 4, 4, 0), live("v2", 0, 1, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v1", 100), unready: []string{"v2"}, notable: true},
		{name: "an abort while stable's instances are restarting is notable", want: idle("v1"),
			obs:   observedLive(weights("v2", 100), starting("v1", 4), live("v2", 2, 2, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v2", 100), unready: []string{"v1"}, notable: true},
		{name: "a step while stable is unready serves from the canary only", want: canaryAt(50),
			obs:   observedLive(weights("v2", 20, "v1", 80), live("v1", 0, 4, 0), live("v2", 2, 2, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v2", 100), unready: []string{"v1"}, notable: true},
		{name: "a promotion to a revision that lost its instances stays on the old one", want: switched,
			obs:   observedLive(weights("v1", 100), live("v1", 4, 4, 0), live("v2", 0, 4, 0)),
			place: []string{"v1=4", "v2=4"}, split: weights("v1", 100), unready: []string{"v2"}, notable: true},
		{name: "draining instances do not count as ready", want: idle("v1"),
			obs:   observedLive(weights("v2", 100), live("v1", 0, 4, 2), live("v2", 2, 2, 0)),
			place: []string{"v1=4", "v2=2"}, split: weights("v2", 100), unready: []string{"v1"}, notable: true},
		{name: "with nothing served now, the revision with the most ready instances serves", want: idle("v1"),
			obs:   observedLive(slipway.Split{}, live("v1", 0, 4, 0), live("v2", 1, 1, 0), live("v3", 3, 3, 0)),
			place: []string{"v1=4", "v3=3"}, split: weights("v3", 100), unready: []string{"v1"}, notable: true},
		{name: "the served split keeps its shares among its ready revisions", want: idle("v1"),
			obs:   observedLive(weights("v3", 30, "v2", 30, "v1", 40), live("v1", 0, 4, 0), live("v2", 1, 1, 0), live("v3", 3, 3, 0)),
			place: []string{"v1=4", "v2=1", "v3=3"}, split: weights("v3", 50, "v2", 50), unready: []string{"v1"}, notable: true},
		{name: "a revision the engine does not know is never served", want: idle("v1"),
			obs:   observedLive(weights("vx", 100), live("v1", 0, 4, 0), live("vx", 2, 2, 0)),
			place: []string{"v1=4"}, split: weights("v1", 100)},
		{name: "nothing ready anywhere: the wanted state as it is", want: idle("v1"),
			obs:   observedLive(weights("v2", 100), live("v1", 0, 4, 0), live("v2", 0, 2, 0)),
			place: []string{"v1=4"}, split: weights("v1", 100)},
		{name: "an app's first revision starting: nothing else to serve from", want: idle("v1"),
			obs:   observedLive(slipway.Split{}, live("v1", 0, 2, 0)),
			place: []string{"v1=4"}, split: weights("v1", 100)},
		{name: "nothing wanted: nothing held", want: slipway.Desired{App: "web"},
			obs:   observedLive(weights("v1", 100), live("v1", 4, 4, 0)),
			place: nil, split: slipway.Split{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			wantCopy := want
			wantCopy.Revisions, wantCopy.Split = slices.Clone(want.Revisions), want.Split.Clone()
			g, h := Guard(want, tc.obs, revs)
			if got := placements(g); !slices.Equal(got, tc.place) {
				t.Errorf("placements %v, want %v", got, tc.place)
			}
			if !reflect.DeepEqual(g.Split, tc.split) {
				t.Errorf("split %+v, want %+v", g.Split, tc.split)
			}
			if !slices.Equal(h.Unready, tc.unready) || h.Held() != (tc.unready != nil) || h.Notable != tc.notable {
				t.Errorf("hold %+v, want unready %v, notable %v", h, tc.unready, tc.notable)
			}
			if h.Held() && (!h.Want.Equal(want.Split) || !h.Serve.Equal(g.Split) || !strings.Contains(h.Message(), "no ready instance")) {
				t.Errorf("hold %+v (%q) does not describe %+v -> %+v", h, h.Message(), want.Split, g.Split)
			}
			if len(g.Problems()) != 0 {
				t.Errorf("guarded state cannot run: %v", g.Problems())
			}
			if !reflect.DeepEqual(want, wantCopy) {
				t.Errorf("Guard changed its argument")
			}
			if again, h2 := Guard(want, tc.obs, revs); !reflect.DeepEqual(again, g) || !h2.Equal(h) {
				t.Errorf("Guard is not deterministic")
			}
		})
	}
}
